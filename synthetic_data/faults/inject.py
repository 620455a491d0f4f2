"""Inject labelled data-quality faults into a generated dataset.

    from synthetic_data.faults import inject_faults
    dirty, truth = inject_faults(tables, profile="realistic", seed=7)

`tables` is the dict of polars frames from `synthetic_data.generate`; nothing in it is changed. `dirty` has the same
tables with the same schemas (rows sorted by the dictionary key); `truth` has one row per dirtied record (see
README.md in this folder for its columns). The fault types are data (catalogue.yaml), the rates and mechanisms too
(profiles.yaml).

How it stays honest:
- Randomness comes from one numpy Generator per fault type, spawned from SeedSequence([seed, FAULT_TAG]); never from
  global state. The same tables, profile and seed give the same dirty tables and truth.
- No record is dirtied twice: every dirtied record, and every record a fault depends on (the debet a new credit
  copies, the original of a duplicate, the youth whose age decides a fault), is locked. A toewijzing whose content a
  fault changes gets no faulty claim lines, starts or stops, and the reverse, so two faults never cancel or mask each
  other.
- Targets are records on which the fault shows the way the catalogue says (a claim line that is the only active debet
  of its period, a start without a stop ...), so the labelled check reports exactly the dirtied record and a fault
  does not spill into other records.
- What real software would keep consistent stays consistent: an amount follows a changed volume or tariff, and after
  the claim lines are dirtied every declaratie total (and the granted total of its JW325) is the signed sum of its
  lines again. The header then only fails TR358 where that is the injected fault.
"""
from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections import defaultdict
from functools import cache
from importlib import resources
from typing import Callable

import numpy as np
import polars as pl

from ..dictionary import key as dictionary_key
from ..ijw import contract_tarief, key_expr, late_answers, late_declaratie_antwoorden, late_sent, latest_toewijzing
from ..ijw import signed as _signed
from ..ijw import volume_cap as _cap_expr
from ..privacy import CLIENT_ID, REFERENTIE_NUMMER, TOEWIJZING_NUMMER_RANGE, elfproef_valid, fresh_numbers, opaque_code
from ..reference import parse_yaml

log = logging.getLogger(__name__)

Tables = dict[str, pl.DataFrame]

# Fixed tag mixed into the seed so the fault stream never equals a generator stream with the same seed.
FAULT_TAG = 0x0FA0_17ED

# Key columns of all tables, in the order of the ground-truth frame.
KEY_COLUMNS = ["gemeente_code", "client_id", "traject_id", "agb_code", "referentie_aanbieder", "dagtekening",
               "toewijzing_nummer", "versie", "begindatum", "inkoopregio", "product_code", "declaratie_nummer",
               "referentie_nummer", "einddatum"]   # einddatum: zorgstops (a start can have a temporary and a definitive stop)

TRUTH_SCHEMA: dict[str, pl.DataType] = {
    "table": pl.String, "key": pl.String, **{c: pl.String for c in KEY_COLUMNS},
    "column": pl.String, "fault_type": pl.String, "rule_code": pl.String, "rule_id": pl.String,
    "original": pl.String, "dirty": pl.String, "debatable": pl.Boolean, "detectability": pl.String,
}

TW = ["gemeente_code", "toewijzing_nummer"]
STARTKEY = ["gemeente_code", "agb_code", "toewijzing_nummer", "begindatum"]
DEBET_GROUP = ["agb_code", "gemeente_code", "toewijzing_nummer", "begindatum"]   # TR389: one active debet
DAY = dt.timedelta(days=1)


# --------------------------------------------------------------------------------------------------- the data files

@cache
def _yaml(name: str) -> dict:
    with (resources.files("synthetic_data.faults") / name).open(encoding="utf-8") as f:
        return parse_yaml(f)


def catalogue() -> list[dict]:
    """The fault types of catalogue.yaml, in file order."""
    return list(_yaml("catalogue.yaml")["faults"])


def catalogue_frame() -> pl.DataFrame:
    """The catalogue as a frame (columns joined with ",")."""
    rows = [{**f, "columns": ",".join(f["columns"])} for f in catalogue()]
    return pl.DataFrame(rows, schema={"id": pl.String, "level": pl.String, "table": pl.String, "columns": pl.String,
                                      "rule_code": pl.String, "rule_id": pl.String, "detectability": pl.String,
                                      "debatable": pl.Boolean, "description": pl.String})


def profiles() -> dict[str, dict]:
    """The named profiles of profiles.yaml."""
    return dict(_yaml("profiles.yaml")["profiles"])


def empty_truth() -> pl.DataFrame:
    return pl.DataFrame(schema=TRUTH_SCHEMA)


