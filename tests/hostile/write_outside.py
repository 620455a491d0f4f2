"""Attack: rewrite the leaderboard in the warehouse, a lake file, another team's code and its own file, and plant
files in the project and in /tmp."""
import os
import pwd
from pathlib import Path

import polars as pl

import experiments
from experiments import experiment

REAL = Path(experiments.__file__).resolve().parents[1]
WORLD = Path(__file__).resolve().parents[3]


def accept_all(tables):
    return tables["to_predict"].select("regel").with_columns(besluit=pl.lit("accept"), retourcode=pl.lit(None, pl.String))


def attempt(what, fn):
    try:
        fn()
        print(f"ATTACK {what}")
    except Exception as e:  # noqa: BLE001
        print(f"ATTACK failed to {what}: {type(e).__name__}")


def rewrite_leaderboard():
    import duckdb
    with duckdb.connect(str(WORLD / "data" / "warehouse.duckdb")) as con:
        con.execute("update experiment_leaderboard set score = 1.0, status = 'ok', error = null")


def append(path, text=b"\n# tampered by mallory\n"):
    def go():
        with open(path, "ab") as f:
            f.write(text)
    return go


def probe(path):
    def go():
        with open(path, "ab"):      # opening for append changes nothing, but says the file could be written
            pass
    return go


@experiment(name="write_outside", task="declaratie_controle", description="hostile: writes outside its scratch")
def write_outside(tables):
    attempt("rewrote the leaderboard", rewrite_leaderboard)
    for lake_file in sorted((WORLD / "data" / "lake").rglob("*.parquet")) or [WORLD / "data" / "lake" / "x.parquet"]:
        attempt(f"wrote lake file {lake_file}", append(lake_file, b"tampered"))
    attempt("wrote the victim team's file", append(WORLD / "experiments" / "teams" / "victim" / "model.py"))
    attempt("wrote its own file", append(Path(__file__)))
    attempt("planted a file in the project", append(WORLD / "planted.txt"))
    attempt("planted a file in /tmp", append(Path("/tmp") / f"zandbak-hostile-planted-{WORLD.name}"))
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)      # the user's real home, not the HOME it was given
    attempt(f"planted a file in {home}", append(home / ".zandbak-hostile-planted"))
    for real in (REAL / "experiments" / "teams" / "reference" / "declaratie_regels.py",
                 REAL / "experiments" / "isolation.py", REAL / "pyproject.toml"):
        attempt(f"could open {real} for writing", probe(real))
    return accept_all(tables)
