"""The rule registry (expectations/rules.yaml) loads, validates, covers every rule of tests/ijw_rules.py, and its derived
checks hold on clean data and flag exactly the record each breaker of tests/test_rules.py breaks.

Column checks (bsn, codelist, unique, ...) run in GX in the engine; here they are mirrored by a small polars reference
so that a wrong column or table in rules.yaml shows up without importing great_expectations.
"""
from __future__ import annotations

import copy
import re

import polars as pl
import pytest

from expectations import registry
from expectations.derived import DERIVED
from expectations.registry import Rule, load_rules, parse_rules, render_markdown, rules_for
from ijw_rules import RULES
from synthetic_data import GeneratorConfig, generate
from synthetic_data.dictionary import key as dictionary_key
from synthetic_data.dictionary import table_names
from synthetic_data.privacy import elfproef_valid
from synthetic_data.reference import codelists
from test_rules import BREAKERS

Tables = dict[str, pl.DataFrame]

RULE_LIST = load_rules()
DERIVED_RULES = [r for r in RULE_LIST if r.kind == "derived"]
COLUMN_RULES = [r for r in RULE_LIST if r.kind != "derived"]


@pytest.fixture(scope="module")
def tables() -> Tables:
    return generate(GeneratorConfig(region="0147", years="2023-2024", seed=7))


# ----------------------------------------------------------------------------------------------------- helpers

def _reference_ok(rule: Rule, tables: Tables) -> pl.Series:
    """Polars stand-in for the GX column expectations (nulls pass, as in GX column-map expectations)."""
    df, c = tables[rule.table], rule.check
    col = pl.col(c["column"]) if "column" in c else None
    kind = rule.kind
    if kind == "bsn":
        ok = elfproef_valid(col)
    elif kind == "agb":
        ok = col.str.contains(r"^\d{8}$")
    elif kind == "postcode":
        ok = col.str.contains(r"^[1-9][0-9]{3}[A-Z]{2}$") & ~col.str.slice(4, 2).is_in(["SA", "SD", "SS"])
    elif kind == "codelist":
        ok = col.is_in(list(codelists()[c["codelist"]]))
    elif kind == "not_null":
        return df.select(col.is_not_null()).to_series()
    elif kind == "unique":
        return df.select(~pl.struct(c["columns"]).is_duplicated()).to_series()
    elif kind == "regex":  # Python re: polars' regex engine has no look-ahead
        pat = re.compile(c["pattern"])
        ok = col.map_elements(lambda v: pat.search(v) is not None, return_dtype=pl.Boolean)
    elif kind == "a_ge_b":
        ok = pl.col(c["a"]) >= pl.col(c["b"])
    else:
        raise AssertionError(f"no reference for check kind {kind}")
    return df.select(ok.fill_null(True)).to_series()


def _evaluate(rule: Rule, tables: Tables) -> pl.Series:
    if rule.kind == "derived":
        return DERIVED[rule.check["derived"]](tables)
    return _reference_ok(rule, tables)


def _key_filter(rule: Rule, key: dict) -> pl.Expr:
    """Rows of rule.table that are the broken record named by a breaker key (see tests/test_rules.py)."""
    conds = []
    for c, v in key.items():
        if c == "table":
            assert v == rule.table, f"{rule.id}: the breaker breaks {v}, the registry checks {rule.table}"
        elif c == "key":
            conds.append(pl.concat_str([pl.col(k).cast(pl.String) for k in dictionary_key(rule.table)],
                                       separator="|") == v)
        elif c == "column":
            assert v == rule.check.get("column"), f"{rule.id}: the breaker breaks {v}, the registry checks {rule.check}"
        elif c == "value":
            conds.append(pl.col(key["column"]) == v)
        else:
            conds.append(pl.col(c) == v)
    return pl.all_horizontal(conds)


# --------------------------------------------------------------------------------------------------- loading

def test_registry_covers_every_test_rule():
    ids = [r.id for r in RULE_LIST]
    assert len(ids) == len(set(ids))
    # every plain-polars generator rule is in the registry; the registry's extra rules (XSD datatypes, client data
    # across messages) have their breakers in tests/test_expectations.py
    assert set(RULES) <= set(ids), f"missing: {set(RULES) - set(ids)}"
    assert len(ids) >= 25


def test_rules_are_well_formed():
    for r in RULE_LIST:
        assert r.severity in ("ERROR", "WARN")
        assert r.id.startswith(r.code + "_") and r.codes[0] == r.code
        assert r.meaning.endswith((".", ")")), r.id
        assert r.table in table_names() and all(u in table_names() for u in r.uses)
    timeliness = ("OP271", "OP272", "OP274", "OP090x4")
    assert all(r.severity == "WARN" for r in RULE_LIST if r.code in timeliness)
    with pytest.raises(AttributeError):
        RULE_LIST[0].severity = "WARN"  # type: ignore[misc]


def test_rules_for_table():
    assert {r.id for r in rules_for("prestaties")} >= {"TR338_TR304_prestatie_bij_toewijzing_van_client",
                                                       "CS002_bsn_elfproef_prestaties"}
    assert sum(len(rules_for(t)) for t in table_names()) == len(RULE_LIST)
    with pytest.raises(ValueError, match="unknown table"):
        rules_for("nope")


