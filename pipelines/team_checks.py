"""Teams' own checks as Dagster asset checks on the dirty assets, plus one scorecard asset per suite.

Discovered at load time, like experiments: every entry of `checks/teams/<team>/` (or of each folder in
ZANDBAK_CHECKS, several joined with the path separator) is one suite: a GX suite module or JSON, a pandera schema
module, a module of polars check functions, or a folder of .sql files (what `zandbak score --checks` takes). Per suite
`<team>__<suite>`:
- one asset check `team_<team>__<suite>` on each dirty asset whose table the suite covers (partitioned like the
  dirty assets): it runs the suite on the partition's dirty tables and reports the records it flags on that table,
  with tp/fp per check against the partition's ground truth (WARN: a dirty partition is meant to fail);
- one asset `team_scorecard_<team>__<suite>` over all partitions: the per-check scorecard of `zandbak score`
  (precision, recall per fault type, never-firing checks, false alarms) as a table, its metadata, and a
  self-contained HTML page in `<data>/scorecards/`.
A suite that cannot be loaded (a syntax error, an expectation that cannot be scored) adds nothing and is logged,
so one team's broken file never breaks the code location. The suite runs once per covered table per partition
(each check sees its partition whole); a scorecard run reads every partition.
"""

import inspect
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl

from synthetic_data.errors import ZandbakError
from synthetic_data.generate import REFERENCE_TABLES

from .assets import ADMIN_TABLES, GeneratorResource
from .storage import markdown_preview

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "checks" / "teams"
log = logging.getLogger(__name__)


@dataclass
class Suite:
    team: str
    name: str
    path: Path

    @property
    def key(self) -> str:
        return "".join(c if c.isalnum() or c == "_" else "_" for c in f"{self.team}__{self.name}")


def roots() -> list[Path]:
    env = os.environ.get("ZANDBAK_CHECKS")
    return [Path(p) for p in env.split(os.pathsep) if p] if env else [DEFAULT_ROOT]


def discover(where: list[Path] | None = None) -> list[Suite]:
    """Every suite under the roots: <root>/<team>/<suite> (.py, .json, or a folder of .sql or .json files)."""
    found = []
    for root in where or roots():
        if not Path(root).is_dir():
            continue
        for team in sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name[0] not in "._"):
            for entry in sorted(team.iterdir()):
                if entry.name[0] in "._":
                    continue
                if entry.is_dir() and (any(entry.glob("*.sql")) or any(entry.glob("*.json"))) or \
                        entry.suffix in (".py", ".json", ".sql"):
                    found.append(Suite(team.name, entry.stem, entry))
    return found


