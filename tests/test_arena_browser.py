"""The arena end to end in a real headless Chromium (Debian's, driven by Playwright for Python): the host starts
`zandbak arena` (a subprocess, stopped by PID), a team opens the page, uploads findings, sees its score on the public
leaderboard, exceeds the limit and is refused, and the host reveals the private leaderboard.

Playwright because it drives the system's chromium over its own protocol with no driver binary to match to the
browser's version (executable_path=/usr/bin/chromium; its bundled browsers are never downloaded). CI installs
chromium (.ci/run) and sets ZANDBAK_REQUIRE_BROWSER=1, so there this test fails without it.

ZANDBAK_ARENA_SCREENSHOT=docs/arena.png writes the screenshot of the README.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

ZANDBAK = Path(sys.executable).with_name("zandbak")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _browser():
    required = os.environ.get("ZANDBAK_REQUIRE_BROWSER") == "1"
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if not path or sync_playwright is None:
        why = "no chromium on this machine (apt-get install chromium)" if not path else "playwright not installed"
        if required:
            pytest.fail(f"{why}, and this run requires it (ZANDBAK_REQUIRE_BROWSER=1)")
        pytest.skip(f"{why}; CI runs this test")
    return path, sync_playwright


def _start_arena(handout: Path, env: dict, limit: int) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([str(ZANDBAK), "arena", str(handout), "--teams", "rood,blauw", "--port", "0",
                             "--limit", str(limit)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    info: dict = {"teams": {}}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if m := re.search(r"arena of challenge \w+: (http://\S+)", line):
            info["url"] = m.group(1)
        elif m := re.search(r"host token .*: (\S+)$", line):
            info["host"] = m.group(1)
        elif m := re.match(r"team (\w+): token (\S+)", line):
            info["teams"][m.group(1)] = m.group(2)
        elif line.startswith("tokens kept in"):
            return proc, info
    proc.kill()
    raise AssertionError(f"the arena did not start: {info}")


def test_a_class_plays_the_challenge_in_the_browser(tmp_path):
    chromium, sync_playwright = _browser()
    data = tmp_path / "data"
    env = {**os.environ, "ZANDBAK_DATA": str(data)}
    r = subprocess.run([str(ZANDBAK), "challenge", "new", "--region", "0147", "--out", str(tmp_path / "handout")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    truth = pl.read_parquet(next((data / "sealed" / "challenges").glob("*/truth.parquet")))
    findings = tmp_path / "findings.csv"
    truth.select("table", "key").head(truth.height * 2 // 3).write_csv(findings)
    half = tmp_path / "half.csv"
    truth.select("table", "key").head(truth.height // 3).write_csv(half)
    garbled = tmp_path / "garbled.csv"
    garbled.write_bytes(b"\x89PNG not findings at all\x00\x01")
    proc, info = _start_arena(tmp_path / "handout", env, limit=2)
    try:
        assert info["url"].startswith("http://127.0.0.1:")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=FLAGS[1:])
            page = browser.new_page(viewport={"width": 1100, "height": 1500})
            page.goto(info["url"])
            assert page.locator("h1").inner_text().startswith("Arena: challenge")
            assert page.locator("#public").inner_text() == "No scored submissions yet."
            with page.expect_download() as dl:
                page.click("#handout")
            assert dl.value.suggested_filename.endswith(".zip")

            def submit(token: str, file: Path) -> str:
                page.fill("#token", token)
                page.set_input_files("#file", str(file))
                with page.expect_navigation():
                    page.click("#send")
                return page.locator("#message").inner_text()

            rood = info["teams"]["rood"]
            msg = submit(rood, garbled)
            assert "not scored, not counted against the limit" in msg, msg
            msg = submit(rood, findings)
            assert msg.startswith("team rood: scored: public F1"), msg
            board = page.locator("#public").inner_text()
            assert "rood" in board and re.search(r"rood\s+0\.\d{3}", board), board
            assert submit(info["teams"]["blauw"], half).startswith("team blauw: scored")
            assert "1 of 2 submissions left" not in submit(rood, findings)
            msg = submit(rood, findings)
            assert "limit reached" in msg and "2 of 2" in msg, msg
            assert page.locator("#message.refusal").count() == 1
            if shot := os.environ.get("ZANDBAK_ARENA_SCREENSHOT"):
                page.goto(info["url"])
                page.set_viewport_size({"width": 1000, "height": 900})
                page.screenshot(path=shot, full_page=True)
            # the host ends the challenge
            page.goto(info["url"] + "host")
            page.fill("#host-token", info["host"])
            with page.expect_navigation():
                page.click("#reveal-button")
            private = page.locator("#private").inner_text()
            assert "rood" in private and "blauw" in private, private
            assert page.locator("#submit").count() == 0          # closed
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0
