"""The data dictionary registry (data/dictionary.yaml): column order, types and meanings of every generated table."""
from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from .reference import codelists, load_yaml

_TYPES = {"str": pl.String, "int": pl.Int64, "date": pl.Date, "bool": pl.Boolean}


@cache
def tables() -> dict[str, dict]:
    return load_yaml("dictionary.yaml")["tables"]


@cache
def warehouse_tables() -> dict[str, dict]:
    """Tables the DuckDB warehouse holds beside the generated ones (code lists, the dictionary itself)."""
    return load_yaml("dictionary.yaml").get("warehouse_tables", {})


def table_names() -> list[str]:
    return list(tables())


def schema(table: str) -> dict[str, pl.DataType]:
    cols = tables()[table]["columns"]
    return {name: _TYPES[spec[0]] for name, spec in cols.items()}


def key(table: str) -> list[str]:
    return list(tables()[table]["key"])


def conform(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Select, order and cast the columns of `df` as the dictionary says, sorted by the table's key."""
    sch = schema(table)
    missing = [c for c in sch if c not in df.columns]
    if missing:
        raise KeyError(f"{table}: generator produced no column(s) {missing}")
    out = df.select(pl.col(c).cast(t) for c, t in sch.items())
    order = stable_order(out, key(table))
    if (np.diff(order) == 1).all():
        return out
    # one chunk first: a gather over several chunks (concatenated slices) cost 6x the rechunk plus gather
    return out.rechunk()[order]


def sortable(s: pl.Series) -> np.ndarray:
    """Integers that order like the column (nulls last): the values of integers and dates; a string column of digits
    of one width as its numbers (the identifiers, where comparing strings costs most); other strings by dense rank."""
    if s.dtype == pl.String:
        n = s.str.len_bytes()
        # digits only, one width (a sign would order differently): the cast, checked, is cheaper than a regex
        num = s.cast(pl.Int64, strict=False) if n.min() == n.max() and (n.max() or 0) <= 18 else None
        # no sign: '+' and '-' order before the digits, so the smallest string would start with one
        if (num is not None and num.null_count() == s.null_count() and (num.min() or 0) >= 0
                and (s.min() or "0")[:1].isdigit()):
            s = num
        else:
            s = s.rank("dense")
    s = s.to_physical().cast(pl.Int64)
    top = s.max()
    return s.fill_null(0 if top is None else top + 1).to_numpy()


def _dense(col: np.ndarray) -> np.ndarray:
    """`col` shifted to start at 0 and, where its range is small, replaced by its dense rank (same order, fewer bits:
    an aanbieder code of one job takes 10 bits instead of 17, so more keys pack into one integer)."""
    col = col - col.min()
    top = int(col.max())
    if 0 < top < 1 << 20:
        seen = np.zeros(top + 1, dtype=bool)
        seen[col] = True
        col = (np.cumsum(seen, dtype=np.int64) - 1)[col]
    return col


def pack(cols: list[np.ndarray]) -> list[np.ndarray]:
    """Integer columns, compared lexicographically (the first most significant), as few int64 columns as hold them
    in 63 bits each, least significant first: neighbouring columns packed into one (each shifted to 0, or its dense
    rank where the range is small). Same order and same equalities, fewer sorts or hashes; one column when it fits."""
    if not len(cols[0]):
        return [np.zeros(0, dtype=np.int64)]
    packed, value, bits = [], None, 0
    for col in reversed(cols):
        col = _dense(np.asarray(col, dtype=np.int64))
        width = int(col.max()).bit_length()
        if value is not None and bits + width <= 63:
            value, bits = value + (col << bits), bits + width
        else:
            if value is not None:
                packed.append(value)
            value, bits = col, width
    packed.append(value)
    return packed


def stable_order(df: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """Row order of a stable sort by `keys` (nulls last), as `df.sort(keys, nulls_last=True, maintain_order=True)`:
    the keys as integers, packed (`pack`), then one stable single-column argsort per packed key, last first (a
    multi-column sort on the identifier strings was a tenth of the generator's time; polars' argsort of one integer
    column is stable and 2-3x numpy's)."""
    if df.height == 0:
        return np.arange(0)
    order = None
    for value in pack([sortable(df[k]) for k in keys]):   # least significant first
        step = pl.Series(value if order is None else value[order]).arg_sort().to_numpy()
        order = step if order is None else order[step]
    return order


def merge_sorted(table: str, parts: list[pl.DataFrame], max_runs: int = 50_000, rechunk: bool = True) -> pl.DataFrame:
    """One table from parts that `conform` sorted each: the rows of a stable sort of their concatenation.

    When no value of the key's first column occurs in two parts (gemeente_code: a gemeente lies in one job;
    agb_code: an aanbieder contracts with one inkoopregio), the sorted table is the parts' runs of that value put in
    order, which needs no new sort. Otherwise the concatenation is sorted again. Without `rechunk` the result keeps
    the parts' slices as its chunks (at most one per value of that column; no copy: the generator's peak of memory
    was this copy of every table while all of them are held).
    """
    parts = [p for p in parts if p.height] or parts[:1]
    if len(parts) == 1:
        return parts[0]
    first = key(table)[0]
    runs, seen = [], set()
    for i, part in enumerate(parts):
        rle = part.get_column(first).rle()
        offset = 0
        for length, value in zip(rle.struct.field("len").to_list(), rle.struct.field("value").to_list()):
            runs.append((value is None, value, i, offset, length))
            offset += length
            if value in seen:
                runs = None
                break
            seen.add(value)
        if runs is None or len(runs) > max_runs:
            break
    if runs is None or len(runs) > max_runs:
        return pl.concat(parts).sort(key(table), nulls_last=True, maintain_order=True)
    runs.sort(key=lambda r: (r[0], r[1]) if r[1] is not None else (True,))
    slices: list[list[int]] = []   # [part, offset, length], neighbouring runs of one part joined
    for _, _, i, offset, length in runs:
        if slices and slices[-1][0] == i and slices[-1][1] + slices[-1][2] == offset:
            slices[-1][2] += length
        else:
            slices.append([i, offset, length])
    return pl.concat([parts[i].slice(offset, length) for i, offset, length in slices], rechunk=rechunk)


def dictionary_frame(names: list[str] | None = None) -> pl.DataFrame:
    """The data dictionary as a table, one row per column of the generated and the warehouse tables (or `names`):
    what the warehouse's `data_dictionary` table and the dictionary sheet of `zandbak export` hold."""
    specs = {**tables(), **warehouse_tables()}
    rows = [{"table_name": t, "table_group": specs[t]["group"], "position": i, "column_name": c, "type": typ,
             "ijw_element": element, "codelist": codelist, "meaning": meaning}
            for t in (names if names is not None else specs)
            for i, (c, (typ, element, codelist, meaning)) in enumerate(specs[t]["columns"].items(), 1)]
    return pl.DataFrame(rows, schema={"table_name": pl.String, "table_group": pl.String, "position": pl.Int64,
                                      "column_name": pl.String, "type": pl.String, "ijw_element": pl.String,
                                      "codelist": pl.String, "meaning": pl.String})


def codelist_frame() -> pl.DataFrame:
    """The iJw code lists as a table, one row per (codelist, code)."""
    rows = [{"codelist": name, "code": str(code), "omschrijving": str(text)}
            for name, values in codelists().items() if isinstance(values, dict) and name != "eenheid_frequenties"
            for code, text in values.items()]
    return pl.DataFrame(rows, schema={"codelist": pl.String, "code": pl.String, "omschrijving": pl.String})


def render_markdown() -> str:
    """docs/data-dictionary.md, generated from the registry so it cannot drift."""
    lists = codelists()
    lines = [
        "# Data dictionary",
        "",
        "Generated by `zandbak docs` from `synthetic_data/data/dictionary.yaml`; do not edit by hand.",
        "Amounts are integer eurocent, as in iJw. Every table is synthetic: no row describes a real person or organisation.",
        "",
    ]
    for name, spec in tables().items():
        lines += [f"## `{name}` ({spec['group']})", "", spec["meaning"], "", f"Key: `{', '.join(spec['key'])}`", ""]
        lines += ["| column | type | iJw element | code list | meaning |", "|---|---|---|---|---|"]
        for col, (typ, element, codelist, meaning) in spec["columns"].items():
            cl = codelist if codelist == "-" else f"[{codelist}](#code-list-{codelist})"
            lines.append(f"| `{col}` | {typ} | {element} | {cl} | {meaning} |")
        lines.append("")
    lines += ["# Warehouse tables", "", "`data/warehouse.duckdb` also holds these (and the leaderboards); the "
              "generator does not write them.", ""]
    for name, spec in warehouse_tables().items():
        lines += [f"## `{name}` ({spec['group']})", "", spec["meaning"], "", f"Key: `{', '.join(spec['key'])}`", ""]
        lines += ["| column | type | iJw element | code list | meaning |", "|---|---|---|---|---|"]
        lines += [f"| `{col}` | {typ} | {element} | {codelist} | {meaning} |"
                  for col, (typ, element, codelist, meaning) in spec["columns"].items()]
        lines.append("")
    lines += ["# Code lists", "", f"Source: {lists['source_note']}.", ""]
    for name, values in lists.items():
        if name in ("source_note", "eenheid_frequenties"):
            continue
        lines += [f"## Code list {name}", "", "| code | meaning |", "|---|---|"]
        lines += [f"| `{code}` | {text} |" for code, text in values.items()]
        lines.append("")
    return "\n".join(lines)


def duplicate_keys(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Rows whose key (as the dictionary defines it) occurs more than once."""
    k = key(table)
    return df.filter(pl.struct(k).is_duplicated()).select(k)
