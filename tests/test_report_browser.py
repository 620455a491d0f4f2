"""The run report (data/report.html) and the offline Data Docs, opened in a real headless Chromium with the network
cut off: every plot is drawn, and no page asks for anything beyond file://.

"Network off" is a proxy of our own on 127.0.0.1 that answers every request with 403 and records it; Chromium sends
all http(s) traffic there. Headless Chromium itself calls a few Google hosts (time, accounts) whatever the page is:
those are the browser's, not the page's, and are left out of the verdict. CI sets ZANDBAK_REQUIRE_BROWSER=1, so the
tests fail there without chromium (see test_reports_browser.py).
"""
from __future__ import annotations

import datetime as dt
import re
import socketserver
import subprocess
import threading
from pathlib import Path

import polars as pl
import pytest

from test_reports_browser import FLAGS, _chromium

BROWSER_OWN = re.compile(r"(^|\.)(google\.com|gstatic\.com|googleapis\.com)(:\d+)?$")


class _Recorder(socketserver.BaseRequestHandler):
    def handle(self):
        line = self.request.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        self.server.seen.append(line)
        self.request.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture
def offline():
    """Run a page in Chromium with every request going to a recording proxy; returns (dom, requests of the page)."""
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Recorder)
    srv.daemon_threads, srv.seen = True, []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()

    def open_page(page: Path, profile: Path, screenshot: Path | None = None) -> tuple[str, list[str]]:
        browser = _chromium()
        before = len(srv.seen)
        mode = [f"--screenshot={screenshot}", "--window-size=1200,2400"] if screenshot else ["--dump-dom"]
        dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}",
                              f"--proxy-server=http://127.0.0.1:{srv.server_address[1]}", "--proxy-bypass-list=<-loopback>",
                              "--virtual-time-budget=20000", *mode, page.as_uri()],
                             capture_output=True, text=True, timeout=300).stdout
        hosts = [r.split()[1] if len(r.split()) > 1 else r for r in srv.seen[before:]]
        hosts = [re.sub(r"^https?://([^/]+).*", r"\1", h) for h in hosts]
        return dom, [h for h in hosts if not BROWSER_OWN.search(h)]

    yield open_page
    srv.shutdown()
    srv.server_close()


def test_the_recorder_catches_a_page_that_loads_from_a_cdn(offline, tmp_path):
    page = tmp_path / "cdn.html"
    page.write_text('<html><script src="https://cdn.jsdelivr.net/npm/vega@5"></script><body>x</body></html>')
    _, requests = offline(page, tmp_path / "p")
    assert any("cdn.jsdelivr.net" in r for r in requests)


# ------------------------------------------------------------------------------------------------------ the report

def _small_run(root: Path) -> Path:
    """A lake as a run leaves it (small: Borne 2024 at scale 0.2), with a scorecard and one row per leaderboard."""
    from experiments.leaderboard import COLUMNS, rows_dir
    from expectations import rule_findings
    from synthetic_data.faults import inject_faults, score, score_table
    from synthetic_data.generate import REFERENCE_TABLES
    from synthetic_data.testing import small_tables

    lake = root / "lake"
    tables = small_tables()
    for name, df in tables.items():
        (lake / name).mkdir(parents=True, exist_ok=True)
        df.write_parquet(lake / name / ("all.parquet" if name in REFERENCE_TABLES else "0147.parquet"))
    dirty, truth = inject_faults(tables, profile="demo", seed=3)
    (lake / "check_scorecard").mkdir()
    score_table(score(rule_findings(dirty), truth)).write_parquet(lake / "check_scorecard" / "all.parquet")
    wh = root / "warehouse.duckdb"
    types = {"varchar": pl.String, "double": pl.Float64, "bigint": pl.Int64, "timestamp": pl.Datetime("us")}
    now = dt.datetime(2026, 12, 1, 12)
    row = {"team": "demo", "experiment": "baseline", "task": "claim_rejections", "score": 0.42, "metrics_json": "{}",
           "status": "ok", "error": None, "runtime_s": 1.5, "seed": 1, "dataset_hash": "abc", "time": now, "sandbox": None}
    rows_dir(wh).mkdir(parents=True)
    pl.DataFrame([row], schema={c: types[t] for c, t in COLUMNS.items()}).write_parquet(rows_dir(wh) / "1.parquet")
    ch = rows_dir(wh, "challenge_leaderboard")
    ch.mkdir(parents=True)
    pl.DataFrame([{"time": now, "challenge_id": "c1", "team": "team-a", "precision": 0.5, "recall": 0.4, "f1": 0.44,
                   "tp": 4, "fp": 4, "fn": 6, "submission": "a.csv"}]).write_parquet(ch / "1.parquet")
    return lake


PLOTS = {"youth": "by age and sex", "care-forms": "Care forms", "referrers": "Referrers",
         "calibration": "measures within tolerance", "claims": "Claimed",
         "waiting": "Waiting time", "scorecard": "recall per fault type",
         "experiments": "Experiment leaderboard", "challenges": "Challenge leaderboard"}


