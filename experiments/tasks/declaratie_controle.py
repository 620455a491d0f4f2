"""Task declaratie_controle: accept or reject every claim line (JW323 prestatie) of a dirty dataset's later months.

Hands over: the dirty tables of `inject_faults` as the gemeente holds them: reference tables, jeugdigen, verzoeken,
antwoorden, wijzigingsverzoeken, toewijzingen, zorgstarts, zorgstops, declaraties and prestaties, and the gemeente's past decisions: its
JW325 answers (`declaratie_antwoorden`) and rejected lines (`declaratie_antwoord_prestaties`, with retourcode) of the
declaraties of the first quarter of the months (declaratie begindatum before `decision_cutoff`; for one year: January
to March).
Hidden: `trajecten` (the simulation's own view), the JW325s of the later declaraties (what is being decided) and the
fault ground truth. `prestaties` gets a column `regel` (1..n, the order of receipt): an exact duplicate shares its
ReferentieNummer with the original, so `regel` is what a prediction refers to. `to_predict` lists regel, agb_code and
referentie_nummer of the lines of the later declaraties (the earlier lines stay in `prestaties` as history).

Predictions: one row per regel of `to_predict` with besluit "accept" or "reject" and, for a rejection, a retourcode
from the iJw code list (synthetic_data codelists.yaml `retourcode`).

Truth: a line must be rejected when the ground truth holds it (table prestaties; of an exact duplicate only the
copies received after the first), or when it belongs to a declaratie whose header the ground truth holds (period no
calendar month, total not the sum of its lines: the gemeente rejects the whole declaratie). A debatable fault counts
for neither side, as in synthetic_data.faults.score. Statistical-only faults (upcoding) must be rejected too: the
money is wrongly paid all the same; no rule finds them, so the reference experiment cannot. A line the gemeente
itself rejected in its (hidden) JW325 (a normal wrong claim, not an injected fault: `gemeente_afgewezen`) counts for
neither side either, unless it is also a fault target: rejecting it is right, accepting it costs nothing that the
gemeente had not already refused. The past decisions carry only such normal rejections: the injected faults are
data errors the gemeente's JW325s do not know about.

Ceiling: the F1 of a checker that rejects exactly the lines whose fault a check on the hand-out can decide (every
fault type but the statistical-only ones: precision 1, recall the knowable share), reported as `ceiling` and
`ceiling_recall`. An experiment can pass it only by catching statistical-only faults, which no line-level rule can
know; the oracle that knows those too scores 1.0.

Score: F1 of the rejections (leaderboard `score`, higher is better), with precision, recall, euros wrongly paid
(lines that had to be rejected but were accepted) and wrongly withheld (clean lines rejected), at the claimed amount
of the line as received; recall per fault type, and the share of correct rejections that carry an expected retourcode
(only fault types with a matching code in the list count).
"""
from __future__ import annotations

import re

import polars as pl

from synthetic_data import GeneratorConfig, generate
from synthetic_data.faults import catalogue, inject_faults
from synthetic_data.faults.score import STATISTICAL, rule_codes
from synthetic_data.reference import codelists

from ..errors import PredictionError
from ._common import TaskData, check_columns, check_rows, check_values, f1, ratio, task_data

NAME = "declaratie_controle"
DESCRIPTION = "Accept or reject every claim line (prestatie) of a dirty dataset, with an iJw retourcode"
SCORE = "F1 of the rejections (higher is better)"
PREDICTION_SCHEMA = {"regel": pl.Int64, "besluit": pl.String, "retourcode": pl.String}
BESLUIT = ["accept", "reject"]
HIDDEN = ("trajecten",)
# the gemeente's decisions: handed over for the declaraties before the cutoff only
DECISIONS = ("declaratie_antwoorden", "declaratie_antwoord_prestaties")
# for docs/sealed.md: the rows of handed-over tables that stay hidden
HIDDEN_NOTE = ("declaratie_antwoorden and declaratie_antwoord_prestaties of the declaraties to predict (after the "
               "first quarter of the months)")
DEFAULTS = {"region": "twente", "years": "2024", "scale": 0.3, "profile": "realistic"}
HANDED_OVER = ("gemeenten", "aanbieders", "producten", "jeugdigen", "verzoeken", "antwoorden", "wijzigingsverzoeken",
               "toewijzingen", "zorgstarts", "zorgstops", "declaraties", "prestaties", "declaratie_antwoorden",
               "declaratie_antwoord_prestaties", "to_predict")
