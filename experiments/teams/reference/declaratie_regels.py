"""Reference for declaratie_controle: the iJw rules a gemeente's claims software checks, one retourcode each.

Every line is checked against the tables the gemeente holds; the first failing rule (in the order below) gives the
retourcode. Not checked: BSN elfproef (a wrong BSN shows as 9338: no toewijzing of that client), the declaratie
headers (period, total) and anything statistical, such as one aanbieder suddenly billing more.
"""
import polars as pl

from experiments import experiment
from synthetic_data.ijw import TOEWIJZING, contract_tarief
from synthetic_data.ijw import latest_toewijzing as _latest_toewijzing


@experiment(name="declaratie_regels", task="declaratie_controle",
            description="Rule-based claim check: duplicate, credit, amount, toewijzing, product, period, stop, tariff, volume")
def declaratie_regels(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    p = tables["prestaties"]
    tw = _latest_toewijzing(tables["toewijzingen"]).select(
        *TOEWIJZING, pl.col("bsn").alias("tw_bsn"), pl.col("agb_code").alias("tw_agb"),
        pl.col("product_code").alias("tw_product_code"), pl.col("product_categorie").alias("tw_product_categorie"),
        pl.col("ingangsdatum").alias("tw_ingang"), pl.col("einddatum").alias("tw_einde"),
        pl.col("volume").alias("tw_volume"), pl.col("frequentie").alias("tw_frequentie"))
    stops = tables["zorgstops"].filter(pl.col("reden_beeindiging") != "20").group_by(
        "gemeente_code", "agb_code", "toewijzing_nummer").agg(pl.col("einddatum").max().alias("stop"))
    sent = p.select("agb_code", pl.col("referentie_nummer").alias("vorig_referentie_nummer")).unique().with_columns(
        pl.lit(True).alias("debet_bekend"))

    x = (p.join(tw, on=TOEWIJZING, how="left", maintain_order="left")
         .join(stops, on=["gemeente_code", "agb_code", "toewijzing_nummer"], how="left", maintain_order="left")
         .join(sent, on=["agb_code", "vorig_referentie_nummer"], how="left", maintain_order="left"))
    # the tarief of the contract period of the begindatum, the aanbieder's own where the region contracts per aanbieder
    x = contract_tarief(x, tables["producten"], tables["gemeenten"])
    days = (pl.col("einddatum") - pl.col("begindatum")).dt.total_days() + 1
    in_month = pl.col("begindatum").dt.month_end().dt.day()
    v, f = pl.col("tw_volume"), pl.col("tw_frequentie")
    cap = (pl.when(pl.col("eenheid") == "14").then(days.cast(pl.Float64))
           .when(f == "1").then(v * days).when(f == "2").then(v * days / 7)
           .when(f == "4").then(v * days / in_month).otherwise(None))
    checks = [   # (rule fails, retourcode), first match wins
        (pl.int_range(pl.len()).over("agb_code", "referentie_nummer") > 0, "8021"),            # TR314 sent twice
        ((pl.col("debet_credit") == "C") & pl.col("debet_bekend").is_null(), "8017"),        # TR323 credit, no debet
        ((pl.col("geleverd_volume") <= 0)
         | (pl.col("ingediend_bedrag") != pl.col("geleverd_volume") * pl.col("product_tarief")), "9346"),  # TR346
        (pl.col("tw_bsn").is_null() | (pl.col("tw_bsn") != pl.col("bsn"))
         | (pl.col("tw_agb") != pl.col("agb_code")), "9338"),                                 # TR338 no toewijzing
        (pl.col("product_categorie") != pl.col("tw_product_categorie"), "9339"),             # TR339
        (pl.col("product_code") != pl.col("tw_product_code"), "9340"),                       # TR340
        (pl.col("begindatum") < pl.col("tw_ingang"), "9307"),                                # TR307
        ((pl.col("einddatum") > pl.col("tw_einde")) | (pl.col("einddatum") > pl.col("stop")), "9308"),  # TR308
        (pl.col("product_tarief") != pl.col("contract_tarief"), "0611"),                    # TR418
        (pl.col("geleverd_volume") > cap + 1e-9, "9321"),                                    # TR321
    ]
    code = pl.lit(None, pl.String)
    for fails, retourcode in reversed(checks):
        code = pl.when(fails.fill_null(False)).then(pl.lit(retourcode)).otherwise(code)
    return x.join(tables["to_predict"].select("regel"), on="regel", how="semi").select(
        "regel",
        pl.when(code.is_null()).then(pl.lit("accept")).otherwise(pl.lit("reject")).alias("besluit"),
        code.alias("retourcode"),
    )
