"""The house ruleset, one module per concern; ``RULESET`` is the order findings are produced in."""

from contracts.toolchain.lint.model import Rule
from contracts.toolchain.lint.rules import (
    closed_sets,
    data_types,
    documentation,
    examples,
    metadata,
    naming,
    operations,
    pagination,
    problems,
    security,
    validity,
)

RULESET: tuple[Rule, ...] = (
    *validity.RULES,
    *naming.RULES,
    *operations.RULES,
    *problems.RULES,
    *security.RULES,
    *pagination.RULES,
    *metadata.RULES,
    *documentation.RULES,
    *examples.RULES,
    *data_types.RULES,
    *closed_sets.RULES,
)

__all__ = ["RULESET"]
