"""Labelled faults (synthetic_data/faults): the catalogue, the injector and the scorer.

The label test is the heart: for every dirtied record with a `rule_id`, that registry rule (through its one polars
implementation, `expectations.violations`) reports the record in the dirty tables. The suite test adds the other
direction: running every registry rule on the dirty data reports no record outside the truth (precision and recall
1.000 on the demo, realistic and stress profiles).
"""
from __future__ import annotations

import re

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from expectations import get_rule, load_rules, rule_findings, violations
from synthetic_data import GeneratorConfig, generate
from synthetic_data.dictionary import key as dictionary_key
from synthetic_data.dictionary import table_names
from synthetic_data.dictionary import tables as dictionary_tables
from synthetic_data.faults import catalogue, inject_faults, profiles, score, score_table
from synthetic_data.faults.inject import INJECTORS, KEY_COLUMNS, TRUTH_SCHEMA
from synthetic_data.ijw import key_expr

LEVELS = {"cell", "record", "cross_table", "process"}
DETECTABILITY = {"single_record", "cross_table", "statistical_only"}
RULE_IDS = {r.id for r in load_rules()}


@pytest.fixture(scope="module")
def clean(borne_2y):
    return borne_2y


@pytest.fixture(scope="module")
def demo(clean):
    return inject_faults(clean, profile="demo", seed=7)


@pytest.fixture(scope="module")
def realistic(clean):
    return inject_faults(clean, profile="realistic", seed=7)


@pytest.fixture(scope="module")
def stress(clean):
    return inject_faults(clean, profile="stress", seed=7)


# ------------------------------------------------------------------------------------------------------- helpers

_key = key_expr


def rule_records(tables, rule_id: str) -> pl.DataFrame:
    """(table, key) of the records a registry rule reports."""
    rule = get_rule(rule_id)
    return violations(rule, tables).select(pl.lit(rule.table).alias("table"), _key(rule.table).alias("key")).unique()


def all_findings(tables) -> pl.DataFrame:
    """Findings of every rule (the clean process's own late messages are in the truth as debatable records)."""
    return rule_findings(tables).select("table", "key", "rule_id", "rule_code")


def assert_labels_hold(dirty, truth):
    """Every truth record with a rule_id is reported by that rule."""
    labelled = truth.filter(pl.col("rule_id").is_not_null())
    missed = []
    for rid in labelled["rule_id"].unique().sort().to_list():
        want = labelled.filter(pl.col("rule_id") == rid).select("table", "key", "fault_type")
        got = rule_records(dirty, rid)
        miss = want.join(got, on=["table", "key"], how="anti")
        missed += [(rid, *row) for row in miss.iter_rows()]
    assert not missed, f"{len(missed)} labelled records not reported by their rule, e.g. {missed[:5]}"


# ----------------------------------------------------------------------------------------------------- catalogue

def test_catalogue_shape():
    cat = catalogue()
    ids = [f["id"] for f in cat]
    assert len(ids) >= 20 and len(set(ids)) == len(ids)
    assert {f["level"] for f in cat} == LEVELS
    known_tables = set(table_names())
    for f in cat:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", f["id"]), f["id"]
        assert f["level"] in LEVELS and f["detectability"] in DETECTABILITY, f["id"]
        assert isinstance(f["debatable"], bool) and f["description"].strip(), f["id"]
        assert f["table"] in known_tables, f["id"]
        cols = dictionary_tables()[f["table"]]["columns"]
        assert all(c == "(row)" or c in cols for c in f["columns"]), f["id"]
        assert f["id"] in INJECTORS, f"no injector for {f['id']}"
        if f["rule_id"] is not None:
            assert f["rule_id"] in RULE_IDS, f"{f['id']}: unknown rule_id {f['rule_id']}"
            rule = get_rule(f["rule_id"])
            assert f["rule_code"] in rule.codes, f"{f['id']}: rule_code not among the codes of {rule.id}"
            assert f["table"] == rule.table, f"{f['id']}: dirties {f['table']}, its rule checks {rule.table}"
        if f["detectability"] == "statistical_only":
            assert f["rule_id"] is None


