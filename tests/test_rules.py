"""Every registry rule (expectations/rules.yaml) through its one polars implementation (`violations`): the clean
generated data obeys it, and it reports exactly the record that its breaker (synthetic_data.testing) broke.

A breaker corrupts one clean record so that exactly that rule must fire; it is written apart from the implementation,
so a rule that stops firing, or fires on the wrong record, fails here.
"""
from __future__ import annotations

import polars as pl
import pytest

from expectations import load_rules, rule_findings, violations
from expectations.derived import FINDINGS_SCHEMA, ROW
from synthetic_data.dictionary import key as dictionary_key
from synthetic_data.ijw import key_expr
from synthetic_data.testing import BREAKERS, PROCESS_NOISE_RULES, break_rule

RULES = load_rules()
# Rules about a group of records report every member of the violating group: all versions of a reused toewijzing
# number, all claim lines of a toewijzing over its total, both active debets.
GROUP_RULES = {"TR332_toewijzing_nummer_uniek_per_gemeente", "TR322_som_volume_binnen_totaal", "TR369_som_binnen_budget",
               "TR389_een_actieve_debet"}


@pytest.fixture(scope="module", params=["borne_2y", "ijw_tables"])
def tables(request):
    """Each rule on two datasets: 0147 over two years at full scale, and the toolkit's small dataset."""
    return request.getfixturevalue(request.param)


def _show(df: pl.DataFrame, n: int = 5) -> str:
    with pl.Config(tbl_cols=-1, tbl_width_chars=400, fmt_str_lengths=40):
        return str(df.head(n))


def _keys(rule, df: pl.DataFrame) -> set[str]:
    return set(df.select(key_expr(rule.table)).to_series().to_list())


def test_every_rule_has_a_breaker():
    assert {r.id for r in RULES} == set(BREAKERS)


# --- issue 12: claims: WARN timeliness rules the clean process breaks at a realistic rate (rule id -> share band)
REALISTIC_WARN = PROCESS_NOISE_RULES


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_clean_data_obeys_rule(tables, rule):
    bad = violations(rule, tables)
    if rule.id in REALISTIC_WARN:
        assert rule.severity == "WARN"
        lo, hi = REALISTIC_WARN[rule.id]
        share = bad.height / tables[rule.table].height
        assert lo <= share <= hi, f"{rule.id}: {share:.3f} of the records late, expected {lo}-{hi}"
        return
    assert bad.height == 0, f"{rule.id}: {bad.height} violating records in the clean dataset, e.g.\n{_show(bad)}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_reports_exactly_the_broken_record(tables, rule):
    broken, keys = break_rule(rule.id, tables)
    assert keys["table"].to_list() == [rule.table], f"{rule.id}: the breaker breaks {keys['table'][0]}"
    bad = violations(rule, broken)
    got = _keys(rule, bad)
    if rule.id in REALISTIC_WARN:   # the clean data's own late messages are reported as well
        got -= _keys(rule, violations(rule, tables))
    want = set(keys["key"])
    assert want <= got, f"{rule.id}: broken record {want} not among the reported ones:\n{_show(bad)}"
    if rule.id in GROUP_RULES:
        assert len(got) < 50, f"{rule.id}: reported {len(got)} records"
    else:
        assert got == want, f"{rule.id}: reported {sorted(got)[:5]}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_violations_explain(borne_2y, rule):
    """Key columns first, then the columns the rule reads and those that explain it; one row per record (records
    that break a uniqueness rule share their key)."""
    broken, _ = break_rule(rule.id, borne_2y)
    bad = violations(rule, broken, row_index=True)
    key = dictionary_key(rule.table)
    assert bad.columns[0] == ROW and bad.columns[1:1 + len(key)] == key
    assert bad[ROW].is_unique().all()
    if rule.kind == "derived":
        assert len(bad.columns) > 1 + len(key), f"{rule.id}: no explanatory column"
    for col in rule.columns:
        assert col in bad.columns, f"{rule.id}: the column it checks ({col}) is not shown"
    # the row numbers point at the reported records
    again = broken[rule.table].with_row_index(ROW).filter(pl.col(ROW).is_in(bad[ROW].implode()))
    assert _keys(rule, again) == _keys(rule, bad)


def test_violations_follow_row_order(borne_2y):
    """Reversing a table's rows reverses the row numbers of the violations, not the records reported."""
    rule = next(r for r in RULES if r.id == "TR338_TR304_prestatie_bij_toewijzing_van_client")
    broken, keys = break_rule(rule.id, borne_2y)
    n = broken["prestaties"].height
    fwd = violations(rule, broken, row_index=True)
    rev = violations(rule, dict(broken, prestaties=broken["prestaties"].reverse()), row_index=True)
    assert _keys(rule, fwd) == _keys(rule, rev) == set(keys["key"])
    assert rev[ROW].to_list() == [n - 1 - i for i in fwd[ROW].to_list()]


def test_rule_findings_shape(borne_2y):
    realistic = ~pl.col("rule_id").is_in(list(REALISTIC_WARN))
    assert rule_findings(borne_2y).filter(realistic).height == 0
    broken, keys = break_rule("CS002_bsn_elfproef_prestaties", borne_2y)
    f = rule_findings(broken).filter(realistic)
    assert f.schema == pl.Schema(FINDINGS_SCHEMA)
    # a claim line with a wrong BSN fails CS002 and no longer matches its toewijzing's client (TR338)
    assert sorted(f.select("rule_code", "table", "key").rows()) == [
        ("CS002", "prestaties", keys["key"][0]), ("TR338", "prestaties", keys["key"][0])]


def test_a_missing_table_is_a_clear_error(ijw_tables):
    from synthetic_data import DataError

    rule = next(r for r in RULES if r.id == "TR338_TR304_prestatie_bij_toewijzing_van_client")
    with pytest.raises(DataError, match="rule TR338_TR304_prestatie_bij_toewijzing_van_client: missing table"
                                        r"\(s\) toewijzingen; it reads prestaties and toewijzingen"):
        violations(rule, {k: v for k, v in ijw_tables.items() if k != "toewijzingen"})


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_reads_only_its_table_and_uses(ijw_tables, rule):
    """`uses` in rules.yaml is complete: the rule runs on its own table and the tables it names, nothing else."""
    broken, keys = break_rule(rule.id, ijw_tables)
    only = {t: broken[t] for t in (rule.table, *rule.uses)}
    assert set(keys["key"]) <= _keys(rule, violations(rule, only))
