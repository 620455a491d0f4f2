"""Example for verzoek_triage: a frequency table learned on the training year.

Each test request gets the answer that maximises the expected macro-F1 under the answer frequencies of its group in
the training year: groups product_code x verwijzer_type x age band (0-6, 7-12, 13-15, 16-17, 18+), falling back
to productcategorie x age band and to the age band when a group has fewer than MIN_GROUP requests. The frequencies
are smoothed towards the fallback (add-k). A simple learner: the score should lie between the reference baseline
(majority per adult/minor and categorie) and the task's ceiling.
"""
import numpy as np
import polars as pl

from experiments import experiment

ANTWOORDEN = ["toewijzing", "afwijzing", "in_onderzoek"]
KEY = ["agb_code", "referentie_aanbieder"]
MIN_GROUP = 10
SMOOTH = 5.0
LEVELS = [["product_code", "verwijzer_type", "band"], ["product_categorie", "band"], ["band"]]


def _features(verzoeken: pl.DataFrame) -> pl.DataFrame:
    age = (pl.col("toewijzing_ingangsdatum") - pl.col("geboortedatum")).dt.total_days() / 365.25
    band = pl.when(age < 7).then(pl.lit("0-6")).when(age < 13).then(pl.lit("7-12")).when(age < 16) \
        .then(pl.lit("13-15")).when(age < 18).then(pl.lit("16-17")).otherwise(pl.lit("18+"))
    return verzoeken.select(*KEY, "product_code", "product_categorie", "verwijzer_type", band.alias("band"))


def _probabilities(train: pl.DataFrame, x: pl.DataFrame) -> np.ndarray:
    """Smoothed answer shares per request of x: the finest group with enough training requests, shrunk towards
    the next coarser level."""
    prior = np.tile(train["antwoord"].value_counts(normalize=True).join(
        pl.DataFrame({"antwoord": ANTWOORDEN}), on="antwoord", how="right").fill_null(0.0)
        .sort(pl.col("antwoord").replace_strict({a: i for i, a in enumerate(ANTWOORDEN)}))["proportion"].to_numpy(),
        (x.height, 1))
    p = prior
    for by in reversed(LEVELS):
        counts = train.group_by(by).agg(*[(pl.col("antwoord") == a).sum().alias(a) for a in ANTWOORDEN])
        c = x.select(by).join(counts, on=by, how="left", maintain_order="left").select(ANTWOORDEN).fill_null(0) \
            .to_numpy().astype(float)
        n = c.sum(axis=1, keepdims=True)
        p = np.where(n >= MIN_GROUP, (c + SMOOTH * p) / (n + SMOOTH), p)
    return p


def _decide(p: np.ndarray) -> np.ndarray:
    """Weighted argmax whose weights maximise the macro-F1 expected under p."""
    support, best, best_f1 = p.sum(axis=0), np.argmax(p, axis=1), -1.0
    for wa in (1, 1.5, 2, 3, 4, 6, 8, 12):
        for wo in (1, 1.5, 2, 3, 4, 6, 8, 12):
            d = np.argmax(p * np.array([1.0, wa, wo]), axis=1)
            f = np.mean([2 * p[d == k, k].sum() / (support[k] + (d == k).sum()) for k in range(3)])
            if f > best_f1:
                best, best_f1 = d, f
    return best


@experiment(name="triage_frequenties", task="verzoek_triage",
            description="Answer frequencies of the training year per product, verwijzer and age band, F1-weighted")
def triage_frequenties(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    features = _features(tables["verzoeken"])
    train = tables["labels"].join(features, on=KEY)
    x = tables["to_predict"].join(features, on=KEY, how="left", maintain_order="left")
    answer = pl.Series(ANTWOORDEN).gather(_decide(_probabilities(train, x)))
    return x.select(*KEY).with_columns(answer.alias("antwoord"))
