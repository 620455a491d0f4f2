"""The per-check scorecard of `score_checks` as tables, text and one self-contained HTML page (no CDN, no script)."""
from __future__ import annotations

import html

import polars as pl


def _f(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def checks_table(result: dict) -> pl.DataFrame:
    """One row per check: flagged records, tp, fp, precision, recall on its own rule's faults, what it catches."""
    rows = []
    for c in result["checks"]:
        t = c["target"]
        rows.append({"check": c["check"], "table": c["table"], "rule_code": c["rule_code"], "flagged": c["flagged"],
                     "tp": c["tp"], "fp": c["fp"], "precision": c["precision"],
                     "target_recall": t["recall"] if t else None,
                     "catches": ", ".join(f"{ft} {m['tp']}/{m['records']}" for ft, m in c["by_fault_type"].items())})
    return pl.DataFrame(rows, schema={"check": pl.String, "table": pl.String, "rule_code": pl.String,
                                      "flagged": pl.Int64, "tp": pl.Int64, "fp": pl.Int64, "precision": pl.Float64,
                                      "target_recall": pl.Float64, "catches": pl.String})


def fault_types_table(result: dict) -> pl.DataFrame:
    """One row per fault type in scope: records, found by any check, recall, and which checks catch it (debatable
    and statistical-only types have no recall: they count for neither side)."""
    rows = [{"fault_type": f["fault_type"], "table": f["table"], "records": f["records"], "found": f["found"],
             "recall": f["recall"], "note": ("debatable" if f["debatable"] else
                                             "statistical only" if f["detectability"] == "statistical_only" else ""),
             "checks": ", ".join(f["checks"]) or ("NONE" if f["scored_records"] else "")} for f in result["fault_types"]]
    return pl.DataFrame(rows, schema={"fault_type": pl.String, "table": pl.String, "records": pl.Int64,
                                      "found": pl.Int64, "recall": pl.Float64, "note": pl.String,
                                      "checks": pl.String})


def summary_lines(result: dict, what: str) -> list[str]:
    s, o = result["scope"], result["suite"]["overall"]
    how = "the tables the checks cover" if s["narrowed_to"] is None else "--tables"
    lines = [f"scored {len(result['checks'])} checks of {what} on {', '.join(s['tables']) or 'no table'} ({how})"]
    if s["left_out_with_faults"]:
        lines.append(f"not scored (no check covers them, or left out by --tables): faults of "
                     f"{', '.join(s['left_out_with_faults'])}")
    lines.append(f"suite: precision {_f(o['precision'])}  recall {_f(o['recall'])}  F1 {_f(o['f1'])}  "
                 f"(tp {o['tp']}, fp {o['fp']}, fn {o['fn']}; {o['records']} faulty records in scope)")
    if o.get("rejected_records"):
        lines.append(f"already rejected by the gemeente (JW325): {o['rejected_found']} of {o['rejected_records']} "
                     f"rejected claim lines flagged, counted as neither true nor false positives")
    return lines


def footer_lines(result: dict) -> list[str]:
    fa = ", ".join(f"{a['check']} ({a['fp']} clean records)" for a in result["false_alarms"])
    return [f"checks that never fire: {', '.join(result['never_fire']) or 'none'}",
            f"checks that fire on clean records (false alarms): {fa or 'none'}",
            f"fault types no check catches: {', '.join(result['uncaught']) or 'none'}"]


def _shown(df: pl.DataFrame) -> pl.DataFrame:
    """Ratios with three decimals and "-" where undefined (no flagged record, no fault in scope)."""
    return df.with_columns(pl.col(pl.Float64).map_elements(_f, return_dtype=pl.String).fill_null("-"),
                           pl.col(pl.String).fill_null("-"))


def render_text(result: dict, what: str) -> str:
    cfg = dict(tbl_rows=500, tbl_hide_dataframe_shape=True, tbl_formatting="ASCII_MARKDOWN",
               tbl_hide_column_data_types=True, fmt_str_lengths=120, tbl_cols=-1, tbl_width_chars=250, float_precision=3)
    with pl.Config(**cfg):
        return "\n".join([*summary_lines(result, what), "", "per check:", str(_shown(checks_table(result))), "",
                          "per fault type:", str(_shown(fault_types_table(result))), "", *footer_lines(result)])


def _html_table(df: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    body = []
    for row in df.iter_rows():
        cells = []
        for v in row:
            text = _f(v) if isinstance(v, float) else ("-" if v is None else str(v))
            cls = ' class="bad"' if text in ("NONE",) else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}h1{font-size:1.4rem}h2{font-size:1.1rem;
margin-top:2rem}table{border-collapse:collapse;font-size:.85rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f0f0f0}td.bad{color:#b00;font-weight:bold}p.note{color:#555}
.big{font-size:1.2rem}"""


def render_html(result: dict, what: str) -> str:
    """One self-contained page: inline CSS, no JavaScript, no external resource."""
    summary = "".join(f"<p class=\"big\">{html.escape(line)}</p>" for line in summary_lines(result, what))
    footer = "".join(f"<li>{html.escape(line)}</li>" for line in footer_lines(result))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Scorecard: "
            f"{html.escape(what)}</title><style>{_CSS}</style></head><body>"
            f"<h1>Scorecard: {html.escape(what)}</h1>{summary}<ul>{footer}</ul>"
            f"<h2>Per check</h2>{_html_table(checks_table(result))}"
            "<p class=\"note\">flagged: distinct records the check names; tp: flagged records that carry a fault; "
            "fp: flagged clean records (false alarms); target_recall: recall on the faults the catalogue files under "
            "the check's rule code or a code the standard pairs with it; debatable and statistical-only faults count "
            "for neither side.</p>"
            f"<h2>Per fault type</h2>{_html_table(fault_types_table(result))}"
            "<p class=\"note\">Synthetic data: no record describes a real person.</p></body></html>\n")
