"""Attacks on the sealed truth of a challenge, run as a participant would: from the hand-out alone.

The diff attack regenerates the clean administration with every seed the hand-out or the docs mention (and 0, 1,
42), keeps the regeneration closest to the hand-out, flags every record that differs from it and submits that
through `zandbak challenge score`. Against a challenge made from a public seed it finds every fault; against one
made from a secret it must do no better than flagging everything.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from synthetic_data import GeneratorConfig, generate
from synthetic_data.dataset import MANIFEST, read_dataset
from synthetic_data.ijw import key_expr

ROOT = Path(__file__).resolve().parent.parent
ZANDBAK = [sys.executable, "-m", "pipelines.cli"]
REGION, SCALE = "0147", 0.3


def _run(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([*ZANDBAK, *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def mentioned_seeds(manifest: dict) -> set[int]:
    """Every number the hand-out calls a seed, every `--seed N` / `seed=N` / `seed N` of the docs, and 0, 1, 42."""
    found = {0, 1, 42}
    text = json.dumps(manifest)
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text += doc.read_text(encoding="utf-8")
    for m in re.finditer(r"seed[\"'=:\s-]*(\d{1,12})", text, flags=re.IGNORECASE):
        found.add(int(m.group(1)))
    return {s for s in found if s < 2**32}


def diff_findings(dirty: dict[str, pl.DataFrame], clean: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """One finding (table + key columns) per record of `dirty` that has no identical record in `clean`."""
    frames = []
    for name, d in dirty.items():
        if name not in clean or d.height == 0:
            continue
        c = clean[name]
        cols = [col for col in d.columns if col in c.columns]
        only = d.join(c.select(cols), on=cols, how="anti", nulls_equal=True)
        frames.append(only.select(pl.lit(name).alias("table"), key_expr(name).alias("key")))
    return pl.concat(frames) if frames else pl.DataFrame(schema={"table": pl.String, "key": pl.String})


def diff_attack(handout: Path) -> pl.DataFrame:
    """The attacker's best submission: the diff against the regeneration that differs least from the hand-out."""
    manifest = json.loads((handout / MANIFEST).read_text(encoding="utf-8"))
    cfg = manifest.get("config", {})
    dirty = read_dataset(handout, [p.stem for p in sorted(handout.glob("*.parquet"))])
    region, years = cfg.get("region", REGION), cfg.get("years", "2024")
    best = None
    for seed in sorted(mentioned_seeds(manifest)):
        # the strongest attacker: it knows the scale even when the hand-out does not say it
        clean = generate(GeneratorConfig(region=region, years=years, seed=seed, scale=SCALE))
        findings = diff_findings(dirty, clean)
        if best is None or findings.height < best.height:
            best = findings
    return best


def all_records(handout: Path) -> pl.DataFrame:
    """The trivial submission: every record of every table of the hand-out."""
    dirty = read_dataset(handout, [p.stem for p in sorted(handout.glob("*.parquet"))])
    empty = {name: df.clear() for name, df in dirty.items()}
    return diff_findings(dirty, empty)


def _f1(handout: Path, submission: Path, team: str, env: dict) -> float:
    r = _run("challenge", "score", handout, submission, "--team", team, env=env)
    assert r.returncode == 0, r.stderr
    return float(re.search(r"F1 (\d\.\d+)", r.stdout).group(1))


@pytest.fixture(scope="module")
def challenge(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("challenge")
    env = {"ZANDBAK_DATA": str(tmp / "data")}
    hand = tmp / "handout"
    r = _run("challenge", "new", "--out", hand, "--region", REGION, "--scale", SCALE, "--profile", "stress", env=env)
    assert r.returncode == 0, r.stderr
    return tmp, hand, env


def test_diff_attack_does_no_better_than_flagging_everything(challenge):
    tmp, hand, env = challenge
    diff_attack(hand).write_csv(tmp / "diff.csv")
    all_records(hand).write_csv(tmp / "all.csv")
    attack, trivial = _f1(hand, tmp / "diff.csv", "diff", env), _f1(hand, tmp / "all.csv", "everything", env)
    assert attack <= trivial + 0.01, f"the diff attack reached F1 {attack:.3f}, flagging everything {trivial:.3f}"


def test_handout_manifest_says_nothing_to_regenerate_from(challenge):
    _, hand, _ = challenge
    manifest = json.loads((hand / MANIFEST).read_text(encoding="utf-8"))
    flat = json.dumps(manifest)
    assert manifest["synthetic"] is True and manifest["config"]["challenge_id"]
    assert "seed" not in flat and "secret" not in flat, flat[:400]
    assert not list(hand.glob("trajecten*")) and not list(hand.glob("*truth*"))


# ------------------------------------------------------------------------------------ tasks: the scored data

HOSTILE = Path(__file__).resolve().parent / "hostile"
SECRET = "5eed" * 16       # a fixed secret keeps the test deterministic; real ones come from new_secret()


@pytest.fixture(scope="module")
def attacker(tmp_path_factory):
    import shutil

    import experiments as ex

    teams = tmp_path_factory.mktemp("teams")
    (teams / "attacker").mkdir()
    shutil.copy(HOSTILE / "regenerate_default_seed.py", teams / "attacker" / "regenerate_default_seed.py")
    return next(e for e in ex.discover(teams) if e.name == "regenerate_default_seed")


def test_regenerating_with_a_public_seed_does_not_reach_the_scored_truth(attacker, tmp_path):
    import experiments as ex

    params = {"region": REGION, "scale": 0.3}
    public = ex.prepare("verzoek_triage", seed=42, **params)
    sealed = ex.prepare("verzoek_triage", secret=SECRET, **params)      # as prepare_sealed, with a fixed secret
    assert sealed.seed is None and sealed.dataset_hash != public.dataset_hash
    # the attack works where the seed is public: that is why scores never use public data
    on_public = ex.run(attacker, public)
    assert on_public.ok and on_public.score > 0.95, on_public.error or on_public.score
    on_sealed = ex.run(attacker, sealed)
    assert on_sealed.ok, on_sealed.error
    majority = sealed.inputs["labels"]["antwoord"].mode().sort()[0]
    trivial = ex.score("verzoek_triage", sealed.inputs["to_predict"].with_columns(antwoord=pl.lit(majority)),
                       sealed.truth)["score"]
    assert on_sealed.score <= trivial + 0.02, (on_sealed.score, trivial)


def test_sealed_task_data_is_the_same_for_every_run_of_a_project_and_differs_between_projects(tmp_path):
    import experiments as ex

    a = ex.prepare_sealed("verzoek_triage", tmp_path / "one", region=REGION, scale=0.1)
    b = ex.prepare_sealed("verzoek_triage", tmp_path / "one", region=REGION, scale=0.1)
    c = ex.prepare_sealed("verzoek_triage", tmp_path / "two", region=REGION, scale=0.1)
    assert a.dataset_hash == b.dataset_hash != c.dataset_hash
    assert (tmp_path / "one" / "tasks" / "secret").stat().st_mode & 0o077 == 0
    stored = ex.seal_truth(a, tmp_path / "one")
    assert stored.truth.height == 0 and ex.unseal_truth(stored, tmp_path / "one").truth.equals(a.truth)
