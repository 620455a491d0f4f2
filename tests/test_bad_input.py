"""The bad-input catalogue: every case gives one line naming the field or file and what is wrong, a non-zero exit,
no traceback, and leaves every earlier output as it was.

The CLI cases run `pipelines.cli.main` in this process (the same code path as the `zandbak` script, minus the
interpreter start-up); the environment-variable cases run the real `zandbak` command.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main

ZANDBAK = Path(sys.executable).with_name("zandbak")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A clean dataset, a dirty one, a hand-out and a few hostile files, made once."""
    root = tmp_path_factory.mktemp("bad_input")
    data = root / "data"
    env = {"ZANDBAK_DATA": str(data)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert main(["generate", "--region", "0147", "--scale", "0.1", "--out", str(root / "clean"), "--quiet"]) == 0
        assert main(["corrupt", str(root / "clean"), "--profile", "demo", "--out", str(root / "dirty")]) == 0
        assert main(["challenge", "new", "--region", "0147", "--scale", "0.1", "--out", str(root / "handout")]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    (root / "notes").mkdir()
    (root / "notes" / "mine.txt").write_text("my own notes")
    (root / "afile").write_text("x")
    shutil.copytree(root / "clean", root / "tampered")
    p = root / "tampered" / "zorgstarts.parquet"
    pl.read_parquet(p).head(3).write_parquet(p)
    shutil.copytree(root / "clean", root / "not_synthetic")
    m = json.loads((root / "not_synthetic" / "manifest.json").read_text())
    (root / "not_synthetic" / "manifest.json").write_text(json.dumps({**m, "synthetic": False}))
    shutil.copytree(root / "clean", root / "realbsn")
    (root / "realbsn" / "jeugdigen.parquet").unlink()
    t = pl.read_parquet(root / "clean" / "jeugdigen.parquet").with_columns(pl.lit("12345678").alias("bsn"))
    t.write_csv(root / "realbsn" / "jeugdigen.csv")
    pl.read_parquet(root / "dirty" / "ground_truth.parquet").write_parquet(root / "unmarked_truth.parquet")
    pl.DataFrame({"tabel": ["x"]}).write_csv(root / "no_table.csv")
    pl.DataFrame({"table": ["geheim"], "key": ["1"]}).write_csv(root / "unknown_table.csv")
    pl.DataFrame({"table": ["prestaties"], "agb_code": ["1"]}).write_csv(root / "no_key.csv")
    pl.DataFrame({"table": ["prestaties"], "key": ["1|2"]}).write_csv(root / "good.csv")
    return root, env


# (name, argv with {root} placeholders, what the one line must contain)
CASES = [
    ("generate: unknown region", "generate --region atlantis --out {root}/o1", "--region"),
    ("generate: unknown gemeente code", "generate --region 9999 --out {root}/o1", "--region"),
    ("generate: year outside the range", "generate --years 2019 --out {root}/o1", "--years"),
    ("generate: not a year", "generate --years twintig --out {root}/o1", "--years"),
    ("generate: reversed years", "generate --years 2025-2023 --out {root}/o1", "--years"),
    ("generate: negative seed", "generate --seed -1 --out {root}/o1", "--seed"),
    ("generate: seed not a number", "generate --seed abc --out {root}/o1", "--seed"),
    ("generate: scale 0", "generate --scale 0 --out {root}/o1", "--scale"),
    ("generate: scale above 1", "generate --scale 1.5 --out {root}/o1", "--scale"),
    ("generate: scale not a number", "generate --scale veel --out {root}/o1", "--scale"),
    ("generate: scale that simulates nobody", "generate --region 0147 --scale 1e-3 --out {root}/o1", "--scale"),
    ("generate: negative workers", "generate --workers -1 --out {root}/o1", "--workers"),
    ("generate: too many workers", "generate --workers 1000 --out {root}/o1", "--workers"),
    ("generate: out is a file", "generate --region 0147 --scale 0.1 --out {root}/afile", "--out"),
    ("generate: out is someone's folder", "generate --region 0147 --scale 0.1 --out {root}/notes", "--out"),
    ("generate: out cannot be written", "generate --region 0147 --scale 0.1 --out /proc/zandbak/x", "--out"),
    ("generate: no out", "generate --region 0147", "--out"),
    ("check: no such folder", "check {root}/nowhere", "nowhere"),
    ("check: folder without manifest", "check {root}/notes", "manifest.json"),
    ("check: manifest says not synthetic", "check {root}/not_synthetic", "synthetic"),
    ("check: a table changed after writing", "check {root}/tampered", "zorgstarts.parquet"),
    ("check: a real-looking BSN in a hand edit", "check {root}/realbsn", "jeugdigen.csv"),
    ("check: findings with an unknown extension", "check {root}/clean --findings {root}/f.txt", "f.txt"),
    ("check: findings inside the input", "check {root}/clean --findings {root}/clean/f.csv", "--findings"),
    ("corrupt: out is the input", "corrupt {root}/clean --out {root}/clean", "--out"),
    ("corrupt: out inside the input", "corrupt {root}/clean --out {root}/clean/dirty", "--out"),
    ("corrupt: truth over an input table", "corrupt {root}/clean --out {root}/o2 --truth {root}/clean/prestaties.parquet",
     "--truth"),
    ("corrupt: truth inside the output", "corrupt {root}/clean --out {root}/o2 --truth {root}/o2/t.parquet", "--truth"),
    ("corrupt: truth is a folder", "corrupt {root}/clean --out {root}/o2 --truth {root}/notes", "--truth"),
    ("corrupt: unknown profile", "corrupt {root}/clean --profile chaos --out {root}/o2", "chaos"),
    ("corrupt: input without manifest", "corrupt {root}/notes --out {root}/o2", "manifest.json"),
    ("corrupt: input already dirty", "corrupt {root}/dirty --out {root}/o2", "faults"),
    ("corrupt: out is someone's folder", "corrupt {root}/clean --out {root}/notes", "--out"),
    ("score: findings missing", "score --findings {root}/none.csv --truth {root}/dirty/ground_truth.parquet", "none.csv"),
    ("score: findings without table", "score --findings {root}/no_table.csv --truth {root}/dirty/ground_truth.parquet",
     "'table'"),
    ("score: findings for an unknown table",
     "score --findings {root}/unknown_table.csv --truth {root}/dirty/ground_truth.parquet", "geheim"),
    ("score: findings without key columns",
     "score --findings {root}/no_key.csv --truth {root}/dirty/ground_truth.parquet", "key"),
    ("score: truth missing", "score --findings {root}/good.csv --truth {root}/none.parquet", "none.parquet"),
    ("score: truth without watermark",
     "score --findings {root}/good.csv --truth {root}/unmarked_truth.parquet", "unmarked_truth.parquet"),
    ("challenge new: public seed", "challenge new --seed 11 --out {root}/o3", "--seed"),
    ("challenge new: public-seed flag alone", "challenge new --public-seed --out {root}/o3", "--public-seed"),
    ("challenge new: out inside the sealed folder", "challenge new --out {root}/data/sealed/h", "--out"),
    ("challenge new: out is someone's folder", "challenge new --region 0147 --scale 0.1 --out {root}/notes", "--out"),
    ("challenge new: out is a clean dataset", "challenge new --region 0147 --scale 0.1 --out {root}/clean", "hand-out"),
    ("challenge new: unknown profile", "challenge new --profile chaos --region 0147 --scale 0.1 --out {root}/o3", "chaos"),
    ("challenge score: not a hand-out", "challenge score {root}/notes {root}/good.csv --team x", "handout"),
    ("challenge score: no sealed truth here", "challenge score {root}/clean {root}/good.csv --team x", "sealed"),
    ("experiment run: unknown name", "experiment run bestaat_niet", "bestaat_niet"),
    ("experiment run: a name and --all", "experiment run declaratie_regels --all", "--all"),
    ("experiment new: bad name", "experiment new Mijn-Idee", "Mijn-Idee"),
    ("experiment new: unknown task", "experiment new goed_idee --task raden", "raden"),
    ("calibration: no such folder", "calibration {root}/nowhere", "nowhere"),
    # --- issue 13: iJw XML
    ("export-ijw: onto its input", "export-ijw {root}/clean --out {root}/clean", "overlaps"),
    ("export-ijw: not a dataset", "export-ijw {root}/notes --out {root}/x1", "manifest.json"),
    ("export-ijw: unknown gemeente", "export-ijw {root}/clean --out {root}/x2 --gemeente 9999", "9999"),
    ("validate-ijw: no such folder", "validate-ijw {root}/nowhere", "nowhere"),
    ("validate-ijw: folder without messages marked synthetic", "validate-ijw {root}/notes", "synthetic"),
    ("validate-ijw: --json not .json", "validate-ijw {root}/notes --json {root}/v.txt", "--json"),
    ("import-ijw: a dataset, no messages", "import-ijw {root}/clean --out {root}/x3", ".xml"),
    ("unknown command", "verzin", "verzin"),
    # issue 14: the arena and the demo
    ("arena: a dataset, not a hand-out", "arena {root}/clean --teams a", "hand-out"),
    ("arena: a folder of notes", "arena {root}/notes --teams a", "manifest.json"),
    ("arena: no team", "arena {root}/handout --teams ,", "--teams"),
    ("arena: bad team name", "arena {root}/handout --teams a,b!", "--teams"),
    ("arena: a team twice", "arena {root}/handout --teams a,a", "--teams"),
    ("arena: limit 0", "arena {root}/handout --teams a --limit 0", "--limit"),
    ("arena: limit not a number", "arena {root}/handout --teams a --limit veel", "--limit"),
    ("arena: public share 1", "arena {root}/handout --teams a --public-share 1", "--public-share"),
    ("arena: upload size 0", "arena {root}/handout --teams a --max-mb 0", "--max-mb"),
    ("arena: port out of range", "arena {root}/handout --teams a --port 70000", "--port"),
    ("arena: host not an address", "arena {root}/handout --teams a --host 999.1.1.1", "--host"),
    ("arena: no --teams", "arena {root}/handout", "--teams"),
    ("arena: unknown task", "arena --task raden --teams a", "raden"),
    ("arena: a hand-out and a task", "arena {root}/handout --task verzoek_triage --teams a", "--task"),
    ("arena: neither hand-out nor task", "arena --teams a", "--task"),
    ("arena: region with a hand-out", "arena {root}/handout --teams a --region 0147", "--region"),
    ("arena: a task in an unknown region", "arena --task verzoek_triage --region atlantis --teams a", "--region"),
    ("arena: a task at scale 5", "arena --task verzoek_triage --scale 5 --teams a", "--scale"),
    ("demo: unknown region", "demo --region atlantis --ui-port 3998 --arena-port 3999", "--region"),
    ("demo: port out of range", "demo --ui-port 0 --arena-port 3999", "--ui-port"),
    ("demo: one port for both", "demo --ui-port 3999 --arena-port 3999", "--arena-port"),
    # --- issue 14: export
    ("export: no such folder", "export {root}/nowhere --format csv --out {root}/o4", "nowhere"),
    ("export: manifest says not synthetic", "export {root}/not_synthetic --format csv --out {root}/o4", "synthetic"),
    ("export: a table changed after writing", "export {root}/tampered --format xlsx --out {root}/o4.xlsx",
     "zorgstarts.parquet"),
    ("export: unknown format", "export {root}/clean --format sav --out {root}/o4", "--format"),
    ("export: out inside the input", "export {root}/clean --format csv --out {root}/clean/csv", "--out"),
    ("export: out is someone's folder", "export {root}/clean --format parquet --out {root}/notes", "--out"),
    ("export: xlsx out without .xlsx", "export {root}/clean --format xlsx --out {root}/o4.csv", "--out"),
    ("export: xlsx out inside the input", "export {root}/clean --format xlsx --out {root}/clean/x.xlsx", "--out"),
]


@pytest.mark.parametrize("argv,expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_changes_nothing(world, argv, expect, capsys, monkeypatch):
    root, env = world
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("ZANDBAK_TEAMS", str(root / "teams"))
    before = _digest(root)
    try:
        code = main([a.format(root=root) for a in argv.split()])
    except SystemExit as e:        # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code not in (0, None), f"accepted: {err}"
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert expect in err, err
    assert _digest(root) == before, "an earlier output changed"


ENV_CASES = [
    ({"ZANDBAK_SEED": "abc"}, "ZANDBAK_SEED"),
    ({"ZANDBAK_SCALE": "2"}, "ZANDBAK_SCALE"),
    ({"ZANDBAK_REGION": "atlantis"}, "ZANDBAK_REGION"),
    ({"ZANDBAK_YEARS": "1999"}, "ZANDBAK_YEARS"),
    ({"ZANDBAK_FAULT_PROFILE": "chaos"}, "ZANDBAK_FAULT_PROFILE"),
    ({"ZANDBAK_FAULT_SEED": "zeven"}, "ZANDBAK_FAULT_SEED"),
]


@pytest.mark.parametrize("env,expect", ENV_CASES, ids=[e for _, e in ENV_CASES])
def test_bad_environment_gives_one_line(tmp_path, env, expect):
    r = subprocess.run([str(ZANDBAK), "run"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "ZANDBAK_DATA": str(tmp_path / "data"),
                            "DAGSTER_HOME": str(tmp_path / "dh"), **env})
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and expect in r.stderr, r.stderr
    assert not (tmp_path / "data").exists()


def test_the_catalogue_has_at_least_40_cases():
    assert len(CASES) + len(ENV_CASES) >= 40
