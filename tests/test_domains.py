"""Issue 12 domains: JB/JR, crisis, vervoer as a second product, landelijk budget toewijzingen, products by age/sex."""
import polars as pl
import pytest

from synthetic_data.calibrate import domain_shares
from synthetic_data.ijw import TOEWIJZING, latest_toewijzing, signed
from synthetic_data.reference import calibration


@pytest.fixture(scope="module")
def tw(twente_2024):
    return twente_2024[1]


def _with_age(t: dict) -> pl.DataFrame:
    people = t["jeugdigen"].select("gemeente_code", "client_id", "geboortedatum", "geslacht")
    return t["trajecten"].join(people, on=["gemeente_code", "client_id"]).with_columns(
        ((pl.col("begindatum") - pl.col("geboortedatum")).dt.total_days() / 365.25).alias("age"))


def test_age_bounds_per_product_hold(tw):
    # the contract's age limits apply where a product is chosen: at the start of care (not after a provider switch
    # or a move, where the care goes on)
    lim = tw["producten"].select("product_code", "leeftijd_min", "leeftijd_max").unique("product_code")
    t = _with_age(tw).filter(pl.col("oorsprong").is_in(["nieuw", "herhaald", "gelijktijdig"]))
    t = t.join(lim, on="product_code", how="inner").with_columns(pl.col("age").floor().cast(pl.Int64).alias("_y"))
    bad = t.filter((pl.col("_y") < pl.col("leeftijd_min")) | (pl.col("_y") > pl.col("leeftijd_max")))
    assert t.height > 10_000 and bad.height == 0, bad.select("product_code", "age").head()
    # the limits bite: dyslexia care (EED) only for primary school children, JR from 12
    eed = t.filter(pl.col("product_code") == "45A76")["age"]
    assert eed.len() > 100 and eed.min() >= 7 and eed.max() < 13
    assert t.filter(pl.col("product_code") == "47A01")["age"].min() >= 12


def test_mean_age_and_sex_differ_by_product(tw):
    t = _with_age(tw).filter(pl.col("oorsprong") == "nieuw")
    mean = dict(t.group_by("product_code").agg(pl.col("age").mean()).iter_rows())
    assert 8 <= mean["45A76"] <= 12                      # EED: primary school
    assert mean["47A01"] >= 15                           # JR: adolescents
    assert mean["53A01"] < mean["45A48"] - 1             # kinderarts: younger children
    assert mean["44A29"] > mean["44A27"] + 1             # ggz-verblijf: teenagers
    teen = t.filter(pl.col("age").is_between(12, 18, closed="left"))
    girls = dict(teen.group_by(pl.col("product_code").is_in(["54001", "54003"]).alias("ggz")).agg(
        (pl.col("geslacht") == "2").mean()).iter_rows())
    assert girls[True] > girls[False] + 0.03             # ggz 12-17 more often girls (CBS 2024-04)


def test_jb_jr_shares_and_jr_boys_near_targets(tw):
    got, cal = domain_shares(tw, 2024), calibration()
    for d in ("jeugdbescherming", "jeugdreclassering", "crisis", "vervoer", "landelijk"):
        c = cal[f"share_of_youth_in_care_{d}"]
        assert abs(got[d] - c["value"]) <= c["tolerance"], (d, got[d])
    c = cal["sex_share_boys_jeugdreclassering"]
    assert abs(got["boys_jeugdreclassering"] - c["value"]) <= c["tolerance"]


def test_jb_jr_referred_by_gi_or_court_and_jb_stops_at_18(tw):
    t = _with_age(tw).filter(pl.col("hulpvorm").is_in(["jeugdbescherming", "jeugdreclassering"]))
    assert t.height > 500
    assert set(t["verwijzer_type"].unique()) == {"04", "08"}
    assert set(t["product_categorie"].unique()) == {"47", "48"}
    jb = t.filter(pl.col("hulpvorm") == "jeugdbescherming")
    age_end = (jb["einddatum"] - jb["geboortedatum"]).dt.total_days() / 365.25
    assert age_end.max() < 18.01
    # JB/JR trajectories are at gecertificeerde instellingen
    gi = tw["aanbieders"].filter(pl.col("soort") == "gecertificeerde_instelling")["agb_code"]
    assert t["agb_code"].is_in(gi.implode()).all()


