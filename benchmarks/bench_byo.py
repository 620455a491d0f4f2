"""Benchmark scoring a team's own checks against running the same checks natively, in the same run.

    .venv/bin/python benchmarks/bench_byo.py            # Twente, one year, scale 1.0, profile realistic
    .venv/bin/python benchmarks/bench_byo.py --quick    # gemeente 0147 (seconds; to see that it works)

Data: `zandbak generate --region twente --years 2024 --seed 42` and `zandbak corrupt --profile realistic --seed 7`
into a temporary folder, once (not timed). For each of the four example formats of expectations/examples/ (the same
six rules as a GX suite, an SQL folder, a pandera schema and a polars module) two jobs, each in its own child process
(wall time and peak RSS of that child, os.wait4):
* "native": what a team runs itself: read the dataset, then run the suite the format's own way (GX validation with
  result_format SUMMARY, the SQL queries in DuckDB, pandera `validate(lazy=True)`, the polars functions), no scoring;
* "scored": `zandbak score DIRTY --checks PATH --json` in-process (`pipelines.cli.main`): read, run the checks through
  the adapter with every failing record mapped to its key, score per check against the ground truth.
Target (issue 11): scored <= 2x native. The ratio is of the two wall times of this run. Not a test: exit 0 unless a
job crashes.
"""
from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, cores, ratio, run_child  # noqa: E402

EXAMPLES = ROOT / "expectations" / "examples"
FORMATS = {"gx": "gx_suite.py", "sql": "sql", "pandera": "pandera_schema.py", "polars": "polars_checks.py"}
TARGET = 2.0


def _load(path: Path):
    spec = importlib.util.spec_from_file_location("bench_suite", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def native(fmt: str, tables: dict) -> int:
    """Run the example suite of `fmt` the format's own way; returns the failing count it reports."""
    path = EXAMPLES / FORMATS[fmt]
    if fmt == "sql":
        import duckdb

        con = duckdb.connect()
        for name, df in tables.items():
            con.register(name, df)
        return sum(con.sql(f.read_text(encoding="utf-8")).pl().height for f in sorted(path.glob("*.sql")))
    if fmt == "polars":
        m = _load(path)
        fns = [f for n, f in vars(m).items() if inspect.isfunction(f) and not n.startswith("_")
               and f.__module__ == m.__name__]
        return sum(f(**{p: tables[p] for p in inspect.signature(f).parameters}).height for f in fns)
    if fmt == "pandera":
        from pandera.errors import SchemaErrors

        m, failing = _load(path), 0
        for table, schema in m.schemas(tables).items():
            try:
                schema.validate(tables[table], lazy=True)
            except SchemaErrors as e:
                failing += e.failure_cases.height
        return failing
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    m = _load(path)
    tables = {**tables, **(m.prepare(tables) if hasattr(m, "prepare") else {})}
    source, failing = ctx.data_sources.add_pandas("bench"), 0
    for table, suite in m.suites(tables).items():
        batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe(table)
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=table, data=batch, suite=ctx.suites.add(suite)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = vd.run(batch_parameters={"dataframe": tables[table].to_pandas()}, result_format="SUMMARY")
        failing += sum(r.result.get("unexpected_count") or 0 for r in result.results)
    return failing


def child(spec: dict) -> None:
    t0 = time.perf_counter()
    if spec["job"] == "native":
        from synthetic_data.dataset import present_tables, read_dataset

        tables = read_dataset(spec["dirty"], [t for t in present_tables(spec["dirty"])])
        failing = native(spec["format"], tables)
        out = {"failing": failing}
    else:
        from pipelines.cli import main

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["score", spec["dirty"], "--checks", str(EXAMPLES / FORMATS[spec["format"]]), "--json"])
        assert code == 0, buf.getvalue()[-500:]
        r = json.loads(buf.getvalue())
        out = {"precision": r["suite"]["overall"]["precision"], "recall": r["suite"]["overall"]["recall"]}
    out["run_s"] = time.perf_counter() - t0
    Path(spec["result"]).write_text(json.dumps(out), encoding="utf-8")


def main() -> int:
    quick = "--quick" in sys.argv
    region = "0147" if quick else "twente"
    tmp = Path(tempfile.mkdtemp(prefix="zandbak-bench-byo-"))
    from pipelines.cli import main as zandbak

    with contextlib.redirect_stdout(io.StringIO()):
        assert zandbak(["generate", "--region", region, "--years", "2024", "--seed", "42", "--out",
                        str(tmp / "clean"), "--quiet"]) == 0
        assert zandbak(["corrupt", str(tmp / "clean"), "--profile", "realistic", "--seed", "7", "--out",
                        str(tmp / "dirty")]) == 0
    manifest = json.loads((tmp / "dirty" / "manifest.json").read_text())
    rows = sum(t["rows"] for t in manifest["tables"].values())
    print(f"bench_byo: {region} 2024, profile realistic, {rows:,} records; {cores()} cores; each job its own process")
    print(f"{'format':<9}{'native s':>10}{'scored s':>10}{'ratio':>8}{'records/s scored':>18}{'peak MB n/s':>14}"
          f"{'precision':>11}{'recall':>8}  target <= {TARGET:g}x")
    worst = 0.0
    for fmt in FORMATS:
        res = {}
        for job in ("native", "scored"):
            spec = {"job": job, "format": fmt, "dirty": str(tmp / "dirty"), "result": str(tmp / f"{fmt}-{job}.json")}
            res[job] = run_child(__file__, spec, tmp / f"{fmt}-{job}.log", f"{fmt} {job}")
        if "error" in res["native"] or "error" in res["scored"]:
            print(f"{fmt:<9} FAILED: {res['native'].get('error') or res['scored'].get('error')}")
            continue
        n, s = res["native"]["wall_s"], res["scored"]["wall_s"]
        worst = max(worst, s / n)
        print(f"{fmt:<9}{n:>10.2f}{s:>10.2f}{ratio(s / n, '.2f'):>8}{rows / s:>18,.0f}"
              f"{res['native']['peak_rss_mb']:>7.0f}/{res['scored']['peak_rss_mb']:<6.0f}"
              f"{res['scored']['precision']:>11.3f}{res['scored']['recall']:>8.3f}  "
              f"{'PASS' if s / n <= TARGET else 'MISS'}")
    print(f"worst ratio {worst:.2f}x (wall time of the child process: interpreter start, imports, reading included)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        raise SystemExit(main())