def test_profiles_name_known_types():
    profs = profiles()
    assert {"demo", "realistic", "stress"} <= set(profs)
    ids = {f["id"] for f in catalogue()}
    for name, prof in profs.items():
        assert set(prof.get("faults") or {}) <= ids, name
        for spec in [prof.get("default", {}), *(prof.get("faults") or {}).values()]:
            assert spec.get("mechanism", "random") in {"random", "concentrated"}
            assert spec.get("by", "aanbieder") in {"aanbieder", "gemeente"}


# ----------------------------------------------------------------------------------------------------- injection

def test_injection_is_deterministic(clean, realistic):
    dirty, truth = realistic
    again_dirty, again_truth = inject_faults(clean, profile="realistic", seed=7)
    assert_frame_equal(truth, again_truth)
    for name in clean:
        assert_frame_equal(dirty[name], again_dirty[name])
    other_dirty, other_truth = inject_faults(clean, profile="realistic", seed=8)
    assert not truth.equals(other_truth)
    assert any(not dirty[n].equals(other_dirty[n]) for n in ("prestaties", "jeugdigen", "zorgstarts"))


def test_clean_tables_are_not_changed(clean, demo):
    again = generate(GeneratorConfig(region="0147", years="2023-2024", seed=7))   # not the toolkit's cached copy
    for name in again:
        assert_frame_equal(clean[name], again[name])


def test_dirty_tables_keep_schema_and_key_order(clean, demo, stress):
    for dirty, _ in (demo, stress):
        assert set(dirty) == set(clean)
        for name, df in clean.items():
            assert dirty[name].schema == df.schema, name
            k = dictionary_key(name)
            assert_frame_equal(dirty[name].select(k), dirty[name].select(k).sort(k, nulls_last=True, maintain_order=True))  # as conform sorts


def test_truth_frame(demo):
    dirty, truth = demo
    assert truth.schema == pl.Schema(TRUTH_SCHEMA)
    assert truth.select("table", "key").is_duplicated().sum() == 0
    for t in truth["table"].unique().to_list():
        part = truth.filter(pl.col("table") == t)
        k = dictionary_key(t)
        # key = the key columns joined with "|"; the other key columns stay empty
        assert part.select((_key(t) == pl.col("key")).all()).item(), t
        others = [c for c in KEY_COLUMNS if c not in k]
        assert part.select(pl.all_horizontal(pl.col(c).is_null() for c in others).all()).item(), t
        # every truth record exists in the dirty table
        present = dirty[t].select(_key(t).alias("key")).unique()
        assert part.join(present, on="key", how="anti").height == 0, t
    meta = {f["id"]: f for f in catalogue()}
    labels = truth.select("fault_type", "rule_id", "rule_code", "debatable", "detectability").unique()
    for row in labels.iter_rows(named=True):
        f = meta[row["fault_type"]]
        assert (row["rule_id"], row["rule_code"], row["debatable"], row["detectability"]) == (
            f["rule_id"], f["rule_code"], f["debatable"], f["detectability"])


def test_demo_has_every_type_labelled_correctly(demo):
    dirty, truth = demo
    counts = dict(truth.group_by("fault_type").len().iter_rows())
    for f in catalogue():
        assert counts.get(f["id"], 0) >= 3, f"{f['id']}: {counts.get(f['id'], 0)} records in demo"
        assert truth.filter(pl.col("fault_type") == f["id"])["table"].unique().to_list() == [f["table"]]
    assert_labels_hold(dirty, truth)


def test_stress_labels_hold_and_never_collide(stress):
    dirty, truth = stress
    assert truth.select("table", "key").is_duplicated().sum() == 0
    assert_labels_hold(dirty, truth)


