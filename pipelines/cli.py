"""`zandbak`: the sandbox's command line. User errors give one line and exit code 2, never a traceback."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

PROG = "zandbak"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        sys.stderr.write(f"{PROG}: error: {message}\n")
        raise SystemExit(2)


def _progress(label: str):
    start = time.perf_counter()

    def show(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} gemeenten "
                         f"{time.perf_counter() - start:5.1f}s")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _workers(value: int) -> int:
    """--workers: 0 means the default; otherwise 1 up to the machine's cores."""
    import os

    from synthetic_data.errors import ConfigError

    cores = os.cpu_count() or 1
    if not 0 <= value <= cores:
        raise ConfigError("--workers", f"'{value}' is not allowed", f"0 (default: up to 2) or 1 to {cores}, the "
                          f"cores of this machine")
    return value


def cmd_generate(args) -> int:
    from synthetic_data import GeneratorConfig, generate
    from synthetic_data.dataset import check_output, write_dataset
    from synthetic_data.generate import default_workers

    config = GeneratorConfig(region=args.region, years=args.years, seed=args.seed, scale=args.scale)
    out = Path(args.out)
    check_output(out, force=args.force)
    t0 = time.perf_counter()
    show = not args.quiet and sys.stderr.isatty()
    workers = _workers(args.workers) or default_workers()
    tables = generate(config, progress=_progress("simulating") if show else None, workers=workers)
    manifest = write_dataset(tables, out, config.as_dict(), force=args.force)
    rows = sum(t["rows"] for t in manifest["tables"].values())
    print(f"wrote {len(manifest['tables'])} tables, {rows:,} rows to {out}/ in {time.perf_counter() - t0:.1f}s "
          f"(synthetic, seed {config.seed})")
    for name, t in manifest["tables"].items():
        print(f"  {name:<24}{t['rows']:>10,}")
    return 0


def generated_docs() -> dict[str, str]:
    """Docs rendered from the registries (they cannot drift: a test compares them with docs/)."""
    from synthetic_data.dictionary import render_markdown as dictionary_md

    from expectations.registry import render_markdown as rules_md

    from .challenge import sealed_markdown

    return {"data-dictionary.md": dictionary_md() + "\n", "rules.md": rules_md() + "\n",
            "sealed.md": sealed_markdown() + "\n"}


