"""The gemeente's claim decisions (synthetic_data/claims.py): wrong claim lines rejected in the JW325 with the
retourcode of the rule they break, partial approvals, resubmissions, and how the checks and the scorer treat them."""
from __future__ import annotations

import polars as pl
import pytest

from expectations import get_rule, load_rules, violations
from expectations.derived import REJECTED_LINES
from synthetic_data.faults import inject_faults, score
from synthetic_data.faults.score import rejected_records, score_checks
from synthetic_data.faults.inject import TRUTH_SCHEMA
from synthetic_data.ijw import key_expr, signed
from synthetic_data.testing import inject

# retourcode -> the registry rule whose iJw rule prescribes it
RULE_OF = {"9321": "TR321_geleverd_volume_binnen_toegewezen", "0611": "TR418_tarief_is_contracttarief",
           "9307": "TR307_TR308_productperiode_binnen_toewijzing", "9308": "TR307_TR308_productperiode_binnen_toewijzing",
           "9338": "TR338_TR304_prestatie_bij_toewijzing_van_client"}
LINE = ["agb_code", "referentie_nummer"]
DECL = ["agb_code", "declaratie_nummer"]


@pytest.fixture(scope="module")
def t(borne_2y):
    return borne_2y


def _keys(df: pl.DataFrame) -> set[str]:
    return set(df.select(key_expr("prestaties")).to_series().to_list())


def test_a_realistic_share_of_lines_is_rejected(t):
    rej = t[REJECTED_LINES]
    share = rej.height / t["prestaties"].height
    assert 0.01 <= share <= 0.035, share
    assert set(rej["retourcode"]) == set(RULE_OF), "every kind of rejection occurs"
    # every rejected line is a line of the JW323 as received, in the declaratie it came in
    got = rej.join(t["prestaties"], on=[*LINE, "declaratie_nummer", "toewijzing_nummer", "begindatum", "einddatum",
                                        "geleverd_volume", "product_tarief", "ingediend_bedrag"], how="semi",
                   nulls_equal=True)   # a euro line (eenheid 83) has no ProductTarief
    assert got.height == rej.height


@pytest.mark.parametrize("code", sorted(RULE_OF))
def test_rejections_carry_the_retourcode_of_the_rule_they_break(t, code):
    """Run the rule's implementation without the accepted-lines filter: it reports every line rejected with its
    code. With the filter it reports none of them."""
    rej = t[REJECTED_LINES].filter(pl.col("retourcode") == code)
    assert rej.height
    rule = get_rule(RULE_OF[code])
    unfiltered = {k: v for k, v in t.items() if k != REJECTED_LINES}
    assert _keys(rej) <= _keys(violations(rule, unfiltered))
    assert not _keys(rej) & _keys(violations(rule, t))


def test_accepted_lines_obey_every_error_rule(t):
    unfiltered = {k: v for k, v in t.items() if k != REJECTED_LINES}
    found_before = 0
    for rule in load_rules():
        if rule.table == "prestaties" and rule.severity == "ERROR":
            assert violations(rule, t).height == 0, rule.id
            found_before += violations(rule, unfiltered).height
    assert found_before >= t[REJECTED_LINES].height     # the rules do see the rejected lines once unfiltered


def test_jw325_grants_the_accepted_lines_and_says_partial(t):
    lines = t["prestaties"].join(t[REJECTED_LINES].select(*LINE, pl.lit(True).alias("rej")), on=LINE, how="left")
    granted = lines.filter(pl.col("rej").is_null()).group_by(DECL).agg(signed("ingediend_bedrag").sum().alias("g"))
    partly = t[REJECTED_LINES].select(*DECL).unique().with_columns(pl.lit(True).alias("partly"))
    a = (t["declaratie_antwoorden"].join(granted, on=DECL, how="left").join(partly, on=DECL, how="left")
         .with_columns(pl.col("g").fill_null(0), pl.col("partly").fill_null(False)))
    assert a.select((signed("totaal_toegekend_bedrag") == pl.col("g")).all()).item()
    assert a.select(((pl.col("retourcode") == "0200") == pl.col("partly")).all()).item()
    assert set(a["retourcode"]) == {"8001", "0200"}
    share = a["partly"].mean()
    assert 0.01 <= share <= 0.2, share
    # the JW323 total is what was sent, rejected lines included
    d = t["declaraties"].join(a.select(*DECL, "totaal_toegekend_bedrag", "partly"), on=DECL)
    assert d.filter(~pl.col("partly")).select((pl.col("totaal_bedrag") == pl.col("totaal_toegekend_bedrag")).all()).item()