@pytest.mark.parametrize("profile", ["demo", "realistic", "stress"])
def test_rule_suite_scores_precision_and_recall_one(profile, request):
    """Every registry rule on the dirty data: every rule-linked fault is found, statistical ones are not, and no
    record outside the truth is reported."""
    dirty, truth = request.getfixturevalue(profile)
    findings = all_findings(dirty)
    result = score(findings, truth)
    o = result["overall"]
    assert (o["precision"], o["recall"], o["fp"], o["fn"]) == (1.0, 1.0, 0, 0), o
    for f in catalogue():
        if f["rule_id"] is not None and not f["debatable"] and f["id"] in result["by_fault_type"]:
            assert result["by_fault_type"][f["id"]]["recall"] == 1.0, f["id"]
    assert o["statistical_found"] == 0
    assert findings.join(truth.select("table", "key"), on=["table", "key"], how="anti").height == 0


def test_declaratie_totals_follow_dirty_lines(demo):
    """Only the injected header faults fail TR358: the other headers were recomputed from their dirty lines."""
    dirty, truth = demo
    got = rule_records(dirty, "TR358_totaalbedrag_is_som_prestaties")
    want = truth.filter(pl.col("fault_type") == "declaratie_total_mismatch").select("table", "key")
    assert sorted(got.rows()) == sorted(want.rows())


def test_upcoding_raises_volume_within_the_cap(clean, demo):
    dirty, truth = demo
    up = truth.filter(pl.col("fault_type") == "upcoding_billing_jump")
    # concentrated: one aanbieder, a second only when the first has no room left under its caps
    per = up.group_by("agb_code").len()["len"]
    assert up.height >= 3 and per.len() <= 2 and per.max() >= up.height / 2
    assert (up["dirty"].cast(pl.Int64) > up["original"].cast(pl.Int64)).all()
    flagged = all_findings(dirty)
    assert up.join(flagged, on=["table", "key"], how="semi").height == 0


def test_realistic_rate(clean, realistic):
    _, truth = realistic
    normal = [f["id"] for f in catalogue() if f.get("normal_process")]   # labelled, not injected
    share = truth.filter(~pl.col("fault_type").is_in(normal)).height / sum(df.height for df in clean.values())
    assert 0.003 <= share <= 0.008, f"realistic dirtied {share:.2%} of all records"


def test_concentrated_mechanism(realistic):
    _, truth = realistic
    tarief = truth.filter(pl.col("fault_type") == "tarief_differs_from_contract")
    top = tarief.group_by("agb_code").len()["len"].max()
    assert tarief.height >= 3 and top >= tarief.height / 2


# -------------------------------------------------------------------------------------------------------- scoring

def _truth(rows: list[dict]) -> pl.DataFrame:
    base = {c: None for c in TRUTH_SCHEMA}
    return pl.DataFrame([{**base, **r} for r in rows], schema=TRUTH_SCHEMA)


def test_clean_data_scores_no_false_positives(clean):
    empty_truth = _truth([])
    result = score(pl.DataFrame(schema={"table": pl.String, "key": pl.String}), empty_truth)
    assert result["overall"]["fp"] == 0 and result["overall"]["tp"] == 0
    # the clean data obeys every ERROR rule; what the suite finds are the clean data's own late messages (WARN),
    # which a profile without faults labels as normal process (debatable): no false positive
    findings = all_findings(clean)
    normal = {f["rule_id"] for f in catalogue() if f.get("normal_process")}
    assert set(findings["rule_id"].unique().to_list()) <= normal
    same, labels = inject_faults(clean, profile={"default": {"rate": 0}})
    assert all(same[n].equals(clean[n]) for n in clean)
    assert set(labels["fault_type"].unique().to_list()) == {f["id"] for f in catalogue() if f.get("normal_process")}
    result = score(findings, labels)
    assert result["overall"]["fp"] == 0 and result["overall"]["tp"] == 0 and result["overall"]["findings"] > 0
    assert score(findings, empty_truth)["overall"]["fp"] == findings.select("table", "key").n_unique()


