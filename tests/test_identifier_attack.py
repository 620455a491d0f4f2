"""Identifiers give nothing away (issue 9): an attack on the identifier values alone.

A classifier that sees only an identifier (its digits as a number, its length, last character, first three
characters, or its shape with every digit written as 9) must not tell the records a fault dirtied from clean ones,
nor the answer a JW315 request will get. The iJw links themselves (VorigReferentieNummer, the ToewijzingNummer on a
prestatie) are information a gemeente has and are not attacked here: only the values.

Each distinct (gemeente, value) counts once (for requests: (aanbieder, value)): the monthly lines of one toewijzing
share its ids, and counting every line would treat one value as many independent observations.
Statistics, per identifier column and fault type (or answer class) with at least MIN_RECORDS distinct values:
- AUC of the numeric value (its digits), faulty against clean, over pairs within one gemeente (an attacker sees the
  gemeente, and numbers may be given per gemeente): within 0.4-0.6. Under the null hypothesis its standard error is
  sqrt((n1 + n2 + 1) / (12 n1 n2)), at most 0.029 for n1 >= 100 and n2 >> n1, so the band is about +-3.4 SE: one
  comparison in ~1800 fails by chance, while a leak of 0.1 AUC or more does not pass.
- For each categorical feature: the share of faulty values whose feature value never occurs among clean ones, and the
  total variation distance between the two distributions. Both are compared with their distribution under random
  labels (the faulty counts per category drawn hypergeometrically from the pooled counts) and may be at most Z_MAX
  standard deviations above its mean. A prefix, length or last digit that only faults get is caught; a first-3 value
  of a rare class that is unseen by sampling alone is not a finding.
- Whether the identifier is there at all (share of rows with a value), tested the same way, except for
  VorigReferentieNummer: the standard puts it on credit lines only, and debet/credit is a column of its own.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from synthetic_data import GeneratorConfig, generate
from synthetic_data.faults import inject_faults
from synthetic_data.ijw import key_expr
from synthetic_data.privacy import fresh_numbers, opaque_number

ID_COLUMNS = ["client_id", "bsn", "toewijzing_nummer", "referentie_aanbieder", "referentie_nummer",
              "vorig_referentie_nummer", "declaratie_nummer"]
MIN_RECORDS = 100
AUC_BAND = (0.4, 0.6)
Z_MAX = 5.0
# The unseen share is near 0 under the null and very skewed (one faulty value in a category that happens to be empty
# among the clean ones is 1/n1): its SD is floored so that an excess below UNSEEN_TOL is never a finding.
UNSEEN_TOL = 0.02
DRAWS = 400
FEATURES = ["length", "last", "first3", "shape"]
# The identifier value is the fault itself: a BSN typo fails the elfproef by design (CS002 finds it from the digits).
VALUE_IS_THE_FAULT = {("bsn_elfproef_invalid", "bsn"), ("bsn_missing", "bsn")}


# ------------------------------------------------------------------------------------------------------ statistics

def _features(values: pl.Series) -> pl.DataFrame:
    s = values.cast(pl.String)
    return pl.DataFrame({
        "numeric": s.str.replace_all(r"[^0-9]", "").cast(pl.Float64, strict=False),
        "length": s.str.len_chars().cast(pl.String),
        "last": s.str.slice(-1),
        "first3": s.str.slice(0, 3),
        "shape": s.str.replace_all(r"[0-9]", "9"),
    })


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney)."""
    ranks = pl.Series(np.concatenate([pos, neg])).rank("average").to_numpy()
    n1, n2 = len(pos), len(neg)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n2))


def stratified_auc(pos: pl.DataFrame, neg: pl.DataFrame) -> float:
    """AUC over pairs within the same stratum (gemeente or aanbieder): ids may be numbered per gemeente, and an
    attacker sees the gemeente too. Per-stratum AUCs weighted by their number of pairs."""
    num, den = 0.0, 0.0
    for (s,), p in pos.group_by("stratum"):
        q = neg.filter(pl.col("stratum") == s)
        a, b = p["numeric"].drop_nulls().to_numpy(), q["numeric"].drop_nulls().to_numpy()
        if len(a) and len(b):
            num += auc(a, b) * len(a) * len(b)
            den += len(a) * len(b)
    return num / den if den else float("nan")