def _s(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


# ------------------------------------------------------------------------------------------------------ the context

class _Ctx:
    """Working copies of the tables touched so far, plus the locks and the truth collected."""

    def __init__(self, tables: Tables):
        self.clean = tables
        self.work: Tables = {}
        self.touched: dict[str, set[str]] = defaultdict(set)   # table -> keys no other fault may touch
        self.tw_changed: set[str] = set()    # "gemeente|nummer" of toewijzingen whose content a fault changed
        self.tw_lines: set[str] = set()      # "gemeente|nummer" of toewijzingen with dirty lines, starts or stops
        self.truth: list[pl.DataFrame] = []
        self.truth_keys: set[tuple[str, str]] = set()
        self.collisions: list[tuple[str, str, str]] = []
        # the extraction date: the last message date in the data (never the wall clock)
        dates = [df["dagtekening"].max() for df in tables.values() if "dagtekening" in df.columns]
        if not any(d is not None for d in dates):     # no messages: the last date of any kind
            dates = [df[c].max() for df in tables.values() for c, t in df.schema.items() if t == pl.Date]
        self.extract_date: dt.date = max((d for d in dates if d is not None), default=dt.date(2000, 1, 1))

    # -- frames
    def get(self, name: str) -> pl.DataFrame:
        if name not in self.work:
            df = self.clean[name].with_columns(pl.int_range(pl.len(), dtype=pl.Int64).cast(pl.Float64).alias("_ord"))
            self.work[name] = df.sort([*dictionary_key(name), "_ord"], nulls_last=True)
        return self.work[name]

    def frame(self, name: str) -> pl.DataFrame:
        """Working frame with its row position `_i` and key string `_k`."""
        return self.get(name).with_row_index("_i").with_columns(pl.col("_i").cast(pl.Int64), key_expr(name).alias("_k"))

    def free(self, df: pl.DataFrame, name: str) -> pl.DataFrame:
        """Rows of `df` (with `_k`) not locked by an earlier fault."""
        locked = pl.Series(sorted(self.touched[name]), dtype=pl.String)
        return df.filter(~pl.col("_k").is_in(locked.implode()))

    def tw_free(self, df: pl.DataFrame, *sets: set[str]) -> pl.DataFrame:
        ent = pl.concat_str([pl.col("gemeente_code"), pl.col("toewijzing_nummer").cast(pl.String)], separator="|")
        blocked = pl.Series(sorted(set().union(*sets)), dtype=pl.String)
        return df.filter(~ent.is_in(blocked.implode()))

    def update(self, name: str, idx: list[int], values: dict[str, list]) -> pl.DataFrame:
        """Set the given columns of rows `idx` (positions in the working frame); returns those rows after the change."""
        df = self.get(name)
        pos = pl.Series(idx, dtype=pl.Int64)
        cols = []
        for col, vals in values.items():
            s = df[col].clone()
            s.scatter(pos, pl.Series(vals, dtype=df.schema[col]))
            cols.append(s.alias(col))
        df = df.with_columns(cols)
        self.work[name] = df
        return df.select(pl.all().gather(pos))

    def append(self, name: str, rows: pl.DataFrame) -> None:
        df = self.get(name)
        self.work[name] = pl.concat([df, rows.select(df.columns).cast(df.schema)])

    def commit(self, name: str) -> None:
        """Re-sort a working frame by key (and original position) after keys changed or rows were added."""
        self.work[name] = self.get(name).sort([*dictionary_key(name), "_ord"], nulls_last=True)

    def lock(self, name: str, keys) -> None:
        self.touched[name].update(k for k in keys if k is not None)

    # -- truth
    def record(self, name: str, fault: dict, rows: pl.DataFrame, column: str, original: list, dirty: list) -> None:
        if rows.height == 0:
            return
        keys = rows.select(key_expr(name)).to_series().to_list()
        for k in keys:
            if (name, k) in self.truth_keys:
                self.collisions.append((name, k, fault["id"]))
                warnings.warn(f"fault {fault['id']}: record {name}|{k} was dirtied before", stacklevel=2)
            self.truth_keys.add((name, k))
        self.lock(name, keys)
        tkey = dictionary_key(name)
        data = {
            "table": [name] * len(keys), "key": keys,
            **{c: (rows[c].cast(pl.String).to_list() if c in tkey else [None] * len(keys)) for c in KEY_COLUMNS},
            "column": [column] * len(keys), "fault_type": [fault["id"]] * len(keys),
            "rule_code": [fault.get("rule_code")] * len(keys), "rule_id": [fault.get("rule_id")] * len(keys),
            "original": [_s(v) for v in original], "dirty": [_s(v) for v in dirty],
            "debatable": [bool(fault.get("debatable", False))] * len(keys),
            "detectability": [fault["detectability"]] * len(keys),
        }
        self.truth.append(pl.DataFrame(data, schema=TRUTH_SCHEMA))

    # -- shared views
    def latest_toewijzing(self) -> pl.DataFrame:
        """Latest version of every toewijzing, chosen as the checks choose it (highest versie, last row)."""
        return latest_toewijzing(self.get("toewijzingen"))

    def finish(self) -> tuple[Tables, pl.DataFrame]:
        out = dict(self.clean)
        for name, df in self.work.items():
            schema = self.clean[name].schema
            df = df.sort([*dictionary_key(name), "_ord"], nulls_last=True)
            out[name] = df.select([pl.col(c).cast(t) for c, t in schema.items()])
        truth = pl.concat(self.truth) if self.truth else empty_truth()
        truth = truth.sort("table", "key", "fault_type")
        return out, truth


def _entity(row: dict) -> str:
    return f"{row['gemeente_code']}|{row['toewijzing_nummer']}"


# ------------------------------------------------------------------------------------------------ target selection

def _pick(cands: pl.DataFrame, n: int, spec: dict, rng: np.random.Generator) -> pl.DataFrame:
    """Choose up to n rows of `cands` (deterministic order by `_i`): at random, or concentrated in one group first."""
    cands = cands.sort("_i")
    n = min(n, cands.height)
    if n <= 0:
        return cands.head(0)
    if spec.get("mechanism", "random") != "concentrated":
        idx = np.sort(rng.choice(cands.height, size=n, replace=False))
        return _rows(cands, idx.tolist())
    by = "agb_code" if spec.get("by", "aanbieder") == "aanbieder" and "agb_code" in cands.columns else "gemeente_code"
    sizes = cands.group_by(by).len().sort(by)
    # weighted random order of the groups (bigger groups first more often): keys u ** (1 / size)
    order = np.argsort(-(rng.random(sizes.height) ** (1.0 / sizes["len"].to_numpy())))
    chosen: list[int] = []
    positions = cands.with_row_index("_p").select("_p", by)
    for g in sizes[by].gather(order.tolist()).to_list():
        if len(chosen) >= n:
            break
        pos = positions.filter(pl.col(by) == g)["_p"].to_numpy()
        take = min(n - len(chosen), len(pos))
        chosen.extend(rng.choice(pos, size=take, replace=False).tolist())
    return _rows(cands, sorted(chosen))


def _rows(df: pl.DataFrame, idx: list[int]) -> pl.DataFrame:
    return df.select(pl.all().gather(pl.Series(idx, dtype=pl.Int64)))


# ---------------------------------------------------------------------------------------------------- shared views

def _plain_lines(ctx: _Ctx) -> pl.DataFrame:
    """Claim lines safe to dirty: a debet the gemeente accepted that is the only accepted line of its (toewijzing,
    period) group, not credited, belonging to its toewijzing's client and aanbieder, on a toewijzing no fault
    changed, not locked."""
    p = ctx.frame("prestaties")
    # --- issue 12: claims: a line the gemeente already rejected in its JW325 is no target (the rules skip it)
    if "declaratie_antwoord_prestaties" in ctx.clean:
        p = p.join(ctx.clean["declaratie_antwoord_prestaties"].select("agb_code", "referentie_nummer"),
                   on=["agb_code", "referentie_nummer"], how="anti", maintain_order="left")
    credited = p.filter(pl.col("debet_credit") == "C").select(
        "agb_code", pl.col("vorig_referentie_nummer").alias("referentie_nummer")).unique()
    p = p.with_columns(pl.len().over(DEBET_GROUP).alias("_grp_n")).filter(
        (pl.col("debet_credit") == "D") & (pl.col("_grp_n") == 1))
    p = p.join(credited, on=["agb_code", "referentie_nummer"], how="anti")
    lt = ctx.latest_toewijzing().select(
        *TW, pl.col("ingangsdatum").alias("tw_ingangsdatum"), pl.col("einddatum").alias("tw_einddatum"),
        pl.col("volume").alias("tw_volume"), pl.col("frequentie").alias("tw_frequentie"),
        pl.col("bsn").alias("tw_bsn"), pl.col("agb_code").alias("tw_agb"), pl.col("eenheid").alias("tw_eenheid"),
        pl.col("product_code").alias("tw_product_code"))
    p = p.join(lt, on=TW, how="inner").filter(
        (pl.col("bsn") == pl.col("tw_bsn")) & (pl.col("agb_code") == pl.col("tw_agb"))
        & (pl.col("eenheid") == pl.col("tw_eenheid")) & (pl.col("product_code") == pl.col("tw_product_code")))
    p = ctx.tw_free(ctx.free(p, "prestaties"), ctx.tw_changed)
    return p.with_columns(_cap_expr().alias("_cap")).sort("_i")


def _mark_lines(ctx: _Ctx, rows: pl.DataFrame) -> None:
    ctx.tw_lines.update(_entity(r) for r in rows.select(TW).iter_rows(named=True))


def _first_care(ctx: _Ctx) -> pl.DataFrame:
    return ctx.get("trajecten").group_by("gemeente_code", "client_id").agg(
        pl.col("begindatum").min().alias("_first_begin"))


def _with_years(d: dt.date, year: int) -> dt.date:
    try:
        return d.replace(year=year)
    except ValueError:          # 29 February
        return d.replace(year=year, day=28)


# ------------------------------------------------------------------------------------------------------- injectors

Injector = Callable[[_Ctx, dict, int, dict, np.random.Generator], None]
INJECTORS: dict[str, tuple[int, Injector]] = {}


def injector(fault_id: str, phase: int) -> Callable[[Injector], Injector]:
    """Register the injector of a catalogue id. Phases run in order: 1 toewijzingen, 2 jeugdigen, 3 starts and stops,
    4 claim lines, 5 declaratie headers (after the totals were recomputed from the dirty lines)."""
    def deco(fn: Injector) -> Injector:
        INJECTORS[fault_id] = (phase, fn)
        return fn
    return deco


# -- phase 1: toewijzingen -------------------------------------------------------------------------------------

@injector("duplicate_toewijzing_nummer", 1)
def _dup_toewijzing_nummer(ctx, fault, n, spec, rng):
    tw = ctx.frame("toewijzingen")
    single = tw.with_columns(pl.len().over(TW).alias("_nv")).filter(
        (pl.col("_nv") == 1) & pl.col("reden_wijziging").ne_missing(pl.lit("13")))
    cands = ctx.tw_free(ctx.free(single, "toewijzingen"), ctx.tw_changed, ctx.tw_lines)
    targets = _pick(cands, n, spec, rng)
    if not targets.height:
        return
    donors = ctx.latest_toewijzing()
    new_rows, originals = [], []
    for a in targets.iter_rows(named=True):
        pool = donors.filter((pl.col("gemeente_code") == a["gemeente_code"]) & (pl.col("bsn") != a["bsn"])
                             & (pl.col("toewijzing_nummer") != a["toewijzing_nummer"]))
        # iJw orders the JW301s of a number by date: a donor sent before `a` keeps `a` the current one in the
        # messages too (as the row order below does on the tables); only when there is none, the copy is dated the
        # day before `a`
        earlier = pool.filter(pl.col("toewijzingsdatum") < a["toewijzingsdatum"]) if a["toewijzingsdatum"] else pool
        pool = earlier if earlier.height else pool
        if not pool.height:
            continue
        c = pool.row(int(rng.integers(pool.height)), named=True)
        sent = c["toewijzingsdatum"]
        if sent is not None and a["toewijzingsdatum"] is not None:
            sent = min(sent, a["toewijzingsdatum"] - dt.timedelta(days=1))
        # the donor's toewijzing sent again under number and versie of `a`; placed before `a`, so `a` stays the
        # version the checks treat as latest and a's claims keep matching it
        new_rows.append({**c, "toewijzing_nummer": a["toewijzing_nummer"], "versie": a["versie"],
                         "reden_wijziging": None, "toewijzingsdatum": sent, "_ord": a["_ord"] - 0.5})
        originals.append(c["toewijzing_nummer"])
        ctx.tw_changed.add(_entity(a))
    if not new_rows:
        return
    rows = pl.DataFrame(new_rows, schema=ctx.get("toewijzingen").schema)
    ctx.append("toewijzingen", rows)
    ctx.commit("toewijzingen")
    ctx.record("toewijzingen", fault, rows, "toewijzing_nummer", originals, rows["toewijzing_nummer"].to_list())


def _latest_with_position(ctx: _Ctx) -> pl.DataFrame:
    """Latest toewijzing versions with their key `_k` and row position `_i` (the last row of a repeated key)."""
    pos = ctx.frame("toewijzingen").select("_k", "_i").unique("_k", keep="last", maintain_order=True)
    lt = ctx.latest_toewijzing().with_columns(key_expr("toewijzingen").alias("_k"))
    return lt.join(pos, on="_k", how="inner")


def _used_tw_numbers(ctx: _Ctx, gemeente: str) -> set[int]:
    """ToewijzingNummers the gemeente's toewijzingen, claims, starts or stops use."""
    return {v for t in ("toewijzingen", "prestaties", "zorgstarts", "zorgstops")
            for v in ctx.get(t).filter(pl.col("gemeente_code") == gemeente)["toewijzing_nummer"].drop_nulls().to_list()}


def _new_tw_numbers(ctx: _Ctx, gemeente: str, k: int, rng: np.random.Generator) -> list[int]:
    """k unused ToewijzingNummers of the gemeente, drawn from the range (and so the distribution) of the clean ones."""
    lo, hi = TOEWIJZING_NUMMER_RANGE
    return fresh_numbers(rng, k, lo, hi, _used_tw_numbers(ctx, gemeente))


@injector("overlapping_toewijzingen", 1)
def _overlapping(ctx, fault, n, spec, rng):
    lt = _latest_with_position(ctx)
    cands = lt.filter(pl.col("reden_wijziging").ne_missing(pl.lit("13")) & pl.col("einddatum").is_not_null()
                      & ((pl.col("einddatum") - pl.col("ingangsdatum")).dt.total_days() >= 60))
    cands = ctx.tw_free(ctx.free(cands, "toewijzingen"), ctx.tw_changed, ctx.tw_lines)
    # not a toewijzing that answers a JW317 (it carries the JW317's reference): a copy of it would be a second,
    # differently dated answer to that JW317, and OP346 would judge the JW317 by it (a finding outside the truth)
    if "wijzigingsverzoeken" in ctx.clean and ctx.clean["wijzigingsverzoeken"].height:
        asked = ctx.clean["wijzigingsverzoeken"].select("gemeente_code", "agb_code", "referentie_aanbieder").unique()
        cands = cands.join(asked, on=["gemeente_code", "agb_code", "referentie_aanbieder"], how="anti")
    targets = _pick(cands, n, spec, rng)
    if not targets.height:
        return
    new_rows, originals = [], []
    numbers: dict[str, list[int]] = {}
    for a in targets.iter_rows(named=True):
        g = a["gemeente_code"]
        if g not in numbers:
            numbers[g] = _new_tw_numbers(ctx, g, targets.height, rng)
        nummer = numbers[g].pop(0)
        days = (a["einddatum"] - a["ingangsdatum"]).days
        ingang = a["ingangsdatum"] + dt.timedelta(days=int(days * rng.uniform(0.25, 0.75)))
        row = {c: a[c] for c in ctx.get("toewijzingen").columns}
        # keeps the ReferentieAanbieder of the toewijzing it overlaps: the same JW315 honoured a second time (and a
        # toewijzing without one stays without), so its presence is distributed as among clean toewijzingen
        row.update(toewijzing_nummer=nummer, versie=1, reden_wijziging=None,
                   ingangsdatum=ingang, toewijzingsdatum=ingang - dt.timedelta(days=int(rng.integers(0, 10))),
                   _ord=a["_ord"] + 0.25)
        new_rows.append(row)
        originals.append(a["toewijzing_nummer"])
        ctx.tw_changed.add(_entity(a))
        ctx.tw_changed.add(f"{g}|{nummer}")
        ctx.lock("toewijzingen", [a["_k"]])
    rows = pl.DataFrame(new_rows, schema=ctx.get("toewijzingen").schema)
    ctx.append("toewijzingen", rows)
    ctx.commit("toewijzingen")
    ctx.record("toewijzingen", fault, rows, "toewijzing_nummer", originals, rows["toewijzing_nummer"].to_list())


@injector("over_18_without_extension", 1)
def _over_18(ctx, fault, n, spec, rng):
    j = ctx.free(ctx.frame("jeugdigen"), "jeugdigen").select(
        "gemeente_code", "bsn", "geboortedatum", pl.col("_k").alias("_jk"))
    lt = _latest_with_position(ctx)
    # one toewijzing per client, aanbieder and product: extending it cannot overlap a follow-up
    lt = lt.with_columns(pl.len().over("gemeente_code", "bsn", "agb_code", "product_code").alias("_n_same"))
    # a claim line that ends on the Einddatum (not a month end) needs that Einddatum (TR387): leave those alone
    p = ctx.get("prestaties")
    needs_end = p.filter(pl.col("einddatum") != pl.col("einddatum").dt.month_end()).select(
        *TW, pl.col("einddatum").alias("einddatum")).unique()
    cands = (
        lt.filter(pl.col("reden_wijziging").ne_missing(pl.lit("13")) & pl.col("einddatum").is_not_null()
                  & (pl.col("_n_same") == 1))
        .join(j, on=["gemeente_code", "bsn"], how="inner")
        .with_columns(pl.col("geboortedatum").dt.offset_by("18y").alias("_b18"))
        .filter((pl.col("einddatum") < pl.col("_b18"))
                & (pl.col("einddatum") >= pl.col("_b18") - pl.duration(days=365)))
        .join(needs_end, on=[*TW, "einddatum"], how="anti")
    )
    cands = ctx.tw_free(ctx.free(cands, "toewijzingen"), ctx.tw_changed, ctx.tw_lines)
    targets = _pick(cands, n, spec, rng)
    if not targets.height:
        return
    new_end = [r["_b18"] + dt.timedelta(days=int(rng.integers(90, 540))) for r in targets.iter_rows(named=True)]
    rows = ctx.update("toewijzingen", targets["_i"].to_list(), {"einddatum": new_end})
    ctx.tw_changed.update(_entity(r) for r in targets.iter_rows(named=True))
    ctx.lock("jeugdigen", targets["_jk"].to_list())
    ctx.record("toewijzingen", fault, rows, "einddatum", targets["einddatum"].to_list(), new_end)


# -- phase 2: jeugdigen -------------------------------------------------------------------------------------------

def _youth(ctx: _Ctx) -> pl.DataFrame:
    return ctx.free(ctx.frame("jeugdigen"), "jeugdigen")


@injector("bsn_missing", 2)
def _bsn_missing(ctx, fault, n, spec, rng):
    targets = _pick(_youth(ctx).filter(pl.col("bsn").is_not_null()), n, spec, rng)
    if targets.height:
        rows = ctx.update("jeugdigen", targets["_i"].to_list(), {"bsn": [None] * targets.height})
        ctx.record("jeugdigen", fault, rows, "bsn", targets["bsn"].to_list(), [None] * targets.height)


def _bad_postcode(pc: str, variant: int) -> str:
    digits, letters = pc[:4], pc[4:]
    if variant == 0:
        return f"{digits} {letters}"
    if variant == 1:
        return digits + letters.lower()
    if variant == 2:
        return digits + letters[:1]
    if variant == 3:
        return "0" + digits[1:] + letters
    return digits + ["SA", "SD", "SS"][variant % 3]


@injector("postcode_malformed", 2)
def _postcode(ctx, fault, n, spec, rng):
    cands = _youth(ctx).filter(pl.col("postcode").str.contains(r"^[1-9][0-9]{3}[A-Z]{2}$").fill_null(False))
    targets = _pick(cands, n, spec, rng)
    if targets.height:
        new = [_bad_postcode(pc, int(rng.integers(0, 5))) for pc in targets["postcode"].to_list()]
        rows = ctx.update("jeugdigen", targets["_i"].to_list(), {"postcode": new})
        ctx.record("jeugdigen", fault, rows, "postcode", targets["postcode"].to_list(), new)


@injector("birth_date_in_future", 2)
def _birth_future(ctx, fault, n, spec, rng):
    targets = _pick(_youth(ctx).filter(pl.col("geboortedatum").is_not_null()), n, spec, rng)
    if not targets.height:
        return
    new = []
    for d in targets["geboortedatum"].to_list():
        swapped = (d.year // 100) * 100 + (d.year % 10) * 10 + (d.year // 10) % 10   # 2013 -> 2031
        cand = _with_years(d, swapped)
        if cand <= ctx.extract_date:
            cand = ctx.extract_date + dt.timedelta(days=int(rng.integers(30, 1500)))
        new.append(cand)
    rows = ctx.update("jeugdigen", targets["_i"].to_list(), {"geboortedatum": new})
    ctx.record("jeugdigen", fault, rows, "geboortedatum", targets["geboortedatum"].to_list(), new)


@injector("birth_date_over_23_at_care", 2)
def _birth_over_23(ctx, fault, n, spec, rng):
    cands = _youth(ctx).join(_first_care(ctx), on=["gemeente_code", "client_id"], how="inner")
    targets = _pick(cands, n, spec, rng)
    if not targets.height:
        return
    new = [b - dt.timedelta(days=int(23 * 365.25) + int(rng.integers(30, 3000)))
           for b in targets["_first_begin"].to_list()]
    rows = ctx.update("jeugdigen", targets["_i"].to_list(), {"geboortedatum": new})
    ctx.record("jeugdigen", fault, rows, "geboortedatum", targets["geboortedatum"].to_list(), new)


@injector("swapped_day_month", 2)
def _swapped(ctx, fault, n, spec, rng):
    in_jw315 = ctx.get("verzoeken").select("bsn").unique()
    g = pl.col("geboortedatum")
    cands = (
        _youth(ctx).join(in_jw315, on="bsn", how="semi")
        .join(_first_care(ctx), on=["gemeente_code", "client_id"], how="inner")
        .filter((g.dt.day() <= 12) & (g.dt.day() != g.dt.month()))
        .with_columns(pl.date(g.dt.year(), g.dt.day(), g.dt.month()).alias("_swapped"))
        .filter(pl.col("_swapped") <= pl.col("_first_begin"))
    )
    targets = _pick(cands, n, spec, rng)
    if targets.height:
        new = targets["_swapped"].to_list()
        rows = ctx.update("jeugdigen", targets["_i"].to_list(), {"geboortedatum": new})
        ctx.record("jeugdigen", fault, rows, "geboortedatum", targets["geboortedatum"].to_list(), new)


def _typo(name: str, rng: np.random.Generator) -> str:
    kind = int(rng.integers(0, 3))
    i = int(rng.integers(1, len(name) - 1))
    if kind == 0 and name[i] != name[i + 1]:
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]      # swap two letters
    if kind == 1:
        return name[:i] + name[i + 1:]                              # drop a letter
    return name[:i] + name[i] + name[i:]                            # double a letter


@injector("duplicate_jeugdige_typo", 2)
def _dup_youth(ctx, fault, n, spec, rng):
    # a youth in care: TR304 keeps the registration the trajecten refer to, so the copy is the one it reports
    cands = _youth(ctx).filter(pl.col("achternaam").str.len_chars() >= 4).join(
        _first_care(ctx), on=["gemeente_code", "client_id"], how="semi")
    targets = _pick(cands, n, spec, rng)
    if not targets.height:
        return
    prefix, digits = CLIENT_ID
    used = {int(c[len(prefix):]) for c in ctx.get("jeugdigen")["client_id"].to_list() if c[len(prefix):].isdigit()}
    # a new client id from the range every client id is drawn from
    new_ids = opaque_code(fresh_numbers(rng, targets.height, 0, 10 ** digits, used), CLIENT_ID).to_list()
    base = ctx.get("jeugdigen").columns
    rows, originals, dirty = [], [], []
    for r, cid in zip(targets.iter_rows(named=True), new_ids):
        name = _typo(r["achternaam"], rng)
        rows.append({**{c: r[c] for c in base}, "client_id": cid, "achternaam": name, "_ord": r["_ord"] + 0.5})
        originals.append(f"{r['client_id']}|{r['achternaam']}")
        dirty.append(f"{cid}|{name}")
    ctx.lock("jeugdigen", targets["_k"].to_list())
    new = pl.DataFrame(rows, schema=ctx.get("jeugdigen").schema)
    ctx.append("jeugdigen", new)
    ctx.commit("jeugdigen")
    ctx.record("jeugdigen", fault, new, "client_id,achternaam", originals, dirty)


# -- phase 3: zorgstarts and zorgstops ------------------------------------------------------------------------

@injector("start_before_toewijzing", 3)
def _start_before(ctx, fault, n, spec, rng):
    s = ctx.frame("zorgstarts")
    stops = ctx.get("zorgstops").select(STARTKEY)
    ing = ctx.latest_toewijzing().select(*TW, pl.col("ingangsdatum").alias("_tw_ing"))
    cands = (
        s.with_columns(pl.len().over(TW).alias("_n_starts"))
        .filter((pl.col("_n_starts") == 1) & (pl.col("status_aanlevering") == "1"))
        .join(stops, on=STARTKEY, how="anti").join(ing, on=TW, how="inner")
    )
    cands = ctx.tw_free(ctx.free(cands, "zorgstarts"), ctx.tw_changed)
    targets = _pick(cands, n, spec, rng)
    if not targets.height:
        return
    shifted = [r["_tw_ing"] - dt.timedelta(days=int(rng.integers(1, 11))) for r in targets.iter_rows(named=True)]
    wanted = [f"{r['gemeente_code']}|{r['agb_code']}|{r['toewijzing_nummer']}|{b.isoformat()}"
              for r, b in zip(targets.iter_rows(named=True), shifted)]
    taken = set(s.filter(pl.col("_k").is_in(pl.Series(wanted, dtype=pl.String).implode()))["_k"].to_list())
    idx, old, new = [], [], []
    for r, b, k in zip(targets.iter_rows(named=True), shifted, wanted):
        if k in taken:      # the start would take the key of another start of that toewijzing
            continue
        idx.append(r["_i"]), old.append(r["begindatum"]), new.append(b)
        ctx.lock("zorgstarts", [r["_k"]])
        ctx.tw_lines.add(_entity(r))
    if idx:
        rows = ctx.update("zorgstarts", idx, {"begindatum": new})
        ctx.commit("zorgstarts")
        ctx.record("zorgstarts", fault, rows, "begindatum", old, new)


def _late(ctx: _Ctx, table: str, date_col: str, fault, n, spec, rng, limit: pl.DataFrame | None = None):
    df = ctx.frame(table).filter(pl.col(date_col).is_not_null() & (pl.col("status_aanlevering") == "1"))
    on_time = df.join(late_sent(df, date_col, 5).select("_k"), on="_k", how="anti", maintain_order="left")
    df = on_time   # only a message that was on time becomes late
    df = ctx.tw_free(ctx.free(df, table), ctx.tw_changed)
    if not df.height:
        return
    lateness = rng.integers(6, 26, df.height)
    base = df[date_col].to_numpy().astype("datetime64[D]")
    late = np.busday_offset(base, lateness, roll="forward")
    df = df.with_columns(pl.Series("_new", late).cast(pl.Date))
    if limit is not None:   # a start may not be sent after its stop (OP072 would then report the stop)
        df = df.join(limit, on=STARTKEY, how="left").filter(
            pl.col("_limit").is_null() | (pl.col("_new") <= pl.col("_limit")))
    targets = _pick(df, n, spec, rng)
    if targets.height:
        new = targets["_new"].to_list()
        rows = ctx.update(table, targets["_i"].to_list(), {"dagtekening": new})
        ctx.tw_lines.update(_entity(r) for r in targets.iter_rows(named=True))
        ctx.record(table, fault, rows, "dagtekening", targets["dagtekening"].to_list(), new)


@injector("start_reported_late", 3)
def _start_late(ctx, fault, n, spec, rng):
    # a start can have two stops (a temporary one, then the definitive): the first one sent is the limit
    limit = ctx.get("zorgstops").group_by(STARTKEY).agg(pl.col("dagtekening").min().alias("_limit"))
    _late(ctx, "zorgstarts", "begindatum", fault, n, spec, rng, limit)


@injector("stop_reported_late", 3)
def _stop_late(ctx, fault, n, spec, rng):
    _late(ctx, "zorgstops", "einddatum", fault, n, spec, rng)


BAD_REDEN = ["01", "21", "30", "40", "99", "3"]


@injector("code_not_in_list", 3)
def _bad_code(ctx, fault, n, spec, rng):
    cands = ctx.free(ctx.frame("zorgstops"), "zorgstops").filter(
        pl.col("reden_beeindiging").is_not_null() & (pl.col("reden_beeindiging") != "20"))
    cands = ctx.tw_free(cands, ctx.tw_changed)
    targets = _pick(cands, n, spec, rng)
    if targets.height:
        new = [BAD_REDEN[int(rng.integers(len(BAD_REDEN)))] for _ in range(targets.height)]
        rows = ctx.update("zorgstops", targets["_i"].to_list(), {"reden_beeindiging": new})
        ctx.tw_lines.update(_entity(r) for r in targets.iter_rows(named=True))
        ctx.record("zorgstops", fault, rows, "reden_beeindiging", targets["reden_beeindiging"].to_list(), new)


# -- phase 4: claim lines -----------------------------------------------------------------------------------------

def _edit_lines(ctx: _Ctx, fault: dict, targets: pl.DataFrame, column: str, values: dict[str, list]) -> None:
    if not targets.height:
        return
    original = targets[column].to_list()
    rows = ctx.update("prestaties", targets["_i"].to_list(), values)
    _mark_lines(ctx, targets)
    ctx.record("prestaties", fault, rows, column, original, values[column])


def _typo_bsn(bsn: str, rng: np.random.Generator) -> str:
    # never the leading 9: a typo stays in the synthetic range, which the reader's guard insists on
    pairs = [i for i in range(1, 8) if bsn[i] != bsn[i + 1]]
    if pairs:
        i = pairs[int(rng.integers(len(pairs)))]
        return bsn[:i] + bsn[i + 1] + bsn[i] + bsn[i + 2:]
    return bsn[:8] + str((int(bsn[8]) + 1) % 10)


@injector("bsn_elfproef_invalid", 4)
def _bsn_elfproef(ctx, fault, n, spec, rng):
    targets = _pick(_plain_lines(ctx).filter(pl.col("bsn").is_not_null()), n, spec, rng)
    new = [_typo_bsn(b, rng) for b in targets["bsn"].to_list()]
    bad = pl.select(elfproef_valid(pl.lit(pl.Series(new, dtype=pl.String)))).to_series() if new else pl.Series([])
    assert not bad.any(), "a BSN typo passed the elfproef"
    _edit_lines(ctx, fault, targets, "bsn", {"bsn": new})


@injector("amount_in_euros", 4)
def _euros(ctx, fault, n, spec, rng):
    targets = _pick(_plain_lines(ctx).filter(pl.col("ingediend_bedrag") >= 100), n, spec, rng)
    new = [int(b / 100 + 0.5) for b in targets["ingediend_bedrag"].to_list()]
    _edit_lines(ctx, fault, targets, "ingediend_bedrag", {"ingediend_bedrag": new})


@injector("volume_not_positive", 4)
def _volume_zero(ctx, fault, n, spec, rng):
    cands = _plain_lines(ctx).filter((pl.col("geleverd_volume") > 0) & (pl.col("ingediend_bedrag") > 0))
    targets = _pick(cands, n, spec, rng)
    new = [0 if rng.random() < 0.5 else -v for v in targets["geleverd_volume"].to_list()]
    _edit_lines(ctx, fault, targets, "geleverd_volume", {"geleverd_volume": new})


@injector("duplicate_prestatie", 4)
def _dup_line(ctx, fault, n, spec, rng):
    # not on a 'totaal' toewijzing (frequentie 6): the copy would push the summed volume over it (TR322) and make
    # every line of that toewijzing fail
    targets = _pick(_plain_lines(ctx).filter(pl.col("tw_frequentie") != "6"), n, spec, rng)
    if not targets.height:
        return
    base = ctx.get("prestaties")
    copies = targets.select(base.columns).with_columns(pl.col("_ord") + 0.5)
    ctx.append("prestaties", copies)
    ctx.commit("prestaties")
    _mark_lines(ctx, targets)
    ctx.record("prestaties", fault, copies, "(row)", [None] * copies.height, ["copy"] * copies.height)


@injector("prestatie_without_toewijzing", 4)
def _no_toewijzing(ctx, fault, n, spec, rng):
    targets = _pick(_plain_lines(ctx), n, spec, rng)
    if not targets.height:
        return
    # typo candidates: two adjacent digits swapped; kept only where no toewijzing of the gemeente has that number
    options = []
    for r in targets.iter_rows(named=True):
        s = str(r["toewijzing_nummer"])
        swaps = [s[:i] + s[i + 1] + s[i] + s[i + 2:] for i in range(len(s) - 1) if s[i] != s[i + 1]]
        options.append([int(o) for o in swaps if o[0] != "0"])
    flat = sorted({o for opts in options for o in opts})
    tw = ctx.get("toewijzingen")
    taken = set(tw.filter(pl.col("toewijzing_nummer").is_in(pl.Series(flat, dtype=pl.Int64).implode())).select(
        pl.concat_str([pl.col("gemeente_code"), pl.col("toewijzing_nummer").cast(pl.String)], separator="|")
    ).to_series().to_list())
    lo, hi = TOEWIJZING_NUMMER_RANGE
    new, drawn = [], set()
    for r, opts in zip(targets.iter_rows(named=True), options):
        opts = [o for o in opts if f"{r['gemeente_code']}|{o}" not in taken and lo <= o < hi]
        if opts:
            new.append(opts[int(rng.integers(len(opts)))])
        else:   # no usable typo: an unused number of the gemeente, from the range of the real ones
            g = r["gemeente_code"]
            v = fresh_numbers(rng, 1, lo, hi, _used_tw_numbers(ctx, g) | {d for gd, d in drawn if gd == g})[0]
            drawn.add((g, v))
            new.append(v)
    _edit_lines(ctx, fault, targets, "toewijzing_nummer", {"toewijzing_nummer": new})


@injector("prestatie_outside_toewijzing", 4)
def _outside(ctx, fault, n, spec, rng):
    p = _plain_lines(ctx)
    early = p.filter((pl.col("begindatum") == pl.col("tw_ingangsdatum")) & (pl.col("begindatum").dt.day() > 1))
    late = p.filter((pl.col("einddatum") == pl.col("tw_einddatum"))
                    & (pl.col("einddatum") != pl.col("einddatum").dt.month_end()))
    cands = pl.concat([early.with_columns(pl.lit("begin").alias("_side")),
                       late.join(early.select("_i"), on="_i", how="anti").with_columns(pl.lit("end").alias("_side"))])
    targets = _pick(cands, n, spec, rng)
    if not targets.height:
        return
    for side, col in (("begin", "begindatum"), ("end", "einddatum")):
        part = targets.filter(pl.col("_side") == side)
        new = []
        for r in part.iter_rows(named=True):
            k = dt.timedelta(days=int(rng.integers(1, 8)))
            d = r[col]
            new.append(max(d.replace(day=1), d - k) if side == "begin"
                       else min(r["einddatum"] + k, _month_end(r["einddatum"])))
        _edit_lines(ctx, fault, part, col, {col: new})


def _month_end(d: dt.date) -> dt.date:
    nxt = (d.replace(day=28) + dt.timedelta(days=4))
    return nxt - dt.timedelta(days=nxt.day)


@injector("prestatie_after_stop", 4)
def _after_stop(ctx, fault, n, spec, rng):
    stops = ctx.get("zorgstops").filter((pl.col("status_aanlevering") == "1") & (pl.col("reden_beeindiging") != "20"))
    stops = stops.group_by("gemeente_code", "agb_code", "toewijzing_nummer").agg(
        pl.col("einddatum").max().alias("_stop"))
    cands = _plain_lines(ctx).join(stops, on=["gemeente_code", "agb_code", "toewijzing_nummer"], how="inner").filter(
        (pl.col("einddatum") == pl.col("_stop")) & (pl.col("einddatum") != pl.col("einddatum").dt.month_end()))
    targets = _pick(cands, n, spec, rng)
    new = [_month_end(d) for d in targets["einddatum"].to_list()]
    _edit_lines(ctx, fault, targets, "einddatum", {"einddatum": new})


@injector("volume_over_assigned", 4)
def _over_volume(ctx, fault, n, spec, rng):
    cands = _plain_lines(ctx).filter((pl.col("tw_frequentie") != "6") & pl.col("_cap").is_not_null()
                                     & (pl.col("eenheid") != "83"))
    targets = _pick(cands, n, spec, rng)
    vol, bedrag = [], []
    for r in targets.iter_rows(named=True):
        cap = r["_cap"]
        v = max(int(np.floor(cap)) + 1, int(np.ceil(cap * rng.uniform(1.15, 1.8))))
        if r["eenheid"] == "14":
            v = int(round(cap)) + int(rng.integers(1, 6))
        vol.append(v)
        bedrag.append(v * r["product_tarief"])
    _edit_lines(ctx, fault, targets, "geleverd_volume", {"geleverd_volume": vol, "ingediend_bedrag": bedrag})


def _contract(ctx: _Ctx) -> pl.DataFrame:
    """The products each gemeente's inkoopregio contracts (one row per product; tariffs vary per period, aanbieder)."""
    regio = ctx.get("gemeenten").select("gemeente_code", "inkoopregio")
    lijst = ctx.get("producten").select("inkoopregio", "product_categorie", "product_code", "eenheid").unique(
        maintain_order=True)
    return regio.join(lijst, on="inkoopregio", how="inner")


def _with_contract_tarief(ctx: _Ctx, lines: pl.DataFrame, name: str, product_code: str = "product_code") -> pl.DataFrame:
    # issue 12: the tarief valid on the line's begindatum for its aanbieder (what TR418 checks)
    return contract_tarief(lines, ctx.get("producten"), ctx.get("gemeenten"), name=name, product_code=product_code)


@injector("product_mismatch", 4)
def _product_mismatch(ctx, fault, n, spec, rng):
    alt = _contract(ctx).select("gemeente_code", "product_categorie", "eenheid", pl.col("product_code").alias("_alt"))
    options = _plain_lines(ctx).filter(pl.col("eenheid") != "83").join(
        alt, on=["gemeente_code", "product_categorie", "eenheid"], how="inner").filter(
        pl.col("_alt") != pl.col("product_code"))
    options = _with_contract_tarief(ctx, options, "_alt_tarief", product_code="_alt").filter(
        pl.col("_alt_tarief").is_not_null())
    per_line = options.group_by("_i").agg(pl.col("_alt").sort_by("_alt"), pl.col("_alt_tarief").sort_by("_alt"))
    cands = _plain_lines(ctx).join(per_line, on="_i", how="inner")
    targets = _pick(cands, n, spec, rng)
    code, tarief, bedrag = [], [], []
    for r in targets.iter_rows(named=True):
        j = int(rng.integers(len(r["_alt"])))
        code.append(r["_alt"][j]), tarief.append(r["_alt_tarief"][j])
        bedrag.append(r["geleverd_volume"] * r["_alt_tarief"][j])
    _edit_lines(ctx, fault, targets, "product_code",
                {"product_code": code, "product_tarief": tarief, "ingediend_bedrag": bedrag})


TARIEF_FACTORS = [0.96, 0.97, 0.98, 1.02, 1.03, 1.05, 1.10]


@injector("tarief_differs_from_contract", 4)
def _tarief(ctx, fault, n, spec, rng):
    cands = _with_contract_tarief(ctx, _plain_lines(ctx).filter(pl.col("eenheid") != "83"), "_ct").filter(
        (pl.col("product_tarief") == pl.col("_ct")) & (pl.col("product_tarief") >= 50))
    targets = _pick(cands, n, spec, rng)
    tarief, bedrag = [], []
    for r in targets.iter_rows(named=True):
        t = int(round(r["product_tarief"] * TARIEF_FACTORS[int(rng.integers(len(TARIEF_FACTORS)))]))
        t = t if t != r["product_tarief"] else t + 1
        tarief.append(t), bedrag.append(t * r["geleverd_volume"])
    _edit_lines(ctx, fault, targets, "product_tarief", {"product_tarief": tarief, "ingediend_bedrag": bedrag})


@injector("credit_without_debit", 4)
def _credit_without_debit(ctx, fault, n, spec, rng):
    targets = _pick(_plain_lines(ctx), n, spec, rng)
    if not targets.height:
        return
    p = ctx.get("prestaties")
    # references already in use (as ReferentieNummer or VorigReferentieNummer) by the targets' aanbieders
    agbs = pl.Series(sorted(set(targets["agb_code"].to_list())), dtype=pl.String)
    used = pl.concat([p.select("agb_code", "referentie_nummer"),
                      p.select("agb_code", pl.col("vorig_referentie_nummer").alias("referentie_nummer"))])
    used = used.filter(pl.col("agb_code").is_in(agbs.implode()) & pl.col("referentie_nummer").is_not_null())
    refs: dict[str, set[int]] = defaultdict(set)
    for agb, ref in used.iter_rows():
        if ref.isdigit():
            refs[agb].add(int(ref))
    decl = ctx.get("declaraties").select("agb_code", "gemeente_code", "declaratie_nummer", "begindatum")
    rows, dirty = [], []
    for r in targets.iter_rows(named=True):
        later = decl.filter((pl.col("agb_code") == r["agb_code"]) & (pl.col("gemeente_code") == r["gemeente_code"])
                            & (pl.col("begindatum") > r["begindatum"])).sort("begindatum", "declaratie_nummer")
        nummer = later["declaratie_nummer"][0] if later.height else r["declaratie_nummer"]
        # its own number and the debet it claims to reverse (which was never sent): both unused by the aanbieder,
        # from the range of every ReferentieNummer
        pair = fresh_numbers(rng, 2, 0, 10 ** REFERENTIE_NUMMER[1], refs[r["agb_code"]])
        refs[r["agb_code"]].update(pair)
        new_ref, vorig = opaque_code(pair, REFERENTIE_NUMMER).to_list()
        rows.append({**{c: r[c] for c in p.columns}, "referentie_nummer": new_ref, "vorig_referentie_nummer": vorig,
                     "debet_credit": "C", "declaratie_nummer": nummer, "_ord": r["_ord"] + 0.5})
        dirty.append(vorig)
    if not rows:
        return
    ctx.lock("prestaties", targets["_k"].to_list())     # the debet the credit copies
    _mark_lines(ctx, targets)
    new = pl.DataFrame(rows, schema=p.schema)
    ctx.append("prestaties", new)
    ctx.commit("prestaties")
    ctx.record("prestaties", fault, new, "vorig_referentie_nummer", [None] * new.height, dirty)


@injector("upcoding_billing_jump", 4)
def _upcoding(ctx, fault, n, spec, rng):
    """In a random month (and the next ones while more lines are needed) one aanbieder claims 40-100 % more volume
    on every suitable line, as far as the toegewezen volume leaves room; a second aanbieder only when the first runs
    out."""
    rate_based = pl.col("tw_frequentie").is_in(["1", "2", "4"]) & (pl.col("eenheid") != "14") & (
        pl.col("_cap").floor() > pl.col("geleverd_volume"))
    cands = _plain_lines(ctx).filter((pl.col("eenheid") != "83") & (pl.col("geleverd_volume") > 0) & (
        rate_based | (pl.col("tw_frequentie") == "6")))
    if not cands.height or n <= 0:
        return
    cands = cands.with_columns(pl.col("begindatum").dt.truncate("1mo").alias("_maand"))
    sizes = cands.group_by("agb_code").len().sort("agb_code")
    order = np.argsort(-(rng.random(sizes.height) ** (1.0 / sizes["len"].to_numpy())))
    chosen: list[pl.DataFrame] = []
    total = 0
    for agb in sizes["agb_code"].gather(order.tolist()).to_list():
        if total >= n:
            break
        mine = cands.filter(pl.col("agb_code") == agb)
        months = mine["_maand"].unique().sort().to_list()
        start = int(rng.integers(len(months)))
        for m in months[start:] + months[:start][::-1]:
            if total >= n:
                break
            part = mine.filter(pl.col("_maand") == m)
            chosen.append(part)
            total += part.height
    # a 'totaal' toewijzing (frequentie 6) may not be overspent (TR322): share out what its volume leaves over
    net = ctx.get("prestaties").group_by(TW).agg(_signed("geleverd_volume").sum().alias("_net"))
    targets = pl.concat(chosen).join(net, on=TW, how="left").sort("_i")
    room: dict[str, int] = {}
    keep, vol, bedrag = [], [], []
    for r in targets.iter_rows(named=True):
        old = r["geleverd_volume"]
        want = max(old + 1, int(np.ceil(old * rng.uniform(1.4, 2.0))))
        if r["tw_frequentie"] == "6":
            ent = _entity(r)
            room.setdefault(ent, int(r["tw_volume"]) - int(r["_net"] or 0))
            v = min(want, old + room[ent])
            room[ent] -= max(0, v - old)
        else:
            v = min(int(np.floor(r["_cap"])), want)
        if v > old:
            keep.append(r["_i"]), vol.append(v), bedrag.append(v * r["product_tarief"])
    targets = targets.filter(pl.col("_i").is_in(pl.Series(keep, dtype=pl.Int64).implode())).sort("_i")
    _edit_lines(ctx, fault, targets, "geleverd_volume", {"geleverd_volume": vol, "ingediend_bedrag": bedrag})


# -- phase 5: declaratie headers --------------------------------------------------------------------------------

def _recompute_headers(ctx: _Ctx) -> None:
    """Make every declaratie total (and its JW325 granted total) the signed sum of its (dirty) lines again."""
    if "prestaties" not in ctx.work:
        return
    k = ["agb_code", "declaratie_nummer"]
    sums = ctx.get("prestaties").group_by(k).agg(_signed("ingediend_bedrag").sum().alias("_som"))
    d = ctx.get("declaraties").join(sums, on=k, how="left", maintain_order="left")
    delta = (pl.col("_som") - _signed("totaal_bedrag")).fill_null(0)
    d = d.with_columns(delta.alias("_delta"))
    changed = d.filter(pl.col("_delta") != 0).select(*k, "_delta")
    if not changed.height:
        return
    new_total = pl.when(pl.col("_delta") != 0).then(pl.col("_som")).otherwise(_signed("totaal_bedrag"))
    ctx.work["declaraties"] = d.with_columns(new_total.alias("_new")).with_columns(
        pl.col("_new").abs().alias("totaal_bedrag"),
        pl.when(pl.col("_new") < 0).then(pl.lit("C")).otherwise(pl.lit("D")).alias("debet_credit"),
    ).drop("_som", "_delta", "_new")
    a = ctx.get("declaratie_antwoorden").join(changed, on=k, how="left", maintain_order="left")
    granted = _signed("totaal_toegekend_bedrag") + pl.col("_delta").fill_null(0)
    ctx.work["declaratie_antwoorden"] = a.with_columns(granted.alias("_new")).with_columns(
        pl.col("_new").abs().alias("totaal_toegekend_bedrag"),
        pl.when(pl.col("_new") < 0).then(pl.lit("C")).otherwise(pl.lit("D")).alias("debet_credit"),
    ).drop("_delta", "_new")


@injector("declaratie_period_not_month", 5)
def _period(ctx, fault, n, spec, rng):
    targets = _pick(ctx.free(ctx.frame("declaraties"), "declaraties"), n, spec, rng)
    if not targets.height:
        return
    targets = targets.with_columns(pl.Series("_late", rng.random(targets.height) < 0.5))
    for flag, col in ((True, "einddatum"), (False, "begindatum")):
        part = targets.filter(pl.col("_late") == flag)
        k = [dt.timedelta(days=int(rng.integers(1, 6))) for _ in range(part.height)]
        new = [d + x if flag else d - x for d, x in zip(part[col].to_list(), k)]
        if part.height:
            rows = ctx.update("declaraties", part["_i"].to_list(), {col: new})
            ctx.record("declaraties", fault, rows, col, part[col].to_list(), new)


@injector("declaratie_total_mismatch", 5)
def _total(ctx, fault, n, spec, rng):
    k = ["agb_code", "declaratie_nummer"]
    lines = ctx.get("prestaties").sort(*k, "referentie_nummer").group_by(k, maintain_order=True).agg(
        pl.len().alias("_n"), _signed("ingediend_bedrag").sum().alias("_som"),
        _signed("ingediend_bedrag").last().alias("_last"))
    cands = ctx.free(ctx.frame("declaraties"), "declaraties").join(lines, on=k, how="inner").filter(
        (pl.col("_n") >= 2) & (pl.col("_last") != 0))
    targets = _pick(cands, n, spec, rng)
    if not targets.height:
        return
    new = (targets["_som"] - targets["_last"]).to_list()
    totals = [abs(x) for x in new]
    rows = ctx.update("declaraties", targets["_i"].to_list(),
                      {"totaal_bedrag": totals, "debet_credit": ["C" if x < 0 else "D" for x in new]})
    ctx.record("declaraties", fault, rows, "totaal_bedrag", targets["totaal_bedrag"].to_list(), totals)


# ------------------------------------------------------------------------------------------------------ front door

def _profile(profile: str | dict) -> dict:
    if isinstance(profile, dict):
        return profile
    known = profiles()
    if profile not in known:
        from ..errors import ConfigError

        raise ConfigError("--profile", f"unknown fault profile '{profile}'", ", ".join(sorted(known)))
    return known[profile]


def _count(spec: dict, rows: int) -> int:
    if "count" in spec:
        return int(spec["count"])
    return int(round(float(spec.get("rate", 0.0)) * rows))


def inject_faults(tables: Tables, profile: str | dict = "realistic", seed: int = 7) -> tuple[Tables, pl.DataFrame]:
    """Dirty a copy of `tables` with the faults of `profile` (a name in profiles.yaml, or a dict of the same shape).

    Returns (dirty_tables, ground_truth). The input is not changed. See the module docstring and README.md."""
    prof = _profile(profile)
    faults = catalogue()
    missing = [f["id"] for f in faults if f["id"] not in INJECTORS]
    if missing:
        raise RuntimeError(f"catalogue types without an injector: {missing}")
    children = np.random.SeedSequence([int(seed), FAULT_TAG]).spawn(len(faults))
    plan = []
    for i, f in enumerate(faults):
        spec = {**prof.get("default", {}), **(prof.get("faults") or {}).get(f["id"], {})}
        n = _count(spec, tables[f["table"]].height)
        phase, fn = INJECTORS[f["id"]]
        plan.append((phase, i, f, spec, n, fn, np.random.default_rng(children[i])))
    ctx = _Ctx(tables)
    recomputed = False
    for phase, _i, f, spec, n, fn, rng in sorted(plan, key=lambda x: (x[0], x[1])):
        if phase >= 5 and not recomputed:
            _recompute_headers(ctx)
            recomputed = True
        if n > 0:
            before = len(ctx.truth_keys)
            fn(ctx, f, n, spec, rng)
            got = len(ctx.truth_keys) - before
            if got < n:
                log.info("fault %s: %d of %d records (no more suitable targets)", f["id"], got, n)
    if not recomputed:
        _recompute_headers(ctx)
    _label_process_lateness(ctx, [f for f in faults if f.get("normal_process")])
    return ctx.finish()


# --- issue 12: timing. The clean data's own late messages (normal process behaviour, not faults).

def _late_keys(tables: Tables, table: str) -> pl.DataFrame:
    """Keys (`_k`) of the records of `table` that its timeliness rule judges late (synthetic_data.ijw)."""
    df = tables[table].with_columns(key_expr(table).alias("_k"))
    if table == "verzoeken":
        late = late_answers(df, tables["antwoorden"], tables["toewijzingen"])
    elif table == "declaratie_antwoorden":
        late = late_declaratie_antwoorden(df, tables["declaraties"])
    else:
        late = late_sent(df, "begindatum" if table == "zorgstarts" else "einddatum", 5)
    return late.select("_k")


def _label_process_lateness(ctx: _Ctx, faults: list[dict]) -> None:
    """Label, as debatable, every message that is late in the clean data and still late in the dirty data, unless a
    fault already owns the record: a finding on it counts for neither side."""
    dirty = {name: ctx.get(name) if name in ctx.work else ctx.clean[name] for name in ctx.clean}
    for fault in faults:
        table = fault["table"]
        clean, now = (_late_keys(t, table) for t in (ctx.clean, dirty))
        keys = clean.join(now, on="_k", how="semi")["_k"].unique().to_list()
        keys = [k_ for k_ in keys if (table, k_) not in ctx.truth_keys]
        if not keys:
            continue
        rows = ctx.frame(table).filter(pl.col("_k").is_in(pl.Series(keys, dtype=pl.String).implode())).unique(
            "_k", keep="first", maintain_order=True)
        vals = rows[fault["columns"][0]].to_list()
        ctx.record(table, fault, rows, fault["columns"][0], vals, vals)


for _f in ("start_late_in_process", "stop_late_in_process", "answer_late_in_process",
           "declaratie_antwoord_late_in_process"):
    # labelled after every injector by _label_process_lateness, whatever the profile's rate
    injector(_f, 9)(lambda ctx, fault, n, spec, rng: None)
