"""The front door: config -> every table of the synthetic administration."""
from __future__ import annotations

import io
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Callable

import numpy as np
import polars as pl

from . import claims, flows
from . import messages as msg
from .config import GeneratorConfig
from .errors import ConfigError
from .dictionary import conform, merge_sorted
from .domains import finish_lines, pool, with_declaratie_codes, with_second_products
from .people import name_pools, person_ids, persons_frame, verwijzers
from .providers import producten_perioden, regional_producten
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
    """The gemeenten grouped by inkoopregio, the regions with the most youth first (so two processes finish
    together). Jobs hold whole inkoopregios, so a process computes a region's move streams once."""
    g = gemeenten_all()
    regio = dict(g.select("gemeente_code", "inkoopregio").iter_rows())
    youth = dict(g.select("gemeente_code", pl.col("jeugd_0_14") + pl.col("jeugd_15_19")).iter_rows())
    groups: dict[str, list[str]] = {}
    for c in config.gemeenten:
        groups.setdefault(regio[c], []).append(c)
    return sorted(groups.values(), key=lambda cs: -sum(youth[c] for c in cs))


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
    pools = pl.concat([pool(config.seed, r) for r in regios])   # issue 12: with GIs and landelijke aanbieders
    first, last = config.year_range
    contracts = pl.concat([producten_perioden(config.seed, r, first, last) for r in regios])   # issue 12: market
    return gem, pools, contracts


def reference_tables(config: GeneratorConfig, reference: tuple | None = None) -> dict[str, pl.DataFrame]:
    """The reference tables of the region (gemeenten, aanbieders of its inkoopregios, contract products);
    `reference` is what `_reference(config)` returned when the caller has it already."""
    gem, pools, contracts = reference or _reference(config)
    contracts = with_declaratie_codes(contracts)   # issue 13: the code a claim of an aspecifiek product declares
    return {name: conform(name, t) for name, t in zip(REFERENCE_TABLES, (gem, pools, contracts))}


def generate(config: GeneratorConfig | None = None, progress: ProgressFn | None = None,
             workers: int = 1) -> dict[str, pl.DataFrame]:
    """Generate the synthetic dataset: {table name: polars DataFrame}, columns as in the data dictionary.

    Jobs are whole inkoopregios. With `workers` > 1 (and a big enough region) they are simulated in spawned
    processes, and each job's tables are built in a thread of this process as soon as its trajectories arrive, so
    the tables of one job are derived while the next jobs are still simulated. The parts are merged at the end.
    This gives the same rows as building over all gemeenten at once: every step is row-wise or grouped within a
    gemeente (partition independence). A table of several jobs holds their slices as its chunks (`.rechunk()`
    makes it one).
    """
    config = config or GeneratorConfig()
    first, last = config.year_range
    seed = config.seed
    groups = _jobs(config)
    sims = [(seed, float(config.scale), cs, first, last) for cs in groups]
    reference: list = []   # (gemeenten, aanbieders, contracts), made while the first jobs are simulated

    def build(i: int, traj: pl.DataFrame) -> dict[str, pl.DataFrame] | None:
        gem, pools, contracts = reference
        return _job_tables(seed, first, last, traj, gem.filter(pl.col("gemeente_code").is_in(groups[i])), pools,
                           contracts)

    total, done = len(config.gemeenten), 0
    parts: list = [None] * len(sims)
    if total >= _PARALLEL_FROM and workers > 1 and len(sims) > 1:
        # spawn, not fork: polars' thread pool does not survive a fork (the child can hang on a held lock)
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as procs, \
                ThreadPoolExecutor(max_workers=workers) as threads:
            futures = {procs.submit(_simulate_ipc, job): i for i, job in enumerate(sims)}
            # built once here while the first jobs are simulated, not in two threads at once
            reference.extend(_reference(config))
            name_pools(seed)
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
        reference.extend(_reference(config))
        for i, job in enumerate(sims):
            parts[i] = build(i, _simulate(job))
            done += len(groups[i])
            if progress:
                progress(done, total)
    parts = [p for p in parts if p is not None]
    if not parts:
        raise ConfigError("--scale", f"'{config.scale}' simulates nobody in care in region '{config.region}' "
                          f"({len(config.gemeenten)} gemeente(n))", "a larger scale for this region, e.g. 0.05")
    out = reference_tables(config, tuple(reference))
    for name in list(parts[0]):
        # chunks of the jobs' slices, not one copy: same bytes for the same config, half the peak memory
        out[name] = merge_sorted(name, [p.pop(name) for p in parts], rechunk=False)
    return out


def _job_tables(seed: int, first: int, last: int, traj: pl.DataFrame, gem: pl.DataFrame, pools: pl.DataFrame,
                contracts: pl.DataFrame) -> dict[str, pl.DataFrame] | None:
    """Every table of one job's gemeenten (`gem`), conformed (typed, sorted); None when nobody is in care there."""
    if traj.height == 0:
        return None
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
    out = {}
    out["jeugdigen"] = conform("jeugdigen", persons_frame(seed, persons))
    out["trajecten"] = conform("trajecten", msg.trajecten(df))
    out["verzoeken"] = conform("verzoeken", msg.verzoeken(df, out["jeugdigen"], verwijzers(seed, gem)))
    # --- issue 12: flows (the answers to JW317s; granted changes of Omvang or product become new toewijzingen)
    antwoorden = flows.antwoorden_columns(msg.antwoorden(df), df)
    out["antwoorden"] = out["wijzigingsverzoeken"] = None   # filled below, after the toewijzingen (dictionary order)
    df = flows.apply_vow(seed, df, vow, regional)
    # --- end issue 12: flows
    # issue 12: a second ToegewezenProduct (vervoer) next to dagbehandeling: its own toewijzing, start, stop, claims
    df, second = with_second_products(seed, df, regional)
    df = msg.with_timing(df)   # shared by the toewijzingen, zorgstarts, zorgstops and prestaties: computed once
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
    if df.height < rows_per_slice:   # one slice
        return build(df)
    counts = df.group_by("gemeente_code").len().sort("gemeente_code")
    slice_of = counts.select("gemeente_code", (pl.col("len").cum_sum() // rows_per_slice).alias("_slice"))
    part = df.select(pl.col("gemeente_code").replace_strict(slice_of["gemeente_code"], slice_of["_slice"]))
    part = part.to_series()
    # one filter per slice (no join and partition: each copied the whole frame), in order of first appearance
    return pl.concat([build(df.filter(part == k)) for k in part.unique(maintain_order=True)])
