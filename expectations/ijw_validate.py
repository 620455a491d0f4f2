"""An open iJw 3.2 validator: XSD validation per message plus the registry's data rules, within and across messages.

Each file is parsed once (synthetic_data.ijw_xml): validated against its message's XSD and read into the dataset
tables, every record remembering its file and element path. The registry's rules then run on those tables through
their one polars implementation (`derived.violations`) - within a message (a code list, an amount that is no volume x
tarief) and, for a folder, across messages (a JW323 line without its JW301, a JW305 before its toewijzing starts).
A finding names the message file, the element path (namespace prefixes left out), the rule and the value.

Rules need the tables they read: those the messages give (toewijzingen, zorgstarts, ..., jeugdigen from the JW301
client blocks) always run; the ones that also read the contract lists (gemeenten, producten, aanbieders: TR381, TR418)
run only with a `reference` dataset that holds them; rules on the simulation's own tables (trajecten) never do.
"""
from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from synthetic_data import ijw_xml as X
from synthetic_data.dictionary import key as dictionary_key
from synthetic_data.dictionary import tables as dictionary_tables
from synthetic_data.ijw import key_expr

from .derived import DERIVED, violations
from .registry import Rule, load_rules

REFERENCE = ["gemeenten", "producten", "aanbieders"]
FINDING_COLUMNS = {"message": pl.String, "bericht": pl.String, "table": pl.String, "key": pl.String,
                   "rule_id": pl.String, "rule_code": pl.String, "severity": pl.String, "element": pl.String,
                   "value": pl.String}


@dataclass
class Validation:
    """The result of validating a folder or file: every message (file, bericht), the findings, the rules run."""
    messages: list[tuple[str, str | None]]
    findings: pl.DataFrame
    rules_run: list[str]
    rules_skipped: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    records: pl.DataFrame | None = None     # (table, key columns) of the records a finding names, for scoring

    @property
    def invalid(self) -> set[str]:
        return set(self.findings["message"].to_list())

    @property
    def errors(self) -> int:
        return self.findings.filter(pl.col("severity") == "ERROR").height

    def summary(self) -> dict:
        by_rule = (self.findings.group_by("rule_code", "severity").agg(pl.len().alias("findings"),
                                                                      pl.col("message").n_unique().alias("messages"))
                   .sort("rule_code").to_dicts())
        return {"messages": len(self.messages), "valid": len(self.messages) - len(self.invalid),
                "with_findings": len(self.invalid), "findings": self.findings.height, "errors": self.errors,
                "by_rule": by_rule, "rules_run": len(self.rules_run), "rules_skipped": self.rules_skipped,
                "seconds": self.seconds}


def _elements() -> dict[str, dict[str, str]]:
    """table -> column -> element path relative to its record (or from the message root for header fields)."""
    out: dict[str, dict[str, str]] = {}
    for m in X.MESSAGES.values():
        cols = {c: p for p, c in X._leaves(m.fields)}
        cols.update({c: f"/Bericht/Client/{p}" for p, c in X._leaves(m.client) if not c.startswith("j_")})
        cols[m.afzender], cols[m.ontvanger] = "/Bericht/Header/Afzender", "/Bericht/Header/Ontvanger"
        if m.dagtekening == "dagtekening":
            cols["dagtekening"] = "/Bericht/Header/BerichtIdentificatie/Dagtekening"
        out[m.table] = cols
    out["jeugdigen"] = {c[2:]: p for p, c in X._leaves(X.MESSAGES["JW301"].client) if c.startswith("j_")}
    out["jeugdigen"]["bsn"] = "Bsn"
    head = {"agb_code": "/Bericht/Header/Afzender", "gemeente_code": "/Bericht/Header/Ontvanger"}
    out["prestaties"] = {**{c: p for p, c in X._leaves(X.PRESTATIE_FIELDS)}, **head, "bsn": "../../Bsn",
                         "declaratie_nummer": "/Bericht/Declaratie/DeclaratieNummer"}
    out["declaraties"] = {**{c[2:] if c.startswith("d_") else c: f"/Bericht/Declaratie/{p}"
                             for p, c in X._leaves(X.DECLARATIE_FIELDS)}, **head}
    out["declaratie_antwoorden"] = {**{c: f"/Bericht/DeclaratieAntwoord/{p}" for p, c in X._leaves(X.ANTWOORD_FIELDS)
                                       if not c.startswith("d_")},
                                    "retourcode": "/Bericht/DeclaratieAntwoord/RetourCodes/RetourCode",
                                    "agb_code": "/Bericht/Header/Ontvanger", "gemeente_code": "/Bericht/Header/Afzender",
                                    "dagtekening": "/Bericht/Header/BerichtIdentificatie/Dagtekening"}
    out["declaratie_antwoord_prestaties"] = {**{c: p for p, c in X._leaves(X.PRESTATIE_FIELDS)}, "bsn": "../../Bsn",
                                             "retourcode": "RetourCodes/RetourCode",
                                             "agb_code": "/Bericht/Header/Ontvanger",
                                             "gemeente_code": "/Bericht/Header/Afzender",
                                             "declaratie_nummer": "/Bericht/DeclaratieAntwoord/DeclaratieNummer"}
    return {t: {c: re.sub(r"(^|/)ijw:", r"\1", p) for c, p in cols.items()} for t, cols in out.items()}