def test_the_report_draws_every_plot_offline(offline, tmp_path):
    from expectations.data_docs import remote_resources
    from pipelines.report import write_report

    from expectations.data_docs import write_index

    lake = _small_run(tmp_path)
    (tmp_path / "data_docs").mkdir()
    write_index(tmp_path / "data_docs")
    out = tmp_path / "report.html"
    assert write_report(tmp_path / "warehouse.duckdb", out, 2024, "Small run", lake=lake, scale=0.2,
                        data_docs=tmp_path / "data_docs") == 1
    text = out.read_text(encoding="utf-8")
    assert not remote_resources(text) and "<script" not in text      # nothing to fetch, nothing to run
    dom, requests = offline(out, tmp_path / "profile")
    assert requests == []
    for anchor, title in PLOTS.items():
        fig = re.search(rf'<figure class="plot" data-plot="{anchor}">(.*?)</figure>', dom, re.S)
        assert fig, f"plot {anchor} missing"
        svg = fig.group(1)
        assert svg.startswith("<svg") and title in svg, anchor
        # drawn, not blank: the marks group holds shapes (bars are paths, line points are paths too)
        marks = re.findall(r'<g class="mark-(?:rect|line|symbol|rule|tick)[^"]*"[^>]*>(.*?)</g>', svg, re.S)
        assert sum(m.count("<path") + m.count("<line") for m in marks) >= 2, anchor
    assert 'href="data_docs/index.html"' in dom and "127.0.0.1:3000" in dom
    assert "Borne" in dom                                                # the per-gemeente table


def test_the_report_says_so_when_nothing_was_recorded(tmp_path):
    """A run without fault scorecard or leaderboard rows still gets its report, saying so instead of an empty plot."""
    from pipelines.report import write_report

    lake = _small_run(tmp_path)
    for sub in ("check_scorecard",):
        for f in (lake / sub).glob("*"):
            f.unlink()
    for f in (tmp_path / "leaderboards").rglob("*.parquet"):
        f.unlink()
    out = tmp_path / "report.html"
    write_report(tmp_path / "warehouse.duckdb", out, 2024, "Small run", lake=lake, scale=0.2,
                 data_docs=tmp_path / "data_docs")
    text = out.read_text(encoding="utf-8")
    assert text.count("Nothing recorded yet.") == 3 and 'data-plot="youth"' in text
    assert "Data Docs</a>" not in text          # no link to docs that were never written
    again = tmp_path / "again.html"             # same run, same bytes (the plots are drawn in parallel threads)
    write_report(tmp_path / "warehouse.duckdb", again, 2024, "Small run", lake=lake, scale=0.2,
                 data_docs=tmp_path / "data_docs")
    assert again.read_bytes() == out.read_bytes()


# ------------------------------------------------------------------------------------------------------- Data Docs

def _site(docs: Path, partition: str, offline_assets: bool = True):
    from expectations import load_rules, validate
    from synthetic_data.testing import small_tables

    rules = [r for r in load_rules() if r.table in ("jeugdigen", "zorgstarts")][:6]   # small: a few suites
    if offline_assets:
        validate(small_tables(), rules, docs_dir=docs / partition, docs_assets=docs)
    else:        # what GX writes by itself
        import expectations.data_docs as dd

        keep = dd.make_offline
        dd.make_offline = lambda *a, **k: 0
        try:
            validate(small_tables(), rules, docs_dir=docs / partition)
        finally:
            dd.make_offline = keep
    return sorted({r.table for r in rules})


def test_gx_alone_loads_its_data_docs_from_cdns(offline, tmp_path):
    """The attack: GX's own pages ask CDNs for their scripts, so offline the index has no list."""
    _site(tmp_path / "raw", "0147", offline_assets=False)
    dom, requests = offline(tmp_path / "raw" / "0147" / "index.html", tmp_path / "p")
    assert any("jsdelivr" in r or "unpkg" in r or "bootstrapcdn" in r for r in requests)
    assert 'class="clickable-row"' not in dom


def test_data_docs_work_offline_with_one_index_over_partitions(offline, tmp_path):
    from expectations.data_docs import remote_resources, write_index

    docs = tmp_path / "data_docs"
    suites = _site(docs, "0147")
    _site(docs, "dirty_0147")
    index = write_index(docs)
    for page in docs.rglob("*.html"):
        assert not remote_resources(page.read_text(encoding="utf-8")), page
    # the GX index of a partition: its list is drawn by bootstrap-table, offline
    dom, requests = offline(docs / "0147" / "index.html", tmp_path / "p1")
    assert requests == []
    rows = re.findall(r'<tr class="clickable-row" data-href="([^"]+)"', dom)
    assert rows and {r.split("/")[1] for r in rows} >= set(suites), (len(dom), rows)
    # a validation page: styled from the local copy of Bootstrap, no request
    page = docs / "0147" / rows[0]
    dom, requests = offline(page, tmp_path / "p2")
    assert requests == [] and "Overview" in dom
    # the one index: both partitions, every suite, each linked to a page that exists
    dom, requests = offline(index, tmp_path / "p3")
    assert requests == []
    links = re.findall(r'href="([^"]+)"', dom)
    for partition in ("0147", "dirty_0147"):
        assert f"{partition}/index.html" in links
        for suite in suites:
            assert any(link.startswith(f"{partition}/validations/{suite}/") for link in links), (partition, suite)
    assert all((docs / link).exists() for link in links)
