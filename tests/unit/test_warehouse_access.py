"""One room for warehouse access (issue 22): only :mod:`pipelines.warehouse` opens a DuckDB
connection. A module that calls ``duckdb.connect`` itself skips the pipeline's memory, thread and
spill limits, the UTC session and the bounded wait on DuckDB's file lock."""

from __future__ import annotations

import ast
from pathlib import Path

import pipelines
import pipelines.warehouse

PACKAGE_DIR = Path(pipelines.__file__).parent


def _connect_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "duckdb"]


def test_only_the_warehouse_module_opens_duckdb_connections() -> None:
    allowed = Path(pipelines.warehouse.__file__).resolve()
    found = {str(path.relative_to(PACKAGE_DIR.parent)): lines for path in sorted(PACKAGE_DIR.rglob("*.py"))
             if path.resolve() != allowed and (lines := _connect_calls(path))}
    assert not found, f"duckdb.connect outside pipelines.warehouse (use its openers): {found}"


def test_the_check_sees_a_connect_call(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("import duckdb\n\ncon = duckdb.connect()\n")
    assert _connect_calls(planted) == [3]