def _element(record_path: str, rel: str) -> str:
    if rel.startswith("/"):
        return rel
    base = X._short(record_path)
    while rel.startswith("../"):
        base, rel = base.rsplit("/", 1)[0], rel[3:]
    return f"{base}/{rel}"


def _shown(rule: Rule) -> list[str]:
    if rule.kind == "derived":
        fn = DERIVED[rule.check["derived"]]
        return list(fn.show) or list(dictionary_key(rule.table))
    return rule.columns


def _runnable(rules: list[Rule], tables: dict[str, pl.DataFrame]) -> tuple[list[Rule], list[str]]:
    run, skipped = [], []
    for r in rules:
        need = [r.table, *r.uses]
        missing = [t for t in need if t not in tables]
        # jeugdigen from messages has no client_id: rules that join on it need the simulation's tables (skipped above)
        if missing:
            skipped.append(f"{r.id} (needs {', '.join(missing)})")
        else:
            run.append(r)
    return run, skipped


def validate_messages(path: str | Path, reference: dict[str, pl.DataFrame] | None = None,
                      rules: list[Rule] | None = None) -> Validation:
    """Validate a message folder or file: XSD per message and every runnable registry rule (see the module doc)."""
    t0 = time.perf_counter()
    tables, parsed, _ = X.read_folder(path)
    t1 = time.perf_counter()
    for name in REFERENCE:
        if reference and name in reference and name not in tables:
            tables[name] = reference[name]
    run, skipped = _runnable(load_rules() if rules is None else rules, tables)
    elements = _elements()
    codes = dict(parsed.messages)
    keys = {t: df.select(key_expr(t)).to_series() if set(dictionary_key(t)) <= set(df.columns) else None
            for t, df in tables.items() if t in parsed.where}
    frames, records = [], []

    # XSD errors: one finding per error and record it is about (file-level when no record)
    by_file: dict[str, list[tuple[str, int]]] = {}
    for f, t, i in parsed.xsd_records:
        by_file.setdefault(f, []).append((t, i))
    rows = []
    for f, code, p, line, msg in parsed.xsd_errors:
        rows.append({"message": f, "bericht": code or None, "table": None, "key": None, "rule_id": "XSD",
                     "rule_code": "XSD", "severity": "ERROR", "element": X._short(p) or None,
                     "value": f"line {line}: {msg}"})
    if rows:
        frames.append(pl.DataFrame(rows, schema=FINDING_COLUMNS))
    xsd_recs = sorted(set(parsed.xsd_records))
    if xsd_recs:   # the records the XSD errors are about, as findings of the scorer's kind
        recs = []
        for f, t, i in xsd_recs:
            k = keys.get(t)
            recs.append({"message": f, "bericht": codes.get(f), "table": t, "key": k[i] if k is not None else None,
                         "rule_id": "XSD_record", "rule_code": "XSD", "severity": "ERROR",
                         "element": X._short(parsed.where[t][i][1]), "value": "record in a message the XSD rejects"})
            records.append((t, i))
        frames.append(pl.DataFrame(recs, schema=FINDING_COLUMNS))

    # registry rules on the imported tables
    for rule in run:
        bad = violations(rule, tables, row_index=True)
        if not bad.height or rule.table not in parsed.where:
            continue
        where = parsed.where[rule.table]
        shown = [c for c in _shown(rule) if c in bad.columns]
        # the element of the first column the rule is about (not the sides of the message, which every record has)
        main = next((c for c in shown if c not in ("agb_code", "gemeente_code")), shown[0] if shown else "")
        rel = elements.get(rule.table, {}).get(main, "")
        idx = bad["_row"].to_list()
        vals = bad.select(pl.concat_str([pl.lit(f"{c}=") + pl.col(c).cast(pl.String).fill_null("(empty)")
                                         for c in shown], separator=", ") if shown else pl.lit("")).to_series()
        k = keys.get(rule.table)
        frames.append(pl.DataFrame({
            "message": [where[i][0] for i in idx], "bericht": [codes.get(where[i][0]) for i in idx],
            "table": rule.table, "key": [k[i] for i in idx] if k is not None else None,
            "rule_id": rule.id, "rule_code": rule.code, "severity": rule.severity,
            "element": [_element(where[i][1], rel) if rel else X._short(where[i][1]) for i in idx],
            "value": vals}, schema=FINDING_COLUMNS))
        records.extend((rule.table, i) for i in idx)
    findings = pl.concat(frames) if frames else pl.DataFrame(schema=FINDING_COLUMNS)
    findings = findings.sort("message", "rule_code", "element", maintain_order=True)
    t2 = time.perf_counter()
    return Validation(parsed.messages, findings, [r.id for r in run], skipped,
                      {"parse_xsd_import": round(t1 - t0, 3), "rules": round(t2 - t1, 3)},
                      _record_keys(tables, records))


