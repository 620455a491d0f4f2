"""Same config and seed give byte-identical files; a gemeente's rows do not depend on the rest of the run."""
import hashlib

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from synthetic_data import GeneratorConfig, generate
from synthetic_data.dataset import write_dataset

GEMEENTE_TABLES = ["jeugdigen", "trajecten", "verzoeken", "antwoorden", "toewijzingen", "zorgstarts", "zorgstops",
                   "declaraties", "prestaties", "declaratie_antwoorden", "wijzigingsverzoeken",
                   "declaratie_antwoord_prestaties"]


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_config_gives_identical_bytes(tmp_path):
    config = GeneratorConfig(region="0147", years="2024", seed=11, scale=0.5)
    write_dataset(generate(config), tmp_path / "a", config.as_dict())
    write_dataset(generate(config, workers=1), tmp_path / "b", config.as_dict())
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert len(a) == 16 and a == b      # 15 tables and the manifest


def test_other_seed_gives_other_data():
    a = generate(GeneratorConfig(region="0147", years="2024", seed=1, scale=0.3))
    b = generate(GeneratorConfig(region="0147", years="2024", seed=2, scale=0.3))
    assert not a["trajecten"].equals(b["trajecten"])
    bsn_a, bsn_b = set(a["jeugdigen"]["bsn"]), set(b["jeugdigen"]["bsn"])
    assert len(bsn_a & bsn_b) < len(bsn_a) / 2


@pytest.fixture(scope="module")
def region_and_single():
    region = generate(GeneratorConfig(region="twente", years="2024", seed=5, scale=0.3))
    single = generate(GeneratorConfig(region="0147", years="2024", seed=5, scale=0.3))
    return region, single


@pytest.mark.parametrize("table", GEMEENTE_TABLES)
def test_single_gemeente_equals_its_rows_of_the_region(region_and_single, table):
    region, single = region_and_single
    mine = region[table].filter(pl.col("gemeente_code") == "0147")
    assert mine.height > 0
    assert_frame_equal(single[table], mine)


def test_moves_cross_partitions_consistently(region_and_single):
    # A youth who moves into Borne is the same person (same bsn and name) as in the origin gemeente's rows.
    region, single = region_and_single
    t = single["trajecten"].filter(pl.col("oorsprong") == "verhuizing")
    assert t.height > 0
    origin_rows = region["jeugdigen"].filter(pl.col("client_id").is_in(t["client_id"].implode()) & (pl.col("gemeente_code") != "0147"))
    here = single["jeugdigen"].filter(pl.col("client_id").is_in(origin_rows["client_id"].implode()))
    joined = here.join(origin_rows, on="client_id", suffix="_origin")
    assert joined.height > 0
    assert (joined["bsn"] == joined["bsn_origin"]).all() and (joined["achternaam"] == joined["achternaam_origin"]).all()


def test_year_ranges_agree_on_shared_years():
    # The simulation always starts at the epoch, so asking for 2023-2024 does not change what 2024 looks like.
    one = generate(GeneratorConfig(region="0147", years="2024", seed=3, scale=0.5))
    two = generate(GeneratorConfig(region="0147", years="2023-2024", seed=3, scale=0.5))
    y = pl.date(2024, 1, 1)
    assert_frame_equal(one["trajecten"], two["trajecten"].filter(pl.col("einddatum") >= y))
    assert_frame_equal(one["prestaties"], two["prestaties"].filter(pl.col("begindatum") >= y))
