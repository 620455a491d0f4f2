"""The students' testing toolkit (synthetic_data.testing): the small valid dataset and its pytest fixtures,
break_rule, inject and the Hypothesis strategies, used the way a team would test its own checks."""
from __future__ import annotations

import time

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expectations import get_rule, rule_findings, violations
from synthetic_data import GeneratorConfig
from synthetic_data import testing as zt
from synthetic_data.ijw import key_expr
from synthetic_data.privacy import POSTCODE_PATTERN, elfproef_valid

FEW = settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


# A team's own check, written the way a student would: claim lines whose BSN fails the elfproef.
def my_bsn_check(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    p = tables["prestaties"]
    return p.filter(p["bsn"].is_not_null() & ~p.select(elfproef_valid(pl.col("bsn"))).to_series())


def _keys(table: str, df: pl.DataFrame) -> set[str]:
    return set(df.select(key_expr(table)).to_series().to_list())


# ----------------------------------------------------------------------------------------------- the dataset

def test_small_dataset_is_valid_cached_and_quick():
    config = GeneratorConfig(region="0147", years="2024", seed=11, scale=0.2)
    t0 = time.perf_counter()
    tables = zt.small_tables(config)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = zt.small_tables(config)
    cached = time.perf_counter() - t0
    assert first < 10 and cached < 0.01, (first, cached)
    assert again is not tables and all(again[n] is tables[n] for n in tables)   # a fresh dict of the same frames
    assert 1_000 < sum(df.height for df in tables.values()) < 10_000
    assert rule_findings(tables).filter(~pl.col("rule_id").is_in(list(zt.PROCESS_NOISE_RULES))).height == 0


def test_plugin_fixtures(ijw_config, ijw_tables, break_rule, inject_fault):
    assert ijw_config == zt.SMALL_CONFIG
    assert set(ijw_tables) >= {"prestaties", "toewijzingen", "jeugdigen"}
    assert break_rule is zt.break_rule and inject_fault is zt.inject


# ------------------------------------------------------------------------------------------ break and inject

def test_break_rule_returns_the_broken_key(ijw_tables):
    dirty, keys = zt.break_rule("CS002_bsn_elfproef_prestaties", ijw_tables)
    assert keys.columns == ["table", "key"] and keys.height == 1 and keys["table"][0] == "prestaties"
    assert _keys("prestaties", my_bsn_check(dirty)) == set(keys["key"])
    assert my_bsn_check(ijw_tables).height == 0
    assert dirty["prestaties"] is not ijw_tables["prestaties"] and dirty["toewijzingen"] is ijw_tables["toewijzingen"]
    same, keys2 = zt.break_rule(get_rule("CS002_bsn_elfproef_prestaties"), ijw_tables)    # a Rule works too
    assert keys2.equals(keys) and same["prestaties"].equals(dirty["prestaties"])
    with pytest.raises(KeyError, match="no breaker for rule 'nope'"):
        zt.break_rule("nope", ijw_tables)


def test_inject_returns_dirty_tables_and_truth(ijw_tables):
    dirty, truth = zt.inject("bsn_elfproef_invalid", ijw_tables, n=3, seed=1)
    assert truth.height == 3 and set(truth["fault_type"]) == {"bsn_elfproef_invalid"}
    assert set(truth["rule_id"]) == {"CS002_bsn_elfproef_prestaties"}
    # the team's check finds exactly the injected records
    assert _keys("prestaties", my_bsn_check(dirty)) == set(truth["key"])
    with pytest.raises(ValueError, match="unknown fault type 'nope'; allowed: bsn_missing"):
        zt.inject("nope", ijw_tables)


def test_with_key_gives_the_findings_shape(ijw_tables):
    dirty, keys = zt.break_rule("CS002_bsn_elfproef_prestaties", ijw_tables)
    found = zt.with_key("prestaties", my_bsn_check(dirty))
    assert found.select("table", "key").rows() == keys.rows()


# ------------------------------------------------------------------------------------------------- strategies

@FEW
@given(bsn=zt.bsns(), agb=zt.agb_codes(), postcode=zt.postcodes(), eenheid=zt.codes("eenheid"))
def test_value_strategies_give_valid_values(bsn, agb, postcode, eenheid):
    import re

    frame = pl.DataFrame({"bsn": [bsn], "agb_code": [agb], "postcode": [postcode], "eenheid": [eenheid],
                          "referentie_nummer": ["R1"], "gemeente_code": ["0147"], "client_id": ["C1"]})
    assert frame.select(elfproef_valid(pl.col("bsn"))).item()
    assert re.fullmatch(r"\d{8}", agb) and re.match(POSTCODE_PATTERN, postcode)
    for rid, table in [("CS002_bsn_elfproef_prestaties", frame), ("XSD_agb_code_prestaties", frame),
                       ("WJ756_codelist_eenheid", frame)]:
        assert violations(get_rule(rid), {"prestaties": table}).height == 0, rid
    assert violations(get_rule("CS089_postcode_format"), {"jeugdigen": frame}).height == 0


def test_codes_refuses_an_unknown_list():
    with pytest.raises(ValueError, match="unknown code list 'kleur'"):
        zt.codes("kleur")


@FEW
@given(rows=st.lists(zt.records("prestaties"), min_size=1, max_size=20, unique_by=lambda r: r["referentie_nummer"]),
       which=st.integers(0, 19))
def test_property_my_check_holds_on_valid_records_and_fires_on_broken_ones(rows, which):
    """The property a team writes for its own check: silent on any set of valid records, and it reports a record
    once its BSN is broken (whichever record that is)."""
    tables = {"prestaties": pl.DataFrame(rows, schema=zt.small_tables()["prestaties"].schema)}
    assert my_bsn_check(tables).height == 0
    idx = which % len(rows)
    dirty, row = zt.edit(tables, "prestaties", idx, bsn=pl.col("bsn").str.slice(0, 8)
                         + ((pl.col("bsn").str.slice(8, 1).cast(pl.Int64) + 1) % 10).cast(pl.String))
    assert _keys("prestaties", my_bsn_check(dirty)) == {f"{row['agb_code']}|{row['referentie_nummer']}"}


@settings(max_examples=4, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=zt.broken("TR321_geleverd_volume_binnen_toegewezen"))
def test_property_rule_holds_on_valid_datasets_and_fires_on_broken_ones(case):
    clean, dirty, keys = case
    rule = get_rule("TR321_geleverd_volume_binnen_toegewezen")
    assert violations(rule, clean).height == 0
    assert set(keys["key"]) <= _keys(rule.table, violations(rule, dirty))


def test_a_teams_own_test_file_gets_the_fixtures(tmp_path):
    """Outside this repository (no conftest.py) the installed plugin provides the fixtures."""
    import subprocess
    import sys

    (tmp_path / "test_team.py").write_text(
        "import polars as pl\n"
        "def test_my_check(ijw_tables, break_rule):\n"
        "    dirty, keys = break_rule('OP271_start_binnen_5_werkdagen', ijw_tables)\n"
        "    late = lambda t: t['zorgstarts'].filter(pl.col('dagtekening') > pl.col('begindatum') + pl.duration(days=7))\n"
        "    assert late(dirty).height == late(ijw_tables).height + 1 and keys['table'][0] == 'zorgstarts'\n",
        encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_team.py"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr
