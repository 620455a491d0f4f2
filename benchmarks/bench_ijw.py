"""Benchmark the iJw XML export and validator against plain lxml XSD validation of the same files, in the same run.

    .venv/bin/python benchmarks/bench_ijw.py           # Twente, 2024, seed 42, scale 1.0 (all message types)
    .venv/bin/python benchmarks/bench_ijw.py --quick   # Twente at --scale 0.1

This is a benchmark script, not a test: it prints figures and PASS/MISS against the targets of issue 13 and exits 0
unless a run crashes.

What is measured (each job in its own child process, waited for with os.wait4: wall time and peak RSS are its own)
* dataset: `zandbak generate --region twente --years 2024 --seed 42` into a temporary folder (not timed as a case).
* export: `synthetic_data.ijw_xml.export` of every table of that dataset into a new folder: rendering, writing
  one file per message, XSD validation of each message as it is written (the export report), the manifest and
  the atomic folder swap (one syncfs). Target: under 60 s wall.
* validate: `expectations.ijw_validate.validate_messages` of that folder (what `zandbak validate-ijw` does): parse
  each file once, XSD-validate it, read it back into tables, run every registry rule that the messages and the
  dataset's contract lists (--reference) allow, map the findings to file and element.
* plain lxml: the same files, `etree.parse` + `XMLSchema.validate` with the 8 schemas loaded once, nothing else.
  Target: validate within 2x of it (wall, inside the child, imports excluded).
Times inside the children exclude interpreter start and imports; "cpu s" is the child's user + system time, which
says more than wall time on a shared machine. The last line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _harness import cores, ratio
from _harness import run_child as harness_run_child

TARGET_EXPORT_S = 60.0
TARGET_VALIDATE_X = 2.0


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def child(spec: dict) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    job, out = spec["job"], {}
    if job == "dataset":
        from synthetic_data import GeneratorConfig, generate
        from synthetic_data.dataset import write_dataset

        cfg = GeneratorConfig(region="twente", years="2024", seed=42, scale=spec["scale"])
        write_dataset(generate(cfg), spec["dataset"], cfg.as_dict())
    elif job == "export":
        from synthetic_data.dataset import present_tables, read_dataset
        from synthetic_data.ijw_xml import export

        tables = read_dataset(spec["dataset"], present_tables(spec["dataset"]))
        c0, t0 = _cpu(), time.perf_counter()
        m = export(tables, spec["xml"])
        out = {"seconds": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "messages": sum(m["messages"].values()),
               "by_type": m["messages"], "rejected_messages": m["rejected_messages"]}
    elif job == "validate":
        from expectations.ijw_validate import reference_tables, validate_messages

        ref = reference_tables(spec["dataset"])
        c0, t0 = _cpu(), time.perf_counter()
        v = validate_messages(spec["xml"], reference=ref)
        out = {"seconds": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "messages": len(v.messages),
               "findings": v.findings.height, "errors": v.errors, "rules_run": len(v.rules_run), "parts": v.seconds}
    elif job == "lxml":
        from lxml import etree

        xsd = Path(__file__).resolve().parents[1] / "synthetic_data" / "data" / "ijw-xsd"
        files = sorted(Path(spec["xml"]).rglob("*.xml"))
        c0, t0 = _cpu(), time.perf_counter()
        schemas = {c: etree.XMLSchema(etree.parse(str(xsd / f"{c}.xsd")))
                   for c in ("JW301", "JW305", "JW307", "JW315", "JW317", "JW319", "JW323", "JW325")}
        valid = 0
        for f in files:
            doc = etree.parse(str(f))
            valid += schemas[doc.getroot().tag.split("/")[-2].upper()].validate(doc)
        out = {"seconds": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "messages": len(files), "valid": valid}
    out["bytes"] = sum(f.stat().st_size for f in Path(spec["xml"]).rglob("*.xml")) if job != "dataset" else 0
    Path(spec["result"]).write_text(json.dumps(out), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="Twente at scale 0.1")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0
    scale = 0.1 if args.quick else 1.0
    tmp = Path(tempfile.mkdtemp(prefix="bench-ijw-"))
    try:
        base = {"dataset": str(tmp / "ds"), "xml": str(tmp / "xml"), "scale": scale}
        runs = {}
        for job in ("dataset", "export", "validate", "lxml"):
            spec = {**base, "job": job, "result": str(tmp / f"{job}.json")}
            runs[job] = harness_run_child(__file__, spec, tmp / f"{job}.log", job)
            if "error" in runs[job]:
                print(json.dumps(runs, default=str))
                return 1
        e, v, x = runs["export"], runs["validate"], runs["lxml"]
        mb = e["bytes"] / 1e6
        print(f"\niJw XML, Twente 2024 seed 42 scale {scale}: {e['messages']:,} messages, {mb:,.0f} MB "
              f"({platform.python_version()}, {cores()} cores; the machine was shared: see cpu s)")
        print(f"{'job':<12}{'in-child s':>11}{'cpu s':>8}{'wall s':>8}{'msg/s':>9}{'MB/s':>7}{'peak RSS MB':>13}")
        for name, r in (("export", e), ("validate", v), ("plain lxml", x)):
            print(f"{name:<12}{r['seconds']:>11.1f}{r['cpu_s']:>8.1f}{r['wall_s']:>8.1f}"
                  f"{r['messages'] / r['seconds']:>9,.0f}{mb / r['seconds']:>7.1f}{r['peak_rss_mb']:>13,.0f}")
        rx = v["seconds"] / x["seconds"]
        rcpu = v["cpu_s"] / x["cpu_s"]
        print(f"export {e['seconds']:.1f}s (target < {TARGET_EXPORT_S:.0f}s): "
              f"{'PASS' if e['seconds'] < TARGET_EXPORT_S else 'MISS'}; XSD-rejected messages {e['rejected_messages']}")
        print(f"validate / plain lxml: {ratio(rx, '.2f')} wall, {ratio(rcpu, '.2f')} cpu (target within "
              f"{TARGET_VALIDATE_X:.0f}x): {'PASS' if rx <= TARGET_VALIDATE_X else 'MISS'}; "
              f"{v['rules_run']} rules, {v['findings']:,} findings ({v['errors']:,} ERROR), parts {v['parts']}")
        print(json.dumps({"scale": scale, "messages": e["messages"], "mb": round(mb, 1), "by_type": e["by_type"],
                          "export": {k: round(e[k], 2) for k in ("seconds", "cpu_s", "wall_s", "peak_rss_mb")},
                          "validate": {k: round(v[k], 2) for k in ("seconds", "cpu_s", "wall_s", "peak_rss_mb")},
                          "lxml": {k: round(x[k], 2) for k in ("seconds", "cpu_s", "wall_s", "peak_rss_mb")},
                          "ratio_wall": round(rx, 3), "ratio_cpu": round(rcpu, 3),
                          "rejected_messages": e["rejected_messages"], "findings": v["findings"]}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
