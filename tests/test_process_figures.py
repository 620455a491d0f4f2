"""`zandbak calibration --process`: the process figures are measured from the tables and move when the tables do."""
from __future__ import annotations

import polars as pl

from synthetic_data.process_figures import process_figures


def _fig(tables) -> dict[str, float]:
    return {name: value for name, value, _ in process_figures(tables, 2024)}


def test_figures_show_the_friction(borne_2y):
    f = _fig(borne_2y)
    assert 0.04 < f["jw305_late_share"] < 0.3 and 0.04 < f["jw307_late_share"] < 0.3
    assert f["waiting_days_p90"] > f["waiting_days_p50"] >= 0
    assert f["utilisation_p10"] < 0.5 < f["utilisation_p90"] <= 1.0
    assert 0.005 < f["claim_rejected_share"] < 0.05 and any(k.startswith("claim_rejected_retourcode_") for k in f)
    assert 0 < f["market_top5_share"] < 1 and f["market_hhi"] > 0


def test_figures_follow_the_tables(borne_2y):
    # every JW305 sent on its Begindatum and every JW301 on its Ingangsdatum: nothing late, nothing backdated
    on_time = dict(borne_2y,
                   zorgstarts=borne_2y["zorgstarts"].with_columns(pl.col("begindatum").alias("dagtekening")),
                   toewijzingen=borne_2y["toewijzingen"].with_columns(pl.col("ingangsdatum").alias("toewijzingsdatum")))
    f = _fig(on_time)
    assert f["jw305_late_share"] == 0 and f["toewijzing_backdated_share"] == 0
    assert _fig(borne_2y)["toewijzing_backdated_share"] > 0