def _record_keys(tables, records) -> pl.DataFrame:
    """The key columns of the records named by findings (table, key, and the key columns as text), for the scorer;
    jeugdigen from messages carry bsn instead of the client_id they lack."""
    frames = []
    by_table: dict[str, list[int]] = {}
    for t, i in records:
        by_table.setdefault(t, []).append(i)
    for t, idx in by_table.items():
        df = tables[t]
        cols = [c for c in dictionary_key(t) if c in df.columns] + (["bsn"] if "bsn" in df.columns else [])
        sub = df[sorted(set(idx))].select(*[pl.col(c).cast(pl.String) for c in dict.fromkeys(cols)])
        frames.append(sub.with_columns(pl.lit(t).alias("table")))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema={"table": pl.String})


# ------------------------------------------------------------------------------------------------ reports
def render_text(v: Validation, what: str, limit: int = 200) -> str:
    s = v.summary()
    lines = [f"{'message':<58}{'rule':<9}{'sev':<6}{'element':<62}value"]
    for r in v.findings.head(limit).iter_rows(named=True):
        lines.append(f"{r['message'][:57]:<58}{r['rule_code'][:8]:<9}{r['severity']:<6}{(r['element'] or '')[:61]:<62}"
                     f"{(r['value'] or '')[:120]}")
    if v.findings.height > limit:
        lines.append(f"... {v.findings.height - limit:,} more findings (all of them with --json or --html)")
    lines.append("")
    lines.append(f"{s['messages']:,} messages in {what}: {s['valid']:,} valid, {s['with_findings']:,} with findings "
                 f"({s['findings']:,} findings, {s['errors']:,} ERROR); {s['rules_run']} registry rules run "
                 f"({v.seconds['parse_xsd_import']:.1f}s XSD + import, {v.seconds['rules']:.1f}s rules)")
    for b in s["by_rule"]:
        lines.append(f"  {b['rule_code']:<10}{b['severity']:<6}{b['findings']:>8,} findings in {b['messages']:,} messages")
    if v.rules_skipped:
        need = sorted({t for x in v.rules_skipped for t in x.split("(needs ", 1)[-1].rstrip(")").split(", ")})
        lines.append(f"{len(v.rules_skipped)} rules not run: no message carries {', '.join(need)} "
                     f"(--reference DATASET gives the contract lists gemeenten, producten, aanbieders): "
                     + ", ".join(x.split(" ")[0] for x in v.rules_skipped))
    return "\n".join(lines)


