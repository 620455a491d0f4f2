"""Score any set of data-quality findings against the ground truth of inject_faults.

Matching is at record level on (table, key): a truth record counts as detected when any finding names its table and
key, whatever check produced it. A finding record (distinct table and key) that is no truth record is a false positive.

- Findings need a `table` column and either a `key` column (the dictionary key joined with "|", dates as YYYY-MM-DD)
  or the key columns of that table (computed into `key` where `key` is missing or empty). All columns may be strings,
  as read from a CSV with every column as text.
- Debatable faults count for neither side: their records are left out of the recall denominators, and findings on them
  are neither true nor false positives (reported as `debatable_found`).
- Statistical-only fault types are left out of `overall`, `by_fault_type` and `by_rule_code` in the same way and
  reported on their own under `statistical_only`: no rule is expected to find them, and a finding on them is no false
  positive.
- Precision per fault type or rule code needs to know which group a false positive belongs to: it is computed when
  the findings carry a `fault_type` column (for `by_fault_type`), or a `rule_code` or `rule_id` column (for
  `by_rule_code`; the codes are the leading upper-case codes of a rule id, e.g. TR339, TR340 and TR341 of
  "TR339_TR340_TR341_prestatie_product_als_toewijzing"), widened by the codes the standard pairs them with
  (code_pairs.csv: a finding labelled TR346 counts under CD087). Without such labels `fp` and `precision` are None
  there; recall needs no labels.
- `score_checks` scores every check of a suite on its own, on the tables the suite covers (see its docstring).
- Claim lines the gemeente already rejected in its JW325 (`declaratie_antwoord_prestaties`; give them as
  `rejected`, e.g. `rejected_records(tables)`) count for neither side: a finding on one is neither a true nor a
  false positive (reported as `rejected_found`, "already rejected by the gemeente"), and they are never misses.
  The rejection is the process working: the line was wrong and was refused with its retourcode.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import polars as pl

from ..dictionary import key as dictionary_key
from ..dictionary import table_names
from ..ijw import key_expr

STATISTICAL = "statistical_only"
_CODE = re.compile(r"^[A-Z]{2,}[0-9]+[a-z0-9]*$")


def rule_codes(rule_id: str | None) -> list[str]:
    """The iJw codes a rule id starts with: "TR339_TR340_TR341_prestatie..." -> [TR339, TR340, TR341]."""
    if not rule_id:
        return []
    out = []
    for token in str(rule_id).split("_"):
        if not _CODE.match(token):
            break
        out.append(token)
    return out


@cache
def code_pairs() -> pl.DataFrame:
    """code -> partner: every pair of iJw codes the standard states together (code_pairs.csv), each code with itself."""
    groups = pl.read_csv(Path(__file__).with_name("code_pairs.csv"), comment_prefix="#", schema={
        "group": pl.String, "code": pl.String})
    return groups.join(groups, on="group", suffix="_partner").select("code", partner="code_partner").unique().sort(
        "code", "partner")


def paired_codes(codes) -> list[str]:
    """The codes with every code the standard pairs them with: [TR346] -> [CD087, CS339, TR346]."""
    codes = [c for c in codes if c]
    pairs = code_pairs().filter(pl.col("code").is_in(codes))["partner"].to_list()
    return sorted(set(codes) | set(pairs))


def _expand_codes(f: pl.DataFrame) -> pl.DataFrame:
    """`codes` lists with their paired codes added (a finding labelled TR346 also counts under CD087)."""
    if f.height == 0:
        return f
    f = f.with_row_index("_i")
    long = f.select("_i", pl.col("codes").alias("code")).explode("code").drop_nulls("code")
    long = pl.concat([long.rename({"code": "partner"}),
                      long.join(code_pairs(), on="code").select("_i", "partner")])
    agg = long.group_by("_i").agg(pl.col("partner").unique().sort().alias("_codes"))
    return f.join(agg, on="_i", how="left", maintain_order="left").with_columns(
        pl.col("_codes").fill_null(pl.lit([], pl.List(pl.String))).alias("codes")).drop("_i", "_codes")


def finding_records(findings: pl.DataFrame) -> pl.DataFrame:
    """Distinct (table, key) of the findings, with the labels they carry: `fault_types` and `codes` (lists)."""
    if "table" not in findings.columns:
        raise ValueError("findings need a `table` column")
    known = set(table_names())
    frames = []
    for t in findings["table"].drop_nulls().unique(maintain_order=True).to_list():
        part = findings.filter(pl.col("table") == t)
        computed = None
        if t in known:
            cols = dictionary_key(t)
            if all(c in part.columns for c in cols):
                computed = key_expr(t)
        if "key" in part.columns:
            k = pl.col("key").cast(pl.String)
            k = pl.when(k == "").then(None).otherwise(k)
            k = pl.coalesce(k, computed) if computed is not None else k
        elif computed is not None:
            k = computed
        else:
            raise ValueError(f"findings for table {t!r} have no `key` and not all key columns "
                             f"{dictionary_key(t) if t in known else '(unknown table)'}")
        ft = pl.col("fault_type").cast(pl.String) if "fault_type" in part.columns else pl.lit(None, pl.String)
        if "rule_code" in part.columns:
            codes = pl.col("rule_code").cast(pl.String).str.split("/")
        elif "rule_id" in part.columns:
            ids = part["rule_id"].cast(pl.String).drop_nulls().unique().sort().to_list()
            mapping = pl.DataFrame({"_rid": ids, "_rcodes": [rule_codes(i) for i in ids]},
                                   schema={"_rid": pl.String, "_rcodes": pl.List(pl.String)})
            part = part.with_columns(pl.col("rule_id").cast(pl.String).alias("_rid")).join(
                mapping, on="_rid", how="left", maintain_order="left")
            codes = pl.col("_rcodes")
        else:
            codes = pl.lit(None, pl.List(pl.String))
        part = part.select(pl.lit(t).alias("table"), k.alias("key"), ft.alias("_ft"), codes.alias("_codes"))
        frames.append(part.filter(pl.col("key").is_not_null()))
    if not frames:
        return pl.DataFrame(schema={"table": pl.String, "key": pl.String, "fault_types": pl.List(pl.String),
                                    "codes": pl.List(pl.String)})
    f = pl.concat(frames)
    return _expand_codes(f.group_by("table", "key", maintain_order=True).agg(
        pl.col("_ft").drop_nulls().unique().sort().alias("fault_types"),
        pl.col("_codes").list.explode(keep_nulls=False, empty_as_null=False).drop_nulls().unique().sort()
        .alias("codes"),
    ))


def _metrics(tp: int, fp: int | None, fn: int) -> dict:
    precision = None if fp is None or tp + fp == 0 else tp / (tp + fp)
    recall = None if tp + fn == 0 else tp / (tp + fn)
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


# --- issue 12: claims
REJECTED_LINES = "declaratie_antwoord_prestaties"


def rejected_records(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """(table, key) of the claim lines the gemeente rejected in its JW325s (none when the table is absent)."""
    rej = tables.get(REJECTED_LINES)
    if rej is None:
        return pl.DataFrame(schema={"table": pl.String, "key": pl.String})
    return rej.select(pl.lit("prestaties").alias("table"), key_expr("prestaties").alias("key")).unique()


def _classify(truth: pl.DataFrame, rejected: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per truth record: debatable if any of its rows is, statistical if all its rows are statistical-only;
    plus one row per record the gemeente already rejected (class "rejected", which wins: such a line is no miss)."""
    cls = truth.group_by("table", "key").agg(
        pl.col("debatable").fill_null(False).any().alias("_debatable"),
        (pl.col("detectability") == STATISTICAL).all().alias("_statistical"),
    ).with_columns(
        pl.when(pl.col("_debatable")).then(pl.lit("debatable"))
        .when(pl.col("_statistical")).then(pl.lit("statistical"))
        .otherwise(pl.lit("scored")).alias("_class")
    ).select("table", "key", "_class")
    if rejected is None or rejected.height == 0:
        return cls
    rej = rejected.select(pl.col("table").cast(pl.String), pl.col("key").cast(pl.String)).unique().with_columns(
        pl.lit("rejected").alias("_class"))
    return pl.concat([cls.join(rej, on=["table", "key"], how="anti"), rej])