def test_vervoer_only_with_dagbehandeling_in_the_same_jw301(tw):
    tz = tw["toewijzingen"].filter(pl.col("versie") == 1)
    same = ["gemeente_code", "bsn", "agb_code", "toewijzingsdatum", "toewijzingstijd", "ingangsdatum", "einddatum"]
    vervoer = tz.filter(pl.col("product_code") == "42A03")
    # vervoer asked for later in a JW317 (synthetic_data.flows) comes on its own JW301, next to running dagbehandeling
    asked = vervoer.filter(pl.col("referentie_aanbieder").is_not_null())
    running = tw["toewijzingen"].filter(pl.col("product_categorie") == "41").select(
        "gemeente_code", "bsn", "agb_code", pl.col("ingangsdatum").alias("_b"), pl.col("einddatum").alias("_e"))
    alongside = asked.join(running, on=["gemeente_code", "bsn", "agb_code"]).filter(
        pl.col("ingangsdatum").is_between("_b", "_e")).select("toewijzing_nummer").unique()
    assert alongside.height == asked.select("toewijzing_nummer").n_unique()
    v = vervoer.filter(pl.col("referentie_aanbieder").is_null())
    day = tz.filter(pl.col("product_categorie") == "41").select(*same, pl.col("toewijzing_nummer").alias("host"))
    j = v.join(day, on=same, how="left")
    assert v.height > 100 and j["host"].is_not_null().all()
    assert (j["host"] != j["toewijzing_nummer"]).all() and j["referentie_aanbieder"].is_null().all()
    # claims per day of dagbehandeling: a vervoer line never claims more days than its host's dagdelen that period
    # the accepted lines (a line the gemeente rejected, e.g. for a volume over the cap, is not a delivery)
    p = tw["prestaties"].filter(pl.col("debet_credit") == "D").join(
        tw["declaratie_antwoord_prestaties"], on=["agb_code", "referentie_nummer"], how="anti")
    host = j.select("gemeente_code", "toewijzing_nummer", "host")
    host_vol = p.group_by("gemeente_code", pl.col("toewijzing_nummer").alias("host"), "begindatum").agg(
        pl.col("geleverd_volume").max().alias("host_vol"))
    vl = p.join(host, on=["gemeente_code", "toewijzing_nummer"]).join(
        host_vol, on=["gemeente_code", "host", "begindatum"], how="left")
    assert vl.height > 100 and (vl["geleverd_volume"] <= vl["host_vol"]).all()


def test_budget_toewijzingen_and_claims_within_budget(tw):
    lt = latest_toewijzing(tw["toewijzingen"])
    b = lt.filter(pl.col("budget").is_not_null())
    assert b.height > 20
    assert (b["product_categorie"] == "55").all() and b["product_code"].is_null().all()
    assert b["volume"].is_null().all() and b["eenheid"].is_null().all() and b["einddatum"].is_not_null().all()
    p = tw["prestaties"].join(b.select(*TOEWIJZING, "budget"), on=TOEWIJZING, how="inner")
    assert p.height > 100
    assert (p["eenheid"] == "83").all() and p["product_tarief"].is_null().all()
    assert (p["ingediend_bedrag"] == p["geleverd_volume"]).all()
    net = p.group_by(TOEWIJZING).agg(signed("ingediend_bedrag").sum().alias("net"), pl.col("budget").first())
    assert (net["net"] <= net["budget"]).all()
    # at national aanbieders, outside the inkoopregio
    lta = tw["aanbieders"].filter(pl.col("landelijk"))["agb_code"]
    assert b["agb_code"].is_in(lta.implode()).all() and lta.len() > 0


def test_crisis_is_short_and_often_backdated(tw):
    tz = tw["toewijzingen"].filter((pl.col("versie") == 1) & (pl.col("product_categorie") == "46"))
    late = (tz["toewijzingsdatum"] > tz["ingangsdatum"]).mean()
    assert tz.height > 200 and 0.3 <= late <= 0.9
    # own starts (a move's first half is cut at the move date, its length drawn by the move stream)
    t = tw["trajecten"].filter((pl.col("product_categorie") == "46") & (pl.col("oorsprong") == "nieuw")
                               & ~pl.col("traject_id").str.contains("-M"))
    days = (t["einddatum"] - t["begindatum"]).dt.total_days()
    assert days.median() < 40 and days.max() <= 95


def test_ambulant_with_begeleiding_in_one_jw301(tw):
    # a second product of another kind (care_model.yaml second_products): its own nummer and claims, same decision
    tz = tw["toewijzingen"].filter(pl.col("versie") == 1)
    same = ["gemeente_code", "bsn", "agb_code", "toewijzingsdatum", "toewijzingstijd", "ingangsdatum", "einddatum"]
    host = tz.filter(pl.col("product_code").is_in(["45A48", "54001"])).select(*same, pl.col("toewijzing_nummer").alias("host"))
    pair = tz.filter(pl.col("product_code") == "45A50").join(host, on=same, how="inner")
    assert pair.height > 50 and (pair["host"] != pair["toewijzing_nummer"]).all()
    claimed = tw["prestaties"].join(pair.select("gemeente_code", "toewijzing_nummer"), on=["gemeente_code", "toewijzing_nummer"])
    assert claimed.height > 100 and (claimed["product_code"] == "45A50").all()