def as_json(v: Validation) -> dict:
    per: dict[str, list[dict]] = {}
    for r in v.findings.iter_rows(named=True):
        per.setdefault(r["message"], []).append({k: r[k] for k in ("rule_id", "rule_code", "severity", "table", "key",
                                                                    "element", "value")})
    return {"summary": v.summary(),
            "messages": [{"file": f, "bericht": c, "valid": f not in per, "findings": per.get(f, [])}
                         for f, c in v.messages]}


def render_html(v: Validation, what: str) -> str:
    """One self-contained page (no script, font or style from elsewhere): the summary and every finding."""
    s = v.summary()
    e = html.escape
    rows = "\n".join(
        f"<tr class='{r['severity'].lower()}'><td>{e(r['message'])}</td><td>{e(r['bericht'] or '')}</td>"
        f"<td>{e(r['rule_code'])}</td><td>{e(r['rule_id'])}</td><td>{e(r['severity'])}</td>"
        f"<td><code>{e(r['element'] or '')}</code></td><td>{e(r['value'] or '')}</td></tr>"
        for r in v.findings.iter_rows(named=True))
    by_rule = "".join(f"<tr><td>{e(b['rule_code'])}</td><td>{e(b['severity'])}</td><td>{b['findings']:,}</td>"
                      f"<td>{b['messages']:,}</td></tr>" for b in s["by_rule"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>iJw validation: {e(what)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left}}tr.error td{{background:#fdecea}}
tr.warn td{{background:#fff8e1}}code{{font-size:12px}}</style></head><body>
<h1>iJw 3.2 validation</h1>
<p id="summary">{s['messages']:,} messages in {e(what)}: <b>{s['valid']:,} valid</b>, {s['with_findings']:,} with
findings ({s['findings']:,} findings, {s['errors']:,} ERROR). XSD: the vendored iJw 3.2 schemas; rules: the
sandbox's registry ({s['rules_run']} run, {len(s['rules_skipped'])} not run for lack of tables).</p>
<h2>By rule</h2><table id="by-rule"><tr><th>rule</th><th>severity</th><th>findings</th><th>messages</th></tr>{by_rule}</table>
<h2>Findings</h2><table id="findings"><tr><th>message</th><th>bericht</th><th>rule</th><th>rule id</th>
<th>severity</th><th>element</th><th>value</th></tr>
{rows}
</table></body></html>
"""


def write_reports(v: Validation, what: str, json_path: str | None = None, html_path: str | None = None) -> None:
    from synthetic_data.atomic import atomic_write

    if json_path:
        with atomic_write(Path(json_path)) as tmp:
            tmp.write_text(json.dumps(as_json(v), indent=1, default=str) + "\n", encoding="utf-8")
    if html_path:
        with atomic_write(Path(html_path)) as tmp:
            tmp.write_text(render_html(v, what), encoding="utf-8")


def reference_tables(folder: str | Path) -> dict[str, pl.DataFrame]:
    """The contract lists (gemeenten, producten, aanbieders) of a dataset folder, for the rules that read them."""
    from synthetic_data.dataset import present_tables, read_dataset

    have = [t for t in REFERENCE if t in present_tables(folder)]
    return read_dataset(folder, have)


__all__ = ["Validation", "validate_messages", "render_text", "render_html", "as_json", "write_reports",
           "reference_tables", "dictionary_tables"]


def scorable(v: Validation, jeugdigen: pl.DataFrame | None = None) -> pl.DataFrame:
    """The findings as (table, key, rule_code) for `synthetic_data.faults.score`. A jeugdige read from messages has no
    client_id (iJw carries none): given the dataset's `jeugdigen`, it is looked up by gemeente and BSN."""
    f = v.findings.filter(pl.col("key").is_not_null()).select("table", "key", "rule_code")
    if jeugdigen is None or v.records is None or "table" not in v.records.columns:
        return f
    j = v.records.filter(pl.col("table") == "jeugdigen")
    if not j.height or "bsn" not in j.columns:
        return f
    ids = jeugdigen.select("gemeente_code", "bsn", "client_id").filter(pl.col("bsn").is_not_null())
    j = j.select("gemeente_code", "bsn").join(ids, on=["gemeente_code", "bsn"], how="inner")
    extra = j.select(pl.lit("jeugdigen").alias("table"), key_expr("jeugdigen").alias("key"),
                     pl.lit("jeugdigen").alias("rule_code"))
    return pl.concat([f, extra])
