"""The process pool, the per-job tables and their merge give the bytes of a run in one process."""
import hashlib

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from synthetic_data import GeneratorConfig, generate
from synthetic_data.dataset import write_dataset
from synthetic_data.dictionary import conform, merge_sorted, schema
from synthetic_data.generate import _PARALLEL_FROM, _jobs


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_worker_pool_gives_the_bytes_of_one_process(tmp_path):
    config = GeneratorConfig(region="overijssel", years="2024", seed=3, scale=0.05)
    assert len(config.gemeenten) >= _PARALLEL_FROM and len(_jobs(config)) > 1   # really takes the pool path
    write_dataset(generate(config, workers=2), tmp_path / "pool", config.as_dict())
    write_dataset(generate(config, workers=1), tmp_path / "one", config.as_dict())
    a, b = _digests(tmp_path / "pool"), _digests(tmp_path / "one")
    assert len(a) == 16 and a == b      # 15 tables and the manifest


@pytest.mark.parametrize("overlap", [False, True])
def test_merge_sorted_equals_a_sort_of_the_concatenation(overlap):
    a = pl.DataFrame({"agb_code": ["98010001", "98010001", "98010003", None], "referentie_nummer": ["5", "1", "2", "3"]})
    b = pl.DataFrame({"agb_code": ["98020001", "98010001" if overlap else "98020002", "98020001"],
                      "referentie_nummer": ["9", "0", "4"]})
    filler = [pl.lit(None).cast(t).alias(c) for c, t in schema("prestaties").items() if c not in a.columns]
    parts = [conform("prestaties", p.with_columns(filler)) for p in (b, a)]
    merged = merge_sorted("prestaties", parts)
    assert_frame_equal(merged, conform("prestaties", pl.concat([a, b]).with_columns(filler)))
    assert merged["agb_code"].to_list()[-1] is None and merged.n_chunks() == 1
