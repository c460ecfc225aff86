"""Make a schema found inside a contract compilable on its own, local ``$ref``s included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# OpenAPI members a local $ref may point into. None of them is a JSON Schema keyword, so carrying them
# at the root of the compiled schema changes nothing but what "#/components/..." resolves to.
_REFERENCE_TARGETS = ("components", "paths", "webhooks")


def bundle_schema(schema: Any, document: Mapping[str, Any]) -> Any:
    """``schema`` with the document's components attached at its root, so ``#/components/...`` resolves.

    The engines resolve references when they compile, so the attachment costs nothing per validation.
    """
    if not isinstance(schema, Mapping):
        return schema  # boolean schemas hold no references
    bundled = dict(schema)
    for member in _REFERENCE_TARGETS:
        if member in document and member not in bundled:
            bundled[member] = document[member]
    return bundled
