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
                   "spending_per_youth_in_care_eur", "request_rejected_share_lt18", "request_rejected_share_18plus",
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
