"""Task verzoek_triage: predict the gemeente's first answer to each JW315 verzoek om toewijzing.

The answer to predict is the FIRST one the gemeente gave: `in_onderzoek` when it first sent a JW319 with
VerzoekAntwoord 2 (whatever it decided later), `afwijzing` when its first answer was a JW319 with VerzoekAntwoord 1,
otherwise `toewijzing` (it granted the request with a JW301). That is what a triage at the front desk decides.

Data: the simulation generates the training year, the test year and the year after (so every request of the test
year has its answer, also those sent in December). Hands over: gemeenten, aanbieders, producten; `verzoeken` sent
in the training or test year; for training-year requests only the answers: `antwoorden` (JW319), the `toewijzingen`
that honour them and `labels` (agb_code, referentie_aanbieder, antwoord, derived as above); `to_predict` lists the
test-year requests (agb_code, referentie_aanbieder). Hidden: every answer to a test-year request, and all other
tables (starts, stops and claims would reveal which test-year requests were granted).

Score: macro-F1 over the three answers (leaderboard `score`, higher is better) and accuracy, with precision, recall
and F1 per answer and the confusion matrix. A class that neither occurs nor is predicted is left out of the macro mean.

Ceiling: the answers depend on the request through the simulation's decision model (synthetic_data/decisions.py,
coefficients in care_model.yaml `request_decision`) with irreducible noise. `ceiling` (and `ceiling_accuracy`) is
the score of that model itself on the same requests, predicting with its own probabilities the answers that
maximise the macro-F1 it expects: what a perfect learner reaches on average. It comes from the simulation's
internals and is sealed with the truth; the reference baseline is the floor.
"""
from __future__ import annotations

import polars as pl

from synthetic_data import GeneratorConfig, generate
from synthetic_data.decisions import best_answers, request_probabilities

from ._common import TaskData, check_columns, check_rows, check_values, f1, ratio, task_data

NAME = "verzoek_triage"
DESCRIPTION = "Predict the gemeente's first answer to each JW315 request: toewijzing, afwijzing or in_onderzoek"
SCORE = "macro-F1 over the three answers (higher is better)"
ANTWOORDEN = ["toewijzing", "afwijzing", "in_onderzoek"]
KEY = ["agb_code", "referentie_aanbieder"]
PREDICTION_SCHEMA = {"agb_code": pl.String, "referentie_aanbieder": pl.String, "antwoord": pl.String}
DEFAULTS = {"region": "twente", "year": 2024, "scale": 0.3}
HANDED_OVER = ("gemeenten", "aanbieders", "producten", "verzoeken", "antwoorden", "toewijzingen", "labels",
               "to_predict")
# The body of the function `zandbak experiment new` writes: a working start, ready to be improved.
STARTER = '''\
    """Predict the first answer to every request of to_predict: toewijzing, afwijzing or in_onderzoek."""
    # Start: the most common answer in the training year. tables["verzoeken"] has the requests' details
    # (age, product, referrer) for training (tables["labels"]) and test requests alike.
    most_common = tables["labels"]["antwoord"].mode().sort()[0]
    return tables["to_predict"].with_columns(antwoord=pl.lit(most_common))
'''


def first_answers(verzoeken: pl.DataFrame, antwoorden: pl.DataFrame) -> pl.DataFrame:
    """KEY + antwoord: the first JW319 (in onderzoek before a rejection sent the same day), else toewijzing."""
    first = antwoorden.sort("dagtekening", pl.col("verzoek_antwoord"), descending=[False, True]).group_by(KEY).agg(
        pl.col("verzoek_antwoord").first().alias("_first"))
    return verzoeken.select(KEY).join(first, on=KEY, how="left", maintain_order="left").select(
        *KEY, pl.when(pl.col("_first") == "2").then(pl.lit("in_onderzoek"))
        .when(pl.col("_first") == "1").then(pl.lit("afwijzing"))
        .otherwise(pl.lit("toewijzing")).alias("antwoord"))


