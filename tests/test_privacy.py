"""Privacy by construction: synthetic BSN range and elfproef, synthetic AGB ranges, postcodes, watermark, guard."""
import json

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from synthetic_data import DataError, read_dataset, write_dataset
from synthetic_data.privacy import (BSN_CAPACITY, BSN_RANGE, POSTCODE_PATTERN, WATERMARK_KEY, bsn_from_index,
                                    elfproef_valid, elfproef_valid_np)


def test_elfproef_known_values():
    ok = pl.Series(["111222333", "999990019", "999996630"])
    bad = pl.Series(["111222334", "12345678", "abcdefghi", "000000000", None])
    assert pl.select(elfproef_valid(pl.lit(ok))).to_series().all()
    assert not pl.select(elfproef_valid(pl.lit(bad))).to_series().any()


def test_bsn_mapping_is_a_bijection_into_the_synthetic_range():
    idx = np.arange(0, BSN_CAPACITY, 7)     # a large sample of the whole index space
    bsn = bsn_from_index(idx, seed=42)
    assert len(np.unique(bsn)) == len(idx)
    assert elfproef_valid_np(bsn).all()
    assert bsn.min() >= BSN_RANGE[0] and bsn.max() <= BSN_RANGE[1]
    # uniform over the range: every tenth of it holds about a tenth of the numbers
    share = np.bincount((bsn - BSN_RANGE[0]) // 10_000_000, minlength=10) / len(bsn)
    assert np.abs(share - 0.1).max() < 0.01
    # and it is keyed: another seed gives other numbers
    assert (bsn_from_index(idx[:1000], seed=43) != bsn[:1000]).mean() > 0.99


def test_hashes_and_opaque_numbers_do_not_depend_on_the_blocking():
    # keyed_hash and opaque_number work through long columns in cache-sized blocks: a value must not depend on the
    # row's position in its block, so a column gives what its pieces (each shorter than a block) give
    from synthetic_data import privacy

    rng = np.random.default_rng(11)
    n = 3 * privacy._BLOCK + 17
    gm = rng.integers(0, 400, n)
    for size in (10 ** 15, 9 * 10 ** 7, 3 * n):
        index = rng.permutation(np.unique(rng.integers(0, size, n)))
        g = gm[:len(index)]
        whole = privacy.opaque_number(42, 204, index, g, size=size)
        pieces = [privacy.opaque_number(42, 204, index[lo:lo + 1000], g[lo:lo + 1000], size=size)
                  for lo in range(0, len(index), 1000)]
        assert np.array_equal(whole, np.concatenate(pieces)), size
        assert whole.min() >= 0 and whole.max() < size
        one_scope = privacy.opaque_number(42, 204, index, size=size)   # a bijection within one scope
        assert len(np.unique(one_scope)) == len(index) and one_scope.max() < size
    whole = privacy.keyed_hash(7, 3, index, g)
    assert np.array_equal(whole, np.concatenate([privacy.keyed_hash(7, 3, index[lo:lo + 999], g[lo:lo + 999])
                                                 for lo in range(0, len(index), 999)]))


def test_generated_people_are_synthetic(twente_2024):
    _, t = twente_2024
    people = t["jeugdigen"]
    assert people.select(elfproef_valid(pl.col("bsn")).all()).item()
    bsn = people["bsn"].cast(pl.Int64)
    assert bsn.min() >= BSN_RANGE[0] and bsn.max() <= BSN_RANGE[1]
    # one BSN per person, the same person keeps it in every gemeente
    assert people.group_by("client_id").agg(pl.col("bsn").n_unique()).get_column("bsn").max() == 1
    assert people.group_by("bsn").agg(pl.col("client_id").n_unique()).get_column("client_id").max() == 1
    assert people["postcode"].str.contains(POSTCODE_PATTERN.replace("(?!SA|SD|SS)", "")).all()
    assert not people["postcode"].str.slice(4, 2).is_in(["SA", "SD", "SS"]).any()
    assert people["voorletters"].str.contains(r"^[A-Za-z]{1,6}$").all()


def test_identifiers_use_the_synthetic_ranges(twente_2024):
    _, t = twente_2024
    assert t["aanbieders"]["agb_code"].str.contains(r"^98\d{6}$").all()
    codes = t["verzoeken"]["verwijzer_zorgverlenercode"].drop_nulls()
    assert codes.len() > 0 and codes.str.contains(r"^97\d{6}$").all()
    # every message refers to a generated person
    known = set(t["jeugdigen"]["bsn"])
    for table in ["toewijzingen", "prestaties", "verzoeken", "zorgstarts"]:
        assert set(t[table]["bsn"]) <= known, table


def test_watermark_on_every_file(tmp_path, twente_2024):
    config, tables = twente_2024
    small = {name: df.head(50) for name, df in tables.items()}
    write_dataset(small, tmp_path / "ds", config.as_dict())
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["synthetic"] is True and manifest["seed"] == 42
    assert manifest["config"]["region"] == "twente"
    for name in tables:
        meta = pq.read_schema(tmp_path / "ds" / f"{name}.parquet").metadata
        assert meta[WATERMARK_KEY] == b"true", name
        assert manifest["tables"][name]["rows"] == small[name].height and len(manifest["tables"][name]["sha256"]) == 64
    assert read_dataset(tmp_path / "ds")["prestaties"].height == 50 == small["prestaties"].height


def test_guard_refuses_unmarked_data(tmp_path, twente_2024):
    config, tables = twente_2024
    small = {name: df.head(5) for name, df in tables.items()}
    write_dataset(small, tmp_path / "ds", config.as_dict())
    # A student re-saves a table with another tool: it no longer matches the manifest, whatever it holds.
    small["jeugdigen"].write_parquet(tmp_path / "ds" / "jeugdigen.parquet")
    with pytest.raises(DataError, match="jeugdigen.parquet: does not match manifest.json"):
        read_dataset(tmp_path / "ds")
    # A hand edit goes into NAME.csv: read, with the guard on every BSN.
    (tmp_path / "ds" / "jeugdigen.parquet").unlink()
    small["jeugdigen"].write_csv(tmp_path / "ds" / "jeugdigen.csv")
    assert read_dataset(tmp_path / "ds")["jeugdigen"].height == 5
    # Without a synthetic manifest nothing is read, whatever it holds.
    (tmp_path / "ds" / "manifest.json").unlink()
    with pytest.raises(DataError, match="manifest.json: missing"):
        read_dataset(tmp_path / "ds")


@pytest.mark.parametrize("bsn", ["123456782", "12345672", "1234567", "9123456789", "BSN123", "0999999999"])
def test_guard_refuses_a_non_synthetic_bsn_of_any_length_even_in_a_watermarked_file(tmp_path, twente_2024, bsn):
    """The attack: edit a table with pyarrow, keeping its watermark, and fix up the manifest hash as well."""
    import hashlib

    import pyarrow.parquet as pq

    config, tables = twente_2024
    small = {name: df.head(5) for name, df in tables.items()}
    write_dataset(small, tmp_path / "ds", config.as_dict())
    path = tmp_path / "ds" / "prestaties.parquet"
    table = pq.read_table(path)
    edited = small["prestaties"].with_columns(pl.lit(bsn).alias("bsn")).to_arrow().replace_schema_metadata(
        table.schema.metadata)
    pq.write_table(edited, path)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    manifest["tables"]["prestaties"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "ds" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"prestaties.parquet: column bsn holds 5 value\(s\) that are no synthetic BSN") as e:
        read_dataset(tmp_path / "ds")
    assert bsn not in str(e.value)          # the message never repeats what may be a real BSN


def test_guard_refuses_a_manifest_that_says_not_synthetic_and_an_unmarked_truth(tmp_path, twente_2024):
    from synthetic_data.dataset import read_truth

    config, tables = twente_2024
    write_dataset({name: df.head(5) for name, df in tables.items()}, tmp_path / "ds", config.as_dict())
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    (tmp_path / "ds" / "manifest.json").write_text(json.dumps({**manifest, "synthetic": False}))
    with pytest.raises(DataError, match='does not say "synthetic": true'):
        read_dataset(tmp_path / "ds")
    tables["prestaties"].head(3).write_parquet(tmp_path / "truth.parquet")
    with pytest.raises(DataError, match="truth.parquet: not marked synthetic"):
        read_truth(tmp_path / "truth.parquet")


def test_hand_edited_csv_is_read_with_dictionary_types(tmp_path, twente_2024):
    config, tables = twente_2024
    small = {name: df.head(5) for name, df in tables.items()}
    write_dataset(small, tmp_path / "ds", config.as_dict())
    (tmp_path / "ds" / "zorgstarts.parquet").unlink()
    small["zorgstarts"].write_csv(tmp_path / "ds" / "zorgstarts.csv")
    back = read_dataset(tmp_path / "ds")["zorgstarts"]
    assert back.schema == small["zorgstarts"].schema and back.equals(small["zorgstarts"])
