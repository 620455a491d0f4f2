"""`make demo` runs `zandbak demo`: started here, its addresses answer, and a Ctrl-C (SIGINT to its PID) leaves
nothing running: not the arena, not dagster dev's webserver, daemon or code servers, not the run behind them."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ZANDBAK = Path(sys.executable).with_name("zandbak")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _with_marker(marker: str) -> set[int]:
    """Processes whose environment names our data folder: also those that left their parent (orphans)."""
    found = set()
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid():
            try:
                if marker.encode() in (p / "environ").read_bytes():
                    found.add(int(p.name))
            except OSError:
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode("utf-8", "replace")


def test_make_demo_answers_and_ctrl_c_stops_everything(tmp_path):
    ui_port, arena_port = _free_port(), _free_port()
    data = tmp_path / "data"
    env = {**os.environ, "ZANDBAK_DATA": str(data), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(ZANDBAK), "demo", "--ui-port", str(ui_port), "--arena-port", str(arena_port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while "demo ready in" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        text = log.read_text()
        assert "demo ready in" in text, text[-3000:]
        for url in (f"http://127.0.0.1:{arena_port}/", f"http://127.0.0.1:{ui_port}/"):
            assert url in text                                   # the addresses are printed
        status, page = _get(f"http://127.0.0.1:{arena_port}/")
        assert status == 200 and "Arena: challenge" in page
        status, page = _get(f"http://127.0.0.1:{ui_port}/server_info")
        assert status == 200 and "dagster" in page.lower()
        assert re.search(r"report \(when the run is done\): \S+report\.html", text)
        assert re.search(r"warehouse \(when the run is done\): \S+warehouse\.duckdb", text)
        time.sleep(3)                                            # the run behind it has started its processes
        started = _descendants(proc.pid) | _with_marker(str(data))
        assert len(started) >= 4, started                        # arena, ui wrapper, dagster dev and its children
        proc.send_signal(signal.SIGINT)                           # Ctrl-C
        assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
        time.sleep(1)
        left = {p for p in started | _with_marker(str(data)) if _alive(p)}
        assert not left, f"still running after the demo stopped: {left}"
        assert "demo stopped." in log.read_text()
    finally:
        for p in _descendants(proc.pid) | _with_marker(str(data)):   # never leave anything behind, even on failure
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
