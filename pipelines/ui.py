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
from pathlib import Path

from .run import ensure_dagster_home
from .settings import PROJECT


def _restore_default_signals() -> None:   # runs in the child before exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(host: str = "127.0.0.1", port: int = 3000) -> int:
    ensure_dagster_home()
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster), "dev", "-w", str(PROJECT / "workspace.yaml"), "-h", host, "-p", str(port)]
    print(f"Dagster UI: http://{host}:{port}  (Ctrl-C to stop; DAGSTER_HOME={os.environ['DAGSTER_HOME']})", flush=True)
    proc = subprocess.Popen(cmd, cwd=PROJECT, start_new_session=True, preexec_fn=_restore_default_signals)
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while True:
        try:
            rc = proc.wait(timeout=30 if stopping else None)
            break
        except subprocess.TimeoutExpired:   # it did not stop within 30 s of the request
            os.killpg(proc.pid, signal.SIGKILL)
    try:  # anything of the group still alive (webserver, daemon, code server)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    print("Dagster UI stopped.")
    return 0 if stopping else rc
