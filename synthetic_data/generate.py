"""The front door: config -> every table of the synthetic administration."""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import numpy as np
import polars as pl

from . import claims, flows
from . import messages as msg
from .config import GeneratorConfig
from .errors import ConfigError
from .dictionary import conform
from .people import person_ids, persons_frame, verwijzers
from .domains import finish_lines, pool, with_second_products
from .providers import producten_perioden, regional_producten
from .reference import gemeenten_all
from .simulate import simulate_gemeente

ProgressFn = Callable[[int, int], None]
# Below this many gemeenten a process pool costs more than it saves.
_PARALLEL_FROM = 24


def _simulate(args) -> pl.DataFrame:
    seed, scale, codes, first, last = args
    return pl.concat([simulate_gemeente(seed, scale, c, first, last) for c in codes], how="diagonal_relaxed")


def default_workers() -> int:
    return min(2, os.cpu_count() or 1)


def simulate(config: GeneratorConfig, progress: ProgressFn | None = None, workers: int = 1) -> pl.DataFrame:
    """Trajectories of every requested gemeente (internal columns), one partition per gemeente.

    `workers` > 1 simulates partitions in parallel processes (spawned: a script calling this needs the usual
    `if __name__ == "__main__":` guard; the CLI and Dagster have it). Jobs hold whole inkoopregios, so a process
    computes a region's move streams once.
    """
    codes = config.gemeenten
    first, last = config.year_range
    regio = dict(gemeenten_all().select("gemeente_code", "inkoopregio").iter_rows())
    groups: dict[str, list[str]] = {}
    for c in codes:
        groups.setdefault(regio[c], []).append(c)
    # big regions first so the two processes finish together
    jobs = sorted(((config.seed, float(config.scale), cs, first, last) for cs in groups.values()), key=lambda j: -len(j[2]))
    frames, done = [], 0
    if len(codes) >= _PARALLEL_FROM and workers > 1:
        # spawn, not fork: polars' thread pool does not survive a fork (the child can hang on a held lock)
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            results = ex.map(_simulate, jobs)
            for job, df in zip(jobs, results):
                frames.append(df)
                done += len(job[2])
                if progress:
                    progress(done, len(codes))
    else:
        for job in jobs:
            for c in job[2]:
                frames.append(_simulate((job[0], job[1], [c], job[3], job[4])))
                done += 1
                if progress:
                    progress(done, len(codes))
    return pl.concat(frames, how="diagonal_relaxed")


REFERENCE_TABLES = ("gemeenten", "aanbieders", "producten")


def _reference(config: GeneratorConfig) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    gem = gemeenten_all().filter(pl.col("gemeente_code").is_in(config.gemeenten))
    regios = sorted(gem["inkoopregio"].unique().to_list())
    pools = pl.concat([pool(config.seed, r) for r in regios])   # issue 12: with GIs and landelijke aanbieders
    first, last = config.year_range
    contracts = pl.concat([producten_perioden(config.seed, r, first, last) for r in regios])   # issue 12: market
    return gem, pools, contracts


def reference_tables(config: GeneratorConfig) -> dict[str, pl.DataFrame]:
    """The reference tables of the region (gemeenten, aanbieders of its inkoopregios, contract products)."""
    return {name: conform(name, t) for name, t in zip(REFERENCE_TABLES, _reference(config))}