def test_score_hand_made():
    def rec(key, ft="A", **kw):
        return {"table": "prestaties", "key": key, "fault_type": ft, "rule_code": "TR321", "debatable": False,
                "detectability": "cross_table", **kw}
    truth = _truth([rec("98000001|R1"), rec("98000001|R2"), rec("98000001|R3"),
                    rec("98000001|R4", ft="B", rule_code="TR307", debatable=True),
                    rec("98000001|R5", ft="S", rule_code=None, detectability="statistical_only")])
    findings = pl.DataFrame({
        "table": ["prestaties"] * 6,
        "key": ["98000001|R1", "98000001|R2", "98000001|R2", "98000001|X9", "98000001|R4", "98000001|R5"],
        "fault_type": ["A", "A", "A", "A", "B", "S"],
    })
    result = score(findings, truth)
    o = result["overall"]
    assert (o["tp"], o["fp"], o["fn"]) == (2, 1, 1)
    assert o["precision"] == pytest.approx(2 / 3) and o["recall"] == pytest.approx(2 / 3)
    assert o["f1"] == pytest.approx(2 / 3)
    assert o["debatable_found"] == 1 and o["statistical_found"] == 1
    a = result["by_fault_type"]["A"]
    assert (a["tp"], a["fp"], a["fn"]) == (2, 1, 1) and a["precision"] == pytest.approx(2 / 3)
    assert result["by_fault_type"]["B"]["recall"] is None          # debatable: no denominator
    assert result["by_rule_code"]["TR321"]["recall"] == pytest.approx(2 / 3)
    assert result["by_rule_code"]["TR321"]["fp"] is None          # findings carry no rule codes
    assert result["statistical_only"] == [
        {"fault_type": "S", "records": 1, "found": 1, "recall": 1.0, "debatable": False}]
    table = score_table(result)
    assert table.filter(pl.col("scope") == "overall")["precision"].item() == pytest.approx(2 / 3)

    # a debatable record found alone is no false positive
    only_debatable = score(findings.filter(pl.col("key") == "98000001|R4"), truth)["overall"]
    assert only_debatable["fp"] == 0 and only_debatable["tp"] == 0 and only_debatable["debatable_found"] == 1

    # rule ids attribute false positives to their codes
    labelled = findings.with_columns(pl.lit("TR321_geleverd_volume_binnen_toegewezen").alias("rule_id"))
    assert score(labelled, truth)["by_rule_code"]["TR321"]["fp"] == 1


def test_score_findings_with_key_columns_only():
    """A student's CSV: table plus the key columns, everything as text, no `key` column."""
    truth = _truth([
        {"table": "zorgstarts", "key": "0147|98090000|1002333|2022-11-10", "fault_type": "start_before_toewijzing",
         "rule_code": "TR019", "debatable": False, "detectability": "cross_table"},
        {"table": "toewijzingen", "key": "0147|1000229|2", "fault_type": "duplicate_toewijzing_nummer",
         "rule_code": "TR332", "debatable": False, "detectability": "single_record"},
    ])
    findings = pl.DataFrame({
        "table": ["zorgstarts", "toewijzingen", "toewijzingen"],
        "gemeente_code": ["0147", "0147", "0147"],
        "agb_code": ["98090000", None, None],
        "toewijzing_nummer": ["1002333", "1000229", "1000230"],
        "versie": [None, "2", "1"],
        "begindatum": ["2022-11-10", None, None],
    })
    o = score(findings, truth)["overall"]
    assert (o["tp"], o["fp"], o["fn"]) == (2, 1, 0)
    with pytest.raises(ValueError):
        score(pl.DataFrame({"table": ["prestaties"], "agb_code": ["98090000"]}), truth)