def categorical_z(pos: pl.Series, neg: pl.Series, rng: np.random.Generator) -> dict:
    """Unseen share and total variation distance of `pos` against `neg`, and how many null SDs above the null mean."""
    cats, inv = np.unique(np.concatenate([pos.to_numpy(), neg.to_numpy()]).astype(str), return_inverse=True)
    n1, n2 = len(pos), len(neg)
    total = np.bincount(inv, minlength=len(cats))
    f_obs = np.bincount(inv[:n1], minlength=len(cats))

    def stats(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = total - f
        unseen = np.where(c == 0, f, 0).sum(axis=-1) / n1
        tvd = 0.5 * np.abs(f / n1 - c / n2).sum(axis=-1)
        return unseen, tvd

    u_obs, t_obs = stats(f_obs)
    u_null, t_null = stats(rng.multivariate_hypergeometric(total, n1, size=DRAWS))

    def z(obs, null, floor=0.0):
        sd = max(null.std(), floor)
        return float((obs - null.mean()) / sd) if sd > 0 else (0.0 if obs <= null.mean() else float("inf"))

    return {"unseen": float(u_obs), "z_unseen": z(u_obs, u_null, UNSEEN_TOL / Z_MAX),
            "tvd": float(t_obs), "z_tvd": z(t_obs, t_null)}


def compare(column: str, group: str, pos: pl.DataFrame, neg: pl.DataFrame, rng: np.random.Generator) -> dict:
    """`pos` and `neg` have columns stratum and value. Each distinct (stratum, value) counts once: the lines of one
    toewijzing or client share its ids, and counting them all would treat one value as many observations."""
    def prep(df: pl.DataFrame) -> pl.DataFrame:
        df = df.drop_nulls("value").unique(["stratum", "value"]).sort("stratum", "value")
        return pl.concat([df.select("stratum"), _features(df["value"])], how="horizontal")
    row = {"column": column, "group": group, "rows": pos.height}
    if min(pos.height, neg.height) < MIN_RECORDS:
        return row
    # whether the identifier is there at all (per row); a VorigReferentieNummer is there exactly on credit lines
    row["present"] = pos["value"].is_not_null().mean()
    row["z_present"] = 0.0 if column == "vorig_referentie_nummer" else max(
        categorical_z(pos["value"].is_null(), neg["value"].is_null(), rng).values())
    fp, fn = prep(pos), prep(neg)
    row.update(n=fp.height, n_rest=fn.height, auc=None, **{f"z_{f}": None for f in FEATURES},
               **{f"unseen_{f}": None for f in FEATURES})
    if min(fp.height, fn.height) >= MIN_RECORDS:
        row["auc"] = stratified_auc(fp, fn)
        for f in FEATURES:
            st = categorical_z(fp[f], fn[f], rng)
            row[f"unseen_{f}"] = st["unseen"]
            row[f"z_{f}"] = max(st["z_unseen"], st["z_tvd"])
    return row


def _pairs(df: pl.DataFrame, stratum: str, col: str) -> pl.DataFrame:
    return df.select(pl.col(stratum).cast(pl.String).alias("stratum"), pl.col(col).cast(pl.String).alias("value"))


def fault_table(dirty: dict[str, pl.DataFrame], truth: pl.DataFrame) -> pl.DataFrame:
    """One row per (table, identifier column, fault type) with enough records: AUC and categorical statistics."""
    rng = np.random.default_rng(0)
    rows = []
    for table in sorted(truth["table"].unique().to_list()):
        df = dirty[table]
        keyed = df.with_columns(key_expr(table).alias("_key"))
        t = truth.filter(pl.col("table") == table).select("key", "fault_type")
        clean = keyed.join(t, left_on="_key", right_on="key", how="anti")
        for fault in sorted(t["fault_type"].unique().to_list()):
            faulty = keyed.join(t.filter(pl.col("fault_type") == fault), left_on="_key", right_on="key", how="semi")
            for col in ID_COLUMNS:
                if col not in df.columns or (fault, col) in VALUE_IS_THE_FAULT:
                    continue
                row = compare(col, fault, _pairs(faulty, "gemeente_code", col), _pairs(clean, "gemeente_code", col), rng)
                if "present" in row:
                    rows.append({"table": table, **row})
    return pl.DataFrame(rows)


def triage_table(labels: pl.DataFrame) -> pl.DataFrame:
    """referentie_aanbieder against each answer class, one-vs-rest."""
    rng = np.random.default_rng(1)
    rows = []
    for answer in sorted(labels["antwoord"].unique().to_list()):
        pos = _pairs(labels.filter(pl.col("antwoord") == answer), "agb_code", "referentie_aanbieder")
        neg = _pairs(labels.filter(pl.col("antwoord") != answer), "agb_code", "referentie_aanbieder")
        row = compare("referentie_aanbieder", answer, pos, neg, rng)
        if "present" in row:
            rows.append({"table": "verzoeken", **row})
    return pl.DataFrame(rows)


def leaks(stats: pl.DataFrame) -> pl.DataFrame:
    lo, hi = AUC_BAND
    bad = ~pl.col("auc").is_between(lo, hi).fill_null(True)
    for f in [*FEATURES, "present"]:
        bad = bad | (pl.col(f"z_{f}") > Z_MAX).fill_null(False)
    return stats.filter(bad)


def _report(bad: pl.DataFrame) -> str:
    with pl.Config(tbl_rows=200, tbl_cols=20, tbl_width_chars=250, fmt_str_lengths=40, float_precision=3):
        return str(bad.select("table", "column", "group", "n", "auc", *[f"z_{f}" for f in FEATURES],
                              *[f"unseen_{f}" for f in FEATURES], "present", "z_present"))


# ---------------------------------------------------------------------------------------------------------- data

@pytest.fixture(scope="module")
def clean():
    return generate(GeneratorConfig(region="twente", years="2023-2024", seed=7, scale=0.3))


@pytest.fixture(scope="module")
def corrupt(clean):
    return inject_faults(clean, profile="stress", seed=7)


@pytest.fixture(scope="module")
def triage_labels(task_data):
    data = task_data("verzoek_triage", scale=0.3)
    return pl.concat([data.inputs["labels"], data.truth.select(data.inputs["labels"].columns)])


# --------------------------------------------------------------------------------------------------------- tests

def test_opaque_number_is_a_keyed_bijection():
    for size in (1, 10, 1000, 90_000_000):
        idx = np.arange(min(size, 50_000))
        out = opaque_number(3, 1, idx, 7, size=size)
        assert len(np.unique(out)) == len(idx) and out.min() >= 0 and out.max() < size
    assert sorted(opaque_number(3, 1, np.arange(1000), size=1000)) == list(range(1000))
    a = opaque_number(3, 1, np.arange(1000), size=10**15)
    assert (a == opaque_number(3, 1, np.arange(1000), size=10**15)).all()
    for other in (opaque_number(4, 1, np.arange(1000), size=10**15), opaque_number(3, 2, np.arange(1000), size=10**15),
                  opaque_number(3, 1, np.arange(1000), 5, size=10**15)):
        assert (a != other).mean() > 0.99                      # seed, domain and scope each give another permutation
    assert abs(np.corrcoef(np.arange(1000), a)[0, 1]) < 0.1      # no order survives
    with pytest.raises(ValueError):
        opaque_number(3, 1, [10], size=10)
    fresh = fresh_numbers(np.random.default_rng(0), 50, 0, 60, taken=range(10))
    assert len(set(fresh)) == 50 and min(fresh) >= 10


def test_identifiers_are_fixed_width_unique_and_keep_the_ijw_links(clean):
    fmt = {"client_id": r"^C\d{9}$", "toewijzing_nummer": r"^[1-9]\d{7}$", "referentie_aanbieder": r"^\d{16}$",
           "referentie_nummer": r"^\d{15}$", "vorig_referentie_nummer": r"^\d{15}$", "declaratie_nummer": r"^\d{10}$"}
    for name, df in clean.items():
        for col, pattern in fmt.items():
            if col in df.columns:
                values = df[col].drop_nulls().cast(pl.String)
                assert values.str.contains(pattern).all(), (name, col)
    j = clean["jeugdigen"]
    assert j["client_id"].n_unique() == j["bsn"].n_unique() == j.select("client_id", "bsn").unique().height
    tw = clean["toewijzingen"]
    per_nummer = tw.group_by("gemeente_code", "toewijzing_nummer").agg(
        pl.col(c).n_unique() for c in ("bsn", "agb_code", "product_code"))
    assert per_nummer.select(pl.max_horizontal("bsn", "agb_code", "product_code").max()).item() == 1
    p = clean["prestaties"]
    assert not p.select(pl.struct("agb_code", "referentie_nummer").is_duplicated().any()).item()
    credits = p.filter(pl.col("debet_credit") == "C")
    debets = p.filter(pl.col("debet_credit") == "D").select("agb_code", pl.col("referentie_nummer").alias("vorig_referentie_nummer"))
    assert credits.height > 0 and credits.join(debets, on=["agb_code", "vorig_referentie_nummer"], how="anti").height == 0
    # a line the gemeente rejected for an unknown ToewijzingNummer (9338) is in the JW323 as received; accepted ones link
    accepted = p.join(clean["declaratie_antwoord_prestaties"], on=["agb_code", "referentie_nummer"], how="anti")
    assert accepted.join(tw, on=["gemeente_code", "toewijzing_nummer"], how="anti").height == 0
    assert not clean["declaraties"].select(pl.struct("agb_code", "declaratie_nummer").is_duplicated().any()).item()
    v = clean["verzoeken"]
    assert not v.select(pl.struct("agb_code", "referentie_aanbieder").is_duplicated().any()).item()
    # a JW301 repeats the ReferentieAanbieder of the JW315 or JW317 it honours (TR379)
    asked = pl.concat([v.select("agb_code", "referentie_aanbieder"),
                       clean["wijzigingsverzoeken"].select("agb_code", "referentie_aanbieder")])
    assert tw.filter(pl.col("referentie_aanbieder").is_not_null()).join(
        asked, on=["agb_code", "referentie_aanbieder"], how="anti").height == 0


def test_statistics_see_a_planted_leak():
    # the attack has power: ids that end in 9 only for faulty rows, or are numbered above the clean ones, are found
    rng = np.random.default_rng(5)
    clean = pl.Series([f"{v:08d}" for v in rng.integers(10**7, 10**8, 5000) // 10 * 10 + rng.integers(0, 9, 5000)])
    suffix = pl.Series([f"{v:08d}" for v in rng.integers(10**7, 10**8, 200) // 10 * 10 + 9])
    high = pl.Series([f"{v:08d}" for v in rng.integers(9 * 10**7, 10**8, 200)])
    frame = lambda v: pl.DataFrame({"stratum": "g", "value": v})  # noqa: E731
    a = compare("x", "suffix", frame(suffix), frame(clean), rng)
    b = compare("x", "high", frame(high), frame(clean), rng)
    assert AUC_BAND[0] < a["auc"] < AUC_BAND[1] and a["z_last"] > Z_MAX and a["unseen_last"] == 1.0
    assert b["auc"] > 0.9


def test_every_fault_type_is_tested_on_its_identifiers(corrupt):
    dirty, truth = corrupt
    stats = fault_table(dirty, truth).filter(pl.col("auc").is_not_null())
    tested = set(stats["group"].to_list())
    assert set(truth["fault_type"].unique().to_list()) == tested
    assert {"client_id", "toewijzing_nummer", "referentie_nummer", "vorig_referentie_nummer", "declaratie_nummer",
            "bsn", "referentie_aanbieder"} <= set(stats["column"].to_list())


def test_identifiers_do_not_separate_faulty_records(corrupt):
    dirty, truth = corrupt
    bad = leaks(fault_table(dirty, truth))
    assert bad.height == 0, "identifiers separate faulty from clean records:\n" + _report(bad)


def test_request_reference_does_not_tell_the_answer(triage_labels):
    stats = triage_table(triage_labels)
    assert stats.height == 3
    bad = leaks(stats)
    assert bad.height == 0, "referentie_aanbieder separates the answers:\n" + _report(bad)
