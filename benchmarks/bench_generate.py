"""Benchmark the synthetic data generator against two baselines measured in the same run.

    .venv/bin/python benchmarks/bench_generate.py           # twente and nl, one year each, scale 1.0
    .venv/bin/python benchmarks/bench_generate.py --quick   # twente and nl at --scale 0.1 (about a minute)

This is a benchmark script, not a test: it prints figures and PASS/MISS against the targets and exits 0 unless a
run crashes.

What is measured
----------------
* Cases: the equivalent of `zandbak generate --region R --years 2024 --seed 42 --out TMP`, run as a small child
  process that calls `synthetic_data.generate(GeneratorConfig(...))` and `synthetic_data.dataset.write_dataset`.
  Rows are the sum of `manifest["tables"][name]["rows"]` of the manifest.json the run wrote.
* Baseline "per-row": the issue's "per-row generator (a Python loop building the same records with Faker and
  `random`)", written out as a reference implementation (`child_perrow`). For a fixed number of trajectories
  starting in 2024 (60,000; 20,000 with --quick) in the gemeenten of inkoopregio Twente, a plain loop with one
  random.Random(seed) and Faker('nl_NL') called per person, datetime.date arithmetic and one dict per output row
  builds the rows the generator writes for them (column names from data/dictionary.yaml):
    - jeugdigen: Faker first names and surname (voorvoegsel split off), voorletters, birth date, sex, Faker street,
      house number, postcode = a real PC4 of the gemeente + two letters, elfproef-valid 9-range BSN per row;
    - trajecten: hulpvorm, verwijzer, product (weighted by gewicht) and end reason drawn with random.choices over
      the calibration shares and the product list (reference.calibration / care_model / producten_catalogus),
      duration from the CBS duration bins (uniform within a bin);
    - for iJw care: one toewijzingen row plus one per 12-month verlenging, one zorgstarts row, a zorgstops row when
      care ends in 2024, one prestaties row per calendar month of care in 2024 (month clipped to the care period,
      volume per week / month / total pro-rated by days and the product's levering range, or days for etmaal,
      amount = volume x tarief, referentie_nummer and declaratie_nummer strings);
    - declaraties: one row per (aanbieder, gemeente, month) from a dict accumulator of the prestaties.
  Then `pl.DataFrame(rows).write_parquet` per table. rows = all rows written. It is a reference for building
  "the same records" row by row, written the straightforward way: not tuned, and not slowed down either. It is
  simpler than the generator: no stock of trajectories from earlier years, repeat users, companions, moves,
  provider switches, early-stop toewijzing versions, verzoeken/antwoorden, credit corrections or
  declaratie_antwoorden.
* Baseline "floor": the same number of rows as the largest case (nl), 16 columns (int64, date and short strings)
  of plain numpy random values, written with the generator's own Parquet writer settings.

Every case and baseline runs in its own child process, waited for with os.wait4, which returns the resource usage
of that one child including its waited-for descendants. On Linux its ru_maxrss is the peak resident set of the
largest single process in that tree (the generator main process or one of its pool workers, not their sum), so
the figure is isolated per case without an intermediate process. It is reported as "peak RSS (largest process)"
in MiB (printed as MB; the 4 GB target is 4096 MiB).

The nl case is run a second time as the real command line, `python -m pipelines.cli generate --region nl
--years 2024 --seed 42 [--scale S] --out TMP --quiet`, in its own child process (also waited for with os.wait4):
its "wall s" and "peak RSS" are that command's, process start, imports, the worker pool, generate and write
included, so the figure is what a user of `zandbak generate` waits. The first (in-process) run gives the
generate / write split and "run s".

Times: "wall s" is the whole child process (interpreter start, imports, generate, write; for nl the CLI command).
"rows/s" and the ratios use the generate + write time inside the child, the same way the baselines are timed
(build + write, imports excluded): "within 4x of the floor" means generate + write of the nl case takes at most 4
times the floor's build + write for the same number of rows. The wall and RSS targets use the CLI figures.

The last line of output is one JSON object with every figure (for copying into the README).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _harness import cores, ratio, run_command
from _harness import run_child as harness_run_child

SEED = 42
YEARS = "2024"
FULL_CASES = [("twente 1 year", "twente", 1.0), ("nl 1 year", "nl", 1.0)]
QUICK_CASES = [("twente 1 year @0.1", "twente", 0.1), ("nl 1 year @0.1", "nl", 0.1)]
PERROW_TRAJECTEN = 60_000        # trajectories the per-row reference builds (about 5 s here)
PERROW_TRAJECTEN_QUICK = 20_000  # with --quick (about 2 s)

# Targets from the issue.
TARGET_NL_WALL_S = 30.0
TARGET_NL_RSS_MB = 4096.0
TARGET_X_PERROW = 25.0
TARGET_FLOOR_FACTOR = 4.0  # generate + write <= 4 x the floor's build + write (rows/s >= floor rows/s / 4)
TARGET_CORES = 2


# --------------------------------------------------------------------------------------------------------------
# Child side: one job per process, result written as JSON to spec["result"].
# --------------------------------------------------------------------------------------------------------------

def _self_rss_mb() -> tuple[float, float]:
    import resource
    unit = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / unit / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / unit / 1024)


def child_generate(spec: dict) -> dict:
    t0 = time.perf_counter()

    from synthetic_data import GeneratorConfig, __version__, generate
    from synthetic_data.dataset import write_dataset
    from synthetic_data.generate import default_workers
    t1 = time.perf_counter()
    config = GeneratorConfig(region=spec["region"], years=spec["years"], seed=spec["seed"], scale=spec["scale"])
    tables = generate(config, workers=default_workers())   # as the CLI does: one process per core
    t2 = time.perf_counter()
    write_dataset(tables, spec["out"], config.as_dict())
    t3 = time.perf_counter()
    main_mb, workers_mb = _self_rss_mb()
    return {"import_s": t1 - t0, "generate_s": t2 - t1, "write_s": t3 - t2, "run_s": t3 - t1,
            "gemeenten": len(config.gemeenten), "main_rss_mb": main_mb, "workers_rss_mb": workers_mb,
            "generator_version": __version__, "start_method": "spawn (pool workers)"}


def child_perrow(spec: dict) -> dict:
    """Reference per-row generator: the same kind of records as the generator, built one Python dict at a time.

    A plain loop over `spec["trajecten"]` trajectories starting in 2024: random.Random + Faker('nl_NL') per person,
    datetime.date arithmetic, one dict per output row, then pl.DataFrame(rows).write_parquet per table. Straightforward
    on purpose (the way one would write it without vectorising), not tuned and not artificially slowed down.
    """
    t0 = time.perf_counter()
    import calendar
    import datetime as dt
    import random
    import string

    import polars as pl
    from faker import Faker

    from synthetic_data.reference import calibration, care_model, gemeenten_all, pc4, producten_catalogus
    t1 = time.perf_counter()
    n, seed = spec["trajecten"], spec["seed"]
    year = int(YEARS)
    rnd = random.Random(seed)
    fake = Faker("nl_NL")
    fake.seed_instance(seed)

    # ---- reference data, read once ---------------------------------------------------------------------------
    cal, cm = calibration(), care_model()
    hv_shares = cal["started_trajecten_by_hulpvorm"]["shares"]
    hulpvormen, hulpvorm_w = list(hv_shares), list(hv_shares.values())
    vw_shares = cal["verwijzer_share_of_trajecten"]["shares"]
    verwijzers, verwijzer_w = list(vw_shares), list(vw_shares.values())
    dur = cal["ended_trajecten_duration"]
    duur_bins = []
    for label in dur["bins_months"]:
        lo, _, hi = label.partition("-")
        duur_bins.append((float(lo.rstrip("+")), float(hi) if hi else float(dur["longest_months"])))
    duur_w = list(dur["bins_months"].values())
    einde_shares = cal["reden_beeindiging"]["shares"]
    einde_cats, einde_w = list(einde_shares), list(einde_shares.values())
    producten: dict[str, list[dict]] = {}
    for p in producten_catalogus().iter_rows(named=True):
        if p["tarief"] is not None:   # the reference builds priced claims only (a budget product has no tarief)
            producten.setdefault(p["hulpvorm"], []).append(p)
    aanbieders = {h: [f"98{i:02d}{k:04d}" for k in range(12)] for i, h in enumerate(hulpvormen)}
    gemeenten = gemeenten_all().filter(pl.col("inkoopregio") == "Twente")   # one inkoopregio, as the twente case
    gemeente_codes = gemeenten["gemeente_code"].to_list()
    gemeente_w = (gemeenten["jeugd_0_14"] + gemeenten["jeugd_15_19"]).to_list()
    postcodes: dict[str, list[tuple[str, str]]] = {}
    for r in pc4().iter_rows(named=True):
        if r["inwoners_2021"] > 0:
            postcodes.setdefault(r["gemeente_code"], []).append((r["pc4"], r["woonplaats"]))
    prefixes = ("van der ", "van den ", "van de ", "van ", "de ", "den ", "ter ", "ten ", "te ", "in 't ", "'t ")
    jan1, dec31 = dt.date(year, 1, 1), dt.date(year, 12, 31)

    def bsn() -> str:  # elfproef-valid, from the synthetic 9-range like the generator's
        while True:
            digits = [9] + [rnd.randrange(10) for _ in range(7)]
            check = sum(d * w for d, w in zip(digits, range(9, 1, -1))) % 11
            if check != 10:
                return "".join(str(d) for d in digits) + str(check)

    def plus_werkdagen(d: dt.date, k: int) -> dt.date:
        while d.weekday() >= 5:
            d += dt.timedelta(days=1)
        while k > 0:
            d += dt.timedelta(days=1)
            if d.weekday() < 5:
                k -= 1
        return d

    def month_end(d: dt.date) -> dt.date:
        return d.replace(day=calendar.monthrange(d.year, d.month)[1])

    tables: dict[str, list[dict]] = {t: [] for t in (
        "jeugdigen", "trajecten", "toewijzingen", "zorgstarts", "zorgstops", "prestaties", "declaraties")}
    totals: dict[tuple[str, str, dt.date], int] = {}   # (agb, gemeente, month) -> signed sum of the prestaties

    for i in range(n):
        # ---- the youth ---------------------------------------------------------------------------------------
        gemeente = rnd.choices(gemeente_codes, gemeente_w)[0]
        begin = jan1 + dt.timedelta(days=rnd.randrange(366))
        meisje = rnd.random() < 0.45
        namen = [fake.first_name_female() if meisje else fake.first_name_male()]
        if rnd.random() < 0.45:
            namen.append(fake.first_name_female() if meisje else fake.first_name_male())
        achternaam, voorvoegsel = fake.last_name(), None
        for p in prefixes:
            if achternaam.lower().startswith(p):
                voorvoegsel, achternaam = achternaam[:len(p)].strip().lower(), achternaam[len(p):]
                break
        pc, woonplaats = rnd.choice(postcodes[gemeente])
        letters = "SA"
        while letters in ("SA", "SD", "SS"):
            letters = rnd.choice(string.ascii_uppercase) + rnd.choice(string.ascii_uppercase)
        client_id = f"C{gemeente}-{i:07d}"
        client_bsn = bsn()
        geboortedatum = begin - dt.timedelta(days=rnd.randrange(1, 23 * 365))
        tables["jeugdigen"].append({
            "client_id": client_id, "bsn": client_bsn, "voornamen": " ".join(namen),
            "voorletters": "".join(nm[0] for nm in namen), "voorvoegsel": voorvoegsel, "achternaam": achternaam,
            "geboortedatum": geboortedatum, "geslacht": "2" if meisje else "1", "straatnaam": fake.street_name(),
            "huisnummer": rnd.randint(1, 180), "postcode": pc + letters, "woonplaats": woonplaats,
            "gemeente_code": gemeente,
        })

        # ---- the trajectory ----------------------------------------------------------------------------------
        hulpvorm = rnd.choices(hulpvormen, hulpvorm_w)[0]
        verwijzer = rnd.choices(verwijzers, verwijzer_w)[0]
        path = cm["verwijzers"][verwijzer]["path"]
        in_ijw = cm["hulpvormen"][hulpvorm]["in_ijw"] and path != "none" and hulpvorm in producten
        product = rnd.choices(producten[hulpvorm], [p["gewicht"] for p in producten[hulpvorm]])[0] if in_ijw else None
        agb = rnd.choice(aanbieders[hulpvorm]) if hulpvorm != "wijkteam" else None
        lo, hi = rnd.choices(duur_bins, duur_w)[0]
        duur = max(1, round(rnd.uniform(lo, hi) * 30.4375))
        end = begin + dt.timedelta(days=duur - 1)
        einde = rnd.choices(einde_cats, einde_w)[0]
        spec_einde = cm["einde_redenen"][einde]
        if "code" in spec_einde:
            reden = spec_einde["code"]
        else:
            reden = rnd.choices(list(spec_einde["codes"]), list(spec_einde["codes"].values()))[0]
        planned = end + dt.timedelta(days=round(rnd.randint(1, 6) * 30.4375)) if spec_einde["voortijdig"] else end
        traject_id = f"{gemeente}-{year}-{i:06d}"
        tw_nummer = 1_000_000 + i if in_ijw else None
        tables["trajecten"].append({
            "traject_id": traject_id, "gemeente_code": gemeente, "client_id": client_id, "bsn": client_bsn,
            "hulpvorm": hulpvorm, "verwijzer": verwijzer, "verwijzer_type": cm["verwijzers"][verwijzer]["code"],
            "in_ijw": in_ijw, "oorsprong": "nieuw",
            "product_categorie": product["product_categorie"] if in_ijw else None,
            "product_code": product["product_code"] if in_ijw else None,
            "agb_code": agb, "toewijzing_nummer": tw_nummer, "begindatum": begin, "geplande_einddatum": planned,
            "einddatum": end, "einde_reden": einde, "reden_beeindiging": reden,
        })
        if not in_ijw:
            continue

        # ---- toewijzing (one version per 12-month verlenging), start and stop ---------------------------------
        volume = rnd.randint(product["volume_min"], product["volume_max"])
        ref_aanbieder = "VOT" + traject_id.replace("-", "") if path == "jw315" else None
        for k in range((end - begin).days // 365 + 1):
            tw_eind = min(planned, begin + dt.timedelta(days=365 * (k + 1) - 1))
            if k == 0:
                tw_datum = begin - dt.timedelta(days=rnd.randint(0, 10))
            else:
                tw_datum = min(planned, begin + dt.timedelta(days=365 * k - 1)) - dt.timedelta(days=rnd.randint(5, 25))
            if tw_datum > dec31:
                break
            secs = rnd.randrange(8 * 3600, 17 * 3600)
            tables["toewijzingen"].append({
                "gemeente_code": gemeente, "toewijzing_nummer": tw_nummer, "versie": k + 1, "agb_code": agb,
                "bsn": client_bsn, "referentie_aanbieder": ref_aanbieder,
                "product_categorie": product["product_categorie"], "product_code": product["product_code"],
                "toewijzingsdatum": tw_datum, "toewijzingstijd": f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}",
                "ingangsdatum": begin, "einddatum": tw_eind,
                "volume": -(-volume * ((tw_eind - begin).days + 1) // 28) if product["frequentie"] == "6" else volume,
                "eenheid": product["eenheid"], "frequentie": product["frequentie"],
                "reden_wijziging": "04" if k > 0 else None,
            })
        message = {"gemeente_code": gemeente, "agb_code": agb, "bsn": client_bsn, "toewijzing_nummer": tw_nummer,
                   "product_categorie": product["product_categorie"], "product_code": product["product_code"],
                   "toewijzing_ingangsdatum": begin, "begindatum": begin}
        start_msg = plus_werkdagen(begin, rnd.randint(0, 4))
        tables["zorgstarts"].append({**message, "status_aanlevering": "1", "dagtekening": start_msg})
        if end <= dec31:
            tables["zorgstops"].append({**message, "einddatum": end, "reden_beeindiging": reden,
                                        "status_aanlevering": "1",
                                        "dagtekening": max(plus_werkdagen(end, rnd.randint(0, 4)), start_msg)})

        # ---- prestaties: one line per calendar month of care in the year ---------------------------------------
        month = begin.replace(day=1)
        while month <= min(end, dec31):
            last = month_end(month)
            pb, pe = max(month, begin), min(last, end)
            dagen = (pe - pb).days + 1
            if product["eenheid"] == "14":            # etmaal: a day in care
                geleverd = dagen
            elif product["eenheid"] == "82" and product["frequentie"] == "6":   # one arrangement, at the start
                geleverd = 1 if pb == begin else 0
            else:
                if product["frequentie"] == "2":      # per week
                    cap = volume * dagen / 7
                elif product["frequentie"] == "4":    # per month
                    cap = volume * dagen / last.day
                else:                                 # total, as a rate per 4 weeks
                    cap = volume * dagen / 28
                geleverd = int(cap * rnd.uniform(product["levering_min"], product["levering_max"]))
            if geleverd > 0:
                yyyymm = f"{month.year}{month.month:02d}"
                bedrag = geleverd * product["tarief"]
                tables["prestaties"].append({
                    "declaratie_nummer": f"{gemeente}{yyyymm}D1", "agb_code": agb, "gemeente_code": gemeente,
                    "referentie_nummer": f"{gemeente}{tw_nummer:09d}{yyyymm}1", "vorig_referentie_nummer": None,
                    "bsn": client_bsn, "toewijzing_nummer": tw_nummer,
                    "product_categorie": product["product_categorie"], "product_code": product["product_code"],
                    "begindatum": pb, "einddatum": pe, "geleverd_volume": geleverd, "eenheid": product["eenheid"],
                    "product_tarief": product["tarief"], "ingediend_bedrag": bedrag, "debet_credit": "D",
                })
                key = (agb, gemeente, month)
                totals[key] = totals.get(key, 0) + bedrag
            month = last + dt.timedelta(days=1)

    # ---- declaraties: one per (aanbieder, gemeente, month) from the accumulator ----------------------------------
    for (agb, gemeente, month), total in totals.items():
        volgende = month_end(month) + dt.timedelta(days=1)
        tables["declaraties"].append({
            "declaratie_nummer": f"{gemeente}{month.year}{month.month:02d}D1", "agb_code": agb,
            "gemeente_code": gemeente, "begindatum": month, "einddatum": month_end(month),
            "dagtekening": volgende + dt.timedelta(days=rnd.randint(2, 19)), "totaal_bedrag": abs(total),
            "debet_credit": "D" if total >= 0 else "C",
        })

    out = Path(spec["out"])
    for name, rows in tables.items():
        # infer over all rows: a column can be null in the first rows (voorvoegsel, reden_wijziging, ...)
        df = pl.DataFrame(rows, infer_schema_length=None)
        df.with_columns(pl.col(pl.Null).cast(pl.String)).write_parquet(out / f"{name}.parquet")
    t2 = time.perf_counter()
    main_mb, _ = _self_rss_mb()
    counts = {name: len(rows) for name, rows in tables.items()}
    return {"import_s": t1 - t0, "run_s": t2 - t1, "rows": sum(counts.values()), "trajecten": n, "tables": counts,
            "main_rss_mb": main_mb}


def child_floor(spec: dict) -> dict:
    """The machine's floor: vectorised numpy random columns, written with the generator's Parquet settings."""
    t0 = time.perf_counter()
    import numpy as np
    import polars as pl
    import pyarrow.parquet as pq
    try:
        from synthetic_data.dataset import write_table
    except ImportError:  # keep the floor measurable if the writer moves
        write_table = None
    t1 = time.perf_counter()
    n = spec["rows"]
    rng = np.random.default_rng(spec["seed"])

    def pool(k: int, lo: int, hi: int) -> pl.Series:  # k short random lowercase strings of length lo..hi
        lengths = rng.integers(lo, hi + 1, k)
        letters = rng.integers(97, 123, int(lengths.sum()), dtype=np.uint8).tobytes().decode()
        ends = np.cumsum(lengths)
        return pl.Series([letters[e - n_:e] for e, n_ in zip(ends.tolist(), lengths.tolist())], dtype=pl.String)

    def pick(p: pl.Series, name: str) -> pl.Series:
        return p.gather(rng.integers(0, p.len(), n)).alias(name)

    day0 = np.datetime64("2024-01-01", "D")
    volume = rng.integers(1, 41, n)
    tarief = rng.integers(1500, 25000, n)
    begin = day0 + rng.integers(0, 366, n)
    df = pl.DataFrame([
        pl.Series("regel_id", np.arange(n, dtype=np.int64)),
        pl.Series("person_index", rng.integers(0, 5_000_000, n)),
        pl.Series("volume", volume),
        pl.Series("tarief", tarief),
        pl.Series("bedrag", volume * tarief),
        pl.Series("status", rng.integers(0, 10, n)),
        pl.Series("geboortedatum", np.datetime64("2006-01-01", "D") + rng.integers(0, 18 * 365, n)),
        pl.Series("begindatum", begin),
        pl.Series("einddatum", begin + rng.integers(1, 180, n)),
        pl.Series("declaratiedatum", begin + rng.integers(30, 90, n)),
        pl.Series("bsn", rng.integers(100_000_000, 1_000_000_000, n)).cast(pl.String),
        pick(pool(2_000, 3, 9), "voornaam"),
        pick(pool(5_000, 4, 12), "achternaam"),
        pick(pl.Series([f"{c:04d}" for c in range(1, 343)]), "gemeente_code"),
        pick(pl.Series([f"{c:05d}" for c in rng.integers(0, 100_000, 300).tolist()]), "productcode"),
        pick(pl.Series(["01", "04", "14", "16", "82", "83"]), "eenheid"),
    ])
    path = Path(spec["out"]) / "floor.parquet"
    try:
        if write_table is None:
            raise TypeError
        write_table(df, path, {})
    except TypeError:  # same settings as synthetic_data.dataset.write_table when this was written
        pq.write_table(df.to_arrow(compat_level=pl.CompatLevel.newest()), path, compression="zstd", compression_level=1,
                       use_dictionary=True,
                       write_statistics=True, row_group_size=1_000_000, store_schema=True)
    t2 = time.perf_counter()
    main_mb, _ = _self_rss_mb()
    return {"import_s": t1 - t0, "run_s": t2 - t1, "rows": n, "columns": df.width, "main_rss_mb": main_mb}


CHILDREN = {"generate": child_generate, "perrow": child_perrow, "floor": child_floor}


def child_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    if spec["kind"] != "generate":  # write_dataset creates its own folder (atomically); the baselines do not
        Path(spec["out"]).mkdir(parents=True, exist_ok=True)
    result = CHILDREN[spec["kind"]](spec)
    Path(spec["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------------------------------------------
# Parent side.
# --------------------------------------------------------------------------------------------------------------


def run_child(spec: dict, work: Path, label: str) -> dict:
    """Run one job in a fresh child process; wall time and peak RSS of that child's process tree."""
    work.mkdir(parents=True, exist_ok=True)
    spec = {**spec, "out": str(work / "out"), "result": str(work / "result.json"), "seed": SEED}
    return harness_run_child(__file__, spec, work / "child.log", label)


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / (1024 * 1024)


