"""The source `zandbak experiment new` writes: a working experiment per task, ready to be improved."""

HEADER = '''"""{description}

Team {team}. Run it:  .venv/bin/zandbak experiment run {name}
Task {task}: see experiments/tasks/{task}.py for what the tables hold and how it is scored.
"""
import polars as pl

from experiments import experiment


@experiment(name="{name}", task="{task}", description="{description}")
def predict(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
'''

BODIES = {
    "declaratie_controle": '''\
    """Accept or reject every claim line: one row per regel with besluit and retourcode."""
    prestaties = tables["prestaties"]
    # Start: reject a line whose amount is not volume x tarief (TR346, retourcode 9346). Add your own checks:
    # tables["toewijzingen"], ["producten"], ["zorgstops"] ... hold what you need.
    wrong_amount = pl.col("ingediend_bedrag") != pl.col("geleverd_volume") * pl.col("product_tarief")
    return prestaties.select(
        "regel",
        pl.when(wrong_amount).then(pl.lit("reject")).otherwise(pl.lit("accept")).alias("besluit"),
        pl.when(wrong_amount).then(pl.lit("9346")).otherwise(pl.lit(None, pl.String)).alias("retourcode"),
    )
''',
    "verzoek_triage": '''\
    """Predict the first answer to every request of to_predict: toewijzing, afwijzing or in_onderzoek."""
    # Start: the most common answer in the training year. tables["verzoeken"] has the requests' details
    # (age, product, referrer) for training (tables["labels"]) and test requests alike.
    most_common = tables["labels"]["antwoord"].mode().sort()[0]
    return tables["to_predict"].with_columns(antwoord=pl.lit(most_common))
''',
    "zorgvraag_forecast": '''\
    """Forecast `aantal` new toewijzingen for every series and month of to_predict."""
    history = tables["history"]
    # Start: the mean of the last three months per gemeente and productcategorie.
    recent = history.filter(pl.col("maand") >= pl.col("maand").max().dt.offset_by("-2mo")).group_by(
        "gemeente_code", "product_categorie").agg(pl.col("aantal").mean().alias("aantal"))
    return tables["to_predict"].join(recent, on=["gemeente_code", "product_categorie"], how="left").with_columns(
        pl.col("aantal").fill_null(0.0).cast(pl.Float64))
''',
}


def render(name: str, team: str, task: str, description: str) -> str:
    return HEADER.format(name=name, team=team, task=task, description=description.replace('"', "'")) + BODIES[task]
