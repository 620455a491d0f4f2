"""Challenge mode for classes and recruitment events: a dirty dataset without labels, a sealed truth, a leaderboard.

`new` draws a secret from the OS, derives the data seed and the fault seed from it (synthetic_data.sealing), and
writes the hand-out: the dirty tables a gemeente's own administration holds (not the simulation's `trajecten`) and a
manifest that names the challenge (region, years, profile, id, hashes) but holds no seed, no secret and no labels.
The secret, the config and the truth go to the sealed folder `<data>/sealed/challenges/<id>/` (owner-only), which
a participant never gets. `score` scores a team's findings against it and appends the result to the
`challenge_leaderboard` (a folder beside the warehouse, shown in it as a view).

A public seed (`public_seed=`, `--seed N --public-seed`) makes teaching material anyone can regenerate: its hand-out
says so, and its scores are worth nothing.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl

from synthetic_data import GeneratorConfig, generate
from synthetic_data.atomic import atomic_write
from synthetic_data.dataset import MANIFEST, check_output, present_tables, read_dataset, read_truth, write_dataset
from synthetic_data.errors import DataError
from synthetic_data.faults import inject_faults
from synthetic_data.faults.score import REJECTED_LINES, rejected_records, score
from synthetic_data.sealing import SIMULATION_ONLY, derive_id, derive_seed, new_secret, seal, write_secret, write_truth

from .settings import Settings

LEADERBOARD = "challenge_leaderboard"


def _truth_dir(settings: Settings, challenge_id: str) -> Path:
    return settings.sealed / "challenges" / challenge_id


def new(out: Path, region: str = "twente", years: str = "2024", scale: float = 1.0, profile: str = "realistic",
        settings: Settings | None = None, secret: str | None = None, public_seed: int | None = None,
        force: bool = False) -> dict:
    """Make a challenge: hand-out in `out`, secret and truth sealed. `secret` (default: fresh from the OS) makes
    the same challenge again, byte for byte; `public_seed` replaces the data seed for unscored teaching material."""
    settings = settings or Settings.from_env()
    out = Path(out)
    check_output(out, inputs=[settings.sealed, settings.lake, settings.warehouse], force=force)
    if (out / MANIFEST).exists() and not force:
        try:
            cfg = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("config", {})
        except (OSError, ValueError, AttributeError):
            cfg = {}
        if "challenge_id" not in cfg:   # a hand-out may replace an earlier hand-out, never a dataset
            raise DataError(f"--out: '{out}' holds a dataset that is not a challenge hand-out; allowed: a new or "
                            f"empty folder, an earlier hand-out, or --force to replace it (nothing was written)")
    secret = secret or new_secret()
    seed = public_seed if public_seed is not None else derive_seed(secret, "data")
    config = GeneratorConfig(region=region, years=years, seed=seed, scale=scale)
    dirty, truth = inject_faults(generate(config), profile=profile, seed=derive_seed(secret, "faults"))
    challenge_id = derive_id(secret, "challenge")
    c = config.as_dict()
    public = {"region": c["region"], "years": c["years"], "profile": profile, "challenge_id": challenge_id,
              "scored": public_seed is None}
    if public_seed is not None:
        public["public_seed"] = public_seed   # honest label: this one can be regenerated
    sealed = seal(_truth_dir(settings, challenge_id))
    write_secret(sealed, secret)
    with atomic_write(sealed / "challenge.json", mode=0o600) as tmp:
        tmp.write_text(json.dumps({**public, "scale": c["scale"]}, indent=2) + "\n", encoding="utf-8")
    truth_path = write_truth(sealed / "truth.parquet", truth)
    handout = {name: df for name, df in dirty.items() if name not in SIMULATION_ONLY}
    manifest = write_dataset(handout, out, public)
    return {"challenge_id": challenge_id, "handout": str(out), "truth": str(truth_path),
            "records": sum(t["rows"] for t in manifest["tables"].values()), "faults": truth.height,
            "tables": sorted(handout), "scored": public_seed is None}


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
    from synthetic_data.dictionary import key, table_names

    known = table_names()
    for table in df["table"].drop_nulls().unique().sort().to_list():
        if table not in known:
            raise DataError(f"{path}: findings name table '{table}', which the sandbox does not have; allowed: "
                            f"{', '.join(known)}")
        cols = key(table)
        has_key = "key" in df.columns and df.filter(pl.col("table") == table)["key"].null_count() == 0
        if not has_key and not all(c in df.columns for c in cols):
            raise DataError(f"{path}: findings for table '{table}' have neither a 'key' column nor the key columns "
                            f"{', '.join(cols)}; allowed: the format of 'zandbak check --findings'")
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
    rejected = None     # the claim lines the gemeente already rejected (in the hand-out) count for neither side
    if REJECTED_LINES in present_tables(handout):
        rejected = rejected_records(read_dataset(handout, [REJECTED_LINES]))
    result = score(read_findings(submission), read_truth(truth_path), rejected)
    o = result["overall"]
    row = {"time": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "challenge_id": challenge_id, "team": team,
           "precision": o["precision"], "recall": o["recall"], "f1": o["f1"], "tp": o["tp"], "fp": o["fp"], "fn": o["fn"],
           "submission": str(submission)}
    from experiments.leaderboard import session

    from .warehouse import refresh_leaderboards

    # an append-only table beside the warehouse (one file per score), shown in the warehouse as a view
    with session(settings.warehouse, LEADERBOARD) as con:
        con.execute(f"""create table if not exists {LEADERBOARD} (time timestamp, challenge_id varchar, team varchar,
            precision double, recall double, f1 double, tp bigint, fp bigint, fn bigint, submission varchar)""")
        con.execute(f"insert into {LEADERBOARD} values ($time, $challenge_id, $team, $precision, $recall, $f1, $tp, "
                    f"$fp, $fn, $submission)", row)
    refresh_leaderboards(settings.warehouse)
    with session(settings.warehouse, LEADERBOARD, read_only=True) as con:
        board = con.execute(f"select team, max(f1) as best_f1, count(*) as submissions from {LEADERBOARD} "
                            f"where challenge_id = ? group by team order by best_f1 desc", [challenge_id]).fetchall()
    return {"result": result, "leaderboard": board, "challenge_id": challenge_id}


def sealed_markdown() -> str:
    """docs/sealed.md: per challenge and per task, what a participant is handed and what stays sealed."""
    import experiments as ex
    from synthetic_data.dictionary import table_names

    tables = table_names()
    lines = ["# What a participant gets, and what stays sealed", "",
             "Generated by `zandbak docs` from the task modules (`HANDED_OVER`) and the challenge code; do not edit.",
             "", "Scored data is made from a secret of 256 bits drawn from the OS; the data seed and the fault seed "
             "are derived from it separately (HMAC-SHA256, 128 bits each). The secret and the truth live only in the "
             "sealed folder `data/sealed/` (owner-only), which experiments cannot read (see the sandbox in the README).",
             "", "## Challenges (`zandbak challenge new`)", "",
             "| handed out | sealed in `data/sealed/challenges/<id>/` |", "|---|---|",
             f"| {', '.join(t for t in tables if t not in SIMULATION_ONLY)}; `manifest.json` with region, years, "
             f"profile, challenge id, synthetic flag and file hashes (no seed, no scale, no secret) "
             f"| {', '.join(SIMULATION_ONLY)} (not written at all), `truth.parquet` (the labelled faults), `secret`, "
             f"`challenge.json` (the full config) |", "",
             "## Tasks (`zandbak experiment run`, `make run`)", "",
             "| task | handed to the experiment | hidden | scored data |", "|---|---|---|---|"]
    for t in ex.TASKS.values():
        hidden = [n for n in tables if n not in t.handed_over]
        note = getattr(t.module, "HIDDEN_NOTE", "")     # rows hidden from a table that is handed over
        hidden += [note] if note else []
        lines.append(f"| `{t.name}` | {', '.join(t.handed_over)} | {', '.join(hidden)}; the truth | "
                     f"`data/sealed/tasks/secret`, truth in `data/sealed/tasks/{t.name}/` |")
    lines += ["", "`--seed N` (and `prepare(task, seed=N)`) gives public development data: anyone can regenerate "
              "it, so it is never for scores."]
    return "\n".join(lines)