def run_cli(region: str, scale: float, work: Path, label: str) -> dict:
    """The real `zandbak generate` command in a fresh child process (what a user waits, process start included)."""
    work.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pipelines.cli", "generate", "--region", region, "--years", YEARS, "--seed", str(SEED),
            "--scale", str(scale), "--out", str(work / "out"), "--quiet"]
    res = run_command(argv, work / "cli.log", label)
    res["command"] = "zandbak " + " ".join(argv[3:-3] + ["--out", "TMP", "--quiet"])
    shutil.rmtree(work, ignore_errors=True)
    return res


def run_case(name: str, region: str, scale: float, work: Path) -> dict:
    res = run_child({"kind": "generate", "region": region, "years": YEARS, "scale": scale}, work, name)
    res.update({"case": name, "region": region, "years": YEARS, "scale": scale, "seed": SEED})
    if region == "nl" and "error" not in res:   # the wall and RSS figures of the nl case come from the CLI
        cli = run_cli(region, scale, work.with_name(work.name + "-cli"), f"{name} (CLI)")
        res["child_wall_s"], res["child_peak_rss_mb"] = res["wall_s"], res["peak_rss_mb"]
        res["cli"] = cli
        if "error" in cli:
            res["error"] = f"CLI: {cli['error']}"
        else:
            res["wall_s"], res["peak_rss_mb"], res["wall_source"] = cli["wall_s"], cli["peak_rss_mb"], "cli"
    if "error" not in res:
        manifest = json.loads((work / "out" / "manifest.json").read_text(encoding="utf-8"))
        res["tables"] = {t: v["rows"] for t, v in manifest["tables"].items()}
        res["rows"] = sum(res["tables"].values())
        res["rows_per_s"] = res["rows"] / res["run_s"]
        res["output_mb"] = _dir_mb(work / "out")
    shutil.rmtree(work, ignore_errors=True)
    return res


