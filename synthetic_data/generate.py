"""The front door: config -> every table of the synthetic administration."""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import polars as pl

from . import messages as msg
from .config import GeneratorConfig
from .errors import ConfigError
from .dictionary import conform
from .people import person_ids, persons_frame, verwijzers
from .providers import aanbieders, producten
from .reference import gemeenten_all
from .simulate import simulate_gemeenten

ProgressFn = Callable[[int, int], None]
# Below this many gemeenten a process pool costs more than it saves.
_PARALLEL_FROM = 24


def _simulate(args) -> pl.DataFrame:
    seed, scale, codes, first, last = args
    return simulate_gemeenten(seed, scale, codes, first, last)


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
            frames.append(_simulate(job))
            done += len(job[2])
            if progress:
                progress(done, len(codes))
    return pl.concat(frames, how="diagonal_relaxed")


REFERENCE_TABLES = ("gemeenten", "aanbieders", "producten")


def _reference(config: GeneratorConfig) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    gem = gemeenten_all().filter(pl.col("gemeente_code").is_in(config.gemeenten))
    regios = sorted(gem["inkoopregio"].unique().to_list())
    pools = pl.concat([aanbieders(config.seed, r) for r in regios])
    contracts = pl.concat([producten(config.seed, r) for r in regios])
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
    df = msg.enrich(traj, contracts, pools, gem.select("gemeente_code", "inkoopregio"), first, last)

    # simulate_gemeente keeps only rows that touch the years asked for (care in them, or a request sent in them),
    # so every person in `df` is registered
    persons = df.select("origin_code", "person_index", "gemeente_code").unique()
    # Each table is conformed (typed, sorted) as soon as it is built, so intermediates are freed early.
    out = reference_tables(config)
    out["jeugdigen"] = conform("jeugdigen", persons_frame(seed, persons))
    out["trajecten"] = conform("trajecten", msg.trajecten(df))
    out["verzoeken"] = conform("verzoeken", msg.verzoeken(df, out["jeugdigen"], verwijzers(seed, gem)))
    out["antwoorden"] = conform("antwoorden", msg.antwoorden(df))
    out["toewijzingen"] = conform("toewijzingen", msg.toewijzingen(df))
    out["zorgstarts"] = conform("zorgstarts", msg.zorgstarts(df))
    out["zorgstops"] = conform("zorgstops", msg.zorgstops(df))
    # Claims are the bulk of the rows: build them in slices of gemeenten to bound the intermediate frames.
    lines = _in_slices(df, lambda part: msg.prestaties(seed, part))
    del df
    decl, decl_answer = msg.declaraties(seed, lines)
    out["declaraties"] = conform("declaraties", decl)
    out["prestaties"] = conform("prestaties", lines)
    del lines
    out["declaratie_antwoorden"] = conform("declaratie_antwoorden", decl_answer)
    return out


def _in_slices(df: pl.DataFrame, build, rows_per_slice: int = 150_000) -> pl.DataFrame:
    """Apply a row-wise builder to slices of whole gemeenten (results do not depend on the slicing)."""
    counts = df.group_by("gemeente_code").len().sort("gemeente_code")
    slice_of = counts.with_columns((pl.col("len").cum_sum() // rows_per_slice).alias("_slice"))
    df = df.join(slice_of.select("gemeente_code", "_slice"), on="gemeente_code", how="left")
    parts = [build(part.drop("_slice")) for _, part in df.group_by("_slice", maintain_order=True)]
    return pl.concat(parts)
