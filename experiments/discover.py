"""Find the experiments under teams/ by reading their source, without running it.

Layout: `teams/<team>/<name>.py` (one file) or `teams/<team>/<folder>/` (a package with __init__.py). Each
`@experiment(...)` decorator in those files is one experiment of that team; its arguments must be plain strings. Nothing is
imported here, so a file that crashes, hangs or pulls in a big library at import time cannot break discovery (or
the Dagster code location built from it): the file is imported only in the isolated run, or when its function is
called. A file that cannot be used is skipped with an ExperimentWarning naming the file, line and problem.
"""
from __future__ import annotations

import ast
import warnings
from pathlib import Path

from .api import Experiment, _Deferred, check_name, check_task
from .errors import ExperimentError, ExperimentWarning

DEFAULT_ROOT = Path(__file__).resolve().parent / "teams"
FIELDS = ("name", "task", "description")


def _skip(p: Path) -> bool:
    return p.name.startswith(("_", ".")) or p.name == "__pycache__"


def _sources(entry: Path) -> list[Path]:
    if entry.is_file():
        return [entry]
    return sorted(p for p in entry.rglob("*.py") if "__pycache__" not in p.parts)


def _is_decorator(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (isinstance(f, ast.Name) and f.id == "experiment") or (isinstance(f, ast.Attribute) and f.attr == "experiment")


def _declarations(source: Path) -> list[tuple[int, str, dict]]:
    """(line, function name, decorator arguments) of every @experiment(...) in one file."""
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    except (SyntaxError, UnicodeDecodeError) as e:
        raise ExperimentError(f"{source}:{getattr(e, 'lineno', 0) or 0}: cannot be read as Python "
                              f"({e.__class__.__name__}: {getattr(e, 'msg', e)})") from None
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for dec in node.decorator_list:
            if not _is_decorator(dec):
                continue
            args = {}
            if dec.args:
                raise ExperimentError(f"{source}:{dec.lineno}: @experiment takes keyword arguments only, "
                                      f"e.g. @experiment(name=..., task=..., description=...)")
            for kw in dec.keywords:
                if kw.arg == "team":
                    # the team is the folder the file is in: a file cannot speak for another team
                    warnings.warn(f"{source}:{dec.lineno}: @experiment(team=...) is ignored; the team is the folder "
                                  f"under teams/ that holds the file", ExperimentWarning, stacklevel=2)
                    continue
                if kw.arg not in FIELDS:
                    raise ExperimentError(f"{source}:{dec.lineno}: @experiment has no argument {kw.arg!r}; "
                                          f"allowed: {', '.join(FIELDS)}")
                if not (isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str)):
                    raise ExperimentError(f"{source}:{dec.lineno}: @experiment argument {kw.arg!r} must be a plain "
                                          f"string (discovery reads it without running the file)")
                args[kw.arg] = kw.value.value
            out.append((dec.lineno, node.name, args))
    return out


def _experiment(entry: Path, team: str, fn_name: str, args: dict, found: dict[str, Experiment]) -> Experiment:
    name = check_name(args.get("name") or fn_name, "experiment name")
    team = check_name(team, "team")
    task = check_task(args.get("task", ""))
    if f"{team}/{name}" in found:
        raise ExperimentError(f"experiment name {name!r} is already used by {found[f'{team}/{name}'].path}; "
                              f"allowed: a name no other experiment of team {team} has")
    return Experiment(name=name, team=team, task=task, description=args.get("description", ""),
                      fn=_Deferred(entry.resolve(), name), path=entry.resolve())


def discover(root: str | Path | None = None) -> list[Experiment]:
    """Every usable experiment under `root` (default: experiments/teams), sorted by team and name.

    An experiment is known as team/name, the team being the folder that holds the file (whatever the file
    claims), so no file can take over another team's experiment or leaderboard row. Names are unique within a
    team: a second experiment with a name the team already has is skipped with a warning."""
    root = Path(root) if root is not None else DEFAULT_ROOT
    if not root.is_dir():
        return []
    found: dict[str, Experiment] = {}
    for team_dir in sorted(p for p in root.iterdir() if p.is_dir() and not _skip(p)):
        for entry in sorted(team_dir.iterdir()):
            if _skip(entry) or not ((entry.is_file() and entry.suffix == ".py")
                                    or (entry.is_dir() and (entry / "__init__.py").is_file())):
                continue
            for source in _sources(entry):
                try:
                    declared = _declarations(source)
                except ExperimentError as e:
                    warnings.warn(str(e), ExperimentWarning, stacklevel=2)
                    continue
                for line, fn_name, args in declared:
                    try:
                        exp = _experiment(entry, team_dir.name, fn_name, args, found)
                    except ExperimentError as e:
                        warnings.warn(f"{source}:{line}: {e}", ExperimentWarning, stacklevel=2)
                        continue
                    found[exp.key] = exp
    return sorted(found.values(), key=lambda e: (e.team, e.name))