def test_render_markdown_lists_every_rule():
    md = render_markdown()
    assert "do not edit by hand" in md
    assert "| rule | code | table | uses | severity | meaning | how checked |" in md
    n_err = sum(r.severity == "ERROR" for r in RULE_LIST)
    assert f"{n_err} ERROR" in md
    for r in RULE_LIST:
        assert f"`{r.id}`" in md
    table_rows = [ln for ln in md.splitlines() if ln.startswith("| `")]
    assert len(table_rows) == len(RULE_LIST)
    assert all(ln.count(" | ") == 6 for ln in table_rows), "an unescaped | breaks the table"


# ------------------------------------------------------------------------------------------------ validation

def _raw() -> dict:
    return copy.deepcopy(registry._read_yaml())


def _entry(data: dict, rule_id: str) -> dict:
    return next(e for e in data["rules"] if e["id"] == rule_id)


BAD_EDITS = {
    "column 'no_such_column' is not in table": lambda d: _entry(d, "CS002_bsn_elfproef_prestaties")["check"].update(
        column="no_such_column"),
    "duplicate id": lambda d: d["rules"].append(copy.deepcopy(d["rules"][0])),
    "severity 'FATAL'": lambda d: d["rules"][0].update(severity="FATAL"),
    "unknown table 'facturen'": lambda d: d["rules"][0].update(table="facturen"),
    "unknown code list 'kleur'": lambda d: _entry(d, "WJ756_codelist_eenheid")["check"].update(codelist="kleur"),
    "unknown derived check 'bestaat_niet'": lambda d: _entry(d, "TR338_TR304_prestatie_bij_toewijzing_van_client")[
        "check"].update(derived="bestaat_niet"),
    "returns rows of prestaties, not of declaraties": lambda d: _entry(
        d, "TR338_TR304_prestatie_bij_toewijzing_van_client").update(table="declaraties"),
    "unknown check kind 'magic'": lambda d: d["rules"][0].update(check={"expect": "magic", "column": "bsn"}),
    "'uses' names 'facturen'": lambda d: _entry(d, "TR358_totaalbedrag_is_som_prestaties").update(uses=["facturen"]),
    "missing field": lambda d: d["rules"][0].pop("meaning"),
    "column 'x' is not in table": lambda d: _entry(d, "TR314_referentie_nummer_uniek_per_aanbieder")["check"].update(
        columns=["agb_code", "x"]),
}


@pytest.mark.parametrize("message", list(BAD_EDITS))
def test_parse_rejects_bad_entries(message):
    data = _raw()
    BAD_EDITS[message](data)
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_rules(data)


def test_load_rules_validates_on_load(monkeypatch):
    data = _raw()
    _entry(data, "CS089_postcode_format")["check"]["column"] = "postcode_typo"
    monkeypatch.setattr(registry, "_read_yaml", lambda: data)
    load_rules.cache_clear()
    try:
        with pytest.raises(ValueError, match="rule CS089_postcode_format: column 'postcode_typo' is not in table jeugdigen"):
            load_rules()
    finally:
        monkeypatch.undo()
        load_rules.cache_clear()
    assert len(load_rules()) == len(RULE_LIST)


# ------------------------------------------------------------------------------------------ checks on the data

@pytest.mark.parametrize("rule", DERIVED_RULES, ids=lambda r: r.id)
def test_derived_holds_on_clean_data(tables, rule):
    ok = DERIVED[rule.check["derived"]](tables)
    assert isinstance(ok, pl.Series) and ok.dtype == pl.Boolean
    assert len(ok) == tables[rule.table].height
    assert ok.null_count() == 0
    bad = tables[rule.table].filter(~ok)
    assert bad.height == 0, f"{rule.id}: {bad.height} failing rows in clean data, e.g.\n{bad.head(3)}"


@pytest.mark.parametrize("rule", COLUMN_RULES, ids=lambda r: r.id)
def test_column_check_holds_on_clean_data(tables, rule):
    ok = _reference_ok(rule, tables)
    assert ok.all(), f"{rule.id}: {(~ok).sum()} failing rows in clean data"


@pytest.mark.parametrize("rule", RULE_LIST, ids=lambda r: r.id)
def test_check_flags_the_broken_record(tables, rule):
    from test_expectations import ALL_BREAKERS   # the generator-test breakers plus those of the registry's extra rules

    broken, key = ALL_BREAKERS[rule.id](tables)
    ok = _evaluate(rule, broken)
    df = broken[rule.table]
    assert len(ok) == df.height and ok.null_count() == 0
    flagged = df.filter(~ok)
    assert flagged.height >= 1, f"{rule.id} did not flag the broken record {key}"
    hit = flagged.filter(_key_filter(rule, key))
    assert hit.height >= 1, f"{rule.id}: broken record {key} not among the flagged rows:\n{flagged.head(5)}"


def test_derived_aligns_with_row_order(tables):
    """Reversing a table's rows reverses the flags: the result follows the given row order, not a sorted one."""
    rule = next(r for r in DERIVED_RULES if r.id == "TR338_TR304_prestatie_bij_toewijzing_van_client")
    broken, _ = BREAKERS[rule.id](tables)
    fn = DERIVED[rule.check["derived"]]
    ok = fn(broken)
    rev = dict(broken, prestaties=broken["prestaties"].reverse())
    assert fn(rev).to_list() == ok.reverse().to_list()