# The body of the function `zandbak experiment new` writes: a working start, ready to be improved.
STARTER = '''\
    """Accept or reject every claim line of to_predict: one row per regel with besluit and retourcode."""
    prestaties = tables["prestaties"].join(tables["to_predict"].select("regel"), on="regel", how="semi")
    # Past decisions: tables["declaratie_antwoord_prestaties"] holds the lines the gemeente rejected earlier.
    # Start: reject a line whose amount is not volume x tarief (TR346, retourcode 9346). Add your own checks:
    # tables["toewijzingen"], ["producten"], ["zorgstops"] ... hold what you need.
    wrong_amount = pl.col("ingediend_bedrag") != pl.col("geleverd_volume") * pl.col("product_tarief")
    return prestaties.select(
        "regel",
        pl.when(wrong_amount).then(pl.lit("reject")).otherwise(pl.lit("accept")).alias("besluit"),
        pl.when(wrong_amount).then(pl.lit("9346")).otherwise(pl.lit(None, pl.String)).alias("retourcode"),
    )
'''


def retourcodes() -> list[str]:
    return sorted(codelists()["retourcode"])


def expected_retourcodes() -> dict[str, list[str]]:
    """Fault type -> the retourcodes whose description names one of the fault's iJw rules, e.g. 9346 for TR346."""
    by_rule: dict[str, list[str]] = {}
    for code, text in codelists()["retourcode"].items():
        for rule in re.findall(r"\(([A-Z]{2}\d+)\)", str(text)):
            by_rule.setdefault(rule, []).append(str(code))
    out = {}
    for f in catalogue():
        rules = {f["rule_code"], *rule_codes(f["rule_id"])} - {None}
        out[f["id"]] = sorted({c for r in rules for c in by_rule.get(r, [])})
    return out


def prepare(seed: int = 42, fault_seed: int | None = None, region: str = DEFAULTS["region"], years: str = DEFAULTS["years"],
            scale: float = DEFAULTS["scale"], profile: str = DEFAULTS["profile"]) -> TaskData:
    config = GeneratorConfig(region=region, years=years, seed=seed, scale=scale)
    dirty, ground_truth = inject_faults(generate(config), profile=profile,
                                       seed=seed if fault_seed is None else fault_seed)
    prestaties = dirty["prestaties"].with_row_index("regel", offset=1).with_columns(pl.col("regel").cast(pl.Int64))
    cutoff = decision_cutoff(dirty["declaraties"])
    past = dirty["declaraties"].filter(pl.col("begindatum") < cutoff).select("agb_code", "declaratie_nummer")
    inputs = {name: df for name, df in dirty.items() if name not in HIDDEN and name not in DECISIONS}
    for name in DECISIONS:
        inputs[name] = dirty[name].join(past, on=["agb_code", "declaratie_nummer"], how="semi", maintain_order="left")
    inputs["prestaties"] = prestaties
    asked = prestaties.join(past, on=["agb_code", "declaratie_nummer"], how="anti", maintain_order="left")
    inputs["to_predict"] = asked.select("regel", "agb_code", "referentie_nummer")
    params = {**config.as_dict(), "profile": profile}
    params.pop("seed")
    truth = build_truth(prestaties, ground_truth, dirty["declaratie_antwoord_prestaties"])
    return task_data(NAME, seed, params, inputs, truth.join(asked.select("regel"), on="regel", how="semi"))


