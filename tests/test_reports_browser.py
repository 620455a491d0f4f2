"""The HTML scorecard of `zandbak score --checks ... --html`, opened in a real headless Chromium, offline.

CI installs Debian's chromium (.ci/run) and sets ZANDBAK_REQUIRE_BROWSER=1, so there the test fails without it;
on a machine without chromium it is skipped with that reason.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ZANDBAK = Path(sys.executable).with_name("zandbak")
EXAMPLES = Path(__file__).resolve().parent.parent / "expectations" / "examples"
# the flags that work as root on this kind of machine, without any background network traffic
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("ZANDBAK_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed, and this run requires it (ZANDBAK_REQUIRE_BROWSER=1)")
        pytest.skip("no chromium on this machine (apt-get install chromium); CI runs this test")
    return path


def _zandbak(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(ZANDBAK), *map(str, args)], capture_output=True, text=True, timeout=300)


def test_the_html_scorecard_renders_offline_with_every_check(tmp_path):
    browser = _chromium()
    assert _zandbak("generate", "--region", "0147", "--scale", "0.2", "--out", tmp_path / "clean", "--quiet").returncode == 0
    assert _zandbak("corrupt", tmp_path / "clean", "--profile", "demo", "--out", tmp_path / "dirty").returncode == 0
    page = tmp_path / "scorecard.html"
    r = _zandbak("score", tmp_path / "dirty", "--checks", EXAMPLES / "sql", "--html", page, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    html = page.read_text(encoding="utf-8")
    # nothing to fetch: no script, stylesheet, image or font from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|<script""", html, re.I)
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert "<table" in dom and "Scorecard" in dom
    for check in result["checks"]:
        assert (check["check"] if isinstance(check, dict) else check) in dom
    precision = result["suite"]["overall"]["precision"]
    assert f"{precision:.3f}" in dom
    shot = tmp_path / "scorecard.png"
    subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}",
                    "--window-size=1200,900", page.as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000     # a rendered page, not a blank one
