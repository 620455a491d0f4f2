"""Issue 12, who gets what: contract periods with yearly indexation and per-aanbieder tariffs, a provider market with a
long tail, and prevalence per gemeente following the CBS spread."""
import polars as pl
import pytest

from expectations import violations
from expectations.registry import get_rule
from synthetic_data.providers import micro_tarieven, producten_jaar, tarief_index, tarief_model
from synthetic_data.reference import inkoopregios

TR418 = "TR418_tarief_is_contracttarief"


def _expected_tarief(tables) -> pl.DataFrame:
    """Each claim line with the producten tariff of its year: the aanbieder's own row, else the regional row
    (written apart from synthetic_data.ijw.contract_tarief, by calendar year)."""
    p = tables["prestaties"].with_row_index("_n").join(
        tables["gemeenten"].select("gemeente_code", "inkoopregio"), on="gemeente_code").with_columns(
        pl.col("begindatum").dt.year().alias("jaar"))
    prod = tables["producten"].with_columns(pl.col("geldig_van").dt.year().alias("jaar"))
    assert (prod["geldig_van"].dt.strftime("%m-%d") == "01-01").all()
    assert (prod["geldig_tot"].dt.year() == prod["jaar"]).all() and (prod["geldig_tot"].dt.strftime("%m-%d") == "12-31").all()
    own = prod.filter(pl.col("agb_code").is_not_null()).select("inkoopregio", "product_code", "agb_code", "jaar",
                                                               pl.col("tarief").alias("_own"))
    reg = prod.filter(pl.col("agb_code").is_null()).select("inkoopregio", "product_code", "jaar",
                                                           pl.col("tarief").alias("_reg"))
    return (p.join(own, on=["inkoopregio", "product_code", "agb_code", "jaar"], how="left")
            .join(reg, on=["inkoopregio", "product_code", "jaar"], how="left").sort("_n")
            .with_columns(pl.coalesce("_own", "_reg").alias("expected")))


def test_claim_tariff_is_the_producten_row_of_its_period_and_aanbieder(borne_2y):
    # the accepted lines: a line the gemeente rejected for a wrong tariff (0611) is in the JW323 as received
    x = _expected_tarief(borne_2y).filter(pl.col("eenheid") != "83").join(
        borne_2y["declaratie_antwoord_prestaties"], on=["agb_code", "referentie_nummer"], how="anti")
    assert x.height > 0 and x["expected"].null_count() == 0
    assert (x["product_tarief"] == x["expected"]).all()
    # both years are claimed, at different tariffs for the same product (regional tariffs)
    by_year = x.filter(pl.col("_own").is_null()).group_by("product_code", "jaar").agg(pl.col("product_tarief").min()).pivot(
        on="jaar", index="product_code", values="product_tarief").drop_nulls()
    assert by_year.height > 0 and (by_year["2024"] > by_year["2023"]).all()
    # some lines are claimed at the aanbieder's own tariff (pleegzorg), and that one differs from the regional one
    own = x.filter(pl.col("_own").is_not_null())
    assert own.height > 0 and (own["_own"] != own["_reg"]).mean() > 0.9


def test_indexation_between_contract_years(borne_2y):
    prod = borne_2y["producten"].filter(pl.col("agb_code").is_null()).with_columns(
        pl.col("geldig_van").dt.year().alias("jaar"))
    assert sorted(prod["jaar"].unique().to_list()) == [2022, 2023, 2024]   # the years asked for and the one before
    w = prod.pivot(on="jaar", index=["inkoopregio", "product_code"], values="tarief")
    big = w.filter(pl.col("2022") > 1000)   # rounding to whole eurocents blurs the ratio of small tariffs
    ratio = big["2024"] / big["2023"]
    # Bollenstreek PGB Jeugdhulp 2022 -> 2024: +12-13 %, about 6 % a year
    assert ratio.min() > 1.055 and ratio.max() < 1.067
    two = big["2024"] / big["2022"]
    assert two.min() > 1.11 and two.max() < 1.135
    assert tarief_index(2024) == 1.0 and tarief_index(2026) > 1.08   # later years go on rising (estimate)


def test_pleegzorg_tariffs_differ_per_aanbieder(borne_2y):
    prod = borne_2y["producten"]
    cat = prod.filter(pl.col("hulpvorm") == "pleegzorg")
    own = cat.filter(pl.col("agb_code").is_not_null() & (pl.col("geldig_van") == pl.date(2024, 1, 1)))
    assert own.height >= 5 and own["agb_code"].n_unique() == own.height
    spread = own["tarief"].max() / own["tarief"].min()
    assert 1.1 < spread < 1.23            # best and worst differ by about 20 % (Handreiking Tarifering Pleegzorg)
    # every aanbieder row names an aanbieder of the region's pool
    assert set(prod["agb_code"].drop_nulls()) <= set(borne_2y["aanbieders"]["agb_code"])