def decision_cutoff(declaraties: pl.DataFrame):
    """The first declaratie month whose decisions are hidden: after the first quarter of the months in the data."""
    months = declaraties["begindatum"].unique().sort()
    return months[len(months) // 4]


def build_truth(prestaties: pl.DataFrame, ground_truth: pl.DataFrame,
                rejected: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per regel: must_reject, debatable, gemeente_afgewezen (the gemeente rejected the line in its JW325:
    neutral unless a fault), the fault behind it and the euros at stake."""
    line_key, decl_key = ["agb_code", "referentie_nummer"], ["agb_code", "declaratie_nummer"]
    lines = ground_truth.filter(pl.col("table") == "prestaties").unique(line_key, keep="first", maintain_order=True)
    heads = ground_truth.filter(pl.col("table") == "declaraties").unique(decl_key, keep="first", maintain_order=True)
    cols = ["fault_type", "debatable", "detectability"]
    p = prestaties.with_columns(pl.int_range(pl.len()).over(line_key).alias("_occ")).join(
        lines.select(*line_key, *cols), on=line_key, how="left", maintain_order="left"
    ).join(heads.select(*decl_key, *[pl.col(c).alias(f"decl_{c}") for c in cols]), on=decl_key, how="left",
           maintain_order="left")
    # an exact duplicate shares the key of its original: only the later copies are wrong
    line_fault = pl.when((pl.col("fault_type") == "duplicate_prestatie") & (pl.col("_occ") == 0)).then(None) \
        .otherwise(pl.col("fault_type"))
    p = p.with_columns(line_fault.alias("fault_type"))
    on_line = pl.col("fault_type").is_not_null()
    p = p.with_columns(
        pl.when(on_line).then(pl.lit("prestaties")).when(pl.col("decl_fault_type").is_not_null())
        .then(pl.lit("declaraties")).alias("fault_table"),
        pl.coalesce("fault_type", "decl_fault_type").alias("fault_type"),
        pl.when(on_line).then("detectability").otherwise("decl_detectability").alias("detectability"),
        (pl.when(on_line).then("debatable").otherwise(False).fill_null(False)
         | pl.col("decl_debatable").fill_null(False)).alias("debatable"),
    )
    if rejected is None:
        p = p.with_columns(pl.lit(False).alias("gemeente_afgewezen"))
    else:
        p = p.join(rejected.select(*line_key).unique().with_columns(pl.lit(True).alias("gemeente_afgewezen")),
                   on=line_key, how="left", maintain_order="left").with_columns(pl.col("gemeente_afgewezen").fill_null(False))
    expected = expected_retourcodes()
    codes = pl.DataFrame({"fault_type": list(expected), "expected_retourcodes": [",".join(v) or None
                                                                                 for v in expected.values()]},
                         schema={"fault_type": pl.String, "expected_retourcodes": pl.String})
    return p.join(codes, on="fault_type", how="left", maintain_order="left").select(
        "regel", "agb_code", "referentie_nummer",
        (pl.col("fault_type").is_not_null() & ~pl.col("debatable")).alias("must_reject"),
        "debatable", "gemeente_afgewezen", "fault_type", "fault_table", "detectability", "expected_retourcodes",
        (pl.col("ingediend_bedrag").abs() / 100).alias("bedrag_euro"),
    )


def validate_predictions(df) -> pl.DataFrame:
    df = check_columns(NAME, df, PREDICTION_SCHEMA, nullable={"retourcode"})
    check_values(NAME, df, "besluit", BESLUIT)
    check_values(NAME, df, "retourcode", retourcodes())
    missing = df.filter((pl.col("besluit") == "reject") & pl.col("retourcode").is_null())
    if missing.height:
        raise PredictionError(f"{NAME}: regel {missing['regel'][0]} is rejected without a retourcode "
                              f"({missing.height} rows); a rejection needs a code from the retourcode list")
    return df


def score(predictions, truth: pl.DataFrame) -> dict:
    pred = validate_predictions(predictions)
    check_rows(NAME, pred, truth, ["regel"])
    j = truth.join(pred, on="regel", how="left").with_columns((pl.col("besluit") == "reject").alias("_rej"))
    neutral = pl.col("debatable")
    if "gemeente_afgewezen" in j.columns:     # a line the gemeente rejected itself, no fault: neither side
        neutral = neutral | (pl.col("gemeente_afgewezen") & pl.col("fault_type").is_null())
    counted = j.filter(~neutral)
    must, rej = pl.col("must_reject"), pl.col("_rej")
    tp = counted.filter(must & rej).height
    fp = counted.filter(~must & rej).height
    fn = counted.filter(must & ~rej).height
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    euro = lambda cond: round(float(counted.filter(cond)["bedrag_euro"].sum()), 2)  # noqa: E731
    with_code = counted.filter(must & rej & pl.col("expected_retourcodes").is_not_null())
    code_ok = with_code.filter(pl.col("expected_retourcodes").str.split(",").list.contains(pl.col("retourcode")))
    by_fault = (counted.filter(must).group_by("fault_type").agg(pl.len().alias("lines"), rej.sum().alias("rejected"))
                .sort("fault_type"))
    score_f1 = f1(precision, recall)
    # the ceiling: a checker that knows every fault a check on the hand-out can decide (all but statistical-only)
    knowable = counted.filter(must & (pl.col("detectability").fill_null("") != STATISTICAL)).height
    ceiling_recall = ratio(knowable, tp + fn)
    return {
        "score": score_f1 or 0.0,
        "precision": precision, "recall": recall, "f1": score_f1,
        "ceiling": f1(1.0, ceiling_recall) if ceiling_recall is not None else None, "ceiling_recall": ceiling_recall,
        "tp": tp, "fp": fp, "fn": fn,
        "lines": j.height, "rejected": j.filter(rej).height, "must_reject": counted.filter(must).height,
        "debatable_lines": j.filter(pl.col("debatable")).height,
        "gemeente_rejected_lines": j.height - counted.height - j.filter(pl.col("debatable")).height,
        "euro_wrongly_paid": euro(must & ~rej), "euro_wrongly_withheld": euro(~must & rej),
        "euro_correctly_withheld": euro(must & rej),
        "retourcode_match": ratio(code_ok.height, with_code.height),
        "recall_by_fault_type": {r["fault_type"]: {"lines": r["lines"], "rejected": r["rejected"],
                                                   "recall": r["rejected"] / r["lines"]}
                                 for r in by_fault.iter_rows(named=True)},
    }