def _resubmissions(t) -> pl.DataFrame:
    """Each rejected line next to the accepted debet that claims the same client, product and month again in a
    later declaratie (if any)."""
    same = ["agb_code", "gemeente_code", "bsn", "product_code"]
    rej = t[REJECTED_LINES].with_columns(pl.col("begindatum").dt.truncate("1mo").alias("_m"))
    periods = t["declaraties"].select(*DECL, "begindatum", "dagtekening")
    acc = (t["prestaties"].join(t[REJECTED_LINES], on=LINE, how="anti").filter(pl.col("debet_credit") == "D")
           .join(periods, on=DECL, suffix="_decl").with_columns(pl.col("begindatum").dt.truncate("1mo").alias("_m")))
    rej = rej.join(periods, on=DECL, suffix="_decl").join(
        t["declaratie_antwoorden"].select(*DECL, pl.col("dagtekening").alias("jw325_dagtekening")), on=DECL)
    return rej.join(acc, on=[*same, "_m"], how="left", suffix="_new").filter(
        pl.col("begindatum_decl_new").is_null() | (pl.col("begindatum_decl_new") > pl.col("begindatum_decl")))


def test_a_resubmission_follows_the_rejection(t):
    r = _resubmissions(t)
    again = r.filter(pl.col("referentie_nummer_new").is_not_null())
    share = again.select(pl.struct(LINE).n_unique()).item() / t[REJECTED_LINES].height
    assert 0.5 <= share <= 0.9, share         # some aanbieders give up, some rejections are too recent
    # the corrected line: a new ReferentieNummer, sent after the JW325 that rejected the first, and right
    assert (again["referentie_nummer_new"] != again["referentie_nummer"]).all()
    assert (again["dagtekening_new"] > again["jw325_dagtekening"]).all()
    vol = again.filter(pl.col("retourcode") == "9321")
    assert vol.height and (vol["geleverd_volume_new"] < vol["geleverd_volume"]).all()
    tarief = again.filter(pl.col("retourcode") == "0611")
    assert tarief.height and (tarief["product_tarief_new"] != tarief["product_tarief"]).all()
    typo = again.filter(pl.col("retourcode") == "9338")
    assert typo.height and (typo["toewijzing_nummer_new"] != typo["toewijzing_nummer"]).all()
    lag = (again["begindatum_decl_new"].dt.month() - again["begindatum_decl"].dt.month()
           + 12 * (again["begindatum_decl_new"].dt.year() - again["begindatum_decl"].dt.year()))
    assert lag.min() >= 1 and lag.max() <= 6


def test_no_rejection_without_the_table_means_every_line_is_checked(t):
    rule = get_rule("TR418_tarief_is_contracttarief")
    alone = {k: v for k, v in t.items() if k != REJECTED_LINES}
    assert violations(rule, alone).height == t[REJECTED_LINES].filter(pl.col("retourcode") == "0611").height


# ------------------------------------------------------------------------------------------------------ scoring

def _truth(rows):
    base = {c: None for c in TRUTH_SCHEMA}
    return pl.DataFrame([{**base, **r} for r in rows], schema=TRUTH_SCHEMA)


def test_the_scorer_treats_a_finding_on_a_rejected_line_as_neutral(t):
    rejected = rejected_records(t)
    key = rejected["key"][0]
    fault = {"table": "prestaties", "key": "98000000|X", "fault_type": "x", "detectability": "single_record",
             "debatable": False}
    truth = _truth([fault])
    findings = pl.DataFrame({"table": ["prestaties", "prestaties"], "key": [key, "98000000|X"],
                             "rule_code": ["TR418", "TR418"], "check": ["c", "c"]})
    plain = score(findings, truth)["overall"]
    assert (plain["tp"], plain["fp"]) == (1, 1)
    o = score(findings, truth, rejected)["overall"]
    assert (o["tp"], o["fp"], o["fn"], o["rejected_found"]) == (1, 0, 0, 1)
    assert o["rejected_records"] == rejected.height
    # a rejected line is no miss even when the truth held it
    o = score(findings.head(0), _truth([{**fault, "key": key}]), rejected)["overall"]
    assert (o["tp"], o["fn"], o["records"]) == (0, 0, 0)
    checks = pl.DataFrame({"check": ["c"], "table": ["prestaties"], "rule_code": ["TR418"]})
    res = score_checks(findings, truth, checks, rejected=rejected)
    c = res["checks"][0]
    assert (c["tp"], c["fp"], c["rejected_found"]) == (1, 0, 1) and not res["false_alarms"]


