"""`zandbak export`: CSV and Parquet folders read back as the same dataset; the workbook, opened with openpyxl (an
Excel reader independent of the xlsxwriter that wrote it), holds every table, the dictionary and the code lists;
past Excel's row limit nothing is written; a failed export leaves the earlier output as it was."""
from __future__ import annotations

import hashlib

import openpyxl
import polars as pl
import pytest

import synthetic_data.export as export_mod
from pipelines.cli import main
from synthetic_data.dataset import present_tables, read_dataset
from synthetic_data.dictionary import codelist_frame, dictionary_frame, schema
from synthetic_data.errors import DataError
from synthetic_data.export import export


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    assert main(["generate", "--region", "0147", "--scale", "0.1", "--seed", "5", "--out", str(root / "clean"),
                 "--quiet"]) == 0
    return root / "clean"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_csv_or_parquet_export_reads_back_as_the_same_dataset(clean, tmp_path, fmt):
    rows = export(clean, fmt, tmp_path / "out")
    names = present_tables(clean)
    original, back = read_dataset(clean, names), read_dataset(tmp_path / "out", names)
    assert present_tables(tmp_path / "out") == names and rows == {n: df.height for n, df in original.items()}
    for name in names:
        assert back[name].equals(original[name]), name          # values, types and nulls, row for row
        assert (tmp_path / "out" / f"{name}.{fmt}").exists()
    read = pl.read_csv if fmt == "csv" else pl.read_parquet
    assert read(tmp_path / "out" / f"data_dictionary.{fmt}").equals(dictionary_frame(names))
    assert read(tmp_path / "out" / f"codelists.{fmt}", **({"infer_schema_length": 0} if fmt == "csv" else {})) \
        .equals(codelist_frame())


def test_the_workbook_has_a_sheet_per_table_and_the_dictionary(clean, tmp_path):
    out = tmp_path / "export.xlsx"
    assert main(["export", str(clean), "--format", "xlsx", "--out", str(out)]) == 0
    names = present_tables(clean)
    wb = openpyxl.load_workbook(out, read_only=True)
    assert wb.sheetnames == ["about", *names, "dictionary", "codelists"]
    assert "Synthetic data" in next(wb["about"].iter_rows(min_row=2, max_row=2, values_only=True))[1]
    original = read_dataset(clean, names)
    for name in names:
        rows = list(wb[name].iter_rows(values_only=True))
        sch = schema(name)
        assert list(rows[0]) == list(sch), name
        df = pl.DataFrame([list(r) for r in rows[1:]], schema=list(sch), orient="row", infer_schema_length=None) \
            if len(rows) > 1 else pl.DataFrame(schema=list(sch))
        df = df.with_columns(pl.col(c).cast(pl.Date) if t == pl.Date else pl.col(c).cast(t) for c, t in sch.items())
        assert df.equals(original[name]), name
    dictionary = list(wb["dictionary"].iter_rows(values_only=True))
    assert dictionary[0] == tuple(dictionary_frame().columns) and len(dictionary) - 1 == dictionary_frame(names).height
    assert len(list(wb["codelists"].iter_rows(values_only=True))) - 1 == codelist_frame().height
    wb.close()


def test_a_table_past_the_excel_row_limit_is_refused_before_anything_is_written(clean, tmp_path, monkeypatch):
    biggest = max(read_dataset(clean).items(), key=lambda kv: kv[1].height)
    monkeypatch.setattr(export_mod, "EXCEL_MAX_ROWS", biggest[1].height)     # a sheet one row too small
    with pytest.raises(DataError, match=f"table {biggest[0]} has .* more than an Excel sheet holds"):
        export(clean, "xlsx", tmp_path / "big.xlsx")
    assert not any(tmp_path.iterdir())
    monkeypatch.setattr(export_mod, "EXCEL_MAX_ROWS", biggest[1].height + 1)  # header + every row: fits
    export(clean, "xlsx", tmp_path / "big.xlsx")


def test_an_export_that_fails_half_way_leaves_the_earlier_one_whole(clean, tmp_path, monkeypatch):
    out, folder = tmp_path / "e.xlsx", tmp_path / "csv"
    export(clean, "xlsx", out)
    export(clean, "csv", folder)
    before = out.read_bytes(), {p.name: hashlib.sha256(p.read_bytes()).digest() for p in folder.iterdir()}
    import xlsxwriter.worksheet

    calls = []

    def failing(real, after):
        def fail_later(*a, **k):
            calls.append(1)
            if len(calls) > after:
                raise OSError(28, "No space left on device")
            return real(*a, **k)
        return fail_later

    for owner, method, after in ((xlsxwriter.worksheet.Worksheet, "write_row", 300), (pl.DataFrame, "write_csv", 3)):
        real = getattr(owner, method)
        monkeypatch.setattr(owner, method, failing(real, after))
        calls.clear()
        with pytest.raises(DataError, match="nothing was written"):
            export(clean, "xlsx", out, force=True) if method == "write_row" else export(clean, "csv", folder, force=True)
        assert len(calls) > after               # it failed half way, not before it began
        monkeypatch.setattr(owner, method, real)
    assert out.read_bytes() == before[0]
    assert {p.name: hashlib.sha256(p.read_bytes()).digest() for p in folder.iterdir()} == before[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["csv", "e.xlsx"]      # no temporary left beside


def test_the_same_dataset_gives_the_same_workbook_bytes(clean, tmp_path):
    export(clean, "xlsx", tmp_path / "a.xlsx")
    export(clean, "xlsx", tmp_path / "b.xlsx")
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
