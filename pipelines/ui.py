"""`zandbak ui` / `make ui`: the Dagster UI on 127.0.0.1, stopped cleanly on Ctrl-C or SIGTERM.

`dagster dev` started from a script or with `&` inherits an ignored SIGINT and then ignores SIGTERM as well, leaving
an orphaned daemon (seen with dagster 1.13). So it runs in its own process group with default signal handling, and
this wrapper forwards a stop to the whole group, waits, and kills what is left.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .run import ensure_dagster_home
from .settings import PROJECT


def _restore_default_signals() -> None:   # runs in the child before exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stop_groups(procs: list[subprocess.Popen], grace_s: float = 30) -> None:
    """Stop each process's group: SIGTERM, up to `grace_s` for the leaders to end, then SIGKILL what is left."""
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:   # whatever of a group is still alive (dagster's webserver, daemon, code server; run workers)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def main(host: str = "127.0.0.1", port: int = 3000) -> int:
    ensure_dagster_home()
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster), "dev", "-w", str(PROJECT / "workspace.yaml"), "-h", host, "-p", str(port)]
    print(f"Dagster UI: http://{host}:{port}  (Ctrl-C to stop; DAGSTER_HOME={os.environ['DAGSTER_HOME']})", flush=True)
    proc = subprocess.Popen(cmd, cwd=PROJECT, start_new_session=True, preexec_fn=_restore_default_signals)
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and proc.poll() is None:
        time.sleep(0.5)
    stop_groups([proc])   # the webserver, daemon and code server of the group too
    rc = proc.returncode
    print("Dagster UI stopped.")
    return 0 if stopping else rc
