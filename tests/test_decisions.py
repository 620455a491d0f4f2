"""The gemeente's answers to JW315 requests follow a documented decision model with signal (synthetic_data/decisions.py),
and every task reports the score of the simulation's own model (its ceiling) next to the reference baseline."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import experiments as ex
from synthetic_data import decisions
from synthetic_data.calibrate import measure
from synthetic_data.model import model

KEY = ["agb_code", "referentie_aanbieder"]


def _cell(hulpvorm: str, verwijzer: str) -> int:
    m = model()
    return m.hulpvormen.index(hulpvorm) * len(m.verwijzers) + m.verwijzers.index(verwijzer)


def _product(code: str) -> int:
    from synthetic_data.reference import producten_catalogus

    return int(producten_catalogus().filter(pl.col("product_code") == code)["product_index"][0])


def _p(cell, product, age=10.0, aanbieder=0, months=6.0, volume=0.0, oorsprong=0, girl=False, seed=42):
    """(p_afwijzing, p_onderzoek) of one request: a plain one by default (6 months, the lowest volume)."""
    pr = decisions.probabilities(seed, 0, np.array([cell]), np.array([product]), np.array([aanbieder]),
                                 np.array([age]), np.array([girl]), np.array([months]), np.array([volume]),
                                 np.array([oorsprong]))
    return float(pr["p_afwijzing"][0]), float(pr["p_onderzoek"][0])


@pytest.fixture(scope="module")
def triage(task_data):
    return task_data("verzoek_triage")


def test_answer_shares_stay_in_their_bands(twente_2024):
    config, tables = twente_2024
    got = {m.metric: m for m in measure(tables, 2024, config.scale) if m.metric.startswith("request_")}
    assert 0.025 <= got["request_rejected_share_lt18"].generated <= 0.055
    assert 0.30 <= got["request_rejected_share_18plus"].generated <= 0.55
    assert 0.08 <= got["request_in_onderzoek_share"].generated <= 0.12
    assert all(m.ok for m in got.values()), got


def test_the_answer_depends_on_product_referrer_age_contract_and_care_form():
    ggz_hoog, ggz, dys, verblijf = _product("54003"), _product("54001"), _product("45A76"), _product("44A28")
    amb_ha, amb_gi = _cell("ambulant_aanbieder", "huisarts"), _cell("ambulant_aanbieder", "gecertificeerde_instelling")
    # specialist ggz via the huisarts is rejected far more often than basis ggz, and a GI is hardly ever overruled
    assert _p(amb_ha, ggz_hoog)[0] > 5 * _p(amb_ha, ggz)[0]
    assert _p(amb_gi, ggz_hoog)[0] < _p(amb_ha, ggz_hoog)[0] / 5
    # dyslexia care outside primary-school age, and 18+ outside residential care: often rejected
    year = {"months": 12.0}      # the usual request: a toewijzing for a year
    assert _p(amb_ha, dys, age=4.0, **year)[0] > 0.4 and _p(amb_ha, dys, age=9.0, **year)[0] < 0.05
    assert _p(amb_ha, ggz, age=19.0, **year)[0] > 0.4
    vb = _cell("overig_verblijf", "huisarts")
    assert _p(vb, verblijf, age=19.0, **year)[0] < _p(amb_ha, ggz, age=19.0, **year)[0] / 3      # verlengde jeugdhulp
    # residential care and first requests go 'in onderzoek' more often; a follow-up is never rejected
    assert _p(vb, verblijf)[1] > 3 * _p(amb_ha, ggz)[1]
    assert _p(amb_ha, ggz, oorsprong=0)[1] > 2 * _p(amb_ha, ggz, oorsprong=1)[1]
    assert _p(amb_ha, ggz_hoog, oorsprong=3)[0] == 0.0
    # an aanbieder without a contract for the product: rejected most of the time
    aanbieders = np.arange(400)
    missing = decisions.no_contract(42, 0, aanbieders, np.full(400, ggz))
    assert 0 < missing.mean() < 0.15
    without, with_ = int(aanbieders[missing][0]), int(aanbieders[~missing][0])
    assert _p(amb_ha, ggz, aanbieder=without, **year)[0] > 0.4 and _p(amb_ha, ggz, aanbieder=with_, **year)[0] < 0.05


def test_rejections_carry_a_reden_from_the_code_list(twente_2024):
    from synthetic_data.reference import codelists

    _, tables = twente_2024
    a = tables["antwoorden"].filter(pl.col("verzoek_antwoord") == "1")
    redenen = a["reden_afwijzing"].value_counts()
    assert a.height and a["reden_afwijzing"].is_not_null().all()
    assert set(redenen["reden_afwijzing"]) >= {"3", "4", "7", "9"}
    allowed = {str(k) for k in codelists()["reden_afwijzing"]}
    assert set(redenen["reden_afwijzing"]) <= allowed


def test_best_answers_predict_minority_answers_where_they_are_likely():
    p = np.array([[0.9, 0.05, 0.05]] * 8 + [[0.45, 0.5, 0.05], [0.5, 0.1, 0.4]])
    d = decisions.best_answers(p)
    assert d[:8].tolist() == [0] * 8 and d[8] == 1 and d[9] == 2


def test_the_models_own_predictions_beat_the_majority_baseline(triage):
    from experiments.teams.reference.triage_meerderheid import triage_meerderheid
    from experiments.teams.voorbeeld.triage_frequenties import triage_frequenties

    d = triage
    majority = d.inputs["labels"]["antwoord"].mode().sort()[0]
    flat = ex.score(d.task, d.inputs["to_predict"].with_columns(antwoord=pl.lit(majority)), d.truth)
    ref = ex.score(d.task, triage_meerderheid(d.inputs), d.truth)
    learned = ex.score(d.task, triage_frequenties(d.inputs), d.truth)
    ceiling = ex.score(d.task, d.truth.select(*KEY, pl.col("ceiling").alias("antwoord")), d.truth)
    assert ceiling["score"] == pytest.approx(ref["ceiling"])
    assert ref["ceiling"] >= 0.55 and ref["ceiling"] >= max(flat["score"], ref["score"]) + 0.15
    # a simple learner on the training year lands between the floor and the ceiling
    assert ref["score"] + 0.05 < learned["score"] < ref["ceiling"]


def test_the_ceiling_stays_out_of_the_hand_out(triage):
    d = triage
    assert "ceiling" in d.truth.columns
    for name, df in d.inputs.items():
        assert not {"ceiling", "p_afwijzing", "p_onderzoek", "_p_afwijzing", "_p_onderzoek"} & set(df.columns), name


@pytest.mark.parametrize("task, params, name", [
    ("verzoek_triage", {}, "triage_meerderheid"),
    ("declaratie_controle", {"scale": 0.1}, "declaratie_regels"),
    ("zorgvraag_forecast", {"scale": 0.3}, "forecast_jaargemiddelde"),
])
def test_every_task_reports_its_ceiling_at_or_above_the_baseline(task_data, task, params, name):
    exp = next(e for e in ex.discover() if e.name == name)
    d = task_data(task, **params)
    s = ex.score(task, exp(d.inputs), d.truth)
    assert s["ceiling"] is not None and s["ceiling"] >= s["score"], s
    if task == "zorgvraag_forecast":
        assert s["ceiling_mase"] < s["baseline_mase"] and s["ceiling_mase"] < s["mase"]
    if task == "declaratie_controle":
        assert s["ceiling"] < 1.0 and s["ceiling_recall"] > s["recall"]
