"""Challenge mode for classes and recruitment events: a dirty dataset without labels, a sealed truth, a leaderboard.

`new` generates a clean dataset, injects faults and writes the handout (dirty tables + a manifest that names the
challenge but holds no labels). The truth goes to the project's data folder (`data/challenges/<id>/`), not into
the handout. `score` scores a team's findings against it and appends the result to the `challenge_leaderboard`
table of the DuckDB warehouse.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import duckdb
import polars as pl

from synthetic_data import GeneratorConfig, generate
from synthetic_data.dataset import MANIFEST, write_dataset, write_table
from synthetic_data.errors import DataError
from synthetic_data.faults import inject_faults
from synthetic_data.faults.score import score

from .settings import Settings

LEADERBOARD = "challenge_leaderboard"


def _truth_dir(settings: Settings, challenge_id: str) -> Path:
    return Path(settings.data_dir) / "challenges" / challenge_id


def new(seed: int, out: Path, region: str = "twente", years: str = "2024", scale: float = 1.0,
        profile: str = "realistic", settings: Settings | None = None) -> dict:
    settings = settings or Settings.from_env()
    config = GeneratorConfig(region=region, years=years, seed=seed, scale=scale)
    dirty, truth = inject_faults(generate(config), profile=profile, seed=seed)
    challenge_id = hashlib.sha256(json.dumps({**config.as_dict(), "profile": profile}, sort_keys=True).encode()).hexdigest()[:12]
    manifest = write_dataset(dirty, out, {**config.as_dict(), "challenge_id": challenge_id, "profile": profile})
    sealed = _truth_dir(settings, challenge_id)
    sealed.mkdir(parents=True, exist_ok=True)
    tmp = sealed / "truth.parquet.tmp"
    write_table(truth, tmp, {b"jeugdzorg_zandbak.synthetic": b"true"})
    os.replace(tmp, sealed / "truth.parquet")
    return {"challenge_id": challenge_id, "handout": str(out), "truth": str(sealed / "truth.parquet"),
            "records": sum(t["rows"] for t in manifest["tables"].values()), "faults": truth.height}


def read_findings(path: Path) -> pl.DataFrame:
    """Findings as written by `zandbak check --findings`, or any CSV/Parquet with `table` and key columns."""
    if not path.exists():
        raise DataError(f"{path}: findings file not found")
    try:
        df = pl.read_parquet(path) if path.suffix.lower() == ".parquet" else pl.read_csv(path, infer_schema_length=0)
    except pl.exceptions.PolarsError as e:
        raise DataError(f"{path}: cannot be read as findings: {str(e).splitlines()[0]}") from None
    if "table" not in df.columns:
        raise DataError(f"{path}: no 'table' column; allowed: the format of 'zandbak check --findings' or a CSV "
                        f"with 'table' and the table's key columns")
    return df.with_columns(pl.all().cast(pl.String))


def score_submission(handout: Path, submission: Path, team: str, settings: Settings | None = None) -> dict:
    settings = settings or Settings.from_env()
    try:
        manifest = json.loads((handout / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise DataError(f"{handout}: not a challenge handout (no readable manifest.json)") from None
    challenge_id = manifest.get("config", {}).get("challenge_id")
    truth_path = _truth_dir(settings, str(challenge_id)) / "truth.parquet"
    if not challenge_id or not truth_path.exists():
        raise DataError(f"{handout}: challenge '{challenge_id}' has no sealed truth in {truth_path.parent}; "
                        f"score on the machine where 'zandbak challenge new' made it")
    result = score(read_findings(submission), pl.read_parquet(truth_path))
    o = result["overall"]
    row = {"time": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "challenge_id": challenge_id, "team": team,
           "precision": o["precision"], "recall": o["recall"], "f1": o["f1"], "tp": o["tp"], "fp": o["fp"], "fn": o["fn"],
           "submission": str(submission)}
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute(f"""create table if not exists {LEADERBOARD} (time timestamp, challenge_id varchar, team varchar,
            precision double, recall double, f1 double, tp bigint, fp bigint, fn bigint, submission varchar)""")
        con.execute(f"insert into {LEADERBOARD} values ($time, $challenge_id, $team, $precision, $recall, $f1, $tp, "
                    f"$fp, $fn, $submission)", row)
        board = con.execute(f"select team, max(f1) as best_f1, count(*) as submissions from {LEADERBOARD} "
                            f"where challenge_id = ? group by team order by best_f1 desc", [challenge_id]).fetchall()
    return {"result": result, "leaderboard": board, "challenge_id": challenge_id}
