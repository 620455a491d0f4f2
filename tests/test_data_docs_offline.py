"""The vendored Data Docs assets are the exact files GX references, and a page that would still load from the internet
is refused (the browser side is in test_report_browser.py)."""
from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from expectations.data_docs import ASSETS, SHARED, make_offline, remote_resources, sources, write_index


def _gx_templates() -> str:
    import great_expectations

    root = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    return "\n".join(p.read_text(encoding="utf-8") for p in root.glob("*.j2"))


def test_every_cdn_url_of_the_installed_gx_templates_has_a_vendored_file():
    urls = {a["url"] for a in sources()["assets"]}
    referenced = set(re.findall(r"""<(?:script|link)\b[^>]*?(?:src|href)="(https://[^"]+)\"""", _gx_templates()))
    assert referenced and referenced <= urls, referenced - urls
    for a in sources()["assets"]:
        assert (ASSETS / a["file"]).is_file(), a["file"]
        assert (ASSETS / a["file"].split("/")[0] / "LICENSE").is_file(), a["package"]


def test_the_vendored_files_match_the_integrity_gx_pins():
    """GX pins popper and bootstrap by Subresource Integrity: our copies must have exactly those hashes."""
    text = _gx_templates()
    files = {a["url"]: ASSETS / a["file"] for a in sources()["assets"]}
    pinned = re.findall(r'src="(https://[^"]+)" integrity="sha384-([^"]+)"', text)
    assert len(pinned) >= 2
    for url, digest in pinned:
        assert base64.b64encode(hashlib.sha384(files[url].read_bytes()).digest()).decode() == digest, url


def _page(site: Path, body: str) -> Path:
    page = site / "validations" / "trajecten" / "run" / "x.html"
    page.parent.mkdir(parents=True)
    page.write_text(f"<html><head>{body}</head><body>Succeeded</body></html>", encoding="utf-8")
    (site / "index.html").write_text("<html></html>", encoding="utf-8")
    return page


def test_cdn_urls_become_relative_paths_to_one_shared_copy(tmp_path):
    site = tmp_path / "docs" / "0147"
    page = _page(site, '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
                       '<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" '
                       'integrity="sha384-x" crossorigin="anonymous"></script><a href="https://greatexpectations.io">GX</a>')
    assert make_offline(site, tmp_path / "docs") == 1          # pages rewritten: index.html had nothing to rewrite
    text = page.read_text(encoding="utf-8")
    assert 'src="../../../../_assets/jquery@3.7.1/dist/jquery.min.js"' in text
    assert "integrity" not in text and "crossorigin" not in text      # SRI needs CORS, which file:// lacks
    assert not remote_resources(text) and 'href="https://greatexpectations.io"' in text   # a link loads nothing
    assert (tmp_path / "docs" / SHARED / "jquery@3.7.1" / "dist" / "jquery.min.js").is_file()
    assert not (site / SHARED).exists()


def test_a_page_that_would_still_load_from_the_internet_is_refused(tmp_path):
    site = tmp_path / "0147"
    _page(site, '<link rel="stylesheet" href="https://cdn.example.org/new-gx-style.css">')
    with pytest.raises(ValueError, match=r"x\.html: Data Docs would load https://cdn\.example\.org/new-gx-style\.css"):
        make_offline(site)


def test_the_index_lists_every_site_and_suite(tmp_path):
    _page(tmp_path / "0147", "")
    _page(tmp_path / "dirty_0147", "")
    text = write_index(tmp_path).read_text(encoding="utf-8")
    assert 'href="0147/validations/trajecten/run/x.html"' in text and 'href="dirty_0147/index.html"' in text
    assert "<script" not in text and not remote_resources(text)
