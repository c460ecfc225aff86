"""Range checks for decimal fields (msgspec cannot constrain Decimal): refused as 422 with the field's pointer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import msgspec
from msgspec import UNSET

from runtime.problems import FieldError, Unprocessable


class DecimalRange(msgspec.Struct, frozen=True):
    minimum: Decimal | None = None
    exclusive: bool = False  # the minimum itself is not allowed
    maximum: Decimal | None = None

    def problem(self, value: Decimal) -> str | None:
        if not value.is_finite():
            return "must be a finite decimal number"
        if self.minimum is not None and (value < self.minimum or (self.exclusive and value == self.minimum)):
            return f"must be {'more than' if self.exclusive else 'at least'} {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum}"
        return None


POSITIVE = DecimalRange(Decimal(0), exclusive=True)
NON_NEGATIVE = DecimalRange(Decimal(0))


class Checked(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A request body: unknown fields are refused; decimal fields are range-checked by :meth:`check`."""

    ranges: ClassVar[dict[str, DecimalRange]] = {}

    def changes(self) -> dict[str, object]:
        """The fields the caller sent (PATCH semantics: absent means unchanged)."""
        return {name: getattr(self, name) for name in self.__struct_fields__ if getattr(self, name) is not UNSET}

    def field_problems(self, prefix: str = "") -> list[FieldError]:
        errors = []
        for name, allowed in self.ranges.items():
            value: Any = getattr(self, name)
            if isinstance(value, Decimal):
                detail = allowed.problem(value)
                if detail:
                    errors.append(FieldError(pointer=f"{prefix}/{name}", detail=detail))
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, Checked):
                errors.extend(value.field_problems(f"{prefix}/{name}"))
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, Checked):
                        errors.extend(item.field_problems(f"{prefix}/{name}/{index}"))
        return errors

    def check(self) -> None:
        errors = self.field_problems()
        if errors:
            raise Unprocessable("; ".join(f"{e.pointer} {e.detail}" for e in errors), slug="validation-failed",
                                errors=errors)
