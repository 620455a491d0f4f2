"""The GX engine on the rule registry: no false alarms on clean data, exactly the broken record on bad data, the CLI."""
import datetime as dt
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from expectations import findings, load_rules, validate
from expectations.gx_custom import bsn_valid
from synthetic_data import DataError, GeneratorConfig, generate, write_dataset
from synthetic_data.dictionary import key as table_key
from test_rules import BREAKERS, edit, first_index

RULES = load_rules()
ZANDBAK = Path(sys.executable).with_name("zandbak")


@pytest.fixture(scope="module")
def tables():
    # the dataset the breakers of tests/test_rules.py were written for
    return generate(GeneratorConfig(region="0147", years="2023-2024", seed=7, scale=1.0))


def _null_bsn(table):
    def brk(tables):
        t, row = edit(tables, table, first_index(tables[table]), bsn=None)
        return t, {c: row[c] for c in table_key(table)}
    return brk


def _agb(table):
    def brk(tables):
        t, row = edit(tables, table, first_index(tables[table]), agb_code="9800001")   # 7 digits
        return t, {c: row[c] for c in table_key(table)}
    return brk


def _birth(days_after_first_care: int):
    def brk(tables):
        first = tables["trajecten"].group_by("gemeente_code", "client_id").agg(pl.col("begindatum").min())
        j = tables["jeugdigen"].join(first, on=["gemeente_code", "client_id"], how="left")
        i = first_index(j, pl.col("begindatum").is_not_null())
        t, row = edit(tables, "jeugdigen", i, geboortedatum=j["begindatum"][i] + dt.timedelta(days=days_after_first_care))
        return t, {c: row[c] for c in table_key("jeugdigen")}
    return brk


def _birth_other_than_verzoek(tables):
    v = tables["verzoeken"].select("gemeente_code", "bsn").unique()
    j = tables["jeugdigen"]
    i = first_index(j, pl.struct("gemeente_code", "bsn").is_in(v.select(pl.struct("gemeente_code", "bsn")).to_series().implode()))
    t, row = edit(tables, "jeugdigen", i, geboortedatum=j["geboortedatum"][i] - dt.timedelta(days=1))
    return t, {c: row[c] for c in table_key("jeugdigen")}


def _second_registration(tables):
    j = tables["jeugdigen"]
    dup = j.head(1).with_columns(pl.lit("C999999999").alias("client_id"),   # a new id of the client_id format
                                 (pl.col("achternaam") + "e").alias("achternaam"))
    out = dict(tables, jeugdigen=pl.concat([j, dup]))
    return out, {"gemeente_code": dup["gemeente_code"][0], "client_id": dup["client_id"][0]}


# Breakers for the registry rules that are not among the plain-polars generator tests (XSD datatypes, client data).
EXTRA_BREAKERS = {
    "TR002_geboortedatum_voor_zorg": _birth(10),
    "TR304_geboortedatum_als_in_verzoek": _birth_other_than_verzoek,
    "TR304_een_registratie_per_bsn": _second_registration,
    "XSD_agb_code_aanbieders": _agb("aanbieders"),
    "XSD_agb_code_prestaties": _agb("prestaties"),
    "XSD_bsn_verplicht_prestaties": _null_bsn("prestaties"),
    "XSD_bsn_verplicht_toewijzingen": _null_bsn("toewijzingen"),
    "XSD_bsn_verplicht_jeugdigen": _null_bsn("jeugdigen"),
}
def _not_in_list(table, column):
    def brk(tables):
        i = first_index(tables[table], pl.col(column).is_not_null())
        t, row = edit(tables, table, i, **{column: "99"})      # "99" is in no iJw code list used here
        return t, {c: row[c] for c in table_key(table)}
    return brk


# the code-list entries for the remaining columns that carry a list (generated from the dictionary)
EXTRA_BREAKERS.update({r.id: _not_in_list(r.table, r.check["column"]) for r in RULES
                       if r.check.get("expect") == "codelist" and r.id not in BREAKERS})
ALL_BREAKERS = {**BREAKERS, **EXTRA_BREAKERS}


def test_registry_has_enough_rules_and_a_breaker_for_each():
    assert len(RULES) >= 25
    assert {r.id for r in RULES} == set(ALL_BREAKERS)
    assert {r.severity for r in RULES} == {"ERROR", "WARN"}
    assert any(r.uses for r in RULES)       # cross-table rules are in


def test_clean_data_passes_every_rule(tables, tmp_path):
    results = validate(tables, docs_dir=tmp_path / "docs")
    failed = [(r.rule.id, r.failing, r.error) for r in results if not r.passed]
    assert not failed
    assert findings(results).height == 0
    assert (tmp_path / "docs" / "index.html").exists()      # GX Data Docs written


