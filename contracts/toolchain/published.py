"""A published contract may only change additively: compare the working tree with a published revision.

Both kinds of contract are checked: the OpenAPI documents (``v<N>.yaml``) and the AsyncAPI event contracts
(``asyncapi.yaml``, compared by :func:`contracts.toolchain.diff.asyncapi.diff_asyncapi`)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path, PurePosixPath

import msgspec
import yaml

from contracts.toolchain.asyncapi import AsyncApiLoadError, load_asyncapi
from contracts.toolchain.catalog import locate_contract
from contracts.toolchain.diff import Change, diff_documents, is_breaking
from contracts.toolchain.diff.asyncapi import diff_asyncapi
from contracts.toolchain.git_source import (
    GitFileReference,
    files_at_revision,
    load_contract_at_revision,
    read_file_at_revision,
    repository_root,
)
from contracts.toolchain.loader import ContractLoadError, load_contract
from contracts.toolchain.operations import as_mapping


class PublishedStatus(StrEnum):
    UNCHANGED = "unchanged"
    ADDITIVE = "additive"
    BREAKING = "breaking"
    RETIRED_AND_DELETED = "retired_and_deleted"
    DELETED_WITHOUT_RETIREMENT = "deleted_without_retirement"
    UNREADABLE = "unreadable"


FAILING_STATUSES = frozenset(
    {PublishedStatus.BREAKING, PublishedStatus.DELETED_WITHOUT_RETIREMENT, PublishedStatus.UNREADABLE}
)


class PublishedContractCheck(msgspec.Struct, frozen=True, kw_only=True):
    path: str  # repository-relative
    status: PublishedStatus
    detail: str
    changes: tuple[Change, ...] = ()

    @property
    def failed(self) -> bool:
        return self.status in FAILING_STATUSES


def check_published(base: str, contracts_dir: Path) -> list[PublishedContractCheck]:
    """Check every contract that existed under ``contracts_dir`` at revision ``base`` against the working tree.

    A contract fails when its changes include a breaking one, or when its file was deleted while the
    published version was not ``x-lifecycle: retired`` (retire first, in a published version; delete later).
    Raises ``GitSourceError`` when git cannot answer.
    """
    repository = repository_root(contracts_dir)
    directory = PurePosixPath(contracts_dir.resolve().relative_to(repository.resolve()).as_posix())
    checks: list[PublishedContractCheck] = []
    for path in files_at_revision(base, directory, repository):
        if locate_contract(PurePosixPath(path)) is not None:
            checks.append(_check_one(GitFileReference(base, path), repository))
        elif PurePosixPath(path).name == ASYNCAPI_FILE:
            checks.append(_check_asyncapi(GitFileReference(base, path), repository))
    return checks


ASYNCAPI_FILE = "asyncapi.yaml"


def _check_asyncapi(reference: GitFileReference, repository: Path) -> PublishedContractCheck:
    try:
        published = yaml.safe_load(read_file_at_revision(reference, repository))
    except yaml.YAMLError as error:
        return _result(reference, PublishedStatus.UNREADABLE, f"the published version does not load: {error}")
    if not isinstance(published, dict):
        return _result(reference, PublishedStatus.UNREADABLE, "the published version is not a YAML mapping")
    working = repository / reference.path
    if not working.exists():
        return _deleted(reference, as_mapping(published.get("info")).get("x-lifecycle"))
    try:
        current = load_asyncapi(working)
    except AsyncApiLoadError as error:
        return _result(reference, PublishedStatus.UNREADABLE, str(error))
    return _judged(reference, tuple(diff_asyncapi(published, current)))


def _check_one(reference: GitFileReference, repository: Path) -> PublishedContractCheck:
    try:
        published = load_contract_at_revision(reference, repository)
    except ContractLoadError as error:
        return _result(reference, PublishedStatus.UNREADABLE, f"the published version does not load: {error}")
    working = repository / reference.path
    if not working.exists():
        return _deleted(reference, as_mapping(published.content.get("info")).get("x-lifecycle"))
    try:
        current = load_contract(working, reference.path)
    except ContractLoadError as error:
        return _result(reference, PublishedStatus.UNREADABLE, str(error))
    return _judged(reference, tuple(diff_documents(published, current)))


def _deleted(reference: GitFileReference, lifecycle: object) -> PublishedContractCheck:
    if lifecycle == "retired":
        return _result(reference, PublishedStatus.RETIRED_AND_DELETED, "deleted after it was retired")
    return _result(
        reference,
        PublishedStatus.DELETED_WITHOUT_RETIREMENT,
        f"deleted while its published x-lifecycle is {lifecycle!r}; publish it as 'retired' first",
    )


def _judged(reference: GitFileReference, changes: tuple[Change, ...]) -> PublishedContractCheck:
    if is_breaking(changes):
        breaking = sum(1 for change in changes if change.severity == "breaking")
        return _result(reference, PublishedStatus.BREAKING, f"{breaking} breaking change(s)", changes)
    if changes:
        return _result(reference, PublishedStatus.ADDITIVE, f"{len(changes)} additive change(s)", changes)
    return _result(reference, PublishedStatus.UNCHANGED, "unchanged")


def _result(
    reference: GitFileReference, status: PublishedStatus, detail: str, changes: tuple[Change, ...] = ()
) -> PublishedContractCheck:
    return PublishedContractCheck(path=reference.path, status=status, detail=detail, changes=changes)
