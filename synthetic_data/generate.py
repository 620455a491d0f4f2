"""The front door: config -> every table of the synthetic administration."""
from __future__ import annotations

import io
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Callable

import polars as pl

from . import messages as msg
from .config import GeneratorConfig
from .errors import ConfigError
from .dictionary import conform, merge_sorted
from .people import name_pools, person_ids, persons_frame, verwijzers
from .providers import aanbieders, producten
from .reference import gemeenten_all
from .simulate import simulate_gemeenten

ProgressFn = Callable[[int, int], None]
# Below this many gemeenten a process pool costs more than it saves.
_PARALLEL_FROM = 24


def _simulate(args) -> pl.DataFrame:
    seed, scale, codes, first, last = args
    return simulate_gemeenten(seed, scale, codes, first, last)


def _simulate_ipc(args) -> bytes:
    """_simulate in a pool worker, the frame returned as Arrow IPC bytes: a third of the CPU of pickling it."""
    buf = io.BytesIO()
    _simulate(args).write_ipc(buf, compression="uncompressed")
    return buf.getvalue()


def default_workers() -> int:
    return min(2, os.cpu_count() or 1)


def _jobs(config: GeneratorConfig) -> list[list[str]]:
    """The gemeenten grouped by inkoopregio, big regions first (so two processes finish together). Jobs hold whole
    inkoopregios, so a process computes a region's move streams once."""
    regio = dict(gemeenten_all().select("gemeente_code", "inkoopregio").iter_rows())
    groups: dict[str, list[str]] = {}
    for c in config.gemeenten:
        groups.setdefault(regio[c], []).append(c)
    return sorted(groups.values(), key=lambda cs: -len(cs))


def _run(fn, jobs: list, sizes: list[int], total: int, progress: ProgressFn | None, workers: int) -> list:
    """fn over the jobs, in job order: in `workers` spawned processes when the run is big enough, else here."""
    results, done = [], 0
    if total >= _PARALLEL_FROM and workers > 1 and len(jobs) > 1:
        # spawn, not fork: polars' thread pool does not survive a fork (the child can hang on a held lock)
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            for size, res in zip(sizes, ex.map(fn, jobs)):
                results.append(res)
                done += size
                if progress:
                    progress(done, total)
    else:
        for size, job in zip(sizes, jobs):
            results.append(fn(job))
            done += size
            if progress:
                progress(done, total)
    return results


def simulate(config: GeneratorConfig, progress: ProgressFn | None = None, workers: int = 1) -> pl.DataFrame:
    """Trajectories of every requested gemeente (internal columns), one partition per gemeente.

    `workers` > 1 simulates partitions in parallel processes (spawned: a script calling this needs the usual
    `if __name__ == "__main__":` guard; the CLI and Dagster have it).
    """
    first, last = config.year_range
    groups = _jobs(config)
    jobs = [(config.seed, float(config.scale), cs, first, last) for cs in groups]
    frames = _run(_simulate, jobs, [len(cs) for cs in groups], len(config.gemeenten), progress, workers)
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
    """Generate the synthetic dataset: {table name: polars DataFrame}, columns as in the data dictionary.

    Jobs are whole inkoopregios. With `workers` > 1 (and a big enough region) they are simulated in spawned
    processes, and each job's tables are built in a thread of this process as soon as its trajectories arrive, so
    the tables of one job are derived while the next jobs are still simulated. The parts are merged at the end. This
    gives the same rows as building over all gemeenten at once: every step is row-wise or grouped within a gemeente
    (partition independence).
    """
    config = config or GeneratorConfig()
    first, last = config.year_range
    seed = config.seed
    gem, pools, contracts = _reference(config)
    groups = _jobs(config)
    sims = [(seed, float(config.scale), cs, first, last) for cs in groups]

    def build(i: int, traj: pl.DataFrame) -> dict[str, pl.DataFrame] | None:
        return _job_tables(seed, first, last, traj, gem.filter(pl.col("gemeente_code").is_in(groups[i])), pools,
                           contracts)

    total, done = len(config.gemeenten), 0
    parts: list = [None] * len(sims)
    if total >= _PARALLEL_FROM and workers > 1 and len(sims) > 1:
        # spawn, not fork: polars' thread pool does not survive a fork (the child can hang on a held lock)
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as procs, \
                ThreadPoolExecutor(max_workers=workers) as threads:
            futures = {procs.submit(_simulate_ipc, job): i for i, job in enumerate(sims)}
            name_pools(seed)   # built once here while the first jobs are simulated, not in two threads at once
            built = []
            for f in as_completed(futures):
                i = futures[f]
                built.append((i, threads.submit(build, i, pl.read_ipc(io.BytesIO(f.result())))))
                done += len(groups[i])
                if progress:
                    progress(done, total)
            for i, b in built:
                parts[i] = b.result()
    else:
        for i, job in enumerate(sims):
            parts[i] = build(i, _simulate(job))
            done += len(groups[i])
            if progress:
                progress(done, total)
    parts = [p for p in parts if p is not None]
    if not parts:
        raise ConfigError("--scale", f"'{config.scale}' simulates nobody in care in region '{config.region}' "
                          f"({len(config.gemeenten)} gemeente(n))", "a larger scale for this region, e.g. 0.05")
    out = reference_tables(config)
    for name in list(parts[0]):
        out[name] = merge_sorted(name, [p.pop(name) for p in parts])
    return out


def _job_tables(seed: int, first: int, last: int, traj: pl.DataFrame, gem: pl.DataFrame, pools: pl.DataFrame,
                contracts: pl.DataFrame) -> dict[str, pl.DataFrame] | None:
    """Every table of one job's gemeenten (`gem`), conformed (typed, sorted); None when nobody is in care there."""
    if traj.height == 0:
        return None
    traj = pl.concat([traj, person_ids(seed, traj)], how="horizontal")
    df = msg.enrich(traj, contracts, pools, gem.select("gemeente_code", "inkoopregio"), first, last)

    # simulate_gemeente keeps only rows that touch the years asked for (care in them, or a request sent in them),
    # so every person in `df` is registered
    persons = df.select("origin_code", "person_index", "gemeente_code").unique()
    # Each table is conformed (typed, sorted) as soon as it is built, so intermediates are freed early.
    out = {}
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
