"""Reference for verzoek_triage: the training year's most common answer per group of similar requests.

Groups: adult (18 or older at the requested start) x productcategorie; a group with fewer than 20 training requests
falls back to the adult/minor group, then to the overall most common answer.
"""
import polars as pl

from experiments import experiment

MIN_GROUP = 20


def _features(verzoeken: pl.DataFrame) -> pl.DataFrame:
    age = (pl.col("toewijzing_ingangsdatum") - pl.col("geboortedatum")).dt.total_days() / 365.25
    return verzoeken.select("agb_code", "referentie_aanbieder", (age >= 18).alias("volwassen"), "product_categorie")


def _majority(train: pl.DataFrame, by: list[str], name: str) -> pl.DataFrame:
    counts = train.group_by(*by, "antwoord").len().sort([*by, "len", "antwoord"], descending=[*[False] * len(by), True, False])
    return counts.group_by(by, maintain_order=True).agg(
        pl.col("antwoord").first().alias(name), pl.col("len").sum().alias(f"{name}_n"))


@experiment(name="triage_meerderheid", task="verzoek_triage",
            description="Most common first answer of the training year per adult/minor and productcategorie")
def triage_meerderheid(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    key = ["agb_code", "referentie_aanbieder"]
    features = _features(tables["verzoeken"])
    train = tables["labels"].join(features, on=key)
    overall = train["antwoord"].value_counts(sort=True)["antwoord"][0]
    fine = _majority(train, ["volwassen", "product_categorie"], "fijn")
    coarse = _majority(train, ["volwassen"], "grof")
    x = tables["to_predict"].join(features, on=key, how="left", maintain_order="left") \
        .join(fine, on=["volwassen", "product_categorie"], how="left", maintain_order="left") \
        .join(coarse, on="volwassen", how="left", maintain_order="left")
    return x.select(*key, pl.when(pl.col("fijn_n") >= MIN_GROUP).then("fijn")
                    .when(pl.col("grof_n") >= MIN_GROUP).then("grof")
                    .otherwise(pl.lit(overall)).alias("antwoord"))
