"""`zandbak demo` / `make demo`: something to show within two minutes of the install, on 127.0.0.1 only.

1. a challenge of one small gemeente (default 0147 Borne, about 22,000 records: `challenge new`, seconds), kept
   under `<data>/demo/` and reused by the next demo (so the teams' tokens stay the same);
2. the arena on it (four teams) and the Dagster UI, each a child in a process group of its own;
3. once both answer: their addresses, and behind them `zandbak run` of the same gemeente (generate, check, warehouse,
   report, experiments through real Dagster runs, which the UI shows as they go) into `<data>/demo/`.

It opens nothing by itself. Ctrl-C (or SIGTERM) stops every group it started, as pipelines/ui.py does for dagster
dev: SIGTERM to each group, a wait, then SIGKILL to whatever is left of it.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from synthetic_data.errors import ConfigError

from .settings import PROJECT, Settings
from .ui import _restore_default_signals, stop_groups

TEAMS = "team1,team2,team3,team4"
READY_TIMEOUT_S = 300


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _free(port: int, option: str) -> None:
    from .arena import bind

    if not 1 <= port <= 65535:
        raise ConfigError(option, f"'{port}' is not allowed", "a port from 1 to 65535")
    try:
        bind("127.0.0.1", port).close()
    except ConfigError:
        raise ConfigError(option, f"port {port} is in use on 127.0.0.1", "a free port (see --help)") from None


def main(ui_port: int = 3000, arena_port: int = 8000, region: str = "0147") -> int:
    t0 = time.monotonic()
    if ui_port == arena_port:
        raise ConfigError("--arena-port", f"'{arena_port}' is the port of the UI too", "two different ports")
    _free(ui_port, "--ui-port")
    _free(arena_port, "--arena-port")
    from synthetic_data import GeneratorConfig

    GeneratorConfig(region=region, years="2024")        # a bad --region: one line before anything starts
    base = Settings.from_env()
    root = Path(base.data_dir) / "demo"
    env = {**os.environ, "ZANDBAK_DATA": str(root), "ZANDBAK_REGION": region, "ZANDBAK_YEARS": "2024",
           "ZANDBAK_SCALE": "1.0", "PYTHONUNBUFFERED": "1"}
    handout = root / "handout"
    cli = [sys.executable, "-m", "pipelines.cli"]
    from .challenge import _truth_dir, new

    settings = dataclasses.replace(base, data_dir=str(root), region=region, years="2024", scale=1.0)
    manifest = handout / "manifest.json"
    reuse = False
    if manifest.exists():
        import json

        cid = json.loads(manifest.read_text(encoding="utf-8")).get("config", {}).get("challenge_id")
        reuse = bool(cid) and (_truth_dir(settings, cid) / "truth.parquet").exists()
    if not reuse:
        info = new(handout, region=region, years="2024", profile="realistic", settings=settings)
        print(f"demo: challenge {info['challenge_id']} of gemeente {region}: {info['records']:,} records, "
              f"{time.monotonic() - t0:.0f}s", flush=True)
    procs: list[subprocess.Popen] = []
    stopping: list[int] = []

    def stop(signum, frame):
        stopping.append(signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def start(args: list[str]) -> subprocess.Popen:
        p = subprocess.Popen([*cli, *args], cwd=PROJECT, env=env, start_new_session=True,
                             preexec_fn=_restore_default_signals)
        procs.append(p)
        return p

    try:
        start(["arena", str(handout), "--teams", TEAMS, "--port", str(arena_port)])
        start(["ui", "--port", str(ui_port)])
        ui, arena = f"http://127.0.0.1:{ui_port}/", f"http://127.0.0.1:{arena_port}/"
        ready = None
        runner = None
        while not stopping:
            if ready is None and _answers(arena) and _answers(ui + "server_info"):
                ready = time.monotonic() - t0
                print(f"\ndemo ready in {ready:.0f}s (Ctrl-C stops everything):\n"
                      f"  arena (challenge {region}, teams {TEAMS}): {arena}\n"
                      f"  Dagster UI: {ui}  (the runs of the gemeente appear under Runs as they go)\n"
                      f"  report (when the run is done): {root / 'report.html'}\n"
                      f"  warehouse (when the run is done): {root / 'warehouse.duckdb'}\n", flush=True)
                runner = start(["run"])     # the full gemeente through Dagster, behind what is on screen
            if ready is None and time.monotonic() - t0 > READY_TIMEOUT_S:
                print(f"demo: the UI or the arena did not answer within {READY_TIMEOUT_S}s; stopping", flush=True)
                return 1
            dead = [p for p in procs if p is not runner and p.poll() is not None]
            if dead:
                print(f"demo: {' '.join(dead[0].args[3:4])} stopped (exit {dead[0].returncode}); stopping the rest",
                      flush=True)
                return 1
            if runner is not None and runner.poll() is not None:
                print(f"demo: the run of gemeente {region} finished (exit {runner.returncode}) after "
                      f"{time.monotonic() - t0:.0f}s: report {root / 'report.html'}", flush=True)
                procs.remove(runner)
                stop_groups([runner], grace_s=0)     # anything its workers left in its group
                runner = None
            time.sleep(0.5)
        return 0
    finally:
        stop_groups(procs)
        for s, h in old.items():
            signal.signal(s, h)
        print("demo stopped.", flush=True)
