"""Every exception class of the project says by type whether retrying can help (issue 22)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from pipelines.errors import DataProblem, Transient

ROOT = Path(__file__).resolve().parents[2]


def _exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in a module under pipelines/ (found with ast, so a module
    that is never imported elsewhere is not missed; then imported to read its real bases)."""
    found = []
    for path in sorted((ROOT / "pipelines").rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        if not names:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        module = importlib.import_module(".".join(parts))
        for name in names:
            cls = getattr(module, name, None)
            if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found.append(cls)
    return found


def test_every_exception_is_a_data_problem_or_transient_never_both():
    classes = _exception_classes()
    assert len(classes) >= 25, [c.__name__ for c in classes]  # the walk found them
    neither = [f"{c.__module__}.{c.__qualname__}" for c in classes
               if c not in (DataProblem, Transient) and not issubclass(c, (DataProblem, Transient))]
    both = [f"{c.__module__}.{c.__qualname__}" for c in classes if issubclass(c, DataProblem) and issubclass(c, Transient)]
    assert not neither, f"derive these from pipelines.errors.DataProblem or Transient: {neither}"
    assert not both, f"these derive from both DataProblem and Transient: {both}"


def test_the_classification_of_the_nights_failures():
    from pipelines.build.dbt import DbtFailed, DbtWarehouseLocked
    from pipelines.intake.landing import SourceRejected
    from pipelines.ops.preflight import NightOutOfOrder
    from pipelines.ops.run_lock import RunInProgress
    from pipelines.quality import QualityGateFailed
    from pipelines.release.publish import PublishBusy, PublishRefused
    from pipelines.warehouse import WarehouseLocked

    for cls in (SourceRejected, QualityGateFailed, DbtFailed, PublishRefused, NightOutOfOrder):
        assert issubclass(cls, DataProblem), cls
    for cls in (RunInProgress, WarehouseLocked, DbtWarehouseLocked, PublishBusy):
        assert issubclass(cls, Transient), cls
