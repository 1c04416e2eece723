"""Group ``pipelines/`` by the data's path (issue 22): one package per floor of the night.

    intake   -> build -> quality -> release -> report -> outbound ; lab and ops on top

The ground floor stays at the top of ``pipelines/``: ``settings``, ``errors``, ``contract`` (the
single source of truth every floor reads), ``warehouse`` and ``duck`` (every DuckDB connection).

Run from the repository root, on a clean work tree (``git status`` empty)::

    python3 tools/regroup_pipelines.py            # moves (git mv) and rewrites every reference
    python3 tools/regroup_pipelines.py --dry-run  # says what it would move and which files change

What it does, in this order:

1. ``git mv`` every module of :data:`MOVES` to its package (creating the packages' ``__init__``).
   A move already done (the old file gone, the new one there) is skipped, so the script can be run
   again on a tree where it already ran, or on main after other branches were merged into it.
2. Rewrites every reference in every text file git tracks (``git ls-files``; Python, Markdown,
   YAML, TOML, the Makefile, shell, ``.ci/``), by regular expressions, never by line numbers:

   * ``from pipelines import a, b`` is split into one import per package (Python, and the
     code blocks of Markdown);
   * a dotted name ``pipelines.<old>`` (imports, ``python -m``, monkeypatch targets, subprocess
     module launches, ``:mod:`` references, entry points) becomes ``pipelines.<package>.<old>``;
   * a path ``pipelines/<old>.py`` (docs, comments, Markdown links) becomes
     ``pipelines/<package>/<old>.py``.

   Each rule only matches the old spelling (``pipelines.`` directly followed by the old name),
   never its rewritten form, so running it twice changes nothing the second time.
3. Sorts the imports it touched (``ruff check --select I --fix`` on the changed Python files) and
   writes the generated files whose generator wraps lines again (:data:`GENERATED`).

After it: ``make install`` (pyproject.toml's entry point moved: the ``segment-mart`` script in
.venv/bin is regenerated), then ruff, the unit and DAG tests.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "pipelines"

#: The packages made here (floors) and what each holds; each ``__init__`` gets this docstring.
#: ``quality``, ``report`` and ``outbound`` exist already; ``release`` is made of ``release.py``.
PACKAGES: dict[str, str] = {
    "intake": "Intake: a night's extract files, read, typed and checked per the contract, into the raw lake "
    "(landing zone, readers, row checks, mappings, ingest, the lake).",
    "build": "Build: dbt over the raw lake on the engine of the night (DuckDB or Spark), its results and "
    "failures in words, the marts read back for the gate and the publish.",
    "lab": "Lab: what runs beside the nights: the synthetic company (generate), the demo, the soak, the "
    "MRR oracle, the backtest, the calibration, the tier-policy lab and the benchmarks.",
    "ops": "Ops: running nights: the steps in order (nightly), the run lock and summary, the preflight, "
    "Airflow (home, services, tasks, test runs) and the command line.",
}

#: ``{old module (under pipelines/): new dotted name (under pipelines/)}``. A package (``generate``)
#: moves whole. ``release`` becomes the package ``release`` itself (its ``__init__``: the reader),
#: so every ``pipelines.release`` reference stays as it is.
MOVES: dict[str, str] = {
    # intake: files -> typed, checked rows -> raw lake
    "landing": "intake.landing",
    "readers": "intake.readers",
    "row_checks": "intake.row_checks",
    "mapping": "intake.mapping",
    "map_preview": "intake.map_preview",
    "ingest": "intake.ingest",
    "lake": "intake.lake",
    # build: dbt on an engine, what it found, the marts read back
    "dbt": "build.dbt",
    "dbt_worker": "build.dbt_worker",
    "dbt_results": "build.dbt_results",
    "dbt_failures": "build.dbt_failures",
    "dbt_sources": "build.dbt_sources",
    "engine": "build.engine",
    "spark_marts": "build.spark_marts",
    "spark_cluster": "build.spark_cluster",
    "marts": "build.marts",
    # release: the reader (the package itself), the writer, the metrics served from a release
    "release": "release",
    "publish": "release.publish",
    "metric_views": "release.metric_views",
    "metrics": "release.metrics",
    # report: the policy lab's written comparison uses the report's helpers only
    "policy_report": "report.policy_report",
    # lab: beside the nights
    "generate": "lab.generate",
    "demo": "lab.demo",
    "soak": "lab.soak",
    "oracle": "lab.oracle",
    "backtest": "lab.backtest",
    "calibration": "lab.calibration",
    "policy_lab": "lab.policy_lab",
    "benchmark": "lab.benchmark",
    # ops: running nights
    "nightly": "ops.nightly",
    "run_lock": "ops.run_lock",
    "run_summary": "ops.run_summary",
    "preflight": "ops.preflight",
    "airflow_home": "ops.airflow_home",
    "airflow_services": "ops.airflow_services",
    "airflow_tasks": "ops.airflow_tasks",
    "dag_test_runs": "ops.dag_test_runs",
    "cli": "ops.cli",
}

#: The ground floor: the modules that stay at the top of ``pipelines/`` (every floor reads them).
GROUND = {"__init__", "settings", "errors", "contract", "warehouse", "duck"}
#: The old names that are packages (moved whole, with their modules).
PACKAGE_MOVES = {"generate"}
#: Files never rewritten: this script (it names every old path on purpose).
SKIP = {"tools/regroup_pipelines.py"}
TEXT_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".txt", ".sh", ".json", ".sql",
                 ".html", ".j2", ".rst", ".in"}
TEXT_NAMES = {"Makefile", "Dockerfile", ".gitignore", ".dockerignore"}


def git(*args: str, capture: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, check=True, text=True,
                          capture_output=capture)
    return done.stdout if capture else ""


def _paths(old: str, new: str) -> tuple[Path, Path]:
    """Where ``old`` lives before the move and where it lives after it."""
    base = ROOT / PACKAGE
    if old in PACKAGE_MOVES:
        return base / old, base / Path(*new.split("."))
    if old == new:  # the module becomes the package of its own name, as its __init__
        return base / f"{old}.py", base / new / "__init__.py"
    *package, module = new.split(".")
    return base / f"{old}.py", base / Path(*package) / f"{module}.py"


def unignore_build(dry_run: bool) -> bool:
    """``.gitignore``'s ``build/`` (setuptools' build folder, at the root) would also ignore
    ``pipelines/build/``: anchor it to the root. True when it changed."""
    path = ROOT / ".gitignore"
    if not path.exists():
        return False
    text = path.read_text()
    new = re.sub(r"(?m)^build/$", "/build/", text)
    if new != text and not dry_run:
        path.write_text(new)
    return new != text


def move(dry_run: bool) -> list[tuple[str, str]]:
    """The ``git mv``s still to do (each ``(old path, new path)``), done unless ``dry_run``."""
    done: list[tuple[str, str]] = []
    if unignore_build(dry_run):
        print(".gitignore: build/ anchored to the root (/build/), so pipelines/build/ is tracked")
    for old, new in MOVES.items():
        source, target = _paths(old, new)
        if not source.exists():
            if not target.exists():
                sys.exit(f"neither {source.relative_to(ROOT)} nor {target.relative_to(ROOT)} exists: "
                         "is MOVES out of date with the tree?")
            continue  # moved by an earlier run
        if target.exists():
            sys.exit(f"both {source.relative_to(ROOT)} and {target.relative_to(ROOT)} exist: resolve by hand")
        done.append((str(source.relative_to(ROOT)), str(target.relative_to(ROOT))))
        if not dry_run:
            target.parent.mkdir(parents=True, exist_ok=True)
            git("mv", str(source.relative_to(ROOT)), str(target.relative_to(ROOT)))
    for name, doc in PACKAGES.items():
        init = ROOT / PACKAGE / name / "__init__.py"
        if not init.exists() and not dry_run:
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_text(f'"""{_wrap(doc)}"""\n')
            git("add", str(init.relative_to(ROOT)))
    return done


def _wrap(text: str, width: int = 96) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(lines)


# --- rewriting references -------------------------------------------------------------------

_NAMES = "|".join(sorted(MOVES, key=len, reverse=True))
#: ``pipelines.<old>`` not preceded by a word character or a dot (``x.pipelines.y`` is not ours)
#: and ending at a name boundary (``pipelines.dbt`` is not ``pipelines.dbt_results``).
DOTTED = re.compile(rf"(?<![\w.])({PACKAGE})\.({_NAMES})\b")
#: ``pipelines/<old>.py`` or ``pipelines/<old>/`` (the generate package) in paths and links.
SLASHED = re.compile(rf"(?<![\w.])({PACKAGE})/({_NAMES})(\.py\b|/|\b)")
#: ``from pipelines import a, b as c  # comment`` on one line (the project writes no other form).
FROM_IMPORT = re.compile(rf"^(?P<indent>[ \t]*)from {PACKAGE} import (?P<names>[\w ,]+?)(?P<tail>[ \t]*(#.*)?)$",
                         re.MULTILINE)


def _dotted(match: re.Match) -> str:
    old = match.group(2)
    return f"{PACKAGE}.{MOVES[old]}"


def _slashed(match: re.Match) -> str:
    old, end = match.group(2), match.group(3)
    new = MOVES[old].replace(".", "/")
    if old == MOVES[old]:  # release.py -> release/__init__.py; a path to the folder stays
        return f"{PACKAGE}/{new}/__init__.py" if end == ".py" else match.group(0)
    return f"{PACKAGE}/{new}{end}"


def _from_import(match: re.Match) -> str:
    names = [n.strip() for n in match.group("names").split(",") if n.strip()]
    groups: dict[str, list[str]] = {}
    for item in names:
        name = item.split(" as ")[0].strip()
        target = MOVES.get(name)
        if target is None or target == name:
            groups.setdefault(PACKAGE, []).append(item)
        else:
            package, _, module = f"{PACKAGE}.{target}".rpartition(".")
            groups.setdefault(package, []).append(item if module == name else f"{module} as {name}")
    if list(groups) == [PACKAGE]:
        return match.group(0)
    indent, tail = match.group("indent"), match.group("tail")
    lines = [f"{indent}from {package} import {', '.join(items)}" for package, items in groups.items()]
    lines[-1] += tail
    return "\n".join(lines)


def rewrite_text(text: str, python: bool) -> str:
    if python:
        text = FROM_IMPORT.sub(_from_import, text)
    text = DOTTED.sub(_dotted, text)
    return SLASHED.sub(_slashed, text)


def tracked_text_files() -> list[Path]:
    out = []
    for name in git("ls-files", "-z").split("\0"):
        if not name or name in SKIP:
            continue
        path = ROOT / name
        if not path.is_file() or path.is_symlink():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES or name.startswith(".ci/"):
            out.append(path)
    return out


def rewrite(dry_run: bool) -> list[Path]:
    changed = []
    for path in tracked_text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        new = rewrite_text(text, python=path.suffix in (".py", ".md"))  # Markdown: its code blocks
        if new != text:
            changed.append(path)
            if not dry_run:
                path.write_text(new)
    return changed


def sort_imports(paths: list[Path]) -> None:
    python = [str(p.relative_to(ROOT)) for p in paths if p.suffix == ".py"]
    ruff = ROOT / ".venv" / "bin" / "ruff"
    if not python:
        return
    if not ruff.exists():
        print(f"no {ruff.relative_to(ROOT)}: sort the imports with `ruff check --select I --fix` yourself")
        return
    subprocess.run([str(ruff), "check", "--quiet", "--select", "I", "--fix", *python], cwd=ROOT, check=False)


#: Generated files whose generator wraps lines (YAML): written again by their generator, so they
#: stay byte-identical to what it prints (a test compares them). ``dags/dbt_nodes.json`` holds the
#: path in one JSON string, which the rewrite keeps exact.
GENERATED = {
    "docs/extract-contract.md": ("contract", "--markdown"),
    "dbt_project/models/staging/_staging__sources.yml": ("contract", "--dbt-sources"),
}


def regenerate(dry_run: bool) -> list[str]:
    """Write the generated files again with ``segment-mart contract`` (run as a module of this
    tree, so the installed entry point need not be up to date). The files that changed."""
    python = ROOT / ".venv" / "bin" / "python"
    cli = f"{PACKAGE}.{MOVES['cli']}"
    if not python.exists():
        print(f"no {python.relative_to(ROOT)}: regenerate {', '.join(GENERATED)} with `segment-mart contract`")
        return []
    changed = []
    for name, args in GENERATED.items():
        path = ROOT / name
        if not path.exists():
            continue
        text = subprocess.run([str(python), "-m", cli, *args], cwd=ROOT, check=True, text=True,
                              capture_output=True).stdout
        if text != path.read_text():
            changed.append(name)
            if not dry_run:
                path.write_text(text)
    return changed


def unplaced() -> list[str]:
    """Modules or packages at the top of ``pipelines/`` that neither stay on the ground floor nor
    are a floor: added since MOVES was written (by a branch merged later). Say where they go."""
    floors = {*(n.split(".")[0] for n in MOVES.values()), "quality", "report", "outbound"}
    out = []
    for path in sorted((ROOT / PACKAGE).iterdir()):
        name = path.stem if path.suffix == ".py" else path.name
        if path.suffix == ".py" and name not in GROUND and name not in MOVES:
            out.append(str(path.relative_to(ROOT)))
        elif (path / "__init__.py").exists() and name not in floors and name not in MOVES:
            out.append(str(path.relative_to(ROOT)) + "/")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    args = parser.parse_args()
    moves = move(args.dry_run)
    for source, target in moves:
        print(f"{'would move' if args.dry_run else 'moved'} {source} -> {target}")
    changed = rewrite(args.dry_run)
    regenerated: list[str] = []
    if not args.dry_run:
        sort_imports(changed)
        regenerated = regenerate(args.dry_run)
    print(f"{'would rewrite' if args.dry_run else 'rewrote'} {len(changed)} file(s)"
          + "".join(f"\n  {p.relative_to(ROOT)}" for p in changed))
    for name in regenerated:
        print(f"regenerated {name}")
    for name in unplaced():
        print(f"NOT PLACED: {name} is new since MOVES was written: add it to MOVES (or GROUND) and run again")
    if not moves and not changed and not regenerated:
        print("nothing to do: pipelines/ is already grouped")


if __name__ == "__main__":
    main()
