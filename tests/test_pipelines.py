"""The Dagster code location loads and materialises the dataset in-process."""
import dagster as dg

from pipelines.definitions import GeneratorResource, defs, synthetic_dataset


def test_definitions_load():
    assert dg.Definitions.validate_loadable(defs) is None
    assert defs.resolve_asset_graph().get_all_asset_keys() == {dg.AssetKey("synthetic_dataset")}


def test_materialise_small_dataset(tmp_path):
    res = dg.materialize([synthetic_dataset], resources={
        "generator": GeneratorResource(region="0147", years="2024", seed=1, scale=0.1, out=str(tmp_path / "ds"))})
    assert res.success
    assert (tmp_path / "ds" / "manifest.json").exists()