def score(findings: pl.DataFrame, truth: pl.DataFrame, rejected: pl.DataFrame | None = None) -> dict:
    """Precision, recall and F1 of `findings` against `truth` (see the module docstring); `rejected`: (table, key)
    of the lines the gemeente already rejected, which count for neither side.

    Returns {"overall": {...}, "by_fault_type": {type: {...}}, "by_rule_code": {code: {...}},
    "statistical_only": [{fault_type, records, found, recall, debatable}]}; each metrics dict has tp, fp, fn,
    precision, recall and f1 (None where undefined)."""
    f = finding_records(findings)
    truth = truth.select("table", "key", "fault_type", "rule_code", "debatable", "detectability").with_columns(
        pl.col("debatable").fill_null(False))
    cls = _classify(truth, rejected)
    found = truth.join(f.select("table", "key"), on=["table", "key"], how="semi")
    found_keys = found.select("table", "key").unique()
    fc = f.join(cls, on=["table", "key"], how="left").with_columns(pl.col("_class").fill_null("none"))

    scored = cls.filter(pl.col("_class") == "scored")
    tp = scored.join(found_keys, on=["table", "key"], how="semi").height
    fp_rows = fc.filter(pl.col("_class") == "none")
    overall = _metrics(tp, fp_rows.height, scored.height - tp)
    overall.update(
        records=scored.height, findings=f.height,
        debatable_records=cls.filter(pl.col("_class") == "debatable").height,
        debatable_found=fc.filter(pl.col("_class") == "debatable").height,
        statistical_records=cls.filter(pl.col("_class") == "statistical").height,
        statistical_found=fc.filter(pl.col("_class") == "statistical").height,
        rejected_records=cls.filter(pl.col("_class") == "rejected").height,
        rejected_found=fc.filter(pl.col("_class") == "rejected").height,
    )

    t_scored = truth.join(scored.select("table", "key"), on=["table", "key"], how="semi")
    t_scored_found = t_scored.join(found_keys, on=["table", "key"], how="semi")
    has_ft = "fault_type" in findings.columns
    has_code = "rule_code" in findings.columns or "rule_id" in findings.columns

    def _group(col: str, name, labels: str, labelled: bool) -> dict:
        sel = pl.col(col).is_null() if name is None else pl.col(col) == name
        recs = t_scored.filter(sel).select("table", "key").unique()
        hit = t_scored_found.filter(sel).select("table", "key").unique().height
        fp = None
        if labelled:
            fp = fp_rows.filter(pl.col(labels).list.contains(pl.lit(name if name is not None else ""))).height
        return _metrics(hit, fp, recs.height - hit)

    by_type = {}
    for ft in truth.filter(pl.col("detectability") != STATISTICAL)["fault_type"].unique().sort().to_list():
        m = _group("fault_type", ft, "fault_types", has_ft)
        rows = truth.filter(pl.col("fault_type") == ft)
        m.update(records=rows.height, debatable=bool(rows["debatable"].all()),
                 found=found.filter(pl.col("fault_type") == ft).select("table", "key").unique().height)
        by_type[ft] = m

    by_code = {}
    codes = t_scored["rule_code"].unique().sort(nulls_last=True).to_list()
    for code in codes:
        labelled = has_code and code is not None
        by_code[code if code is not None else "none"] = _group("rule_code", code, "codes", labelled)

    statistical = []
    for ft in truth.filter(pl.col("detectability") == STATISTICAL)["fault_type"].unique().sort().to_list():
        rows = truth.filter(pl.col("fault_type") == ft).select("table", "key", "debatable").unique(["table", "key"])
        hit = rows.join(found_keys, on=["table", "key"], how="semi").height
        statistical.append({"fault_type": ft, "records": rows.height, "found": hit,
                            "recall": hit / rows.height if rows.height else None,
                            "debatable": bool(rows["debatable"].all())})

    return {"overall": overall, "by_fault_type": by_type, "by_rule_code": by_code, "statistical_only": statistical}


