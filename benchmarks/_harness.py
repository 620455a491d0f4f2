"""What the benchmark scripts share: run one measured job in a fresh child process, and small formatters.

Each job is the same script run with `--child SPEC`; the parent waits with os.wait4, which returns the resource use
of that child and its waited-for descendants only, so every job's peak RSS is its own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def maxrss_mb(ru) -> float:
    return ru.ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru.ru_maxrss / 1024


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def ratio(x, spec: str) -> str:
    return "-" if x is None else format(x, spec) + "x"


def run_command(argv: list[str], log: Path, label: str) -> dict:
    """Run a command (e.g. the real CLI) in a child process and wait for it: wall time, peak RSS, exit code (and an
    `error` with the last line of its output when it fails)."""
    print(f"  running {label} ...", file=sys.stderr, flush=True)
    with log.open("wb") as f:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, cwd=str(ROOT))
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    result = {"wall_s": wall, "peak_rss_mb": maxrss_mb(ru), "returncode": code}
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        print(f"  {label} FAILED (exit {code}):\n{tail}", file=sys.stderr, flush=True)
        result["error"] = (tail.strip().splitlines()[-1] if tail.strip()
                           else f"exit {code}" + (" (killed: out of memory?)" if code == -9 else ""))
    return result


def run_child(script: str, spec: dict, log: Path, label: str) -> dict:
    """Run `python script --child spec` and wait for it: wall time, peak RSS, exit code, plus the JSON the child
    wrote to spec["result"] (or an `error` with the last line of its output)."""
    result = run_command([sys.executable, os.path.abspath(script), "--child", json.dumps(spec)], log, label)
    if result["returncode"] != 0:
        return result
    result.update(json.loads(Path(spec["result"]).read_text(encoding="utf-8")))
    return result
