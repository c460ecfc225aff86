"""Vendor internal ids <-> business keys, both ways, learned as the connector sees records.

Internal ids never change for a record, so a pair once seen stays true; connectors reload a whole map when
they meet an id they do not know (a record created since).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V", bound=Hashable)


class KeyMap(Generic[V]):
    def __init__(self, pairs: dict[str, V] | None = None) -> None:
        self._vendor: dict[str, V] = {}
        self._key: dict[V, str] = {}
        for key, vendor_id in (pairs or {}).items():
            self.learn(key, vendor_id)

    def learn(self, key: str, vendor_id: V) -> None:
        self._vendor[key] = vendor_id
        self._key[vendor_id] = key

    def forget(self, key: str) -> None:
        vendor_id = self._vendor.pop(key, None)
        if vendor_id is not None:
            self._key.pop(vendor_id, None)

    def vendor_id(self, key: str) -> V | None:
        return self._vendor.get(key)

    def key(self, vendor_id: V) -> str | None:
        return self._key.get(vendor_id)

    def __len__(self) -> int:
        return len(self._vendor)
