"""The HTML report of a run (`data/report.html`): plots of the region and the tables behind them (no dagster import).

Self-contained: the page holds its plots as inline SVG and loads nothing, neither script nor style nor font, so it
opens from a mail or a USB stick without a network. The plots are Altair (Vega-Lite) specs rendered to static SVG
in-process by vl-convert, which carries its own copy of Vega: no browser, no CDN and no JavaScript in the page
(Altair is already installed with Great Expectations; Vega-Lite gives labelled, readable charts with little code).
Every figure comes from a polars aggregation over the lake's Parquet files; the calibration picture uses the one
implementation of the measures, synthetic_data.calibrate.measure.
"""
from __future__ import annotations

import html
import os
from pathlib import Path

import polars as pl

from synthetic_data.atomic import atomic_write
from synthetic_data.generate import REFERENCE_TABLES
from synthetic_data.ijw import signed

UI_URL = "http://127.0.0.1:3000"      # `make ui` / `zandbak ui` (default port)
SEX = {"1": "jongen", "2": "meisje"}  # iJw Geslacht (COD046): 0 onbekend, 1 man, 2 vrouw
TABLES = ["gemeenten", "trajecten", "jeugdigen", "toewijzingen", "zorgstarts", "zorgstops", "verzoeken", "antwoorden",
          "wijzigingsverzoeken", "prestaties", "declaraties", "declaratie_antwoorden", "declaratie_antwoord_prestaties"]


def _read(lake: Path, name: str) -> pl.DataFrame | None:
    # files only: a failed partition may leave anything at its path, and the report covers the partitions that ran
    files = sorted(f for f in (lake / name).glob("*.parquet") if f.is_file())
    if not files:
        return None
    df = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")
    # reference tables are written per region: several regions' files may repeat the same rows
    return df.unique(maintain_order=True) if name in REFERENCE_TABLES else df


def _svg(chart) -> dict:
    """The Vega-Lite spec of a chart, drawn later by `_draw` (the specs are ours: schema validation only costs time)."""
    return chart.to_dict(validate=False)


def _draw(specs: list) -> list[str]:
    """SVG of each spec ('' stays ''). vl-convert renders in its own threads, outside the GIL: drawing the plots
    side by side took 7.0 s against 11.1 s one after another on a loaded 2-core machine."""
    import vl_convert as vlc
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda spec: vlc.vegalite_to_svg(spec) if spec else "", specs))


def _youth_by_age_sex(t: dict, year: int) -> pl.DataFrame:
    y0, y1 = pl.date(year, 1, 1), pl.date(year, 12, 31)
    active = t["trajecten"].filter((pl.col("begindatum") <= y1) & (pl.col("einddatum") >= y0)).select(
        "gemeente_code", "client_id").unique()
    people = t["jeugdigen"].join(active, on=["gemeente_code", "client_id"])
    return (people.with_columns(
        (year - pl.col("geboortedatum").dt.year()).clip(0, 23).alias("age"),       # age reached in the year
        pl.col("geslacht").replace_strict(SEX, default="onbekend").alias("sex"))
        .group_by("age", "sex").agg(pl.len().alias("youth")).sort("age", "sex"))


def _calibration(t: dict, year: int, scale: float) -> pl.DataFrame:
    from synthetic_data.calibrate import measure

    rows = [(m.metric, m.generated, m.target, m.tolerance, m.ok) for m in measure(t, year, scale)]
    return pl.DataFrame(rows, schema={"metric": pl.String, "generated": pl.Float64, "target": pl.Float64,
                                      "tolerance": pl.Float64, "ok": pl.Boolean}, orient="row")


def _monthly_claims(t: dict) -> pl.DataFrame:
    """Per claim period (JW323 Begindatum month): net claimed and net awarded (JW325 ToegekendBedrag) in euro."""
    d = t["declaraties"].select("agb_code", "declaratie_nummer", pl.col("begindatum").dt.truncate("1mo").alias("month"),
                                signed("totaal_bedrag").alias("claimed"))
    a = t["declaratie_antwoorden"].select("agb_code", "declaratie_nummer",
                                          signed("totaal_toegekend_bedrag").alias("awarded"))
    return (d.join(a, on=["agb_code", "declaratie_nummer"], how="left")
            .group_by("month").agg((pl.col("claimed").sum() / 100).alias("claimed"),
                                   (pl.col("awarded").sum() / 100).alias("awarded"))
            .sort("month"))


