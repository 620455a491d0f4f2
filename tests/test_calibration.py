"""Generated shares against the CBS calibration targets (synthetic_data/data/calibration.yaml)."""
import pytest

from synthetic_data.calibrate import measure


@pytest.fixture(scope="module")
def measures(twente_2024):
    config, tables = twente_2024
    return measure(tables, 2024, config.scale)


def test_every_target_is_measured(measures):
    names = {m.metric for m in measures}
    for prefix in ["prevalence_lt23", "trajecten_per_youth_per_year", "started_trajecten_by_hulpvorm.",
                   "verwijzer_share_of_trajecten.", "reden_beeindiging.", "duration.share_lt_1y", "sex_share_boys",
                   "spending_per_youth_in_care_eur", "prevalence_spread_twente.", "jw317_granted_share",
                   "temporary_stops_per_start", "claim_rejected_share", "declaratie_antwoord_late_share",
                   "share_of_youth_in_care_", "request_rejected_share_lt18", "request_rejected_share_18plus",
                   "request_in_onderzoek_share"]:
        assert any(n.startswith(prefix) for n in names), prefix


def test_generated_shares_within_tolerance(measures):
    outside = [f"{m.metric}: generated {m.generated:.3f}, target {m.target} +- {m.tolerance}" for m in measures if not m.ok]
    assert not outside, "\n".join(outside)


def test_calibration_detects_a_skewed_dataset(twente_2024):
    # The comparison must be able to fail: drop most huisarts trajectories and the referrer shares move out of range.
    import polars as pl

    config, tables = twente_2024
    t = tables["trajecten"]
    skewed = dict(tables, trajecten=t.filter((pl.col("verwijzer") != "huisarts") | (pl.col("traject_id").str.ends_with("0"))))
    bad = {m.metric for m in measure(skewed, 2024, config.scale) if not m.ok}
    assert "verwijzer_share_of_trajecten.huisarts" in bad


def test_prevalence_spread_detects_a_flat_dataset(twente_2024):
    # issue 12: with the same prevalence in every gemeente the sourced CBS spread (Dinkelland, Tubbergen) is missed.
    import polars as pl

    config, tables = twente_2024
    t = tables["trajecten"]
    low = ["1774", "0183"]
    # drop the low gemeenten's rows and put copies of Almelo's in their place: their prevalence is no longer low
    flat = pl.concat([t.filter(~pl.col("gemeente_code").is_in(low))] + [
        t.filter(pl.col("gemeente_code") == "0141").with_columns(pl.lit(c).alias("gemeente_code")) for c in low])
    bad = {m.metric for m in measure(dict(tables, trajecten=flat), 2024, config.scale) if not m.ok}
    assert {"prevalence_spread_twente.1774", "prevalence_spread_twente.0183"} <= bad
