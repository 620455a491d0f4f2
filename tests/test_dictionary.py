"""The data dictionary is the one registry of tables and columns; its rendered doc must be current."""
from pathlib import Path


import polars as pl

from synthetic_data.dictionary import schema, table_names
from synthetic_data.reference import codelists, load_yaml

ROOT = Path(__file__).resolve().parent.parent


def test_generated_tables_match_the_dictionary(twente_2024):
    _, tables = twente_2024
    assert list(tables) == table_names()
    for name, df in tables.items():
        assert dict(df.schema) == schema(name), name


def test_code_list_references_exist():
    lists = codelists()
    for spec in load_yaml("dictionary.yaml")["tables"].values():
        for col, (_, _, codelist, _) in spec["columns"].items():
            assert codelist == "-" or codelist in lists, f"{col}: unknown code list {codelist}"


def test_rendered_docs_are_current():
    from pipelines.cli import generated_docs

    for name, text in generated_docs().items():
        doc = (ROOT / "docs" / name).read_text(encoding="utf-8")
        assert doc == text, f"docs/{name} is stale: run `make docs`"


def test_code_list_values_in_generated_data(twente_2024):
    _, t = twente_2024
    lists = codelists()
    for spec_name, spec in load_yaml("dictionary.yaml")["tables"].items():
        for col, (_, _, codelist, _) in spec["columns"].items():
            if codelist != "-":
                values = set(t[spec_name][col].drop_nulls().unique())
                assert values <= set(lists[codelist]), f"{spec_name}.{col}: {values - set(lists[codelist])}"


def test_stable_order_is_polars_stable_sort():
    # conform's integer sort must give exactly polars' stable sort with nulls last: digit strings of one width as
    # numbers, anything else (other widths, signs, spaces, letters) by its string order
    import datetime as dt

    import numpy as np

    from synthetic_data.dictionary import stable_order
    rng = np.random.default_rng(5)
    pool = ["10", "09", "-1", "+1", " 1", "b", "00", None]
    df = pl.DataFrame({
        "digits": [f"{x:06d}" for x in rng.integers(0, 50, 400)],
        "mixed": [pool[i] for i in rng.integers(0, len(pool), 400)],
        "signed": [["+5", "10", "09", "00", "+0"][i] for i in rng.integers(0, 5, 400)],   # castable, one width
        "num": [None if x < 3 else int(x) for x in rng.integers(0, 20, 400)],
        "day": [None if x < 2 else dt.date(2024, 1, 1) + dt.timedelta(days=int(x)) for x in rng.integers(0, 30, 400)],
    })
    for keys in (["digits"], ["mixed"], ["signed"], ["digits", "num"], ["mixed", "day", "digits"], ["day", "num"]):
        assert df[stable_order(df, keys)].equals(df.sort(keys, nulls_last=True, maintain_order=True)), keys
    # large enough for polars' multithreaded argsort, with ties, keys that pack into one integer and keys that do not
    n = 300_000
    big = pl.DataFrame({"gem": [f"{x:04d}" for x in rng.integers(0, 400, n)], "wide": rng.integers(0, 10**15, n),
                        "tie": rng.integers(0, 3, n), "day": pl.Series(rng.integers(19000, 19100, n)).cast(pl.Date)})
    for keys in (["gem", "tie", "day"], ["gem", "wide", "tie"], ["tie", "wide"], ["day"]):
        assert big[stable_order(big, keys)].equals(big.sort(keys, nulls_last=True, maintain_order=True)), keys
    # a broken ordering is caught: the reversed order differs
    assert not df[stable_order(df, ["digits"])[::-1]].equals(df.sort("digits", nulls_last=True, maintain_order=True))
