"""`zandbak arena`: a class challenge in the browser, on the host's machine (no dagster import).

The host makes a challenge (`zandbak challenge new`), then serves it: `zandbak arena HANDOUT --teams a,b,c`. The page
offers the hand-out as a zip, the submission format and a sample; each team uploads findings with its token and sees
its score at once. Kaggle's split: the truth's records (and every finding) fall into a public or a private part by a
keyed hash of the record key and the challenge secret, so a team cannot tell which part a record is in. The public
leaderboard scores the public part; the host reveals the private board at the end (with the host token), which also
closes the submissions. A team's private score is that of its best public submission (Kaggle's default selection),
so the private part cannot be probed by picking among submissions.

Why here and not in experiments/: it serves challenges, whose code lives in pipelines/challenge.py, and experiments/
may not import pipelines/. It imports no dagster (a test checks).

Why starlette + uvicorn: they are kept, already installed with dagster-webserver, and give a real ASGI server with
multipart parsing (python-multipart) and a test client; jinja2 (installed with great_expectations) escapes the pages.

Host side only, never served: the truth, the secret, the tokens and the uploads, all in the sealed folder
`<data>/sealed/arena/<challenge id>/` (owner-only). There are no static-file routes: every URL is one of the routes
below. Every upload read whole from a known team is kept (an append-only, atomically written file) and gets a row
in the `arena_submissions` board (a Parquet folder beside the warehouse, a view in it, like the other leaderboards);
a refused one (bad format) gets a row with its reason and does not count against the daily limit.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import re
import secrets
import socket
import tempfile
import threading
import zipfile
from pathlib import Path

import polars as pl

from synthetic_data.atomic import atomic_write
from synthetic_data.dataset import MANIFEST, present_tables, read_dataset, read_truth
from synthetic_data.errors import ConfigError, DataError
from synthetic_data.faults.score import REJECTED_LINES, finding_records, rejected_records, score
from synthetic_data.sealing import read_secret, seal

from experiments.errors import PredictionError

from .challenge import _truth_dir, read_findings
from .settings import Settings

BOARD = "arena_submissions"
BOARD_COLUMNS = {
    "time": "timestamp", "challenge_id": "varchar", "team": "varchar", "submission_id": "varchar",
    "status": "varchar", "reason": "varchar", "filename": "varchar", "sha256": "varchar", "findings": "bigint",
    "public_score": "double", "private_score": "double",      # what the boards rank: F1, or a task's score
    "public_f1": "double", "public_precision": "double", "public_recall": "double",
    "private_f1": "double", "private_precision": "double", "private_recall": "double",
}
TEAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
SPLIT_PURPOSE = b"arena public/private split"
SUFFIXES = (".csv", ".parquet")


def check_teams(teams: list[str]) -> list[str]:
    bad = [t for t in teams if not TEAM_NAME.match(t)]
    if bad or not teams or len(set(teams)) != len(teams):
        problem = (f"team name(s) {', '.join(repr(b) for b in bad)} not allowed" if bad else
                   "no team given" if not teams else "a team is named twice")
        raise ConfigError("--teams", problem, "comma-separated distinct names of 1-32 letters, digits, _ or -")
    return teams


def _check_limits(limit: int, public_share: float, max_mb: float) -> None:
    if not 1 <= limit <= 1000:
        raise ConfigError("--limit", f"'{limit}' is not allowed", "1 to 1000 submissions per team per day")
    if not 0 < public_share < 1:
        raise ConfigError("--public-share", f"'{public_share}' is not allowed",
                          "a fraction strictly between 0 and 1 (e.g. 0.5)")
    if not 0 < max_mb <= 500:
        raise ConfigError("--max-mb", f"'{max_mb}' is not allowed", "more than 0, at most 500 (MB per upload)")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def public_mask(keys: pl.DataFrame, secret: str, share: float) -> pl.Series:
    """True where a (table, key) record is in the public part. A keyed BLAKE2b of "table|key" with a key derived
    from the challenge secret: without the secret the parts cannot be told apart, and the same record is in the same
    part in every run. Per distinct key in Python: polars' own hash is neither keyed nor stable across versions, and
    a truth or a submission holds thousands of keys, not millions."""
    key = hmac.new(bytes.fromhex(secret), SPLIT_PURPOSE, hashlib.sha256).digest()
    cut = int(share * 2**64)
    joined = keys.select(pl.concat_str([pl.col("table"), pl.col("key")], separator="|").alias("k"))["k"]
    uniq = joined.unique().to_list()
    part = {u: int.from_bytes(hashlib.blake2b(u.encode(), key=key, digest_size=8).digest(), "big") < cut
            for u in uniq}
    return joined.replace_strict(part, return_dtype=pl.Boolean) if uniq else pl.Series([], dtype=pl.Boolean)


class Arena:
    """One served challenge: its hand-out, its sealed truth split into two parts, its teams and its board."""

    def __init__(self, handout: Path, settings: Settings | None = None, limit: int = 5, public_share: float = 0.5,
                 max_mb: float = 20.0):
        self.settings = settings or Settings.from_env()
        self.handout = Path(handout)
        try:
            manifest = json.loads((self.handout / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise DataError(f"{self.handout}: not a challenge hand-out (no readable {MANIFEST}); allowed: a folder "
                            f"written by 'zandbak challenge new'") from None
        config = manifest.get("config", {}) if isinstance(manifest, dict) else {}
        self.challenge_id = str(config.get("challenge_id") or "")
        if not self.challenge_id:
            raise DataError(f"{self.handout}: not a challenge hand-out (its manifest names no challenge_id); "
                            f"allowed: a folder written by 'zandbak challenge new'")
        sealed = _truth_dir(self.settings, self.challenge_id)
        if not (sealed / "truth.parquet").exists():
            raise DataError(f"{self.handout}: challenge '{self.challenge_id}' has no sealed truth in {sealed}; "
                            f"serve it on the machine where 'zandbak challenge new' made it")
        _check_limits(limit, public_share, max_mb)
        self.config, self.limit, self.public_share = config, limit, public_share
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.secret = read_secret(sealed)
        truth = read_truth(sealed / "truth.parquet")
        mask = public_mask(truth.select("table", "key"), self.secret, public_share)
        self.truth = {"public": truth.filter(mask), "private": truth.filter(~mask)}
        tables = present_tables(self.handout)
        self.rejected = rejected_records(read_dataset(self.handout, [REJECTED_LINES])) if REJECTED_LINES in tables \
            else None
        self.tables = tables
        self.state = self.settings.sealed / "arena" / self.challenge_id    # sealed when first written
        self.lock = threading.Lock()      # one submission at a time: the limit check and the write are one step
        self._zip: bytes | None = None

    # ------------------------------------------------------------------ teams and host
    def _tokens(self) -> dict:
        path = self.state / "tokens.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"host": None, "teams": {}}

    def issue_tokens(self, teams: list[str]) -> dict:
        """A token per team (kept for teams that have one) and a host token; written owner-only."""
        check_teams(teams)
        seal(self.state)
        tokens = self._tokens()
        tokens["host"] = tokens.get("host") or secrets.token_urlsafe(16)
        for t in teams:
            tokens["teams"].setdefault(t, secrets.token_urlsafe(12))
        with atomic_write(self.state / "tokens.json", mode=0o600) as tmp:
            tmp.write_text(json.dumps(tokens, indent=2) + "\n", encoding="utf-8")
        return tokens

    def team_of(self, token: str) -> str | None:
        found = None
        for team, t in self._tokens()["teams"].items():
            if hmac.compare_digest(t.encode(), token.encode()):
                found = team
        return found

    def is_host(self, token: str) -> bool:
        host = self._tokens().get("host")
        return bool(host) and hmac.compare_digest(host.encode(), token.encode())

    @property
    def revealed(self) -> bool:
        return (self.state / "revealed").exists()

    def reveal(self) -> None:
        with atomic_write(seal(self.state) / "revealed", mode=0o600) as tmp:
            tmp.write_text(_now().isoformat() + "\n", encoding="utf-8")

    # ------------------------------------------------------------------ what is served
    def handout_zip(self) -> bytes:
        """The hand-out folder as a zip (made once): the only files of the host a participant gets."""
        if self._zip is None:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                for p in sorted(self.handout.iterdir()):
                    if p.is_file() and not p.name.startswith("."):
                        z.write(p, f"{self.challenge_id}/{p.name}")
            self._zip = buf.getvalue()
        return self._zip

    def sample(self) -> str:
        """A sample submission: a few claim lines (prestaties) of the hand-out in the findings format."""
        from synthetic_data.ijw import key_expr

        p = read_dataset(self.handout, ["prestaties"])["prestaties"].head(3)
        rows = p.select(pl.lit("prestaties").alias("table"), key_expr("prestaties").alias("key"),
                        pl.lit("TR339").alias("rule_code"))
        return rows.write_csv()

    # ------------------------------------------------------------------ the board
    def _rows(self) -> pl.DataFrame:
        from experiments.leaderboard import session

        schema = {c: {"varchar": pl.String, "double": pl.Float64, "bigint": pl.Int64,
                      "timestamp": pl.Datetime("us")}[t] for c, t in BOARD_COLUMNS.items()}
        with session(self.settings.warehouse, BOARD, read_only=True) as con:
            have = con.execute("select count(*) from information_schema.tables where table_name = ?",
                               [BOARD]).fetchall()[0][0]
            if not have:
                return pl.DataFrame(schema=schema)
            df = pl.from_arrow(con.sql(f"select * from {BOARD} where challenge_id = ? order by time",
                                       params=[self.challenge_id]).to_arrow_table())
        return df.cast({c: t for c, t in schema.items() if c in df.columns}) if df.height else pl.DataFrame(schema=schema)

    def _append(self, row: dict) -> None:
        from experiments.leaderboard import session

        from .warehouse import refresh_leaderboards

        cols = ", ".join(f'"{c}" {t}' for c, t in BOARD_COLUMNS.items())
        with session(self.settings.warehouse, BOARD) as con:
            con.execute(f"create table {BOARD} ({cols})")
            con.execute(f"insert into {BOARD} values ({', '.join('$' + c for c in BOARD_COLUMNS)})",
                        {c: row.get(c) for c in BOARD_COLUMNS})
        refresh_leaderboards(self.settings.warehouse)

    def used_today(self, team: str, rows: pl.DataFrame | None = None) -> int:
        rows = self._rows() if rows is None else rows
        today = _now().date()
        return rows.filter((pl.col("team") == team) & (pl.col("status") == "scored")
                           & (pl.col("time").dt.date() == today)).height

    def leaderboard(self, private: bool = False) -> list[dict]:
        """Per team its best public submission (earliest of equals), ranked on the public or the private F1."""
        rows = self._rows().filter(pl.col("status") == "scored")
        if rows.height == 0:
            return []
        best = rows.sort(["public_score", "time"], descending=[True, False], nulls_last=True).group_by(
            "team", maintain_order=True).agg(pl.all().first(), pl.len().alias("submissions"))
        part = "private" if private else "public"
        best = best.sort([f"{part}_score", "time"], descending=[True, False], nulls_last=True)
        return [{"rank": i + 1, "team": r["team"], "f1": r[f"{part}_score"], "precision": r[f"{part}_precision"],
                 "recall": r[f"{part}_recall"], "submissions": r["submissions"], "time": str(r["time"])[:19]}
                for i, r in enumerate(best.iter_rows(named=True))]

    # ------------------------------------------------------------------ a submission
    def _score(self, findings: pl.DataFrame) -> dict:
        f = finding_records(findings).select("table", "key")
        mask = public_mask(f, self.secret, self.public_share)
        out = {}
        for part, keep in (("public", mask), ("private", ~mask)):
            o = score(f.filter(keep), self.truth[part], self.rejected)["overall"]
            out.update({f"{part}_f1": o["f1"], f"{part}_precision": o["precision"], f"{part}_recall": o["recall"],
                        f"{part}_score": o["f1"]})
        out["findings"] = f.height
        return out

    def submit(self, team: str, filename: str, data: bytes) -> tuple[int, str, dict | None]:
        """Score and keep one upload of `team`: (HTTP status, one-line message, the public score or None)."""
        name = Path(filename or "").name
        suffix = Path(name).suffix.lower()
        with self.lock:
            if self.revealed:
                return 409, "submissions are closed: the host revealed the private leaderboard", None
            rows = self._rows()
            used = self.used_today(team, rows)
            if used >= self.limit:
                return 429, (f"limit reached: team {team} has made {used} of {self.limit} scored submissions "
                             f"today (UTC); the next is possible after 00:00 UTC"), None
            sha = hashlib.sha256(data).hexdigest()
            sid = f"{_now().strftime('%Y%m%dT%H%M%S%f')}-{team}-{sha[:12]}"
            row = {"time": _now(), "challenge_id": self.challenge_id, "team": team, "submission_id": sid,
                   "filename": name, "sha256": sha}
            reason, result = None, None
            if suffix not in SUFFIXES:
                reason = f"'{name or '(no file)'}': not a .csv or .parquet file; allowed: the findings format below"
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / f"upload{suffix}"
                    path.write_bytes(data)
                    try:
                        result = self._score(self._read(path))
                    except (DataError, PredictionError) as e:
                        reason = str(e).replace(str(path), f"'{name}'")
                    except (pl.exceptions.PolarsError, ValueError, UnicodeDecodeError) as e:
                        reason = f"'{name}': cannot be read as findings: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            seal(self.state)
            # keep the upload (append-only: a new file each time, written whole, then its row)
            with atomic_write(self.state / "uploads" / f"{sid}{suffix if suffix in SUFFIXES else '.bin'}",
                              mode=0o600) as tmp:
                tmp.write_bytes(data)
            if reason:
                self._append({**row, "status": "bad_format", "reason": reason[:500]})
                return 400, f"not scored, not counted against the limit: {reason}", None
            self._append({**row, "status": "scored", **result})
            left = self.limit - used - 1
            return 200, f"scored: {self._describe(result)}; {left} of {self.limit} submissions left today", result

    # ------------------------------------------------------------------ what differs for a task (TaskArena)
    kind, score_name = "challenge", "F1"

    def _read(self, path: Path) -> pl.DataFrame:
        return read_findings(path)

    def _describe(self, result: dict) -> str:
        return (f"public F1 {_f(result['public_f1'])} (precision {_f(result['public_precision'])}, "
                f"recall {_f(result['public_recall'])})")


class TaskArena(Arena):
    """An experiment task served to teams: the hand-out is the task's inputs, a submission is the predictions a
    team's experiment would return (one row per row of `to_predict`), scored by the task's own scorer on each part.
    The data is made from a secret of its own in `<data>/sealed/arena/tasks/` (never the project's scored task data),
    so the same arena gives the same data after a restart."""

    kind = "task"

    def __init__(self, task: str, settings: Settings | None = None, limit: int = 5, public_share: float = 0.5,
                 max_mb: float = 20.0, **params):
        import experiments as ex
        from experiments.errors import ExperimentError

        from synthetic_data.sealing import new_secret, write_secret

        self.settings = settings or Settings.from_env()
        if task not in ex.TASKS:
            raise ConfigError("--task", f"'{task}' is unknown", ", ".join(ex.TASKS))
        _check_limits(limit, public_share, max_mb)
        self.task = ex.TASKS[task]
        folder = self.settings.sealed / "arena" / "tasks"
        # the secret is kept only once the data could be made: a bad --region writes nothing
        self.secret = read_secret(folder) if (folder / "secret").exists() else new_secret()
        try:
            data = ex.prepare(task, secret=self.secret, **params)
        except ExperimentError as e:
            raise ConfigError("--region/--scale", str(e), "the task's parameters") from None
        if not (folder / "secret").exists():
            write_secret(folder, self.secret)
        self.inputs, self.handout = data.inputs, None
        self.challenge_id = f"{task}-{data.dataset_hash[:12]}"
        self.config = {"task": task, **{k: v for k, v in {**self.task.defaults, **params}.items()}}
        self.limit, self.public_share, self.max_bytes = limit, public_share, int(max_mb * 1024 * 1024)
        self.key = [c for c in self.task.prediction_schema if c in data.inputs["to_predict"].columns]
        self.full_truth = data.truth
        mask = self._mask(data.truth)
        self.truth = {"public": data.truth.filter(mask), "private": data.truth.filter(~mask)}
        self.score_name = "score"
        self.state = self.settings.sealed / "arena" / self.challenge_id
        self.lock = threading.Lock()
        self._zip = None

    def _mask(self, df: pl.DataFrame) -> pl.Series:
        keys = df.select(pl.lit(self.task.name).alias("table"),
                         pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in self.key],
                                       separator="|").alias("key"))
        return public_mask(keys, self.secret, self.public_share)

    def handout_zip(self) -> bytes:
        if self._zip is None:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(f"{self.challenge_id}/README.txt",
                           f"SYNTHETIC DATA generated by jeugdzorg-zandbak (task {self.task.name}). No row describes "
                           f"a real person or organisation.\n\n{self.task.doc}\n")
                for name, df in sorted(self.inputs.items()):
                    b = io.BytesIO()
                    df.write_parquet(b)
                    z.writestr(f"{self.challenge_id}/{name}.parquet", b.getvalue())
            self._zip = buf.getvalue()
        return self._zip

    def sample(self) -> str:
        """The first rows to predict, with the columns a team fills in left empty."""
        rows = self.inputs["to_predict"].head(3).select(self.key)
        rest = [c for c in self.task.prediction_schema if c not in self.key]
        return rows.with_columns(pl.lit(None, pl.String).alias(c) for c in rest).write_csv()

    def _read(self, path: Path) -> pl.DataFrame:
        schema = self.task.prediction_schema
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, schema_overrides={c: t for c, t in schema.items()}, infer_schema_length=0)

    def _score(self, predictions: pl.DataFrame) -> dict:
        import experiments as ex
        from experiments.tasks._common import check_rows

        pred = ex.validate_predictions(self.task.name, predictions)
        check_rows(self.task.name, pred, self.full_truth, self.key)   # on the whole truth: no hint of the parts
        mask = self._mask(pred)
        out = {"findings": pred.height}
        for part, keep in (("public", mask), ("private", ~mask)):
            m = ex.score(self.task.name, pred.filter(keep), self.truth[part])
            out.update({f"{part}_score": m["score"], f"{part}_precision": m.get("precision"),
                        f"{part}_recall": m.get("recall")})
        return out

    def _describe(self, result: dict) -> str:
        return f"public score {_f(result['public_score'])} ({self.task.score_meaning})"


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


# ---------------------------------------------------------------------------------------------- the web app

_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Arena {{ a.challenge_id }}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}
td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left}.note{color:#a00}
.ok{background:#e6f4e6;padding:.5em}.refusal{background:#fbe3e3;padding:.5em}code,pre{background:#f4f4f4}</style>
<h1>Arena: {{ a.kind }} {{ a.challenge_id }}</h1>
<p class="note">SYNTHETIC DATA generated by jeugdzorg-zandbak. No row describes a real person or organisation.</p>
{% if message %}<p id="message" class="{{ 'ok' if ok else 'refusal' }}">{{ message }}</p>{% endif %}
{% if a.kind == 'task' %}<p>Task <b>{{ a.task.name }}</b> ({{ a.config.get('region') }}): {{ a.task.description }}
Scored: {{ a.task.score_meaning }}.</p>{% else %}
<p>{{ a.config.get('region') }} {{ a.config.get('years') }}, fault profile {{ a.config.get('profile') }}.
Find the records that are wrong.{% if not a.config.get('scored', True) %} <b>Public seed: not for scores.</b>{% endif %}</p>{% endif %}
<h2>1. The hand-out</h2>
{% if a.kind == 'task' %}<p><a id="handout" href="handout.zip">handout.zip</a>: the task's input tables as Parquet
and a README.txt with the task's description; <code>to_predict</code> lists the rows to predict.</p>
<h2>2. The submission format</h2>
<p>A CSV (or Parquet) with exactly the columns
{% for c, t in a.task.prediction_schema.items() %}<code>{{ c }}</code> ({{ t }}){{ ', ' if not loop.last }}{% endfor %}:
one row per row of <code>to_predict</code>, what an experiment of <code>zandbak experiment new --task
{{ a.task.name }}</code> returns. <a id="sample" href="sample.csv">sample.csv</a> (fill in the empty columns):</p>
<pre>{{ sample }}</pre>{% else %}<p><a id="handout" href="handout.zip">handout.zip</a>: the gemeente's tables as Parquet with a manifest.json
(no labels). Check it with <code>zandbak check DIR --findings findings.csv</code> or your own checks
(<code>zandbak check DIR --checks YOURS --findings findings.csv</code>).</p>
<h2>2. The submission format</h2>
<p>A CSV (or Parquet) with one row per record you think is wrong: a column <code>table</code> (a table of the
hand-out) and either <code>key</code> (the table's key columns joined with <code>|</code>, dates as YYYY-MM-DD) or the
key columns themselves; other columns are ignored. This is what <code>zandbak check --findings</code> writes.
<a id="sample" href="sample.csv">sample.csv</a>:</p><pre>{{ sample }}</pre>{% endif %}
<p>{% if a.kind != 'task' %}Scored: precision, recall and F1 at record level. {% endif %} At most {{ a.limit }} scored submissions per team per day (UTC);
an upload that cannot be read is refused with the reason and not counted. Uploads up to {{ max_mb }} MB.</p>
<h2>3. Submit</h2>
{% if a.revealed %}<p>Submissions are closed.</p>{% else %}
<form id="submit" method="post" action="submit" enctype="multipart/form-data">
<label>Team token <input name="token" id="token" type="password" required autocomplete="off"></label>
<label>{{ 'Predictions' if a.kind == 'task' else 'Findings' }} <input name="file" id="file" type="file" accept=".csv,.parquet" required></label>
<button type="submit" id="send">Submit</button></form>{% endif %}
<h2>Public leaderboard</h2>
<p>Scored on a public part of the records (about {{ (a.public_share * 100)|round|int }}%, chosen by a keyed hash you
cannot reproduce); the rest decides the private leaderboard, which the host reveals at the end.</p>
{{ board(public, 'public') }}
{% if a.revealed %}<h2>Private leaderboard (final)</h2>
<p>Each team's best public submission, scored on the private part.</p>{{ board(private, 'private') }}{% endif %}
<p><a href="host">host</a></p>
</html>"""

_BOARD = """{% macro board(rows, id) %}{% if rows %}<table id="{{ id }}"><tr><th>#</th><th>team</th><th>{{ a.score_name }}</th>
<th>precision</th><th>recall</th><th>submissions</th><th>best at (UTC)</th></tr>
{% for r in rows %}<tr><td>{{ r.rank }}</td><td>{{ r.team }}</td><td>{{ f(r.f1) }}</td><td>{{ f(r.precision) }}</td>
<td>{{ f(r.recall) }}</td><td>{{ r.submissions }}</td><td>{{ r.time }}</td></tr>{% endfor %}</table>
{% else %}<p id="{{ id }}">No scored submissions yet.</p>{% endif %}{% endmacro %}"""

_HOST = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Arena host</title>
<style>body{font-family:sans-serif;margin:2em}</style><h1>Host: {{ a.kind }} {{ a.challenge_id }}</h1>
{% if message %}<p id="message">{{ message }}</p>{% endif %}
{% if a.revealed %}<p>The private leaderboard is revealed; submissions are closed.</p>{% else %}
<form id="reveal" method="post" action="reveal"><label>Host token <input name="token" id="host-token"
type="password" required autocomplete="off"></label> <button type="submit" id="reveal-button">Reveal the private
leaderboard and close submissions</button></form>{% endif %}<p><a href="./">back to the arena</a></p></html>"""


def create_app(arena: Arena):
    """The ASGI app of one arena. Every route is listed here; nothing else of the host's disk is reachable."""
    import jinja2
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page, host_page = env.from_string(_BOARD + _PAGE), env.from_string(_HOST)
    sample = arena.sample()
    max_mb = f"{arena.max_bytes / 1024 / 1024:g}"

    def render(message: str | None = None, ok: bool = False, status: int = 200) -> HTMLResponse:
        public = arena.leaderboard()
        private = arena.leaderboard(private=True) if arena.revealed else []
        return HTMLResponse(page.render(a=arena, message=message, ok=ok, sample=sample, public=public,
                                        private=private, f=_f, max_mb=max_mb), status_code=status)

    async def index(request: Request):
        return await run_in_threadpool(render)

    async def handout(request: Request):
        return Response(arena.handout_zip(), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="handout-{arena.challenge_id}.zip"'})

    async def sample_csv(request: Request):
        return PlainTextResponse(sample, media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="sample.csv"'})

    async def leaderboard_json(request: Request):
        public = await run_in_threadpool(arena.leaderboard)
        private = await run_in_threadpool(arena.leaderboard, True) if arena.revealed else None
        return JSONResponse({"challenge_id": arena.challenge_id, "public": public, "private": private})

    async def submit(request: Request):
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return await run_in_threadpool(render, "refused: the upload gives no Content-Length; allowed: a form "
                                           "upload from the page or curl -F", False, 411)
        if int(length) > arena.max_bytes + 64 * 1024:    # the form's own fields fit in 64 KB
            return await run_in_threadpool(render, f"refused: the upload is {int(length) / 1024 / 1024:.1f} MB; "
                                           f"allowed: at most {max_mb} MB", False, 413)
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=64 * 1024)
        except Exception as e:     # starlette's MultiPartException, a client that disconnected, a garbled body
            return await run_in_threadpool(render, f"refused: the upload is not a readable form ({type(e).__name__});"
                                           f" allowed: the form on this page", False, 400)
        token, upload = form.get("token"), form.get("file")
        team = arena.team_of(token) if isinstance(token, str) and token else None
        if team is None:
            return await run_in_threadpool(render, "refused: unknown team token; allowed: the token your host gave "
                                           "your team", False, 403)
        if upload is None or isinstance(upload, str):
            return await run_in_threadpool(render, "refused: no file in the upload; allowed: a findings .csv or "
                                           ".parquet", False, 400)
        data = await upload.read(arena.max_bytes + 1)
        if len(data) > arena.max_bytes:
            return await run_in_threadpool(render, f"refused: the file is larger than {max_mb} MB", False, 413)
        status, message, _ = await run_in_threadpool(arena.submit, team, upload.filename or "", data)
        return await run_in_threadpool(render, f"team {team}: {message}", status == 200, status)

    async def host(request: Request):
        return HTMLResponse(host_page.render(a=arena, message=None))

    async def reveal(request: Request):
        try:
            form = await request.form(max_files=0, max_fields=2, max_part_size=1024)
        except Exception as e:
            return HTMLResponse(host_page.render(a=arena, message=f"refused: not a readable form ({type(e).__name__})"),
                                status_code=400)
        token = form.get("token")
        if not (isinstance(token, str) and arena.is_host(token)):
            return HTMLResponse(host_page.render(a=arena, message="refused: wrong host token"), status_code=403)
        arena.reveal()
        return await run_in_threadpool(render, "the host revealed the private leaderboard; submissions are closed",
                                       True, 200)

    routes = [Route("/", index), Route("/handout.zip", handout), Route("/sample.csv", sample_csv),
              Route("/leaderboard.json", leaderboard_json), Route("/submit", submit, methods=["POST"]),
              Route("/host", host), Route("/reveal", reveal, methods=["POST"])]
    return Starlette(routes=routes)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the server starts: a port in use is one line, and port 0 picks one."""
    if not 0 <= port <= 65535:
        raise ConfigError("--port", f"'{port}' is not allowed", "0 (any free port) to 65535")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except (OSError, UnicodeError) as e:
        raise ConfigError("--host/--port", f"cannot listen on {host}:{port} ({e.strerror or e})",
                          "an address of this machine (default 127.0.0.1) and a free port") from None
    return sock


def main(handout: Path | None, teams: list[str], host: str = "127.0.0.1", port: int = 8000, limit: int = 5,
         public_share: float = 0.5, max_mb: float = 20.0, task: str | None = None, **params) -> int:
    import uvicorn

    check_teams(teams)
    if not 0 <= port <= 65535:
        raise ConfigError("--port", f"'{port}' is not allowed", "0 (any free port) to 65535")
    if (handout is None) == (task is None):
        raise ConfigError("HANDOUT/--task", "both given" if task else "neither given",
                          "a challenge hand-out folder, or --task NAME (an experiment task)")
    if task is None and params:
        raise ConfigError("--region/--scale", "given with a hand-out", "--region and --scale with --task only "
                          "(a hand-out's region is fixed by 'zandbak challenge new')")
    arena = (TaskArena(task, limit=limit, public_share=public_share, max_mb=max_mb, **params) if task else
             Arena(handout, limit=limit, public_share=public_share, max_mb=max_mb))
    sock = bind(host, port)          # before anything is written: a port in use changes nothing
    tokens = arena.issue_tokens(teams)
    address = f"http://{host if ':' not in host else '[' + host + ']'}:{sock.getsockname()[1]}/"
    print(f"arena of {arena.kind} {arena.challenge_id}: {address}  (Ctrl-C to stop)", flush=True)
    print(f"host token (reveal the private leaderboard at {address}host): {tokens['host']}")
    for team in teams:
        print(f"team {team}: token {tokens['teams'][team]}")
    print(f"tokens kept in {arena.state / 'tokens.json'}; submissions in {arena.state / 'uploads'} and the "
          f"'{BOARD}' board of {arena.settings.warehouse}", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(arena), log_level="warning", access_log=False))
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler it found: a no-op one
    # makes a stop an ordinary exit 0 (not a death by signal, nor a KeyboardInterrupt traceback)
    import signal

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: None)
    server.run(sockets=[sock])
    print("arena stopped.", flush=True)
    return 0
