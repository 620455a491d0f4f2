"""Great Expectations Data Docs that work offline, and one index over the sites of a run.

GX 1.24 writes pages that load jQuery, Bootstrap, bootstrap-table, Vega, Font Awesome and its logo from public CDNs;
without a network the index shows no list and the pages are unstyled. `make_offline` rewrites every such URL in a
site's pages to the exact file, vendored from the npm registry (data_docs_assets/, see sources.yaml for versions,
tarballs, integrity and licences), copied once into a shared `_assets/` folder that the pages reach by a relative
path, so a data folder can be moved or zipped with its docs. A page whose CDN URL is not in sources.yaml (a newer
GX) is an error, not a silent offline failure.

`write_index` writes `index.html` over all sites below a folder (one per partition run): static HTML, no script.
"""
from __future__ import annotations

import functools
import html
import os
import re
import shutil
from pathlib import Path

from synthetic_data.atomic import atomic_write
from synthetic_data.reference import parse_yaml

ASSETS = Path(__file__).resolve().parent / "data_docs_assets"
SHARED = "_assets"                  # the folder of vendored files, beside (or inside) the sites
GX_IMAGES = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
# what a page would load from elsewhere (links to follow, <a href>, load nothing): a src, a <link href> or a CSS
# url() naming http(s):// or a protocol-relative //
_URL = r"""["']?((?:https?:)?//[^"')\s>]+)"""
REMOTE = re.compile(rf"""<(?:script|img|iframe|source|embed|audio|video)\b[^>]*?\ssrc\s*=\s*{_URL}"""
                    rf"""|<link\b[^>]*?\shref\s*=\s*{_URL}|url\(\s*{_URL}|@import\s+{_URL}""", re.I)
SRI = re.compile(r"""\s+(?:integrity="[^"]*"|crossorigin="[^"]*")""")   # SRI needs CORS, which file:// lacks


@functools.cache
def sources() -> dict:
    return parse_yaml((ASSETS / "sources.yaml").read_text(encoding="utf-8"))


def remote_resources(text: str) -> list[str]:
    """The URLs an HTML or CSS text would fetch from another host when opened."""
    return [next(u for u in m if u) for m in REMOTE.findall(text)]


def _copy_assets(dest: Path) -> None:
    """The vendored files under `dest/_assets/`, each written whole (parallel partition runs may do this at once)."""
    for src in ASSETS.rglob("*"):
        if src.is_dir() or src.name == "sources.yaml":
            continue
        target = dest / SHARED / src.relative_to(ASSETS)
        if target.exists() and target.stat().st_size == src.stat().st_size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target) as tmp:
            shutil.copyfile(src, tmp)


def _local_images(page: Path, site: Path) -> str:
    return Path(os.path.relpath(site / "static" / "images", page.parent)).as_posix() + "/"


def make_offline(site: str | Path, assets_root: str | Path | None = None) -> int:
    """Point every page of the GX site `site` at local copies (in `assets_root/_assets/`, default the site itself);
    returns the number of pages rewritten. Raises ValueError naming a page and URL that has no local copy."""
    site = Path(site)
    root = Path(assets_root) if assets_root is not None else site
    _copy_assets(root)
    urls = {a["url"]: a["file"] for a in sources()["assets"]}
    # the longest URL first: vega@5 must not swallow the start of vega-lite@5 or vega-embed@6
    order = sorted(urls, key=len, reverse=True)
    pages = 0
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        new = text
        to_assets = Path(os.path.relpath(root / SHARED, page.parent)).as_posix()
        for url in order:
            new = new.replace(f'"{url}"', f'"{to_assets}/{urls[url]}"')
        new = SRI.sub("", new).replace(GX_IMAGES, _local_images(page, site))
        left = remote_resources(new)
        if left:
            raise ValueError(f"{page}: Data Docs would load {left[0]} from the internet; allowed: the URLs of "
                             f"{ASSETS / 'sources.yaml'} (vendor the new file there)")
        if new != text:
            with atomic_write(page) as tmp:
                tmp.write_text(new, encoding="utf-8")
            pages += 1
    css = site / "static" / "styles" / "data_docs_default_styles.css"
    if css.exists():     # a dark-mode logo from GX's bucket: the local logo instead
        text = css.read_text(encoding="utf-8")
        fixed = re.sub(r"url\('https://great-expectations-web-assets[^']*'\)", "url('../images/logo-long.png')", text)
        if fixed != text:
            with atomic_write(css) as tmp:
                tmp.write_text(fixed, encoding="utf-8")
    return pages


def _suites(site: Path) -> list[tuple[str, str, str]]:
    """(suite, status, link relative to the site) per validation page of a site, newest run of each suite."""
    out = {}
    for page in sorted((site / "validations").rglob("*.html")):
        suite = page.relative_to(site / "validations").parts[0]
        text = page.read_text(encoding="utf-8")
        status = "failed" if re.search(r"\bFailed\b", text) else "succeeded" if "Succeeded" in text else "?"
        out[suite] = (suite, status, page.relative_to(site).as_posix())
    return list(out.values())


def write_index(root: str | Path, title: str = "Data Docs") -> Path:
    """`root/index.html`: every GX site below `root` (one per partition run) with its suites, their status and links
    to the validation pages. Plain HTML and CSS, so it needs neither JavaScript nor a network."""
    root = Path(root)
    sites = sorted(p.parent for p in root.glob("*/index.html") if p.parent.name != SHARED)
    rows = []
    for site in sites:
        suites = _suites(site)
        links = " ".join(
            f'<a class="{s}" href="{html.escape(site.name)}/{html.escape(link)}">{html.escape(name)}</a>'
            for name, s, link in suites)
        failed = sum(s == "failed" for _, s, _ in suites)
        rows.append(f'<tr><td><a href="{html.escape(site.name)}/index.html">{html.escape(site.name)}</a></td>'
                    f"<td>{len(suites)}</td><td>{failed}</td><td class=\"suites\">{links}</td></tr>")
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}
td,th{{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}.suites a{{margin-right:.8em}}
a.failed{{color:#b00}}a.succeeded{{color:#070}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>One Great Expectations site per partition run (the suites of the iJw rule registry); green: every expectation met,
red: some failed. SYNTHETIC DATA.</p>
<table id="sites"><tr><th>partition</th><th>suites</th><th>failed</th><th>validation results</th></tr>
{"".join(rows)}</table>
</body></html>
"""
    out = root / "index.html"
    with atomic_write(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out