def test_micro_aanbieder_tariffs_where_a_region_contracts_them():
    regios = [r for r in inkoopregios() if micro_tarieven(7, r)]
    assert 0 < len(regios) < len(inkoopregios())
    c = producten_jaar(7, regios[0], 2024)
    reg = c.filter(pl.col("agb_code").is_null()).select("product_code", pl.col("tarief").alias("_reg"))
    micro = c.filter(pl.col("agb_code").is_not_null() & (pl.col("hulpvorm") != "pleegzorg")).join(reg, on="product_code")
    assert micro.height > 0
    ratio = micro["tarief"] / micro["_reg"]
    f = tarief_model()["micro"]["factor"]
    assert ratio.min() > f - 0.01 and ratio.max() < f + 0.01     # Venray: micro about 13 % below regulier


def test_tr418_fires_on_a_tariff_of_the_wrong_year_or_aanbieder(borne_2y):
    x = _expected_tarief(borne_2y)
    reg = borne_2y["producten"].filter(pl.col("agb_code").is_null()).select(
        "product_code", (pl.col("geldig_van").dt.year() + 1).alias("jaar"), pl.col("tarief").alias("_vorig"))
    x = x.join(reg, on=["product_code", "jaar"], how="left").sort("_n")
    wrong_year = int(x.with_row_index("_i").filter((pl.col("jaar") == 2024) & pl.col("_own").is_null()
                                                   & (pl.col("eenheid") != "83"))["_i"][0])
    regional_for_own = int(x.with_row_index("_i").filter(pl.col("_own").is_not_null())["_i"][0])
    tarief = x["product_tarief"].to_list()
    tarief[wrong_year] = x["_vorig"][wrong_year]          # last year's contract tariff
    tarief[regional_for_own] = x["_reg"][regional_for_own]  # the regional tariff for an aanbieder with its own
    p = borne_2y["prestaties"].with_columns(pl.Series("product_tarief", tarief),
                                             (pl.col("geleverd_volume") * pl.Series(tarief)).alias("ingediend_bedrag"))
    found = violations(get_rule(TR418), dict(borne_2y, prestaties=p), row_index=True)["_row"].to_list()
    assert sorted(found) == sorted([wrong_year, regional_for_own])


@pytest.fixture(scope="module")
def market(twente_2024):
    _, t = twente_2024
    y0, y1 = pl.date(2024, 1, 1), pl.date(2024, 12, 31)
    tr = t["trajecten"].filter(pl.col("agb_code").is_not_null() & (pl.col("begindatum") <= y1) & (pl.col("einddatum") >= y0))
    return tr.group_by("agb_code").agg(pl.len().alias("n"), pl.col("client_id").n_unique().alias("clients")).sort(
        "n", "agb_code", descending=[True, False])


def test_a_few_large_aanbieders_carry_most_trajectories(market, twente_2024):
    share = market["n"] / market["n"].sum()
    assert 0.25 < share[:5].sum() < 0.55 and share[:10].sum() < 0.7
    # ... next to a long tail of small ones
    assert (market["clients"] < 10).mean() > 0.3
    assert twente_2024[1]["aanbieders"].height > 300


def test_prevalence_per_gemeente_follows_the_cbs_spread(twente_2024):
    _, t = twente_2024
    y0, y1 = pl.date(2024, 1, 1), pl.date(2024, 12, 31)
    n = t["trajecten"].filter((pl.col("begindatum") <= y1) & (pl.col("einddatum") >= y0)).group_by(
        "gemeente_code").agg(pl.col("client_id").n_unique().alias("n"))
    g = t["gemeenten"].join(n, on="gemeente_code").with_columns(
        (pl.col("n") / (pl.col("jeugd_0_14") + pl.col("jeugd_15_19") + pl.col("jeugd_20_22"))).alias("prev"))
    prev = dict(zip(g["gemeente_naam"], g["prev"]))
    for low in ["Dinkelland", "Tubbergen"]:          # about 5 % against 9.9 % in Almelo (CBS 1e hj 2021)
        for high in ["Almelo", "Hengelo (O.)", "Rijssen-Holten", "Twenterand"]:
            assert prev[low] < 0.85 * prev[high], (low, high)
    assert prev["Almelo"] > prev["Enschede"]
    # the region as a whole stays at the national prevalence
    assert abs(g["n"].sum() / (g["jeugd_0_14"] + g["jeugd_15_19"] + g["jeugd_20_22"]).sum() - 0.106) < 0.012
