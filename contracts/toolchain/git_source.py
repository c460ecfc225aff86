"""Read contracts as they were at a git revision (``git show``), for diffs against published versions."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from contracts.toolchain.loader import ContractDocument, load_contract_text

GIT_PREFIX = "git:"


class GitSourceError(Exception):
    """git is missing, the directory is not a repository, or the revision or path does not exist."""


@dataclass(frozen=True, slots=True)
class GitFileReference:
    """``git:<revision>:<path>``; the path is relative to the repository root (or ``./``-relative to cwd)."""

    revision: str
    path: str

    @property
    def spec(self) -> str:
        return f"{GIT_PREFIX}{self.revision}:{self.path}"


def parse_git_reference(spec: str) -> GitFileReference | None:
    """``"git:HEAD~1:contracts/x/v1.yaml"`` -> reference; None when ``spec`` is not a git reference."""
    if not spec.startswith(GIT_PREFIX):
        return None
    revision, separator, path = spec[len(GIT_PREFIX) :].partition(":")
    if not separator or not revision or not path:
        raise GitSourceError(f"expected git:<revision>:<path>, got {spec!r}")
    return GitFileReference(revision, path)


def _git(arguments: list[str], cwd: Path | None) -> str:
    try:
        completed = subprocess.run(
            ["git", *arguments], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GitSourceError(f"cannot run git: {error}") from error
    if completed.returncode != 0:
        raise GitSourceError(completed.stderr.strip() or f"git {' '.join(arguments)} failed")
    return completed.stdout


def repository_root(cwd: Path) -> Path:
    return Path(_git(["rev-parse", "--show-toplevel"], cwd).strip())


def read_file_at_revision(reference: GitFileReference, cwd: Path | None = None) -> str:
    return _git(["show", f"{reference.revision}:{reference.path}"], cwd)


def load_contract_at_revision(reference: GitFileReference, cwd: Path | None = None) -> ContractDocument:
    """The contract as it was at the revision; findings and changes name it ``git:<rev>:<path>``."""
    return load_contract_text(read_file_at_revision(reference, cwd), reference.spec)


def files_at_revision(revision: str, directory: PurePosixPath, repository: Path) -> list[str]:
    """Repository-relative paths of the files under ``directory`` at ``revision``."""
    listing = _git(["ls-tree", "-r", "--name-only", revision, "--", str(directory)], repository)
    return [line for line in listing.splitlines() if line]
