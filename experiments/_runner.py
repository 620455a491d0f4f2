"""The child side of an isolated run: `python -m experiments._runner WORKDIR`.

WORKDIR holds job.json (experiment path and name, memory limit) and inputs/*.parquet. The runner imports the
experiment, calls it on the inputs and writes predictions.parquet and result.json, or result.json with the error.
Exit code 0 ok, 1 the experiment failed, 3 it ran out of memory. It runs inside the sandbox (sandbox.py), which has
set its limits before it started.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

from synthetic_data.atomic import atomic_write


def _one_line(exc: BaseException, source: str) -> str:
    text = str(exc).strip().splitlines()
    msg = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if f.filename.startswith(source)] or frames[-1:]
    if mine:
        msg += f" (at {Path(mine[-1].filename).name}:{mine[-1].lineno})"
    return msg[:500]


def _write(workdir: Path, result: dict) -> None:
    with atomic_write(workdir / "result.json") as tmp:
        tmp.write_text(json.dumps(result), encoding="utf-8")


def main(workdir: str) -> int:
    work = Path(workdir)
    job = json.loads((work / "job.json").read_text(encoding="utf-8"))
    source = str(Path(job["path"]).resolve())
    try:
        import polars as pl

        from experiments.api import load

        tables = {p.stem: pl.read_parquet(p) for p in sorted((work / "inputs").glob("*.parquet"))}
        exp = load(job["path"], job["name"])
        start = time.perf_counter()
        out = exp.fn(tables)
        runtime = time.perf_counter() - start
        if isinstance(out, pl.LazyFrame):
            out = out.collect()
        if not isinstance(out, pl.DataFrame):
            _write(work, {"kind": "failed", "error": f"the experiment returned {type(out).__name__}, "
                                                     f"not a polars DataFrame"})
            return 1
        with atomic_write(work / "predictions.parquet") as tmp:
            out.write_parquet(tmp)
        _write(work, {"kind": "ok", "runtime_s": runtime})
        return 0
    except MemoryError as e:
        del e    # free what we can before writing
        _write(work, {"kind": "memory", "error": f"MemoryError: the {job.get('memory_mb')} MB memory limit was reached"})
        return 3
    except SystemExit as e:
        _write(work, {"kind": "failed", "error": f"the experiment called sys.exit({e.code!r})"})
        return 1
    except BaseException as e:  # noqa: BLE001 - everything an experiment raises is its failure, reported as one line
        traceback.print_exc()
        _write(work, {"kind": "failed", "error": _one_line(e, source)})
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
