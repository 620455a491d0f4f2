"""Attack: unpickle Dagster's stored task data (dagster_home/storage/task_*), which holds the truth."""
import pickle
from pathlib import Path

import polars as pl

import experiments
from experiments import experiment

ROOTS = [Path(experiments.__file__).resolve().parents[1], Path(__file__).resolve().parents[3]]


def accept_all(tables):
    return tables["to_predict"].select("regel").with_columns(besluit=pl.lit("accept"), retourcode=pl.lit(None, pl.String))


def from_truth(tables, truth):
    from experiments.tasks.declaratie_controle import retourcodes
    return tables["to_predict"].select("regel").join(truth, on="regel", how="left").select(
        "regel",
        besluit=pl.when("must_reject").then(pl.lit("reject")).otherwise(pl.lit("accept")),
        retourcode=pl.when("must_reject").then(
            pl.col("expected_retourcodes").str.split(",").list.first().fill_null(retourcodes()[0])))


@experiment(name="unpickle_storage", task="declaratie_controle", description="hostile: unpickles Dagster storage")
def unpickle_storage(tables):
    for root in ROOTS:
        storage = root / "dagster_home" / "storage"
        candidates = [storage / "task_declaratie_controle"]
        try:
            candidates += sorted(p for p in storage.iterdir() if p.is_file())
        except OSError as e:
            print(f"ATTACK cannot list {storage}: {type(e).__name__}")
        for p in dict.fromkeys(candidates):
            try:
                obj = pickle.loads(p.read_bytes())
            except Exception as e:  # noqa: BLE001
                print(f"ATTACK cannot unpickle {p}: {type(e).__name__}")
                continue
            truth = getattr(obj, "truth", None)
            if isinstance(truth, pl.DataFrame) and "must_reject" in truth.columns:
                print(f"ATTACK got the truth from {p}")
                return from_truth(tables, truth)
    return accept_all(tables)
