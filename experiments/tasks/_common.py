"""What every task shares: the data handed to an experiment, the content hash, and the prediction checks."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Mapping

import polars as pl

from ..errors import PredictionError


@dataclass(frozen=True)
class TaskData:
    """One prepared task: `inputs` go to the experiment (treat them as read-only: `run` hands the experiment copies
    in its own process, calling an Experiment hands it fresh frame objects), `truth` stays with the scorer.
    Plain data, so it pickles (Dagster's default IO manager stores it between assets)."""
    task: str
    seed: int | None             # the public seed; None for scored data made from a sealed secret
    params: dict
    inputs: dict[str, pl.DataFrame]
    truth: pl.DataFrame = field(repr=False)
    dataset_hash: str = ""

    def __repr__(self) -> str:
        tables = ", ".join(f"{k}: {v.height}" for k, v in self.inputs.items())
        seed = "sealed" if self.seed is None else self.seed
        return (f"TaskData(task={self.task!r}, seed={seed}, params={self.params}, inputs={{{tables}}}, "
                f"truth: {self.truth.height} rows, dataset_hash={self.dataset_hash[:12]}...)")


def dataset_hash(inputs: Mapping[str, pl.DataFrame]) -> str:
    """sha256 of the inputs' content: table names, schemas and rows as CSV text (independent of Parquet writer
    settings and row hashing, which may change between library versions)."""
    h = hashlib.sha256()
    for name in sorted(inputs):
        df = inputs[name]
        h.update(f"{name}\n{[(c, str(t)) for c, t in df.schema.items()]}\n".encode())
        h.update(df.write_csv().encode())
    return h.hexdigest()


def task_data(task: str, seed: int | None, params: dict, inputs: dict[str, pl.DataFrame], truth: pl.DataFrame) -> TaskData:
    return TaskData(task=task, seed=seed, params=params, inputs=dict(inputs), truth=truth,
                    dataset_hash=dataset_hash(inputs))


# ------------------------------------------------------------------------------------------------- the checks

def _family(dtype: pl.DataType) -> str:
    if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return "str"
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if dtype == pl.Date:
        return "date"
    if dtype == pl.Null:
        return "null"
    return str(dtype)


_ACCEPTS = {"str": {"str"}, "int": {"int"}, "float": {"float", "int"}, "date": {"date"}}


def _describe(schema: dict[str, pl.DataType]) -> str:
    return ", ".join(f"{c} ({_family(t)})" for c, t in schema.items())


def check_columns(task: str, df, schema: dict[str, pl.DataType], nullable: set[str] = frozenset()) -> pl.DataFrame:
    """The predictions with exactly the columns of `schema`, cast to its types; a PredictionError names the first
    problem (missing or extra column, wrong type, empty value)."""
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    if not isinstance(df, pl.DataFrame):
        raise PredictionError(f"{task}: predictions must be a polars DataFrame, got {type(df).__name__}; "
                              f"expected columns: {_describe(schema)}")
    for c in schema:
        if c not in df.columns:
            raise PredictionError(f"{task}: predictions miss column {c!r}; expected columns: {_describe(schema)}")
    for c in df.columns:
        if c not in schema:
            raise PredictionError(f"{task}: predictions have an unexpected column {c!r}; expected exactly: "
                                  f"{_describe(schema)} (drop it with .select({', '.join(map(repr, schema))}))")
    for c, want in schema.items():
        got = _family(df.schema[c])
        if got not in _ACCEPTS[_family(want)] and not (got == "null" and c in nullable):
            raise PredictionError(f"{task}: column {c!r} has type {df.schema[c]}, expected {_family(want)}")
    df = df.select(pl.col(c).cast(t) for c, t in schema.items())
    for c in schema:
        if c not in nullable and df[c].null_count():
            raise PredictionError(f"{task}: column {c!r} has {df[c].null_count()} empty (null) values; every row "
                                  f"needs one")
    return df


def check_values(task: str, df: pl.DataFrame, column: str, allowed: list[str]) -> None:
    bad = df.filter(pl.col(column).is_not_null() & ~pl.col(column).is_in(allowed))
    if bad.height:
        raise PredictionError(f"{task}: column {column!r} has value {bad[column][0]!r} ({bad.height} rows); "
                              f"allowed: {', '.join(allowed)}")


def _first(df: pl.DataFrame, keys: list[str]) -> str:
    row = df.row(0, named=True)
    return ", ".join(f"{k}={row[k]}" for k in keys)


def check_rows(task: str, predictions: pl.DataFrame, truth: pl.DataFrame, keys: list[str]) -> None:
    """Exactly one prediction per row to predict (the rows of `to_predict`, which are the truth's keys)."""
    dup = predictions.filter(pl.struct(keys).is_duplicated())
    if dup.height:
        raise PredictionError(f"{task}: predictions have {dup.height} rows with a repeated key (first: "
                              f"{_first(dup, keys)}); allowed: one row per row of to_predict")
    missing = truth.select(keys).join(predictions.select(keys), on=keys, how="anti")
    if missing.height:
        raise PredictionError(f"{task}: predictions miss {missing.height} of {truth.height} rows to predict "
                              f"(first: {_first(missing, keys)}); allowed: one row per row of to_predict")
    extra = predictions.select(keys).join(truth.select(keys), on=keys, how="anti")
    if extra.height:
        raise PredictionError(f"{task}: predictions have {extra.height} rows that were not asked for (first: "
                              f"{_first(extra, keys)}); allowed: the rows of to_predict")


def ratio(a: float, b: float) -> float | None:
    return None if not b else a / b


def f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def clean(x):
    """Plain JSON-able numbers: NaN and inf become None."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