def test_faults_never_target_a_rejected_line_and_are_still_found(t):
    dirty, truth = inject_faults(t, profile="stress", seed=3)
    claims = truth.filter(pl.col("table") == "prestaties")
    assert claims.height and claims.join(rejected_records(t), on=["table", "key"], how="semi").height == 0
    assert dirty[REJECTED_LINES].equals(t[REJECTED_LINES])
    # a volume fault on an accepted line (a resubmitted line among the candidates) is found by its rule
    dirty, truth = inject("volume_over_assigned", t, n=25, seed=5)
    rule = get_rule("TR321_geleverd_volume_binnen_toegewezen")
    assert truth.height == 25 and set(truth["key"]) <= _keys(violations(rule, dirty))
    resubmitted = _resubmissions(t).filter(pl.col("referentie_nummer_new").is_not_null()).select(
        pl.concat_str([pl.col("agb_code"), pl.col("referentie_nummer_new")], separator="|").alias("key"))
    dirty, truth = inject("tarief_differs_from_contract", t, n=5000, seed=5)
    hit = truth.join(resubmitted, on="key", how="semi")
    assert hit.height and set(hit["key"]) <= _keys(violations(get_rule("TR418_tarief_is_contracttarief"), dirty))


def test_declaratie_controle_counts_a_gemeente_rejection_for_neither_side(t):
    import experiments as ex
    from experiments.tasks import declaratie_controle as dc

    truth = dc.build_truth(t["prestaties"].with_row_index("regel", offset=1).with_columns(pl.col("regel").cast(pl.Int64)),
                           pl.DataFrame(schema=TRUTH_SCHEMA), t[REJECTED_LINES])
    assert truth["gemeente_afgewezen"].sum() == t[REJECTED_LINES].height and not truth["must_reject"].any()
    rej = truth.filter("gemeente_afgewezen").head(2)["regel"].to_list()
    clean = truth.filter(~pl.col("gemeente_afgewezen")).head(1)["regel"].to_list()
    asked = truth.filter(pl.col("regel").is_in(rej + clean))
    # one rejected line is also a fault target: then it counts
    asked = asked.with_columns(
        pl.when(pl.col("regel") == rej[1]).then(pl.lit("x")).otherwise("fault_type").alias("fault_type"),
        (pl.col("regel") == rej[1]).alias("must_reject"))
    pred = pl.DataFrame({"regel": rej + clean, "besluit": ["reject", "reject", "reject"],
                         "retourcode": ["0611", "0611", "0611"]}, schema=dc.PREDICTION_SCHEMA)
    s = ex.score("declaratie_controle", pred, asked)
    assert (s["tp"], s["fp"], s["fn"], s["gemeente_rejected_lines"]) == (1, 1, 0, 1)
    s = ex.score("declaratie_controle", pred.with_columns(besluit=pl.lit("accept"), retourcode=pl.lit(None, pl.String)),
                 asked)
    assert (s["tp"], s["fp"], s["fn"]) == (0, 0, 1)


def _decl_lines(agb: list[str], nummer: list[str]) -> pl.DataFrame:
    import datetime as dt
    n = len(agb)
    return pl.DataFrame({
        "agb_code": agb, "declaratie_nummer": nummer, "gemeente_code": ["0153"] * n,
        "_decl_month": [dt.date(2024, 1 + i % 3, 1) for i in range(n)], "ingediend_bedrag": [100 * (i + 1) for i in range(n)],
        "debet_credit": ["D", "C"] * (n // 2) + ["D"] * (n % 2), "_rejected": [i % 3 == 0 for i in range(n)]})


def test_declaraties_packed_key_groups_as_the_strings():
    """declaraties groups by one packed integer of the two codes (dictionary.pack of their sortable integers): a
    number written with and without leading zeros (or with a sign) stays two declaraties, as the strings say."""
    from synthetic_data.claims import declaraties
    from synthetic_data.dictionary import pack, sortable

    def key(lines):
        return pack([sortable(lines["agb_code"]), sortable(lines["declaratie_nummer"])])

    same = _decl_lines(["98010001", "98010001", "98010002", "98010002", "98010001"],
                       ["0000000001", "0000000001", "0000000001", "0000000002", "0000000002"])
    assert len(key(same)) == 1   # one integer column: the packed path is the one tested
    ref = same.group_by("agb_code", "declaratie_nummer").agg(
        signed("ingediend_bedrag").sum().alias("totaal")).sort("agb_code", "declaratie_nummer")
    head, _ = declaraties(42, same)
    got = head.sort("agb_code", "declaratie_nummer")
    assert got["declaratie_nummer"].to_list() == ref["declaratie_nummer"].to_list()
    assert got["totaal_bedrag"].to_list() == ref["totaal"].abs().to_list()
    for nummer in (["0000000001", "1"], ["+1", "01"], ["-0", "00"]):
        mixed = _decl_lines(["98010001", "98010001"], nummer)
        packed = key(mixed)
        assert len(packed) == 1 and len(set(packed[0].tolist())) == 2, nummer
        assert declaraties(42, mixed)[0].height == 2, nummer