def run_baseline(spec: dict, work: Path, label: str) -> dict:
    res = run_child(spec, work, label)
    if "error" not in res:
        res["rows_per_s"] = res["rows"] / res["run_s"]
    shutil.rmtree(work, ignore_errors=True)
    return res



def _fmt(x, spec: str, missing: str = "-") -> str:
    return missing if x is None else format(x, spec)



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="twente and nl at --scale 0.1 (CI-sized, about a minute)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child_main(args.child)
    if not hasattr(os, "wait4"):
        print("bench_generate: needs os.wait4 (Linux or macOS)", file=sys.stderr)
        return 2

    cases_def = QUICK_CASES if args.quick else FULL_CASES
    n_traj = PERROW_TRAJECTEN_QUICK if args.quick else PERROW_TRAJECTEN
    n_cores = cores()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f"bench_generate: {'quick' if args.quick else 'full'} run, {n_cores} cores, python {platform.python_version()}",
          file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="zandbak-bench-") as tmp:
        tmp = Path(tmp)
        cases = [run_case(name, region, scale, tmp / f"case{i}") for i, (name, region, scale) in enumerate(cases_def)]
        ok_cases = [c for c in cases if "error" not in c]
        floor_rows = max((c["rows"] for c in ok_cases), default=1_000_000)  # the nl case
        perrow = run_baseline({"kind": "perrow", "trajecten": n_traj}, tmp / "perrow",
                              f"per-row baseline ({n_traj:,} trajecten)")
        floor = run_baseline({"kind": "floor", "rows": floor_rows}, tmp / "floor", f"floor baseline ({floor_rows:,} rows)")

    perrow_rps = perrow.get("rows_per_s")
    floor_rps = floor.get("rows_per_s")
    for c in ok_cases:
        c["x_perrow"] = c["rows_per_s"] / perrow_rps if perrow_rps else None
        c["x_floor"] = c["rows_per_s"] / floor_rps if floor_rps else None

    # ---- table -----------------------------------------------------------------------------------------------
    lines = []
    hdr = (f"{'case':<26}{'rows':>12}{'wall s':>9}{'run s':>9}{'rows/s':>12}{'peak RSS MB':>13}"
           f"{'x per-row':>11}{'x floor':>9}")
    lines += [hdr, "-" * len(hdr)]
    for c in cases:
        if "error" in c:
            lines.append(f"{c['case']:<26}  FAILED: {c['error']}")
            continue
        lines.append(f"{c['case']:<26}{c['rows']:>12,}{c['wall_s']:>9.1f}{c['run_s']:>9.1f}{c['rows_per_s']:>12,.0f}"
                     f"{c['peak_rss_mb']:>13,.0f}{ratio(c['x_perrow'], '.1f'):>11}{ratio(c['x_floor'], '.2f'):>9}")
    for label, b in (("baseline per-row (Faker)", perrow), ("baseline floor (numpy)", floor)):
        if "error" in b:
            lines.append(f"{label:<26}  FAILED: {b['error']}")
            continue
        lines.append(f"{label:<26}{b['rows']:>12,}{b['wall_s']:>9.1f}{b['run_s']:>9.1f}{b['rows_per_s']:>12,.0f}"
                     f"{b['peak_rss_mb']:>13,.0f}")
    lines.append("")
    lines.append("wall s = whole child process (nl: the `zandbak generate` command itself, process start included);")
    lines.append("run s = generate + write (baselines: build + write), imports excluded; rows/s and ratios use run s.")
    lines.append("peak RSS = largest single process of the run (main or a pool worker).")
    for c in ok_cases:
        lines.append(f"  {c['case']}: {c['gemeenten']} gemeenten, generate {c['generate_s']:.1f}s + write "
                     f"{c['write_s']:.1f}s, main {c['main_rss_mb']:,.0f} MB, largest worker "
                     f"{c['workers_rss_mb']:,.0f} MB, output {c['output_mb']:,.1f} MB")
        if c.get("wall_source") == "cli":
            lines.append(f"    wall and peak RSS from the CLI: {c['cli']['command']} (the in-process run: "
                         f"{c['child_wall_s']:.1f} s wall, {c['child_peak_rss_mb']:,.0f} MB)")

    # ---- targets (judged on the nl case) -----------------------------------------------------------------------
    nl = next((c for c in cases if c["region"] == "nl"), None)
    nl_ok = nl is not None and "error" not in nl
    targets = []

    def target(name, value, shown, ok, note=""):
        verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
        targets.append({"target": name, "value": value, "result": verdict, "note": note})
        lines.append(f"  {name:<44}{shown:>22}  {verdict}{('  (' + note + ')') if note else ''}")

    lines.append("")
    label = nl["case"] if nl else "nl"
    lines.append(f"targets (judged on '{label}'{', indicative only: --quick runs scale 0.1' if args.quick else ''})")
    cores_note = "" if n_cores == TARGET_CORES else f"measured on {n_cores} cores, target is for {TARGET_CORES}"
    if args.quick:
        target(f"nl 1 year wall < {TARGET_NL_WALL_S:.0f} s on {TARGET_CORES} cores", None, "-", None,
               "full scale only")
        target(f"nl 1 year peak RSS < {TARGET_NL_RSS_MB / 1024:.0f} GB", None, "-", None, "full scale only")
    else:
        target(f"nl 1 year wall (CLI) < {TARGET_NL_WALL_S:.0f} s on {TARGET_CORES} cores", nl["wall_s"] if nl_ok else None,
               f"{nl['wall_s']:.1f} s" if nl_ok else "failed", (nl["wall_s"] < TARGET_NL_WALL_S) if nl_ok else False,
               cores_note)
        target(f"nl 1 year peak RSS (CLI) < {TARGET_NL_RSS_MB / 1024:.0f} GB", nl["peak_rss_mb"] if nl_ok else None,
               f"{nl['peak_rss_mb']:,.0f} MB" if nl_ok else "failed",
               (nl["peak_rss_mb"] < TARGET_NL_RSS_MB) if nl_ok else False)
    xp = nl.get("x_perrow") if nl_ok else None
    target(f">= {TARGET_X_PERROW:.0f}x the per-row generator", xp, ratio(xp, ".1f") if nl_ok else "failed",
           None if xp is None and nl_ok else (xp is not None and xp >= TARGET_X_PERROW))
    xf = nl.get("x_floor") if nl_ok else None
    target(f"within {TARGET_FLOOR_FACTOR:.0f}x of the floor (>= floor/{TARGET_FLOOR_FACTOR:.0f})", xf,
           (f"{xf:.2f}x floor (need {1 / TARGET_FLOOR_FACTOR:.2f})" if xf is not None else "-" if nl_ok else "failed"),
           None if xf is None and nl_ok else (xf is not None and xf >= 1 / TARGET_FLOOR_FACTOR))

    print("\n".join(lines))
    summary = {
        "benchmark": "bench_generate", "mode": "quick" if args.quick else "full", "started": started,
        "machine": {"cores": n_cores, "platform": platform.platform(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "generator_version": ok_cases[0]["generator_version"] if ok_cases else None,
        "cases": cases, "baseline_perrow": perrow, "baseline_floor": floor, "targets": targets,
    }
    print(json.dumps(summary, sort_keys=True, default=float))
    failed = [c for c in cases if "error" in c] + [b for b in (perrow, floor) if "error" in b]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