def _waiting(t: dict, year: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Days from the first toewijzing's Ingangsdatum to the JW305 Begindatum of the care starts in the year (the
    measure of synthetic_data.process_figures): the share per week, and p50/p90 per product category."""
    y0, y1 = pl.date(year, 1, 1), pl.date(year, 12, 31)
    k = ["gemeente_code", "toewijzing_nummer", "product_categorie"]
    first = t["toewijzingen"].filter((pl.col("versie") == 1) & pl.col("ingangsdatum").is_between(y0, y1)).select(k)
    w = (t["zorgstarts"].filter(pl.col("begindatum").is_between(y0, y1)).join(first, on=k)
         .select("product_categorie", (pl.col("begindatum") - pl.col("toewijzing_ingangsdatum")).dt.total_days()
                 .alias("days")))
    weeks = (w.select((pl.col("days") // 7).clip(0, 12).alias("weeks")).group_by("weeks").agg(pl.len().alias("starts"))
             .with_columns((pl.col("starts") / pl.col("starts").sum()).alias("share")).sort("weeks"))
    per = (w.group_by("product_categorie").agg(pl.len().alias("starts"),
                                               pl.col("days").quantile(0.5, "nearest").alias("p50_days"),
                                               pl.col("days").quantile(0.9, "nearest").alias("p90_days"))
           .sort(["starts", "product_categorie"], descending=[True, False]))     # ties in a fixed order
    return weeks, per


def _gemeenten(t: dict, year: int) -> pl.DataFrame:
    y0, y1 = pl.date(year, 1, 1), pl.date(year, 12, 31)
    youth = t["trajecten"].filter((pl.col("einddatum") >= y0) & (pl.col("begindatum") <= y1)).group_by(
        "gemeente_code").agg(pl.col("client_id").n_unique().alias("youth_in_care"), pl.len().alias("trajecten"))
    claims = t["prestaties"].filter(pl.col("begindatum").dt.year() == year).group_by("gemeente_code").agg(
        (signed("ingediend_bedrag").sum() / 100).alias("claimed_eur"))
    tw = t["toewijzingen"].group_by("gemeente_code").agg(pl.col("toewijzing_nummer").n_unique().alias("toewijzingen"))
    g = t["gemeenten"].select("gemeente_code", "gemeente_naam",
                              (pl.col("jeugd_0_14") + pl.col("jeugd_15_19") + pl.col("jeugd_20_22")).alias("youth_0_22"))
    return (g.join(youth, on="gemeente_code").join(tw, on="gemeente_code", how="left")
            .join(claims, on="gemeente_code", how="left")
            .with_columns((100 * pl.col("youth_in_care") / pl.col("youth_0_22")).round(1).alias("pct_in_care"),
                          pl.col("claimed_eur").round(0),
                          (pl.col("claimed_eur") / pl.col("youth_in_care")).round(0).alias("eur_per_youth"))
            .select("gemeente_code", "gemeente_naam", "youth_0_22", "youth_in_care", "pct_in_care", "trajecten",
                    "toewijzingen", "claimed_eur", "eur_per_youth")
            .sort("gemeente_naam"))


def _leaderboards(db_path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    from experiments.leaderboard import leaderboard, rows_dir

    exp = leaderboard(db_path)
    keep = [c for c in ("rank", "task", "team", "experiment", "score", "status", "runtime_s", "dataset_hash") if c in exp.columns]
    exp = exp.select(keep)
    files = sorted(rows_dir(db_path, "challenge_leaderboard").glob("*.parquet"))
    if files:
        ch = (pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
              .group_by("challenge_id", "team").agg(pl.col("f1").max().alias("best_f1"), pl.len().alias("submissions"))
              .sort(["challenge_id", "best_f1", "team"], descending=[False, True, False]))
    else:
        ch = pl.DataFrame(schema={"challenge_id": pl.String, "team": pl.String, "best_f1": pl.Float64,
                                  "submissions": pl.UInt32})
    return exp, ch


# ------------------------------------------------------------------------------------------------------- charts

def _charts(t: dict, year: int, scale: float, lake: Path, db_path: Path) -> list[tuple[str, str, str, pl.DataFrame]]:
    """(anchor, title, Vega-Lite spec or '' when there is nothing to draw, table) per section, in page order."""
    import altair as alt

    out = []
    ages = _youth_by_age_sex(t, year)
    out.append(("youth", f"Youth in care in {year} by age and sex", _svg(
        alt.Chart(ages).mark_bar().encode(
            x=alt.X("age:O", title=f"age reached in {year}"), y=alt.Y("youth:Q", title="youth in care"),
            color=alt.Color("sex:N", title="sex"), xOffset="sex:N", tooltip=["age", "sex", "youth"])
        .properties(width=640, height=260, title=f"Youth in care in {year} by age and sex")), ages))

    cal = _calibration(t, year, scale)
    for anchor, block, title in (("care-forms", "started_trajecten_by_hulpvorm", "Care forms of started trajecten"),
                                 ("referrers", "verwijzer_share_of_trajecten", "Referrers of started trajecten")):
        part = (cal.filter(pl.col("metric").str.starts_with(block + "."))
                .with_columns(pl.col("metric").str.strip_prefix(block + ".").alias("category"),
                              (pl.col("target") - pl.col("tolerance")).clip(0).alias("low"),
                              (pl.col("target") + pl.col("tolerance")).alias("high"))
                .select("category", "generated", "target", "tolerance", "low", "high", "ok"))
        base = alt.Chart(part).encode(y=alt.Y("category:N", title=None, sort="-x"))
        chart = (base.mark_bar(color="#4c78a8").encode(x=alt.X("generated:Q", title="share", axis=alt.Axis(format="%")))
                 + base.mark_rule(color="#e45756", strokeWidth=2).encode(x="low:Q", x2="high:Q")
                 + base.mark_tick(color="#e45756", thickness=3, size=18).encode(x="target:Q"))
        out.append((anchor, f"{title}: generated against the CBS target", _svg(chart.properties(
            width=560, height=22 * max(part.height, 1),
            title=f"{title}: generated (bars) against the CBS target (red: target and tolerance)")),
            part.drop("low", "high")))

    dev = (cal.filter(pl.col("tolerance") > 0)
           .with_columns(((pl.col("generated") - pl.col("target")) / pl.col("tolerance")).clip(-3, 3).alias("deviation"),
                         pl.when(pl.col("ok")).then(pl.lit("within tolerance")).otherwise(pl.lit("outside"))
                         .alias("verdict")))
    band = alt.Chart(pl.DataFrame({"low": [-1.0], "high": [1.0]})).mark_rect(color="#e8f3e8").encode(x="low:Q", x2="high:Q")
    dots = alt.Chart(dev).mark_circle(size=60).encode(
        y=alt.Y("metric:N", title=None, sort=None, axis=alt.Axis(labelLimit=320)),
        x=alt.X("deviation:Q", title="(generated - target) / tolerance, clipped at 3", scale=alt.Scale(domain=[-3, 3])),
        color=alt.Color("verdict:N", title=None, scale=alt.Scale(domain=["within tolerance", "outside"],
                                                                  range=["#54a24b", "#e45756"])),
        tooltip=["metric", "generated", "target", "tolerance"])
    out.append(("calibration", "Calibration: every measure against its target", _svg(
        (band + dots).properties(width=420, height=14 * max(dev.height, 1),
                                 title=f"Calibration: {dev['ok'].sum()} of {dev.height} measures within tolerance "
                                       f"(green band) of their CBS target")),
        cal))

    if "declaraties" in t and "declaratie_antwoorden" in t:
        claims = _monthly_claims(t).filter(pl.col("month").dt.year() <= year)   # later periods: only late claims
        long = claims.unpivot(index="month", variable_name="amount", value_name="eur")
        out.append(("claims", "Claimed and awarded per month", _svg(
            alt.Chart(long).mark_line(point=True).encode(
                x=alt.X("yearmonth(month):T", title="claim period"), y=alt.Y("eur:Q", title="euro"),
                color=alt.Color("amount:N", title=None))
            .properties(width=640, height=260, title="Claimed (JW323) and awarded (JW325) per claim period, euro")),
            claims))

    weeks, per = _waiting(t, year)
    out.append(("waiting", "Waiting times", _svg(
        alt.Chart(weeks).mark_bar(color="#72b7b2").encode(
            x=alt.X("weeks:O", title="weeks from toewijzing Ingangsdatum to care start (12 = 12 or more)"),
            y=alt.Y("share:Q", title="share of care starts", axis=alt.Axis(format="%")))
        .properties(width=640, height=240, title=f"Waiting time of the care starts in {year}")), per))

    card = _read(lake, "check_scorecard")
    if card is not None and card.height:
        # per fault type only recall is defined (a false alarm belongs to no fault type); precision is overall
        ft = card.filter(pl.col("scope") == "fault_type").select("name", "tp", "fn", "recall")
        o = card.filter(pl.col("scope") == "overall").row(0, named=True)
        title = (f"The reference suite on the dirty data: recall per fault type "
                 f"(overall precision {o['precision'] or 0:.3f}, recall {o['recall'] or 0:.3f})")
        out.append(("scorecard", "Check scorecard per fault type", _svg(
            alt.Chart(ft).mark_bar(color="#4c78a8").encode(
                y=alt.Y("name:N", title="fault type", sort="-x"),
                x=alt.X("recall:Q", title="recall (share of the injected faults found)", scale=alt.Scale(domain=[0, 1])),
                tooltip=["name", "tp", "fn", "recall"])
            .properties(width=520, height=16 * max(ft.height, 1), title=title)),
            card.filter(pl.col("scope").is_in(["overall", "fault_type"]))))
    else:
        out.append(("scorecard", "Check scorecard per fault type", "", pl.DataFrame()))

    exp, ch = _leaderboards(db_path)
    exp_plot = exp.filter(pl.col("score").is_not_null()).with_columns(
        (pl.col("task") + ": " + pl.col("team") + " / " + pl.col("experiment")).alias("run"))
    out.append(("experiments", "Experiment leaderboard", _svg(
        alt.Chart(exp_plot).mark_bar().encode(
            y=alt.Y("run:N", title=None, sort=alt.EncodingSortField("task")),
            x=alt.X("score:Q", title="score (higher is better; each task its own measure)"),
            color=alt.Color("task:N", title="task"))
        .properties(width=480, height=22 * exp_plot.height,
                    title="Experiment leaderboard: latest run of each experiment, per task"))
        if exp_plot.height else "", exp))
    ch_plot = ch.with_columns((pl.col("challenge_id").str.slice(0, 8) + ": " + pl.col("team")).alias("entry"))
    out.append(("challenges", "Challenge leaderboard", _svg(
        alt.Chart(ch_plot).mark_bar(color="#b279a2").encode(
            y=alt.Y("entry:N", title=None, sort=alt.EncodingSortField("challenge_id")),
            x=alt.X("best_f1:Q", title="best F1", scale=alt.Scale(domain=[0, 1])))
        .properties(width=480, height=22 * ch_plot.height, title="Challenge leaderboard: best F1 per team"))
        if ch.height else "", ch))
    return out


# --------------------------------------------------------------------------------------------------------- page

def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "" if v != v else f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return html.escape("" if v is None else str(v))


def _table(df: pl.DataFrame) -> str:
    if not df.width:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r) + "</tr>" for r in df.rows())  # a few dozen rows
    return f"<table><tr>{head}</tr>{body}</table>"


def _link(target: Path, base: Path) -> str:
    """A relative link from the page's folder, so the data folder can move (or be mailed) with its report."""
    return Path(os.path.relpath(target, base)).as_posix()


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}table{font-size:.9em}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}.note{color:#a00}figure{margin:1em 0}nav a{margin-right:1em}
details summary{cursor:pointer;color:#355}.empty{color:#777;font-style:italic}section{margin-bottom:2em}"""


def write_report(db_path: Path, out: Path, year: int, title: str, lake: Path | None = None, scale: float = 1.0,
                 data_docs: Path | None = None, ui_url: str = UI_URL) -> int:
    """Write the report of the run in `lake` (default: the warehouse folder's lake is not guessed; pass it) to
    `out`, whole or not at all; returns the number of gemeenten in it."""
    if lake is None:
        raise ValueError("write_report needs the lake folder")
    t = {n: df for n in TABLES if (df := _read(lake, n)) is not None}
    gem = _gemeenten(t, year)
    sections = _charts(t, year, scale, lake, db_path)
    sections = [(a, h, svg, tab) for (a, h, _, tab), svg in zip(sections, _draw([s[2] for s in sections]))]
    base = out.parent
    links = [f'<a href="{html.escape(ui_url)}">Dagster UI</a> (<code>make ui</code>, then the runs and the asset graph)']
    if data_docs is not None and (data_docs / "index.html").exists():
        links.insert(0, f'<a href="{html.escape(_link(data_docs / "index.html", base))}">Data Docs</a> '
                        f'(Great Expectations validation results of every partition, offline)')
    nav = " ".join(f'<a href="#{a}">{html.escape(s)}</a>' for a, s, _, _ in sections)
    parts = []
    for anchor, heading, svg, table in sections:
        plot = (f'<figure class="plot" data-plot="{anchor}">{svg}</figure>' if svg
                else '<p class="empty">Nothing recorded yet.</p>')
        tab = f"<details><summary>The table behind it</summary>{_table(table)}</details>" if table.height else ""
        parts.append(f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>{plot}{tab}</section>')
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">SYNTHETIC DATA generated by jeugdzorg-zandbak. No row describes a real person or organisation.</p>
<p>{" · ".join(links)}. Warehouse: <code>{html.escape(_link(db_path, base))}</code>.</p>
<nav>{nav} <a href="#gemeenten">Per gemeente</a></nav>
{"".join(parts)}
<section id="gemeenten"><h2>Per gemeente, {year}</h2>{_table(gem)}</section>
</body></html>
"""
    with atomic_write(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return gem.height