def prepare(seed: int = 42, fault_seed: int | None = None, region: str = DEFAULTS["region"], year: int = DEFAULTS["year"],
            scale: float = DEFAULTS["scale"]) -> TaskData:
    year = int(year)
    config = GeneratorConfig(region=region, years=f"{year - 1}-{year + 1}", seed=seed, scale=scale)
    t = generate(config)
    sent = pl.col("dagtekening").dt.year()
    verzoeken = t["verzoeken"].filter(sent.is_in([year - 1, year]))
    train = verzoeken.filter(sent == year - 1)
    test = verzoeken.filter(sent == year)
    answers = first_answers(verzoeken, t["antwoorden"])
    inputs = {
        "gemeenten": t["gemeenten"], "aanbieders": t["aanbieders"], "producten": t["producten"],
        "verzoeken": verzoeken,
        "antwoorden": t["antwoorden"].join(train.select(KEY), on=KEY, how="semi"),
        "toewijzingen": t["toewijzingen"].join(train.select(KEY), on=KEY, how="semi"),
        "labels": answers.join(train.select(KEY), on=KEY, how="semi"),
        "to_predict": test.select(KEY),
    }
    truth = with_ceiling(answers.join(test.select(KEY), on=KEY, how="semi"), test, config)
    params = {"region": region, "year": year, "training_year": year - 1, "scale": float(scale)}
    return task_data(NAME, seed, params, inputs, truth)


def with_ceiling(truth: pl.DataFrame, requests: pl.DataFrame, config: GeneratorConfig) -> pl.DataFrame:
    """The truth plus `ceiling`: the answer the simulation's own decision model predicts from its probabilities
    (synthetic_data.decisions.best_answers), the best any learner can do on average. Sealed with the truth."""
    probs = request_probabilities(config)
    p = requests.select(*KEY, "gemeente_code").join(probs, on=["gemeente_code", "referentie_aanbieder"], how="left",
                                                     maintain_order="left")
    share = p.select(pl.col("p_toewijzing").fill_null(1.0), pl.col("p_afwijzing").fill_null(0.0),
                     pl.col("p_onderzoek").fill_null(0.0)).to_numpy()
    ceiling = p.select(*KEY, pl.Series(ANTWOORDEN, dtype=pl.String).gather(best_answers(share)).alias("ceiling"))
    return truth.join(ceiling, on=KEY, how="left", maintain_order="left")


def validate_predictions(df) -> pl.DataFrame:
    df = check_columns(NAME, df, PREDICTION_SCHEMA)
    check_values(NAME, df, "antwoord", ANTWOORDEN)
    return df


def score(predictions, truth: pl.DataFrame) -> dict:
    pred = validate_predictions(predictions)
    check_rows(NAME, pred, truth, KEY)
    out = _macro(truth.select(*KEY, "antwoord").join(pred.rename({"antwoord": "voorspeld"}), on=KEY, how="left"))
    if "ceiling" in truth.columns:   # the simulation's own decision model on the same requests
        c = _macro(truth.select(*KEY, "antwoord", pl.col("ceiling").alias("voorspeld")))
        out |= {"ceiling": c["score"], "ceiling_accuracy": c["accuracy"]}
    return out


def _macro(j: pl.DataFrame) -> dict:
    confusion = {a: {b: j.filter((pl.col("antwoord") == a) & (pl.col("voorspeld") == b)).height for b in ANTWOORDEN}
                 for a in ANTWOORDEN}
    per_class = {}
    for c in ANTWOORDEN:
        tp = confusion[c][c]
        support = sum(confusion[c].values())
        predicted = sum(confusion[a][c] for a in ANTWOORDEN)
        if not support and not predicted:
            continue
        p, r = ratio(tp, predicted) or 0.0, ratio(tp, support) or 0.0
        per_class[c] = {"precision": p, "recall": r, "f1": f1(p, r), "support": support, "predicted": predicted}
    macro = sum(v["f1"] for v in per_class.values()) / len(per_class) if per_class else 0.0
    accuracy = ratio(j.filter(pl.col("antwoord") == pl.col("voorspeld")).height, j.height)
    return {"score": macro, "macro_f1": macro, "accuracy": accuracy, "requests": j.height,
            "per_class": per_class, "confusion": confusion}