def generate(config: GeneratorConfig | None = None, progress: ProgressFn | None = None,
             workers: int = 1) -> dict[str, pl.DataFrame]:
    """Generate the synthetic dataset: {table name: polars DataFrame}, columns as in the data dictionary."""
    config = config or GeneratorConfig()
    first, last = config.year_range
    seed = config.seed
    gem, pools, contracts = _reference(config)

    traj = simulate(config, progress, workers)
    if traj.height == 0:
        raise ConfigError("--scale", f"'{config.scale}' simulates nobody in care in region '{config.region}' "
                          f"({len(config.gemeenten)} gemeente(n))", "a larger scale for this region, e.g. 0.05")
    traj = pl.concat([traj, person_ids(seed, traj)], how="horizontal")
    regional = regional_producten(contracts)   # issue 12: one row per product (the periods are in `contracts`)
    df = msg.enrich(traj, regional, pools, gem.select("gemeente_code", "inkoopregio"), first, last)
    # --- issue 12: flows (JW315s to the old gemeente after a move, the JW317s planned on the care as simulated)
    df = flows.after_move_requests(seed, df)
    vow = flows.plan_vow(seed, df, regional)

    # simulate_gemeente keeps only rows that touch the years asked for (care in them, or a request sent in them),
    # so every person in `df` is registered
    persons = df.select("origin_code", "person_index", "gemeente_code").unique()
    # Each table is conformed (typed, sorted) as soon as it is built, so intermediates are freed early.
    out = reference_tables(config)
    out["jeugdigen"] = conform("jeugdigen", persons_frame(seed, persons))
    out["trajecten"] = conform("trajecten", msg.trajecten(df))
    out["verzoeken"] = conform("verzoeken", msg.verzoeken(df, out["jeugdigen"], verwijzers(seed, gem)))
    # --- issue 12: flows (the answers to JW317s; granted changes of Omvang or product become new toewijzingen)
    antwoorden = flows.antwoorden_columns(msg.antwoorden(df), df)
    out["antwoorden"] = out["wijzigingsverzoeken"] = None   # filled below, after the toewijzingen (dictionary order)
    # issue 12: a second ToegewezenProduct (vervoer) next to dagbehandeling: its own toewijzing, start, stop, claims
    df = flows.apply_vow(seed, df, vow, regional)
    df, second = with_second_products(seed, df, regional)
    # --- end issue 12: flows
    out["toewijzingen"] = conform("toewijzingen", msg.toewijzingen(df, seed))
    out["zorgstarts"] = conform("zorgstarts", msg.zorgstarts(df))
    out["zorgstops"] = conform("zorgstops", msg.zorgstops(df))
    # --- issue 12: flows (new versions answering JW317s; temporary stops and restarts)
    we = int((np.datetime64(f"{last}-12-31") - np.datetime64("1970-01-01")).astype(np.int64))
    vow = flows.answerable(vow, out["toewijzingen"])
    out["antwoorden"] = conform("antwoorden", pl.concat([antwoorden, flows.vow_antwoorden(vow)], how="diagonal_relaxed"))
    out["toewijzingen"] = conform("toewijzingen", pl.concat(
        [out["toewijzingen"], flows.vow_versions(seed, vow, out["toewijzingen"], out["zorgstops"])]))
    out["wijzigingsverzoeken"] = conform("wijzigingsverzoeken",
                                         flows.wijzigingsverzoeken(vow, regional, out["toewijzingen"]))
    pauses = flows.plan_pauses(seed, out["zorgstarts"], out["zorgstops"], we)
    starts, stops = flows.apply_pauses(pauses, out["zorgstarts"], out["zorgstops"], we)
    out["zorgstarts"], out["zorgstops"] = conform("zorgstarts", starts), conform("zorgstops", stops)
    del vow
    # --- end issue 12: flows
    # Claims are the bulk of the rows: build them in slices of gemeenten to bound the intermediate frames.
    lines = _in_slices(df, lambda part: msg.prestaties(seed, part))
    del df
    lines = flows.cut_lines(lines, pauses)   # --- issue 12: flows (no claims in a pause)
    # issue 12: domains (euro claims of budget toewijzingen; vervoer follows its host's days, after the pauses)
    lines = finish_lines(lines, second)
    # --- issue 12: claims: a share of lines sent wrong, rejected in the JW325 and (mostly) claimed again
    lines, rejected = claims.decide(seed, lines, out["toewijzingen"], last)
    decl, decl_answer = msg.declaraties(seed, lines, rejected)
    rejected = claims.rejected_lines(rejected, lines)
    out["declaraties"] = conform("declaraties", decl)
    out["prestaties"] = conform("prestaties", lines)
    del lines
    out["declaratie_antwoorden"] = conform("declaratie_antwoorden", decl_answer)
    out["declaratie_antwoord_prestaties"] = conform("declaratie_antwoord_prestaties", rejected)
    return out


def _in_slices(df: pl.DataFrame, build, rows_per_slice: int = 150_000) -> pl.DataFrame:
    """Apply a row-wise builder to slices of whole gemeenten (results do not depend on the slicing)."""
    counts = df.group_by("gemeente_code").len().sort("gemeente_code")
    slice_of = counts.with_columns((pl.col("len").cum_sum() // rows_per_slice).alias("_slice"))
    df = df.join(slice_of.select("gemeente_code", "_slice"), on="gemeente_code", how="left")
    parts = [build(part.drop("_slice")) for _, part in df.group_by("_slice", maintain_order=True)]
    return pl.concat(parts)