def metric_text(x) -> str:
    """A precision, recall or F1 for printing: three decimals, '-' where undefined (nothing flagged, nothing to find)."""
    return "-" if x is None else f"{x:.3f}"


def score_table(result: dict) -> pl.DataFrame:
    """The result of `score` as one printable frame: scope, name, tp, fp, fn, precision, recall, f1."""
    schema = {"scope": pl.String, "name": pl.String, "tp": pl.Int64, "fp": pl.Int64, "fn": pl.Int64,
              "precision": pl.Float64, "recall": pl.Float64, "f1": pl.Float64}
    keep = ["tp", "fp", "fn", "precision", "recall", "f1"]
    rows = [{"scope": "overall", "name": "all", **{k: result["overall"][k] for k in keep}}]
    for scope, group in (("fault_type", result["by_fault_type"]), ("rule_code", result["by_rule_code"])):
        rows += [{"scope": scope, "name": name, **{k: m[k] for k in keep}} for name, m in group.items()]
    for s in result["statistical_only"]:
        rows.append({"scope": "statistical_only", "name": s["fault_type"], "tp": s["found"], "fp": None,
                     "fn": s["records"] - s["found"], "precision": None, "recall": s["recall"], "f1": None})
    return pl.DataFrame(rows, schema=schema)


