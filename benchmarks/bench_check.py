"""Benchmark the data-quality rule registry (Great Expectations) against the same rules as plain polars, same run.

    .venv/bin/python benchmarks/bench_check.py           # twente and nl, one year each, scale 1.0 (a few minutes)
    .venv/bin/python benchmarks/bench_check.py --quick   # twente at scale 1.0 and nl at scale 0.1

This is a benchmark script, not a test: it prints figures and PASS/MISS against the target and exits 0 unless a
run crashes.

What is measured
----------------
* Datasets: for each case the equivalent of `zandbak generate --region R --years 2024 --seed 42`, generated ONCE in
  its own child process (`synthetic_data.generate(GeneratorConfig(...), workers=2)` then
  `synthetic_data.dataset.write_dataset` into a temp folder). Generation time and memory are not part of any figure
  below (the generation wall time is printed for information only).
* "GX": the full rule registry as the project runs it. A child process reads the dataset with
  `synthetic_data.read_dataset(folder)`, imports Great Expectations (timed on its own: "import s"), then times
  `expectations.validate(tables, load_rules())`: every rule of expectations/rules.yaml as GX 1.x suites on pandas
  frames, including building the ephemeral context, the polars -> pandas conversion, the derived (cross-table) flag
  columns, the checkpoint runs with result_format COMPLETE and the mapping of failing rows back to table keys.
  Note that most registry rules are "derived": their logic is polars code (expectations/derived.py, one
  boolean per row) and GX only checks the resulting flag column; the others are GX column expectations (built-in,
  or the custom pandas ones in expectations/gx_custom.py). The count per kind is printed in the notes.
  Rules that fail (failing rows > 0) or error (an exception inside GX, `RuleResult.error`) are counted and listed;
  on clean generated data there should be none.
* "polars": the same rules without Great Expectations, through `expectations.rule_findings(tables, load_rules())`:
  every rule's one polars implementation (expectations/derived.py `violations`: the column check kinds and the
  derived rules) and the findings frame built from it (one row per failing record). A child reads the dataset,
  imports `expectations` (timed on its own), then times that one call. Both sides run the same rule list, loaded
  from rules.yaml in the run, so the counts printed are those of the run, not of this file.
  The two sides share the derived rules' polars code (GX checks their flag column), so "x polars" measures what GX
  adds: the pandas conversion, the suites and checkpoints, and GX's own column expectations for the column rules.
  The failing-record count per rule must agree between the two; a rule where it does not is listed.

Rows: "rows" = rows checked = the sum of the heights of every table `read_dataset` returns (all tables of the
dataset, reference tables included). "rows/s" = rows / run s.

Every job runs in its own child process, waited for with os.wait4, which returns the resource usage of that child
(and its waited-for descendants; neither engine starts any). ru_maxrss is its peak resident set, reported as
"peak RSS" in MiB (printed as MB). It includes the tables read from Parquet (about the same in both engines; the
peak right after reading is in the notes) and, for GX, the pandas copies and the GX result objects.

Times: "wall s" is the whole child process (interpreter start, imports, read, run). "import s" is the engine's own
import (great_expectations + expectations.gx_custom for GX; expectations for polars), done before the timed run.
"run s" is the timed run only (dataset reading and imports excluded); rows/s and the ratio use it.
"x polars" = GX run s / polars run s (the same rules on both sides). Polars runs multi-threaded on the machine's cores; GX on
pandas mostly on one.

Target (from the issue): the registry on nl one year in under 2 minutes on 2 cores, judged on the GX "run s"
(validate only: dataset generation, dataset reading and the GX import are NOT included; run s + import s is shown
next to it for reference).

The last line of output is one JSON object with every figure (for copying into the README).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _harness import cores, ratio
from _harness import run_child as harness_run_child

SEED = 42
YEARS = "2024"
FULL_CASES = [("twente 1 year", "twente", 1.0), ("nl 1 year", "nl", 1.0)]
QUICK_CASES = [("twente 1 year", "twente", 1.0), ("nl 1 year @0.1", "nl", 0.1)]
GEN_WORKERS = 2

# Target from the issue.
TARGET_NL_GX_S = 120.0
TARGET_CORES = 2



# --------------------------------------------------------------------------------------------------------------
# Child side: one job per process, result written as JSON to spec["result"].
# --------------------------------------------------------------------------------------------------------------

def _self_rss_mb() -> float:
    import resource
    unit = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / unit / 1024


def child_generate(spec: dict) -> dict:
    t0 = time.perf_counter()
    from synthetic_data import GeneratorConfig, __version__, generate
    from synthetic_data.dataset import write_dataset
    config = GeneratorConfig(region=spec["region"], years=spec["years"], seed=spec["seed"], scale=spec["scale"])
    tables = generate(config, workers=GEN_WORKERS)
    manifest = write_dataset(tables, spec["data"], config.as_dict())
    return {"run_s": time.perf_counter() - t0, "gemeenten": len(config.gemeenten), "generator_version": __version__,
            "tables": {t: v["rows"] for t, v in manifest["tables"].items()}}


def _read(spec: dict) -> tuple[dict, float, dict]:
    from synthetic_data import read_dataset
    t0 = time.perf_counter()
    tables = read_dataset(spec["data"])
    return tables, time.perf_counter() - t0, {name: df.height for name, df in tables.items()}


def child_gx(spec: dict) -> dict:
    """Read the dataset, import GX, then time validate(tables, load_rules())."""
    t0 = time.perf_counter()
    tables, read_s, heights = _read(spec)
    rss_read = _self_rss_mb()
    t1 = time.perf_counter()
    import great_expectations  # noqa: F401  (validate imports these lazily; import them first to time them apart)
    import great_expectations.expectations  # noqa: F401

    from expectations import gx_custom  # noqa: F401
    from expectations import load_rules, validate
    t2 = time.perf_counter()
    results = validate(tables, load_rules())
    t3 = time.perf_counter()
    kinds: dict[str, int] = {}
    for r in results:
        kinds[r.rule.kind] = kinds.get(r.rule.kind, 0) + 1
    failed = [{"rule": r.rule.id, "table": r.rule.table, "checked": r.checked, "failing": r.failing,
               "error": r.error} for r in results if not r.passed]
    return {"startup_s": t1 - t0 - read_s, "read_s": read_s, "import_s": t2 - t1, "run_s": t3 - t2,
            "rows": sum(heights.values()), "tables": heights, "rules": len(results),
            "rules_failed": sum(1 for f in failed if not f["error"]), "rules_errored": sum(1 for f in failed if f["error"]),
            "failed": failed, "violations": sum(r.failing for r in results), "rss_after_read_mb": rss_read,
            "rules_by_kind": kinds, "failing_by_rule": {r.rule.id: r.failing for r in results if r.failing}}


def child_polars(spec: dict) -> dict:
    """Read the dataset, import expectations, then time rule_findings(tables, load_rules())."""
    t0 = time.perf_counter()
    tables, read_s, heights = _read(spec)
    rss_read = _self_rss_mb()
    t1 = time.perf_counter()
    from expectations import load_rules, rule_findings
    rules = load_rules()
    t2 = time.perf_counter()
    found = rule_findings(tables, rules)
    t3 = time.perf_counter()
    by_rule = dict(found.group_by("rule_id").len().iter_rows())
    return {"startup_s": t1 - t0 - read_s, "read_s": read_s, "import_s": t2 - t1, "run_s": t3 - t2,
            "rows": sum(heights.values()), "tables": heights, "rules": len(rules),
            "rules_failed": len(by_rule), "rules_errored": 0, "failed": by_rule, "violations": found.height,
            "rss_after_read_mb": rss_read}


CHILDREN = {"generate": child_generate, "gx": child_gx, "polars": child_polars}


def child_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    result = CHILDREN[spec["kind"]](spec)
    Path(spec["result"]).write_text(json.dumps(result, default=float), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------------------------------------------
# Parent side.
# --------------------------------------------------------------------------------------------------------------


def run_child(spec: dict, work: Path, label: str) -> dict:
    """Run one job in a fresh child process; wall time and peak RSS of that child (os.wait4)."""
    work.mkdir(parents=True, exist_ok=True)
    spec = {**spec, "result": str(work / f"{spec['kind']}.json"), "seed": SEED}
    return harness_run_child(__file__, spec, work / f"{spec['kind']}.log", label)


def run_case(name: str, region: str, scale: float, work: Path) -> dict:
    data = work / "data"
    base = {"region": region, "years": YEARS, "scale": scale, "data": str(data)}
    case = {"case": name, "region": region, "years": YEARS, "scale": scale, "seed": SEED}
    case["generate"] = run_child({**base, "kind": "generate"}, work, f"{name}: generate dataset (not timed)")
    if "error" not in case["generate"]:
        case["gx"] = run_child({**base, "kind": "gx"}, work, f"{name}: GX registry")
        case["polars"] = run_child({**base, "kind": "polars"}, work, f"{name}: plain polars")
        for eng in ("gx", "polars"):
            r = case[eng]
            if "error" not in r:
                r["rows_per_s"] = r["rows"] / r["run_s"] if r["run_s"] > 0 else None
        gx, po = case["gx"], case["polars"]
        ok = "error" not in gx and "error" not in po
        case["x_polars"] = gx["run_s"] / po["run_s"] if ok and po["run_s"] > 0 else None
        if ok:
            # the same rules must report the same number of failing records on both sides
            gx_n, po_n = gx["failing_by_rule"], po["failed"]
            case["count_mismatch"] = {r: {"gx": gx_n.get(r, 0), "polars": po_n.get(r, 0)}
                                      for r in sorted(set(gx_n) | set(po_n)) if gx_n.get(r, 0) != po_n.get(r, 0)}
    shutil.rmtree(work, ignore_errors=True)
    return case




def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="twente at scale 1.0 and nl at scale 0.1 (about two minutes)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child_main(args.child)
    if not hasattr(os, "wait4"):
        print("bench_check: needs os.wait4 (Linux or macOS)", file=sys.stderr)
        return 2

    cases_def = QUICK_CASES if args.quick else FULL_CASES
    n_cores = cores()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f"bench_check: {'quick' if args.quick else 'full'} run, {n_cores} cores, python {platform.python_version()}",
          file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="zandbak-bench-check-") as tmp:
        cases = [run_case(name, region, scale, Path(tmp) / f"case{i}") for i, (name, region, scale) in enumerate(cases_def)]

    # ---- table -----------------------------------------------------------------------------------------------
    lines = []
    hdr = (f"{'case':<18}{'engine':<20}{'rows':>12}{'wall s':>9}{'import s':>10}{'run s':>9}{'rows/s':>12}"
           f"{'peak RSS MB':>13}{'rules failed':>14}{'x polars':>10}")
    lines += [hdr, "-" * len(hdr)]
    for c in cases:
        if "error" in c["generate"]:
            lines.append(f"{c['case']:<18}{'generate':<20}  FAILED: {c['generate']['error']}")
            continue
        for eng, r in (("gx", c["gx"]), ("polars", c["polars"])):
            label = f"{'GX' if eng == 'gx' else 'polars'}" + (f" ({r['rules']} rules)" if "rules" in r else "")
            if "error" in r:
                lines.append(f"{c['case']:<18}{label:<20}  FAILED: {r['error']}  (peak RSS {r['peak_rss_mb']:,.0f} MB)")
                continue
            fails = f"{r['rules_failed']}" + (f" +{r['rules_errored']} err" if r["rules_errored"] else "")
            lines.append(f"{c['case']:<18}{label:<20}{r['rows']:>12,}{r['wall_s']:>9.1f}{r['import_s']:>10.1f}"
                         f"{r['run_s']:>9.2f}{r['rows_per_s']:>12,.0f}{r['peak_rss_mb']:>13,.0f}{fails:>14}"
                         f"{ratio(c['x_polars'] if eng == 'gx' else None, '.1f'):>10}")
    lines.append("")
    lines.append("rows = sum of the heights of every table of the dataset; run s = the timed run only (GX: validate(tables,")
    lines.append("load_rules()); polars: rule_findings(tables, load_rules())), dataset generation, reading and imports")
    lines.append("excluded; import s = great_expectations + expectations.gx_custom (GX), expectations (polars); wall s =")
    lines.append("whole child process. peak RSS = the child process (tables read from Parquet included).")
    lines.append("x polars = GX run s / polars run s, the same registry rules on both sides (the derived rules' polars code")
    lines.append("runs on both: GX checks their flag column).")
    for c in cases:
        g = c["generate"]
        if "error" in g:
            continue
        lines.append(f"  {c['case']}: {g['gemeenten']} gemeenten, dataset generated in {g['wall_s']:.1f}s (not counted)")
        gx, po = c["gx"], c["polars"]
        if "error" not in gx:
            lines.append(f"    GX: read {gx['read_s']:.1f}s, import {gx['import_s']:.1f}s, validate {gx['run_s']:.1f}s "
                         f"(with import {gx['import_s'] + gx['run_s']:.1f}s); RSS after read {gx['rss_after_read_mb']:,.0f} MB; "
                         f"{gx['rules']} rules, {gx['rules_failed']} failed, {gx['rules_errored']} errored, "
                         f"{gx['violations']:,} failing rows")
            lines.append(f"      GX rules by kind: {gx['rules_by_kind'].get('derived', 0)} derived (flag column computed in "
                         f"polars by expectations/derived.py, checked in GX as in-set [True]), "
                         + ", ".join(f"{n} {k}" for k, n in sorted(gx["rules_by_kind"].items()) if k != "derived"))
            for f in gx["failed"]:
                what = f"ERROR {f['error'][:200]}" if f["error"] else f"{f['failing']:,} of {f['checked']:,} rows fail"
                lines.append(f"      GX rule {f['rule']} ({f['table']}): {what}")
        if "error" not in po:
            lines.append(f"    polars: read {po['read_s']:.1f}s, import {po['import_s']:.1f}s, rule_findings {po['run_s']:.2f}s; "
                         f"RSS after read {po['rss_after_read_mb']:,.0f} MB; {po['rules']} rules, "
                         f"{po['rules_failed']} with findings, {po['violations']:,} findings")
            for r, n in po["failed"].items():
                lines.append(f"      polars rule {r}: {n:,} failing records")
        for r, n in (c.get("count_mismatch") or {}).items():
            lines.append(f"    COUNT MISMATCH {r}: GX {n['gx']:,}, polars {n['polars']:,} failing records")

    # ---- target (judged on the nl case) ------------------------------------------------------------------------
    nl = next((c for c in cases if c["region"] == "nl"), None)
    nl_gx = nl.get("gx", {"error": "dataset generation failed"}) if nl else {"error": "no nl case"}
    nl_ok = "error" not in nl_gx
    targets = []

    def target(name, value, shown, ok, note=""):
        verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
        targets.append({"target": name, "value": value, "result": verdict, "note": note})
        lines.append(f"  {name:<52}{shown:>24}  {verdict}{('  (' + note + ')') if note else ''}")

    lines.append("")
    label = nl["case"] if nl else "nl"
    lines.append(f"target (judged on '{label}', GX validate time; dataset generation, reading and the GX import "
                 f"excluded{'; indicative only: --quick runs nl at scale 0.1' if args.quick else ''})")
    name = f"nl 1 year registry < {TARGET_NL_GX_S / 60:.0f} min on {TARGET_CORES} cores"
    cores_note = "" if n_cores == TARGET_CORES else f"measured on {n_cores} cores, target is for {TARGET_CORES}"
    if args.quick:
        target(name, None, f"{nl_gx['run_s']:.1f} s at scale {nl['scale']}" if nl_ok else "failed", None,
               "full scale only")
    else:
        shown = (f"{nl_gx['run_s']:.1f} s (+import {nl_gx['import_s']:.1f} s)" if nl_ok else "failed")
        target(name, nl_gx["run_s"] if nl_ok else None, shown, (nl_gx["run_s"] < TARGET_NL_GX_S) if nl_ok else False,
               cores_note)

    print("\n".join(lines))
    summary = {
        "benchmark": "bench_check", "mode": "quick" if args.quick else "full", "started": started,
        "machine": {"cores": n_cores, "platform": platform.platform(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "generator_version": next((c["generate"].get("generator_version") for c in cases
                                   if "error" not in c["generate"]), None),
        "gx_version": _gx_version(), "cases": cases, "targets": targets,
    }
    print(json.dumps(summary, sort_keys=True, default=float))
    crashed = [c for c in cases if any("error" in c.get(k, {}) for k in ("generate", "gx", "polars"))]
    return 1 if crashed else 0


def _gx_version() -> str | None:
    try:
        from importlib.metadata import version
        return version("great_expectations")
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
