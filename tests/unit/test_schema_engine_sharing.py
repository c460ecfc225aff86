"""The shared schema engine the gateway and tiers validate with: an invalid schema is refused when a contract is
loaded, never on the first call that would use it; a schema compiled on first use validates as a compiled one does;
one compiled schema serves every operation that bundles the same schema."""

from __future__ import annotations

import pytest

from contracts.toolchain.schemas.engine import SchemaCompileError, default_engine

ORDER = {"type": "object", "required": ["hours"], "additionalProperties": False,
         "properties": {"hours": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"}}}


def test_an_invalid_schema_is_refused_when_compiled_not_when_first_used() -> None:
    with pytest.raises(SchemaCompileError):
        default_engine().compile({"type": "object", "properties": {"hours": {"type": 5}}})


def test_a_schema_compiled_on_first_use_validates_and_reports_pointers() -> None:
    compiled = default_engine().compile(ORDER)
    assert compiled.violations({"hours": "8", "minutes": 3})[0].pointer == "/minutes"
    assert compiled.is_valid({"hours": "7.5"})
    assert not compiled.is_valid({"hours": "1E+1"})
    assert [v.pointer for v in compiled.violations({"hours": 8})] == ["/hours"]


def test_the_same_schema_is_compiled_once_for_every_operation_that_bundles_it() -> None:
    assert default_engine().compile(dict(ORDER)) is default_engine().compile(dict(ORDER))