def _check_metrics(tp: int, fp: int, records: int) -> dict:
    return {"tp": tp, "fp": fp, "precision": None if tp + fp == 0 else tp / (tp + fp),
            "recall": None if records == 0 else tp / records}


def score_checks(findings: pl.DataFrame, truth: pl.DataFrame, checks: pl.DataFrame,
                 tables: list[str] | None = None, rejected: pl.DataFrame | None = None) -> dict:
    """Score each check of a suite against `truth`, on the tables the suite covers.

    `findings` has one row per (check, failing record): table, check, key (rule_code optional); `checks` lists every
    check (check, table, rule_code), those that never fire included. The scope is the tables `checks` covers,
    narrowed to `tables` when given: faults of other tables do not count against the suite. Returns
    {"scope", "suite" (the result of `score` on the scope, all checks together), "checks", "fault_types", "uncaught", "never_fire",
    "false_alarms"}. Per check: flagged records, tp, fp (records that carry no fault: false alarms), precision, the
    recall of each fault type it catches, and, when its rule code (or a code the standard pairs with it) is the
    catalogue's code of some fault types, its recall on those (`target`). Debatable and statistical-only records
    count for neither side, as in `score`, and so do the lines the gemeente already rejected (`rejected`, see
    `rejected_records`; per check `rejected_found`)."""
    covered = list(dict.fromkeys(checks["table"].to_list()))
    scope = [t for t in covered if tables is None or t in tables]
    truth = truth.select("table", "key", "fault_type", "rule_code", "debatable", "detectability").with_columns(
        pl.col("debatable").fill_null(False))
    left_out = sorted(set(truth["table"].unique().to_list()) - set(scope))
    truth = truth.filter(pl.col("table").is_in(scope))
    findings = findings.filter(pl.col("table").is_in(scope))
    checks = checks.filter(pl.col("table").is_in(scope))
    if rejected is not None:
        rejected = rejected.filter(pl.col("table").is_in(scope))
    overall = score(findings, truth, rejected)

    cls = _classify(truth, rejected)
    flagged = findings.select("check", "table", "key").unique().join(cls, on=["table", "key"], how="left").with_columns(
        pl.col("_class").fill_null("none"))
    scored_rows = truth.join(cls.filter(pl.col("_class") == "scored"), on=["table", "key"], how="semi").select(
        "table", "key", "fault_type", "rule_code").unique()
    type_records = scored_rows.group_by("fault_type").agg(pl.len().alias("records"))
    hits = flagged.filter(pl.col("_class") == "scored").join(scored_rows, on=["table", "key"])

    per_check = []
    for c in checks.iter_rows(named=True):
        name = c["check"]
        mine = flagged.filter(pl.col("check") == name)
        n = {k: mine.filter(pl.col("_class") == k).height
             for k in ("scored", "none", "debatable", "statistical", "rejected")}
        caught = hits.filter(pl.col("check") == name).group_by("fault_type").agg(
            pl.struct("table", "key").n_unique().alias("tp")).join(type_records, on="fault_type").sort("fault_type")
        by_type = {r["fault_type"]: _check_metrics(r["tp"], 0, r["records"]) | {"records": r["records"]}
                   for r in caught.iter_rows(named=True)}
        for m in by_type.values():
            m.pop("fp"), m.pop("precision")
        codes = paired_codes([c["rule_code"]]) if c.get("rule_code") else []
        target = None
        if codes:
            t_rows = scored_rows.filter(pl.col("rule_code").is_in(codes))
            if t_rows.height:
                t_keys = t_rows.select("table", "key").unique()
                t_hit = mine.join(t_keys, on=["table", "key"], how="semi").height
                target = {"codes": codes, "fault_types": sorted(t_rows["fault_type"].unique().to_list()),
                          "records": t_keys.height, "tp": t_hit, "recall": t_hit / t_keys.height}
        per_check.append({"check": name, "table": c["table"], "rule_code": c.get("rule_code"),
                          "flagged": mine.height, "debatable_found": n["debatable"],
                          "statistical_found": n["statistical"], "rejected_found": n["rejected"],
                          **_check_metrics(n["scored"], n["none"], 0),
                          "by_fault_type": by_type, "target": target})
    for m in per_check:
        m.pop("recall")

    fault_types = []
    detect = truth.group_by("fault_type").agg(pl.col("table").first(), pl.col("detectability").first(),
                                               pl.col("debatable").all(), pl.struct("table", "key").n_unique()
                                               .alias("all_records")).sort("fault_type")
    all_rows = truth.select("table", "key", "fault_type").unique()
    catchers = hits.group_by("fault_type").agg(pl.col("check").unique().sort().alias("checks"))
    found_any = all_rows.join(flagged.select("table", "key").unique(), on=["table", "key"], how="semi").group_by(
        "fault_type").agg(pl.len().alias("found"))
    scored_found = hits.group_by("fault_type").agg(pl.struct("table", "key").n_unique().alias("scored_found"))
    joined = detect.join(type_records, on="fault_type", how="left").join(catchers, on="fault_type", how="left").join(
        found_any, on="fault_type", how="left").join(scored_found, on="fault_type", how="left")
    for r in joined.sort("fault_type").iter_rows(named=True):
        records, hit = r["records"] or 0, r["scored_found"] or 0
        fault_types.append({"fault_type": r["fault_type"], "table": r["table"], "detectability": r["detectability"],
                            "debatable": r["debatable"], "records": r["all_records"], "scored_records": records,
                            "found": r["found"] or 0, "recall": hit / records if records else None,
                            "checks": r["checks"] or []})
    return {
        "scope": {"tables": scope, "covered_by_checks": covered, "narrowed_to": tables,
                  "left_out_with_faults": left_out},
        "suite": overall,
        "checks": per_check,
        "fault_types": fault_types,
        "uncaught": [f["fault_type"] for f in fault_types if f["scored_records"] and not f["found"]],
        "never_fire": [m["check"] for m in per_check if m["flagged"] == 0],
        "false_alarms": [{"check": m["check"], "fp": m["fp"], "flagged": m["flagged"]} for m in per_check if m["fp"]],
    }
