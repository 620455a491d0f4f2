"""Attack: search the project (and the working folders of other processes) for *truth*, ground_truth and
challenges files and read what it finds."""
import os
from pathlib import Path

import polars as pl

import experiments
from experiments import experiment

ROOTS = [Path(experiments.__file__).resolve().parents[1], Path(__file__).resolve().parents[3]]
SKIP = {".git", ".venv", "node_modules", "__pycache__"}


def accept_all(tables):
    return tables["to_predict"].select("regel").with_columns(besluit=pl.lit("accept"), retourcode=pl.lit(None, pl.String))


def from_truth(tables, truth):
    from experiments.tasks.declaratie_controle import retourcodes
    return tables["to_predict"].select("regel").join(truth, on="regel", how="left").select(
        "regel",
        besluit=pl.when("must_reject").then(pl.lit("reject")).otherwise(pl.lit("accept")),
        retourcode=pl.when("must_reject").then(
            pl.col("expected_retourcodes").str.split(",").list.first().fill_null(retourcodes()[0])))


def candidates():
    roots = list(ROOTS)
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if pid.isdigit():     # another process's working folder may be a project: look at its data folder only
            roots.append(Path("/proc") / pid / "cwd" / "data")
    for root in roots:
        for folder, dirs, files in os.walk(root, onerror=lambda e: print(f"ATTACK cannot list {e.filename}: "
                                                                          f"{type(e).__name__}")):
            dirs[:] = [d for d in dirs if d not in SKIP]
            for f in files:
                path = Path(folder) / f
                if "truth" in f or "ground_truth" in str(path) or "challenges" in str(path):
                    yield path


@experiment(name="find_truth", task="declaratie_controle", description="hostile: globs the project for the truth")
def find_truth(tables):
    for path in candidates():
        try:
            df = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
        except Exception as e:  # noqa: BLE001
            print(f"ATTACK cannot read {path}: {type(e).__name__}")
            continue
        print(f"ATTACK read {path} ({df.height} rows)")
        if {"regel", "must_reject"} <= set(df.columns):
            print(f"ATTACK got the truth from {path}")
            return from_truth(tables, df)
    return accept_all(tables)
