"""What every rule gets: the document, where its file sits in the layout, and its operations."""

from __future__ import annotations

from functools import cached_property

from contracts.toolchain.catalog import ContractLocation
from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.operations import OperationSite, iter_operations


class LintContext:
    def __init__(self, document: ContractDocument, location: ContractLocation | None) -> None:
        self.document = document
        self.location = location

    @cached_property
    def operations(self) -> list[OperationSite]:
        return list(iter_operations(self.document))