def _matches(f: pl.DataFrame, rule, key: dict) -> pl.Series:
    """Which findings are the broken record (a breaker names it by table + key, or by (some of) its key columns)."""
    if "table" in key and "key" in key:
        return (f["table"] == key["table"]) & (f["key"] == key["key"])
    hit = f["table"] == rule.table
    for col, value in key.items():
        hit = hit & (f[col] == str(value))
    return hit


# Rules about a group of records report every member of the violating group: all versions of a reused toewijzing
# number, all claim lines of a toewijzing over its total, both active debets.
GROUP_RULES = {"TR332_toewijzing_nummer_uniek_per_gemeente", "TR322_som_volume_binnen_totaal",
               "TR389_een_actieve_debet"}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_reports_exactly_the_broken_record(tables, rule):
    broken, key = ALL_BREAKERS[rule.id](tables)
    results = validate(broken, [rule])
    assert not results[0].error, results[0].error
    f = findings(results)
    got = set(zip(f["table"], f["key"]))
    hit = set(zip(f.filter(_matches(f, rule, key))["table"], f.filter(_matches(f, rule, key))["key"]))
    assert hit, f"{rule.id}: the broken record is not reported; reported {sorted(got)[:5]}"
    if rule.id in GROUP_RULES:
        assert 1 < len(got) < 50, f"{rule.id}: reported {len(got)} records"
    else:
        assert got == hit and len(hit) == 1, f"{rule.id}: reported {sorted(got)[:5]}"
    assert set(f["rule_code"]) == {rule.code} and set(f["severity"]) == {rule.severity}


def test_bsn_condition_vectorised():
    import pandas as pd

    s = pd.Series(["111222333", "111222334", "12345678", "abcdefghi", "999990019"])
    assert bsn_valid(s).tolist() == [True, False, False, False, True]


def test_unusable_input_is_a_clear_error(tables):
    with pytest.raises(DataError, match=r"prestaties\.ingediend_bedrag: missing column"):
        validate(dict(tables, prestaties=tables["prestaties"].drop("ingediend_bedrag")))
    with pytest.raises(DataError, match=r"prestaties\.geleverd_volume: type String"):
        validate(dict(tables, prestaties=tables["prestaties"].with_columns(pl.col("geleverd_volume").cast(pl.String))))
    with pytest.raises(DataError, match="zorgstops: missing table"):
        validate({k: v for k, v in tables.items() if k != "zorgstops"})


def _run(*args):
    return subprocess.run([str(ZANDBAK), *map(str, args)], capture_output=True, text=True, timeout=300)


def test_cli_exit_codes_and_findings(tables, tmp_path):
    config = GeneratorConfig(region="0147", years="2023-2024", seed=7)
    clean = tmp_path / "clean"
    write_dataset(tables, clean, config.as_dict())
    r = _run("check", clean)
    assert r.returncode == 0 and "0 ERROR rules fail" in r.stdout

    # an ERROR rule broken: exit 1, one finding per failing record
    broken, key = BREAKERS["CS002_bsn_elfproef_prestaties"](tables)
    bad = tmp_path / "bad"
    write_dataset(broken, bad, config.as_dict())
    r = _run("check", bad, "--findings", tmp_path / "f.parquet")
    # a claim line with a wrong BSN fails CS002 and no longer matches its toewijzing's client (TR304)
    assert r.returncode == 1 and "2 ERROR rules fail" in r.stdout
    f = pl.read_parquet(tmp_path / "f.parquet")
    assert sorted(f.select("table", "rule_code", "severity", "referentie_nummer").rows()) == [
        ("prestaties", "CS002", "ERROR", key["referentie_nummer"]), ("prestaties", "TR338", "ERROR", key["referentie_nummer"])]

    # only a WARN rule broken: exit 0, reported
    broken, _ = BREAKERS["OP271_start_binnen_5_werkdagen"](tables)
    warn = tmp_path / "warn"
    write_dataset(broken, warn, config.as_dict())
    r = _run("check", warn, "--findings", tmp_path / "w.csv")
    assert r.returncode == 0 and "1 WARN rules fail" in r.stdout
    assert pl.read_csv(tmp_path / "w.csv")["rule_code"].to_list() == ["OP271"]


def test_cli_unusable_input_exit_2(tables, tmp_path):
    config = GeneratorConfig(region="0147", years="2023-2024", seed=7)
    ds = tmp_path / "ds"
    write_dataset(tables, ds, config.as_dict())
    (ds / "zorgstops.parquet").unlink()
    r = _run("check", ds)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "zorgstops" in r.stderr and "Traceback" not in r.stderr
    write_dataset(dict(tables, prestaties=tables["prestaties"].drop("eenheid")), ds, config.as_dict())
    r = _run("check", ds)
    assert r.returncode == 2 and "prestaties.eenheid: missing column" in r.stderr
    r = _run("check", ds, "--findings", tmp_path / "f.xlsx")
    assert r.returncode == 2
    r = _run("check", tmp_path / "nowhere")
    assert r.returncode == 2 and "not a folder" in r.stderr
