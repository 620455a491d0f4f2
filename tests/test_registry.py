"""The rule registry (expectations/rules.yaml) loads, validates and renders; every rule has its polars implementation
(expectations/derived.py) and a breaker (synthetic_data.testing). The rules on data are tested in tests/test_rules.py
(polars) and tests/test_expectations.py (GX).
"""
from __future__ import annotations

import copy
import re

import pytest

from expectations import registry
from expectations.derived import DERIVED
from expectations.registry import load_rules, parse_rules, render_markdown, rules_for
from synthetic_data.dictionary import table_names
from synthetic_data.testing import BREAKERS

RULE_LIST = load_rules()


# --------------------------------------------------------------------------------------------------- loading

def test_every_rule_has_an_implementation_and_a_breaker():
    ids = [r.id for r in RULE_LIST]
    assert len(ids) == len(set(ids)) and len(ids) >= 90
    assert set(ids) == set(BREAKERS)
    used = {r.check["derived"] for r in RULE_LIST if r.kind == "derived"}
    assert used == set(DERIVED), f"derived checks no rule uses: {set(DERIVED) - used}"


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