def _tables(dirty: dict[str, pl.DataFrame], reference: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {**reference, **{k.removeprefix("dirty_"): v for k, v in dirty.items()}}


def _ins() -> dict[str, dg.AssetIn]:
    return {**{f"dirty_{t}": dg.AssetIn(f"dirty_{t}") for t in ADMIN_TABLES},
            **{t: dg.AssetIn(t) for t in REFERENCE_TABLES}, "ground_truth": dg.AssetIn("ground_truth")}


def _split(ins: dict) -> tuple[dict, dict, pl.DataFrame]:
    truth = ins.pop("ground_truth")
    dirty = {k: v for k, v in ins.items() if k.startswith("dirty_")}
    return dirty, {k: v for k, v in ins.items() if not k.startswith("dirty_")}, truth


def _check(suite: Suite, table: str, partitions, n_checks: int):
    others = {k: v for k, v in _ins().items() if k != f"dirty_{table}"}

    def team_check(context: dg.AssetCheckExecutionContext, asset: pl.DataFrame, **ins) -> dg.AssetCheckResult:
        from expectations.adapters import run_checks
        from synthetic_data.faults.score import rejected_records, score_checks

        dirty, reference, truth = _split(ins)
        dirty[f"dirty_{table}"] = asset
        tables = _tables(dirty, reference)
        run = run_checks(suite.path, tables)
        result = score_checks(run.findings, truth, run.checks_frame(), [table], rejected=rejected_records(tables))
        mine = run.findings.filter(pl.col("table") == table)
        per_check = pl.DataFrame([{k: c[k] for k in ("check", "flagged", "tp", "fp")} for c in result["checks"]],
                                 schema={"check": pl.String, "flagged": pl.Int64, "tp": pl.Int64, "fp": pl.Int64})
        o = result["suite"]["overall"]
        return dg.AssetCheckResult(
            passed=mine.height == 0, severity=dg.AssetCheckSeverity.WARN,
            metadata={"flagged_records": mine.select("key").n_unique() if mine.height else 0,
                      "tp": o["tp"], "fp": o["fp"], "fn": o["fn"],
                      "precision": o["precision"] if o["precision"] is not None else float("nan"),
                      "recall": o["recall"] if o["recall"] is not None else float("nan"),
                      "per_check": dg.MetadataValue.md(markdown_preview(per_check, per_check.height)),
                      "suite": str(suite.path), "kind": run.kind})

    # Dagster wants every additional input as a named parameter: give the function that signature
    P = inspect.Parameter
    team_check.__signature__ = inspect.Signature(
        [P("context", P.POSITIONAL_OR_KEYWORD), P("asset", P.POSITIONAL_OR_KEYWORD),
         *[P(k, P.POSITIONAL_OR_KEYWORD) for k in others]], return_annotation=dg.AssetCheckResult)
    return dg.asset_check(asset=f"dirty_{table}", name=f"team_{suite.key}", partitions_def=partitions,
                          additional_ins=others, description=f"{suite.team}/{suite.name} ({n_checks} checks, "
                                                             f"{suite.path.name}): records it flags on {table}")(
        team_check)


def _scorecard(suite: Suite, n_checks: int):
    @dg.asset(name=f"team_scorecard_{suite.key}", group_name="team_checks", ins=_ins(), io_manager_key="parquet",
              kinds={"polars", "html"}, tags={"team": "".join(c if c.isalnum() or c == "_" else "_"
                                                              for c in suite.team)},
              description=f"Per-check scorecard of {suite.team}/{suite.name} ({n_checks} checks, {suite.path.name}) "
                          f"against the injected faults of every partition, on the tables the suite covers.")
    def scorecard(context: dg.AssetExecutionContext, generator: GeneratorResource, **ins) -> dg.Output:
        from expectations.adapters import run_checks
        from synthetic_data.atomic import atomic_write
        from synthetic_data.faults.score import rejected_records, score_checks
        from synthetic_data.faults.scorecard import checks_table, render_html

        dirty, reference, truth = _split(ins)
        tables = _tables(dirty, reference)
        run = run_checks(suite.path, tables)
        result = score_checks(run.findings, truth, run.checks_frame(), rejected=rejected_records(tables))
        page = Path(generator.settings().data_dir) / "scorecards" / f"{suite.key}.html"
        with atomic_write(page) as tmp:
            tmp.write_text(render_html(result, f"{suite.team}/{suite.name} ({run.kind})"), encoding="utf-8")
        table = checks_table(result)
        o = result["suite"]["overall"]
        nan = float("nan")
        return dg.Output(table, metadata={
            "precision": o["precision"] if o["precision"] is not None else nan,
            "recall": o["recall"] if o["recall"] is not None else nan, "f1": o["f1"] if o["f1"] is not None else nan,
            "tp": o["tp"], "fp": o["fp"], "fn": o["fn"], "tables": ", ".join(result["scope"]["tables"]),
            "never_fire": ", ".join(result["never_fire"]) or "none",
            "false_alarms": ", ".join(a["check"] for a in result["false_alarms"]) or "none",
            "uncaught": ", ".join(result["uncaught"]) or "none",
            "checks": dg.MetadataValue.md(markdown_preview(table, table.height)),
            "scorecard": dg.MetadataValue.path(str(page)), "checks_s": round(run.seconds, 3)})
    return scorecard


def build_team_check_assets(partitions: dg.PartitionsDefinition, where: list[Path] | None = None) -> list:
    """Asset checks on the dirty assets and a scorecard asset for every discovered suite (see the module doc)."""
    from expectations.adapters import describe

    out = []
    for suite in discover(where):
        try:
            info = describe(suite.path)
        except ZandbakError as e:
            log.warning(f"team checks {suite.team}/{suite.name} left out: {e}")
            continue
        tables = [t for t in info.tables if t in ADMIN_TABLES]
        out += [_check(suite, t, partitions, len(info.checks)) for t in tables]
        out.append(_scorecard(suite, len(info.checks)))
    return out
