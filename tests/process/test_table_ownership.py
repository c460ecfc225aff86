"""Each part of the process tier owns its tables and offers queries to the others (issue 14 item 8).

The owners are declared once, in process_apis/store.py (``OWNERS``); infrastructure allowed to touch another
part's table says why there (``INFRASTRUCTURE_USES``)."""

from __future__ import annotations

import ast
from pathlib import Path

import sqlalchemy as sa

import process_apis
from process_apis import store
from process_apis.expenses import store as expenses_store

ROOT = Path(process_apis.__file__).parent
STORES = ("process_apis.store", "process_apis.expenses.store")


def owner_of() -> dict[str, str]:
    return {table: part for part, tables in store.OWNERS.items() for table in tables}


def foreign_table_imports(root: Path) -> list[str]:
    owners = owner_of()
    found = []
    for path in sorted(root.rglob("*.py")):
        part = path.relative_to(root).parts[0]  # ``timesheets`` for timesheets/days.py, ``jobs.py`` for jobs.py
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Import) and any(alias.name in STORES for alias in node.names)) or (
                    isinstance(node, ast.ImportFrom) and any(f"{node.module}.{alias.name}" in STORES
                                                             for alias in node.names)):
                # store.<table> would escape the check below: import the names
                found.append(f"{path.relative_to(root)}:{node.lineno} imports a store module whole")
            if not (isinstance(node, ast.ImportFrom) and node.module in STORES):
                continue
            for alias in node.names:
                owner = owners.get(alias.name)
                if owner is not None and owner != part and (part, alias.name) not in store.INFRASTRUCTURE_USES:
                    found.append(f"{path.relative_to(root)}:{node.lineno} uses {alias.name}, owned by {owner}")
    return found


def test_every_table_has_exactly_one_owner() -> None:
    """A table added to the tier's metadata without an owner (or given two) is named here."""
    declared = {name: value for module in (store, expenses_store) for name, value in vars(module).items()
                if isinstance(value, sa.Table)}
    listed = [table for tables in store.OWNERS.values() for table in tables]
    assert sorted(declared) == sorted(listed)
    assert len(listed) == len(set(listed))
    assert set(store.metadata.tables.values()) == set(declared.values())
    assert all(table in owner_of() for _part, table in store.INFRASTRUCTURE_USES)


def test_no_part_of_the_tier_imports_a_table_it_does_not_own() -> None:
    """A part reads and writes only its own tables; what it needs of another's it asks the owner for (a query on
    the caller's connection). Read by the code's syntax: ``from process_apis.store import <table>`` (or the
    expenses store) in a part that does not own the table, outside INFRASTRUCTURE_USES, is named file:line."""
    assert foreign_table_imports(ROOT) == []