def cmd_docs(args) -> int:
    from synthetic_data.atomic import atomic_write

    out = Path(args.out)
    for name, text in generated_docs().items():
        with atomic_write(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


def cmd_calibration(args) -> int:
    from synthetic_data.calibrate import measure
    from synthetic_data.dataset import read_dataset
    import json

    folder = Path(args.dir)
    from synthetic_data.dataset import present_tables

    claims = [t for t in ("declaraties", "declaratie_antwoorden", "declaratie_antwoord_prestaties")
              if t in present_tables(folder)]
    tables = read_dataset(folder, ["gemeenten", "jeugdigen", "trajecten", "prestaties", "toewijzingen", "verzoeken", "antwoorden",
                                    "wijzigingsverzoeken", "zorgstarts", "zorgstops", *claims])
    config = json.loads((folder / "manifest.json").read_text())["config"]
    year = int(str(config["years"]).split("-")[-1]) if args.year is None else args.year
    bad = 0
    print(f"{'metric':<58}{'generated':>11}{'target':>10}{'tol':>9}")
    for m in measure(tables, year, config["scale"]):
        bad += not m.ok
        print(f"{m.metric:<58}{m.generated:>11.3f}{m.target:>10.3f}{m.tolerance:>9.3f}{'' if m.ok else '  OUTSIDE'}")
    if args.process:
        from synthetic_data.process_figures import process_figures

        more = read_dataset(folder, ["producten", "aanbieders"])
        print(f"\n{'process figure (no target: the care model estimates)':<58}{'value':>11}  how")
        for name, value, how in process_figures({**tables, **more}, year):
            print(f"{name:<58}{value:>11.3f}  {how}")
    return 1 if bad else 0


def write_frame_atomic(df, path: Path) -> None:
    """CSV or Parquet by extension, via a temporary file and a rename."""
    from synthetic_data.errors import DataError

    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataError(f"{path}: unknown extension '{path.suffix}'; allowed: .csv or .parquet")
    from synthetic_data.atomic import atomic_write

    with atomic_write(path) as tmp:
        df.write_csv(tmp) if suffix == ".csv" else df.write_parquet(tmp)


def cmd_check(args) -> int:
    from synthetic_data.dataset import present_tables, read_dataset, read_manifest
    from synthetic_data.sealing import SIMULATION_ONLY

    from expectations import findings, load_rules, validate

    from synthetic_data.dataset import check_output

    t0 = time.perf_counter()
    folder = Path(args.dir)
    if args.findings:
        check_output(Path(args.findings), inputs=[folder], option="--findings", file=True)
    if args.docs:
        check_output(Path(args.docs), inputs=[folder], option="--docs", force=True)
    read_manifest(folder)
    if args.checks:
        return _check_own(folder, Path(args.checks), args.findings, t0)
    # a hand-out leaves the simulation's own tables out: the rules that need them cannot run there (any other
    # missing table is an error of the folder)
    absent = set(SIMULATION_ONLY) - set(present_tables(folder))
    rules = load_rules()
    skipped = [r for r in rules if {r.table, *r.uses} & absent]
    rules = [r for r in rules if not {r.table, *r.uses} & absent]
    needed = sorted({r.table for r in rules} | {u for r in rules for u in r.uses})
    # the JW325's rejected lines: the claim rules check only the lines the gemeente accepted (expectations.derived)
    from expectations.derived import REJECTED_LINES

    if "prestaties" in needed and REJECTED_LINES in present_tables(folder):
        needed.append(REJECTED_LINES)
    tables = read_dataset(folder, needed)
    docs = Path(args.docs) if args.docs else None
    results = validate(tables, rules, docs_dir=docs)
    print(f"{'rule':<52}{'code':<8}{'table':<22}{'sev':<6}{'checked':>9}{'failing':>9}  result")
    for r in results:
        status = "pass" if r.passed else ("ERROR " if r.error else "FAIL") + (f" {r.error}" if r.error else "")
        print(f"{r.rule.id[:51]:<52}{r.rule.code:<8}{r.rule.table:<22}{r.rule.severity:<6}{r.checked:>9,}"
              f"{r.failing:>9,}  {status}")
    bad_error = [r for r in results if not r.passed and r.rule.severity == "ERROR"]
    bad_warn = [r for r in results if not r.passed and r.rule.severity == "WARN"]
    print(f"\n{len(results)} rules on {folder}: {len(results) - len(bad_error) - len(bad_warn)} pass, "
          f"{len(bad_error)} ERROR rules fail, {len(bad_warn)} WARN rules fail ({time.perf_counter() - t0:.1f}s)")
    if skipped:
        missing = sorted(absent)
        print(f"{len(skipped)} rules not run: they need table(s) {', '.join(missing)}, not in this folder "
              f"({', '.join(r.id for r in skipped)})")
    if args.findings:
        f = findings(results)
        write_frame_atomic(f, Path(args.findings))
        print(f"findings: {f.height:,} rows -> {args.findings}")
    if docs:
        print(f"data docs: {docs / 'index.html'}")
    return 1 if bad_error else 0


def _check_own(folder: Path, checks: Path, findings_path: str | None, t0: float) -> int:
    """A team's own checks (any format of expectations.adapters) on a dataset or hand-out, without any truth: the
    findings file is what `zandbak challenge score` takes."""
    from synthetic_data.dataset import present_tables, read_dataset

    from expectations.adapters import run_checks

    run = run_checks(checks, read_dataset(folder, present_tables(folder)))
    counts = dict(run.findings.group_by("check").len().iter_rows()) if run.findings.height else {}
    print(f"{'check':<52}{'table':<22}{'failing':>9}")
    for c in run.checks:
        print(f"{c.name[:51]:<52}{c.table:<22}{counts.get(c.name, 0):>9,}")
    print(f"\n{len(run.checks)} {run.kind} checks of {checks} on {folder}: {sum(1 for c in run.checks if counts.get(c.name))} "
          f"fire, {run.findings.height:,} findings ({time.perf_counter() - t0:.1f}s)")
    if findings_path:
        write_frame_atomic(run.findings, Path(findings_path))
        print(f"findings: {run.findings.height:,} rows -> {findings_path}")
    return 1 if run.findings.height else 0


def cmd_corrupt(args) -> int:
    from synthetic_data.atomic import atomic_write
    from synthetic_data.dataset import check_output, read_dataset, read_manifest, write_dataset, write_table
    from synthetic_data.faults import inject_faults
    from synthetic_data.privacy import WATERMARK_KEY

    folder, out = Path(args.dir), Path(args.out)
    manifest = read_manifest(folder)
    check_output(out, inputs=[folder], force=args.force)
    truth_path = Path(args.truth) if args.truth else out / "ground_truth.parquet"
    if args.truth:
        check_output(truth_path, inputs=[folder, out], option="--truth", file=True)
    config = manifest.get("config", {})
    if "faults" in config or "challenge_id" in config:
        from synthetic_data.errors import DataError

        raise DataError(f"{folder}: holds injected faults already (its manifest says so); allowed: a clean dataset "
                        f"of 'zandbak generate' (a second round would stack faults under one round of labels)")
    tables = read_dataset(folder)
    dirty, truth = inject_faults(tables, profile=args.profile, seed=args.seed)
    meta = {**config, "faults": {"profile": args.profile, "seed": args.seed}}
    if args.truth:   # for challenges: the labels go only where asked, not into the dirty folder
        # two paths cannot be swapped in one step: the dirty manifest names its truth's hash, so a kill between
        # the two renames leaves a pair that `zandbak score --dataset` refuses instead of scoring
        from synthetic_data.dataset import file_sha256

        with atomic_write(truth_path) as tmp:
            write_table(truth, tmp, {WATERMARK_KEY: b"true"})
            write_dataset(dirty, out, {**meta, "truth_sha256": file_sha256(tmp)}, force=args.force)
    else:
        write_dataset({**dirty, "ground_truth": truth}, out, meta, force=args.force)
    by_type = truth.group_by("fault_type").len().sort("fault_type")
    print(f"wrote dirty dataset to {out}/ with {truth.height:,} labelled faults ({by_type.height} types, profile "
          f"{args.profile}, seed {args.seed}); truth: {truth_path}")
    return 0


def cmd_export_ijw(args) -> int:
    from synthetic_data.dataset import check_output, present_tables, read_dataset, read_manifest
    from synthetic_data.ijw_xml import export

    folder, out = Path(args.dir), Path(args.out)
    manifest = read_manifest(folder)
    check_output(out, inputs=[folder], force=args.force)
    t0 = time.perf_counter()
    tables = read_dataset(folder, present_tables(folder))
    if args.gemeente and "gemeenten" in tables:
        from synthetic_data.errors import ConfigError

        known = set(tables["gemeenten"]["gemeente_code"])
        bad = [g for g in args.gemeente if g not in known]
        if bad:
            raise ConfigError("--gemeente", f"'{bad[0]}' is no gemeente of {folder}", ", ".join(sorted(known)))
    source = {"dataset": str(folder), "config": manifest.get("config", {})}
    m = export(tables, out, source=source, gemeenten=args.gemeente or None)
    n = sum(m["messages"].values())
    print(f"wrote {n:,} iJw 3.2 messages to {out}/ in {time.perf_counter() - t0:.1f}s (synthetic): "
          + ", ".join(f"{k} {v:,}" for k, v in m["messages"].items()))
    print(f"{m['rejected_messages']:,} messages hold records the XSD rejects: listed in {out / m['report']}")
    for note in m["not_exported"]:
        print(f"not exported: {note}")
    return 0


def cmd_validate_ijw(args) -> int:
    from synthetic_data.errors import ConfigError

    from expectations.ijw_validate import reference_tables, render_text, validate_messages, write_reports
    from synthetic_data.dataset import check_output

    path = Path(args.path)
    for opt, value, ext in (("--json", args.json, (".json",)), ("--html", args.html, (".html", ".htm"))):
        if value and Path(value).suffix.lower() not in ext:
            raise ConfigError(opt, f"'{value}' is not a {ext[0]} file", f"a file name ending in {ext[0]}")
        if value:
            check_output(Path(value), inputs=[path], option=opt, file=True)
    reference = reference_tables(Path(args.reference)) if args.reference else None
    v = validate_messages(path, reference=reference)
    write_reports(v, str(path), args.json, args.html)
    print(render_text(v, str(path), limit=args.limit))
    for opt, value in (("json", args.json), ("html", args.html)):
        if value:
            print(f"{opt}: {value}")
    return 1 if v.errors else 0


def cmd_import_ijw(args) -> int:
    from synthetic_data.ijw_xml import import_folder

    t0 = time.perf_counter()
    m = import_folder(Path(args.dir), Path(args.out), force=args.force)
    rows = sum(t["rows"] for t in m["tables"].values())
    print(f"read {m['config']['messages']:,} messages into {len(m['tables'])} tables, {rows:,} rows in {args.out}/ "
          f"({time.perf_counter() - t0:.1f}s); {m['config']['xsd_invalid_messages']:,} messages the XSD rejects "
          f"(zandbak validate-ijw names them)")
    for name, t in m["tables"].items():
        lost = m["untyped_values"].get(name, 0)
        print(f"  {name:<31}{t['rows']:>10,}" + (f"  ({lost:,} values not typed: left empty)" if lost else ""))
    return 0


def _print_scores(result: dict) -> None:
    import polars as pl

    from synthetic_data.faults.score import score_table

    with pl.Config(tbl_rows=200, tbl_hide_dataframe_shape=True, tbl_formatting="ASCII_MARKDOWN",
                                     tbl_hide_column_data_types=True, fmt_str_lengths=60):
        print(score_table(result))


def _score_scope(value: str | None) -> list[str] | None:
    """--tables: comma-separated names of dictionary tables."""
    from synthetic_data.dictionary import table_names
    from synthetic_data.errors import ConfigError

    if value is None:
        return None
    names = [t.strip() for t in value.split(",") if t.strip()]
    bad = [t for t in names if t not in table_names()]
    if bad or not names:
        raise ConfigError("--tables", f"'{value}' names no table" if not names else
                          f"unknown table(s) {', '.join(bad)}", ", ".join(table_names()))
    return names


def _score_checks(args, truth_path: Path, tables: list[str] | None) -> int:
    import json

    from synthetic_data.atomic import atomic_write
    from synthetic_data.dataset import check_truth_belongs, present_tables, read_dataset, read_truth
    from synthetic_data.errors import ConfigError
    from synthetic_data.faults.score import rejected_records, score_checks
    from synthetic_data.faults.scorecard import render_html, render_text

    from expectations.adapters import run_checks

    if not args.dirty:
        raise ConfigError("--checks", "given without DIRTY", "zandbak score DIRTY --checks PATH, with DIRTY a folder "
                          "written by 'zandbak corrupt'")
    dirty = Path(args.dirty)
    if args.html and Path(args.html).suffix.lower() not in (".html", ".htm"):
        raise ConfigError("--html", f"'{args.html}' is not an .html file", "a file name ending in .html")
    if args.truth:
        check_truth_belongs(truth_path, dirty)
    truth = read_truth(truth_path)
    data = read_dataset(dirty, present_tables(dirty))
    run = run_checks(Path(args.checks), data)
    t0 = time.perf_counter()
    result = score_checks(run.findings, truth, run.checks_frame(), tables, rejected=rejected_records(data))
    result["run"] = {"checks": str(args.checks), "kind": run.kind, "dataset": str(dirty), "truth": str(truth_path),
                     "checks_s": round(run.seconds, 3), "score_s": round(time.perf_counter() - t0, 3)}
    what = f"{args.checks} ({run.kind})"
    if args.html:
        with atomic_write(Path(args.html)) as tmp:
            tmp.write_text(render_html(result, what), encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(render_text(result, what))
        if args.html:
            print(f"wrote {args.html}")
    return 0


def cmd_score(args) -> int:
    import json

    import polars as pl

    from synthetic_data.dataset import read_truth
    from synthetic_data.errors import ConfigError
    from synthetic_data.faults.score import score

    from .challenge import read_findings

    if bool(args.checks) == bool(args.findings):
        raise ConfigError("--checks/--findings", "both given" if args.checks else "neither given",
                          "--checks PATH (your own checks: GX suite, .sql folder, pandera schema or polars module) "
                          "or --findings FILE (a findings CSV)")
    truth_path = Path(args.truth) if args.truth else Path(args.dirty) / "ground_truth.parquet" if args.dirty else None
    if truth_path is None:
        raise ConfigError("--truth", "not given and no DIRTY folder", "--truth FILE, or DIRTY (a folder of "
                          "'zandbak corrupt' that holds ground_truth.parquet)")
    tables = _score_scope(args.tables)
    if args.checks:
        return _score_checks(args, truth_path, tables)
    if args.html:
        raise ConfigError("--html", "given with --findings", "--html with --checks (the per-check scorecard)")
    dataset = args.dataset or args.dirty
    if dataset:
        from synthetic_data.dataset import check_truth_belongs

        check_truth_belongs(truth_path, Path(dataset))
    findings, truth = read_findings(Path(args.findings)), read_truth(truth_path)
    if tables is not None:
        findings = findings.filter(pl.col("table").is_in(tables))
        truth = truth.filter(pl.col("table").is_in(tables))
    rejected = None
    if dataset:     # the lines the gemeente already rejected count for neither side
        from synthetic_data.dataset import present_tables, read_dataset
        from synthetic_data.faults.score import REJECTED_LINES, rejected_records

        if REJECTED_LINES in present_tables(Path(dataset)):
            rejected = rejected_records(read_dataset(Path(dataset), [REJECTED_LINES]))
    result = score(findings, truth, rejected)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print_scores(result)
    return 0


def cmd_challenge_new(args) -> int:
    from .challenge import new

    from synthetic_data.errors import ConfigError

    if args.seed is not None and not args.public_seed:
        raise ConfigError("--seed", f"'{args.seed}' is a public seed: anyone can regenerate the clean data from it "
                          f"and diff the faults out", "no --seed for a scored challenge (a secret is drawn), or "
                          "--seed N --public-seed for unscored teaching material")
    if args.public_seed and args.seed is None:
        raise ConfigError("--public-seed", "given without --seed", "--seed N --public-seed")
    info = new(Path(args.out), region=args.region, years=args.years, scale=args.scale, profile=args.profile,
               public_seed=args.seed, force=args.force)
    kind = "scored, made from a sealed secret" if info["scored"] else f"NOT for scores: public seed {args.seed}"
    print(f"challenge {info['challenge_id']} ({kind}): handout {info['handout']}/ ({info['records']:,} records in "
          f"{len(info['tables'])} tables, no labels); sealed secret and truth kept in {Path(info['truth']).parent}")
    print(f"score a team: zandbak challenge score {info['handout']} submission.csv --team NAME")
    return 0


def cmd_challenge_score(args) -> int:
    from synthetic_data.faults.score import metric_text

    from .challenge import score_submission

    out = score_submission(Path(args.handout), Path(args.submission), args.team)
    o = out["result"]["overall"]
    # a metric is None where it is undefined (a hand-out with nothing to find, a submission that flags nothing)
    print(f"team {args.team}: precision {metric_text(o['precision'])}  recall {metric_text(o['recall'])}  "
          f"F1 {metric_text(o['f1'])}  (tp {o['tp']}, fp {o['fp']}, fn {o['fn']})")
    print(f"leaderboard of challenge {out['challenge_id']} on dataset {out['dataset_hash'][:12]} ({out['dataset']}; "
          f"only scores on this hand-out rank here):")
    for rank, (team, f1, n) in enumerate(out["leaderboard"], 1):
        print(f"  {rank:>2}. {team:<24} best F1 {metric_text(f1)}  ({n} submissions)")
    return 0


def _teams_root():
    """Where team experiments live: experiments/teams/, or ZANDBAK_TEAMS (e.g. a class's shared folder)."""
    import os

    return os.environ.get("ZANDBAK_TEAMS") or None


def _find_experiment(name: str):
    """An experiment by `team/name`, or by `name` when one team has it."""
    import experiments as ex
    from synthetic_data.errors import DataError

    exps = ex.discover(_teams_root())
    found = [e for e in exps if name in (e.key, e.name)]
    if not found:
        names = ", ".join(e.key for e in exps) or "none yet"
        raise DataError(f"experiment '{name}' not found under experiments/teams/; known: {names}")
    if len(found) > 1:
        raise DataError(f"experiment '{name}' exists in {len(found)} teams; allowed: one of "
                        f"{', '.join(e.key for e in found)}")
    return found[0]


def cmd_experiment_list(args) -> int:
    import experiments as ex

    exps = ex.discover(_teams_root())
    print(f"{'experiment':<28}{'team':<16}{'task':<22}description")
    for e in exps:
        print(f"{e.name:<28}{e.team:<16}{e.task:<22}{e.description}")
    print(f"\n{len(exps)} experiments; tasks: " + ", ".join(ex.TASKS))
    return 0


def cmd_experiment_run(args) -> int:
    import experiments as ex
    from synthetic_data.errors import ConfigError

    from .settings import Settings

    if args.all and args.name:
        raise ConfigError("--all", f"given with the experiment name '{args.name}'", "a name, or --all (or neither)")
    exps = [_find_experiment(args.name)] if args.name else ex.discover(_teams_root())
    if not exps:
        print("no experiments under experiments/teams/ yet: zandbak experiment new NAME --team TEAM")
        return 0
    settings = Settings.from_env()
    data_label = "sealed scored data" if args.seed is None else f"public seed {args.seed}, NOT for scores"
    print(f"running {len(exps)} experiment(s) on {data_label}: " + ", ".join(e.key for e in exps), flush=True)
    cache, failed = {}, 0
    for exp in exps:
        t0 = time.perf_counter()
        if exp.task not in cache:
            cache[exp.task] = (ex.prepare_sealed(exp.task, settings.sealed) if args.seed is None
                               else ex.prepare(exp.task, seed=args.seed))
        result = ex.run(exp, cache[exp.task], ex.Limits(timeout_s=args.timeout, memory_mb=args.memory))
        ex.record(settings.warehouse, result)
        print(f"{exp.key} on {exp.task} ({data_label}, dataset {result.dataset_hash[:12]}): "
              f"{result.status}{' - ' + result.error if result.error else ''}; run {result.runtime_s:.1f}s, "
              f"total {time.perf_counter() - t0:.1f}s")
        if result.status == "ok":
            ceiling = (result.metrics or {}).get("ceiling")
            print(f"score {result.score:.4f}  ({ex.TASKS[exp.task].score_meaning})"
                  + ("" if ceiling is None else f"; ceiling {ceiling:.4f} (the simulation's own model on this data)"))
            if len(exps) == 1:
                for k, v in result.metrics.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        print(f"  {k:<34}{v:,.4f}" if isinstance(v, float) else f"  {k:<34}{v:,}")
        else:
            failed += 1
    return 0 if not failed else 1


def cmd_experiment_new(args) -> int:
    import experiments as ex

    path = ex.scaffold(args.name, args.team, task=args.task, root=_teams_root())
    print(f"wrote {path}: edit the function, then run: zandbak experiment run {args.name}")
    return 0


def cmd_experiment_leaderboard(args) -> int:
    import experiments as ex

    from .settings import Settings

    board = ex.leaderboard(Settings.from_env().warehouse, task=args.task)
    if board.height == 0:
        print("no experiment runs recorded yet: zandbak experiment run NAME")
        return 0
    from experiments.leaderboard import boards

    # one board per task and dataset: a score ranks only against scores on the same data (issue 14)
    for n, (task, digest, label, rows) in enumerate(boards(board)):
        print(("\n" if n else "") + f"{task} on dataset {digest[:12]} ({label}):")
        print(f"  {'rank':>4}  {'team/experiment':<40}{'score':>8}{'ceiling':>9}  {'status':<8}{'runtime':>8}  "
              f"{'seed':>6}  time")
        for r in rows.iter_rows(named=True):
            score = "-" if r["score"] is None else f"{r['score']:.4f}"
            ceiling = json.loads(r["metrics_json"]).get("ceiling") if r["metrics_json"] else None   # same data
            ceiling = "-" if ceiling is None else f"{ceiling:.4f}"
            print(f"  {r['rank']:>4}  {r['team'] + '/' + r['experiment']:<40}{score:>8}{ceiling:>9}  "
                  f"{r['status']:<8}{r['runtime_s']:>7.1f}s  {'sealed' if r['seed'] is None else r['seed']:>6}  "
                  f"{str(r['time'])[:19]}")
    return 0


def cmd_run(args) -> int:
    from .run import main as run_main

    return run_main(workers=args.workers or None)


def cmd_ui(args) -> int:
    from .ui import main as ui_main

    return ui_main(host=args.host, port=args.port)


# ---- issue 14: the arena and the demo (a block of its own)
def cmd_arena(args) -> int:
    from synthetic_data.errors import ConfigError

    from .arena import main as arena_main

    teams = [t.strip() for t in (args.teams or "").split(",") if t.strip()]
    if not teams:
        raise ConfigError("--teams", f"'{args.teams}' names no team", "comma-separated team names, e.g. a,b,c")
    params = {k: v for k, v in (("region", args.region), ("scale", args.scale)) if v is not None}
    return arena_main(Path(args.handout) if args.handout else None, teams, host=args.host, port=args.port,
                      limit=args.limit, public_share=args.public_share, max_mb=args.max_mb, task=args.task, **params)


def cmd_demo(args) -> int:
    from .demo import main as demo_main

    return demo_main(ui_port=args.ui_port, arena_port=args.arena_port, region=args.region)


def _task_names() -> list[str]:
    """The tasks as discovered (one module each in experiments/tasks), listed without importing them."""
    import importlib.util

    folder = Path(importlib.util.find_spec("experiments").submodule_search_locations[0]) / "tasks"
    return sorted(p.stem for p in folder.glob("[!_]*.py"))


# --- issue 14: export
def cmd_export(args) -> int:
    from synthetic_data.export import export

    t0 = time.perf_counter()
    rows = export(Path(args.dir), args.format, Path(args.out), force=args.force)
    print(f"exported {len(rows)} tables, {sum(rows.values()):,} rows, as {args.format} to {args.out} in "
          f"{time.perf_counter() - t0:.1f}s (with the data dictionary and the code lists)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Jeugdzorg Zandbak: a synthetic youth-care administration sandbox.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    g = sub.add_parser("generate", help="generate a synthetic dataset folder (Parquet + manifest.json)")
    g.add_argument("--region", default="twente", help="twente (default), nl, a province or a 4-digit gemeentecode")
    g.add_argument("--years", default="2024", help="a year or a range such as 2023-2024 (2021-2030)")
    g.add_argument("--seed", type=int, default=42, help="random seed (same seed, same bytes)")
    g.add_argument("--scale", type=float, default=1.0, help="fraction of the population to simulate, 0 < scale <= 1")
    g.add_argument("--out", required=True, help="output folder (new, empty, or a dataset of ours, replaced whole)")
    g.add_argument("--force", action="store_true", help="replace a non-empty folder that is not a dataset, whole")
    g.add_argument("--workers", type=int, default=0, help="parallel processes (default: up to 2, one per core)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)
    d = sub.add_parser("docs", help="render the generated docs (data dictionary) from the registries")
    d.add_argument("--out", default="docs")
    d.set_defaults(func=cmd_docs)
    r = sub.add_parser("run", help="materialise every asset of the configured region through Dagster runs "
                       "(settings: ZANDBAK_REGION, _YEARS, _SEED, _SCALE, _DATA)")
    r.add_argument("--workers", type=int, default=0, help="partitions at a time (default: up to 2, one per core)")
    r.set_defaults(func=cmd_run)
    k = sub.add_parser("check", help="validate a dataset folder against the iJw rule registry (Great Expectations)")
    k.add_argument("dir", help="dataset folder as written by 'zandbak generate' (tables may be edited by hand)")
    k.add_argument("--findings", help="write one row per failing record to this .csv or .parquet file")
    k.add_argument("--docs", help="write GX Data Docs (static HTML) into this folder")
    k.add_argument("--checks", help="run a team's own checks instead of the registry (GX suite, .sql folder, pandera "
                                    "schema or polars module): e.g. on a challenge hand-out, for challenge score")
    k.set_defaults(func=cmd_check)
    f = sub.add_parser("corrupt", help="inject labelled faults into a dataset folder")
    f.add_argument("dir")
    f.add_argument("--profile", default="realistic", help="demo, realistic or stress")
    f.add_argument("--seed", type=int, default=7)
    f.add_argument("--out", required=True, help="folder for the dirty dataset (never the input or inside it)")
    f.add_argument("--force", action="store_true", help="replace a non-empty folder that is not a dataset, whole")
    f.add_argument("--truth", help="write the ground truth only to this file (default: OUT/ground_truth.parquet)")
    f.set_defaults(func=cmd_corrupt)
    s = sub.add_parser("score", help="precision/recall of your own checks (--checks) or of findings, against a "
                       "dirty dataset's ground truth")
    s.add_argument("dirty", nargs="?", help="dirty dataset folder of 'zandbak corrupt' (its ground_truth.parquet is "
                   "the truth unless --truth)")
    s.add_argument("--checks", help="your checks: a GX suite (.py or .json), a folder of DuckDB .sql files, a pandera "
                   "schema module or a module of polars check functions; scored per check")
    s.add_argument("--findings", help="'zandbak check --findings' output, or a CSV with table + key columns")
    s.add_argument("--truth", help="ground truth file (default: DIRTY/ground_truth.parquet)")
    s.add_argument("--dataset", help="the dirty dataset the findings are about: refuse a truth that is not its own")
    s.add_argument("--tables", help="comma-separated tables to score on (default: the tables the checks cover)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--html", help="with --checks: write a self-contained HTML scorecard to this file")
    s.set_defaults(func=cmd_score)
    ch = sub.add_parser("challenge", help="challenge mode: a dirty handout without labels, scored against a sealed truth")
    chs = ch.add_subparsers(dest="challenge_command", required=True, parser_class=_Parser)
    cn = chs.add_parser("new", help="write a handout and seal its truth")
    cn.add_argument("--seed", type=int, default=None,
                    help="NOT for scored challenges: a public seed makes the truth recoverable by regenerating and "
                         "diffing; needs --public-seed. Default: a secret drawn from the OS, kept sealed")
    cn.add_argument("--force", action="store_true", help="replace a folder that is not a hand-out, whole")
    cn.add_argument("--public-seed", action="store_true",
                    help="allow --seed: unscored, reproducible teaching material")
    cn.add_argument("--out", required=True)
    cn.add_argument("--region", default="twente")
    cn.add_argument("--years", default="2024")
    cn.add_argument("--scale", type=float, default=1.0)
    cn.add_argument("--profile", default="realistic")
    cn.set_defaults(func=cmd_challenge_new)
    cs = chs.add_parser("score", help="score a team's findings and add them to the leaderboard")
    cs.add_argument("handout")
    cs.add_argument("submission")
    cs.add_argument("--team", required=True)
    cs.set_defaults(func=cmd_challenge_score)
    e = sub.add_parser("experiment", help="automation experiments: list, run, new, leaderboard")
    es = e.add_subparsers(dest="experiment_command", required=True, parser_class=_Parser)
    es.add_parser("list", help="experiments discovered under experiments/teams/").set_defaults(func=cmd_experiment_list)
    er = es.add_parser("run", help="prepare the task data, run the experiment isolated, score it, record it")
    er.add_argument("name", nargs="?", help="team/name, or a name one team has; none (or --all): every experiment")
    er.add_argument("--all", action="store_true", help="run every discovered experiment (as make run does)")
    er.add_argument("--seed", type=int, default=None,
                    help="NOT for scores: public development data anyone can regenerate. Default: the scored data, "
                         "made from the project's sealed secret")
    er.add_argument("--timeout", type=float, default=120.0, help="wall-clock limit in seconds")
    er.add_argument("--memory", type=int, default=2048, help="memory limit in MB")
    er.set_defaults(func=cmd_experiment_run)
    en = es.add_parser("new", help="scaffold a working experiment from the template")
    en.add_argument("name")
    en.add_argument("--team", default="my_team")
    en.add_argument("--task", default="declaratie_controle", help=", ".join(_task_names()))
    en.set_defaults(func=cmd_experiment_new)
    el = es.add_parser("leaderboard", help="the experiment leaderboard in the warehouse")
    el.add_argument("--task")
    el.set_defaults(func=cmd_experiment_leaderboard)
    u = sub.add_parser("ui", help="the Dagster UI (dagster dev) on 127.0.0.1; Ctrl-C stops it and its daemon")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--port", type=int, default=3000)
    u.set_defaults(func=cmd_ui)
    a = sub.add_parser("arena", help="serve a challenge to a class in the browser on 127.0.0.1: hand-out, team "
                       "uploads, public and private leaderboards")
    a.add_argument("handout", nargs="?", help="a hand-out folder of 'zandbak challenge new' (its truth sealed on "
                   "this machine); or --task")
    a.add_argument("--task", help="serve an experiment task instead: " + ", ".join(_task_names()))
    a.add_argument("--region", help="with --task: the task's region (default: the task's own)")
    a.add_argument("--scale", type=float, help="with --task: the task's scale (default: the task's own)")
    a.add_argument("--teams", required=True, help="comma-separated team names; each gets a token (kept on re-runs)")
    a.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    a.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    a.add_argument("--limit", type=int, default=5, help="scored submissions per team per day (UTC), default 5")
    a.add_argument("--public-share", type=float, default=0.5, help="share of the records on the public board")
    a.add_argument("--max-mb", type=float, default=20.0, help="largest upload in MB (default 20)")
    a.set_defaults(func=cmd_arena)
    dm = sub.add_parser("demo", help="make demo: a small region generated and checked, a challenge, the Dagster UI "
                        "and the arena on 127.0.0.1; Ctrl-C stops all")
    dm.add_argument("--region", default="0147", help="the small region of the demo (default 0147, Borne)")
    dm.add_argument("--ui-port", type=int, default=3000)
    dm.add_argument("--arena-port", type=int, default=8000)
    dm.set_defaults(func=cmd_demo)
    x = sub.add_parser("export-ijw", help="write a dataset as iJw 3.2 XML messages (JW315 ... JW325), XSD-checked")
    x.add_argument("dir", help="dataset folder (generate or corrupt: a dirty one exports too)")
    x.add_argument("--out", required=True, help="folder for the messages (new, empty, or an export of ours)")
    x.add_argument("--gemeente", action="append", help="only this gemeente's messages (repeatable)")
    x.add_argument("--force", action="store_true", help="replace a non-empty folder that is not ours, whole")
    x.set_defaults(func=cmd_export_ijw)
    vx = sub.add_parser("validate-ijw", help="validate iJw 3.2 messages: XSD and the registry's rules, per message")
    vx.add_argument("path", help="a folder of messages (export-ijw) or one message file")
    vx.add_argument("--json", help="write the per-message report as JSON to this file")
    vx.add_argument("--html", help="write a self-contained HTML report to this file")
    vx.add_argument("--reference", help="a dataset folder whose gemeenten/producten/aanbieders the contract rules read")
    vx.add_argument("--limit", type=int, default=200, help="findings printed on stdout (default 200)")
    vx.set_defaults(func=cmd_validate_ijw)
    ix = sub.add_parser("import-ijw", help="read iJw 3.2 messages back into dataset tables")
    ix.add_argument("dir", help="a folder of messages marked synthetic (export-ijw, or a documented test set)")
    ix.add_argument("--out", required=True, help="dataset folder to write (never the input or inside it)")
    ix.add_argument("--force", action="store_true", help="replace a non-empty folder that is not a dataset, whole")
    ix.set_defaults(func=cmd_import_ijw)
    c = sub.add_parser("calibration", help="compare a generated dataset with the CBS calibration targets")
    c.add_argument("dir")
    c.add_argument("--year", type=int, default=None)
    c.add_argument("--process", action="store_true",
                   help="also print the process figures: lateness, waiting time, claims, rejections, market, ...")
    c.set_defaults(func=cmd_calibration)
    # --- issue 14: export
    x = sub.add_parser("export", help="a dataset folder as CSV files, an Excel workbook or Parquet files, with the "
                                      "data dictionary and the code lists")
    x.add_argument("dir", help="a dataset folder (zandbak generate, corrupt or challenge new)")
    x.add_argument("--format", required=True, help="csv (a folder), xlsx (one workbook: a sheet per table, a "
                                                   "dictionary sheet; refused past 1,048,575 rows) or parquet (a folder)")
    x.add_argument("--out", required=True, help="the folder (csv, parquet) or the .xlsx file to write")
    x.add_argument("--force", action="store_true", help="replace an existing --out whole")
    x.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    from synthetic_data.errors import ZandbakError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ZandbakError as e:
        sys.stderr.write(f"{PROG}: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted; nothing was written\n")
        return 130
    except BrokenPipeError:   # output piped into `head` and closed early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
