"""The data dictionary is the one registry of tables and columns; its rendered doc must be current."""
from pathlib import Path


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
