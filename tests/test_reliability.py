"""Nothing lost, nothing torn: SIGKILL during a write, outputs that would destroy inputs, readers that verify.

The kill tests start the real `zandbak` command in its own session, wait until its hidden temporary folder
appears (the write has begun) and kill it k x 15 ms later for several k, so the kill lands before, during and after
the files are written and swapped in. After each kill the target holds the complete old dataset or the complete
new one (every file matching its manifest), and the next run cleans the leftovers and gives the same bytes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthetic_data import DataError, read_dataset

ZANDBAK = Path(sys.executable).with_name("zandbak")
SMALL = ["--region", "0147", "--scale", "0.2"]


def _zandbak(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(ZANDBAK), *map(str, args)], capture_output=True, text=True, timeout=300, **kw)


def _main(*args) -> subprocess.CompletedProcess:
    """The run after a kill, in this process: the command's code path (pipelines.cli.main, which the console script
    calls) without an interpreter start, so the 28 kill cases do not each pay a second start-up. The kills
    themselves always hit the real command in a process of its own."""
    import contextlib
    import io

    from pipelines.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(["zandbak", *map(str, args)], code, out.getvalue(), err.getvalue())


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _kill_during_write(args: list, target: Path, delay_s: float) -> None:
    """Start `zandbak args`, SIGKILL it `delay_s` after its temporary folder next to `target` appears."""
    proc = subprocess.Popen([str(ZANDBAK), *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if list(target.parent.glob(f".{target.name}.tmp-*")):
            time.sleep(delay_s)
            break
        time.sleep(0.002)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """The same folder written by two configs: what a target may hold after a kill."""
    root = tmp_path_factory.mktemp("versions")
    for seed in (1, 2):
        r = _zandbak("generate", *SMALL, "--seed", seed, "--out", root / f"seed{seed}", "--quiet")
        assert r.returncode == 0, r.stderr
    r = _zandbak("corrupt", root / "seed1", "--profile", "demo", "--seed", 3, "--out", root / "dirty3")
    assert r.returncode == 0, r.stderr
    r = _zandbak("corrupt", root / "seed1", "--profile", "demo", "--seed", 4, "--out", root / "dirty4")
    assert r.returncode == 0, r.stderr
    for seed in (3, 4):       # the labels in a file of their own (the dirty manifest names their hash)
        r = _zandbak("corrupt", root / "seed1", "--profile", "demo", "--seed", seed, "--out", root / f"dirty{seed}t",
                     "--truth", root / f"truth{seed}" / "ground_truth.parquet")
        assert r.returncode == 0, r.stderr
    return root


@pytest.mark.parametrize("k", range(0, 12))
def test_a_killed_generate_leaves_the_old_or_the_new_dataset_never_a_mix(versions, tmp_path, k):
    target = tmp_path / "ds"
    shutil.copytree(versions / "seed1", target)
    old, new = _files(versions / "seed1"), _files(versions / "seed2")
    _kill_during_write(["generate", *SMALL, "--seed", 2, "--out", target, "--quiet"], target, 0.015 * k)
    assert _files(target) in (old, new), f"kill {k}: a mixed folder"
    read_dataset(target)                                     # and it verifies against its own manifest
    r = _main("generate", *SMALL, "--seed", 2, "--out", target, "--quiet")
    assert r.returncode == 0, r.stderr
    assert _files(target) == new
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "leftovers of the killed write"


@pytest.mark.parametrize("k", range(0, 8))
@pytest.mark.parametrize("separate_truth", [False, True])
def test_a_killed_corrupt_leaves_the_old_or_the_new_dirty_dataset(versions, tmp_path, k, separate_truth):
    suffix = "t" if separate_truth else ""
    target, truth = tmp_path / "dirty", tmp_path / "truth.parquet"
    shutil.copytree(versions / f"dirty3{suffix}", target)
    old, new = _files(versions / f"dirty3{suffix}"), _files(versions / f"dirty4{suffix}")
    args = ["corrupt", versions / "seed1", "--profile", "demo", "--seed", 4, "--out", target]
    if separate_truth:
        args += ["--truth", truth]
        shutil.copy(versions / "truth3" / "ground_truth.parquet", truth)
    _kill_during_write(args, target, 0.015 * k)
    assert _files(target) in (old, new), f"kill {k}: a mixed folder"
    if separate_truth:   # the pair may be torn between its two renames: then score refuses it, never scores it
        findings = tmp_path / "f.csv"
        findings.write_text("table,key\nprestaties,x|y\n")
        r = _main("score", "--findings", findings, "--truth", truth, "--dataset", target)
        which = "truth4" if _files(target) == new else "truth3"
        paired = _files(tmp_path)["truth.parquet"] == _files(versions / which)["ground_truth.parquet"]
        assert (r.returncode == 0) == paired and (paired or "is not the ground truth of" in r.stderr), r.stderr
    assert _main(*args).returncode == 0
    assert _files(target) == new
    if separate_truth:
        assert _files(tmp_path)["truth.parquet"] == _files(versions / "truth4")["ground_truth.parquet"]


def test_outputs_never_destroy_inputs(versions, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(versions / "seed1", clean)
    before = _files(clean)
    for args in (["corrupt", clean, "--out", clean],
                 ["corrupt", clean, "--out", tmp_path / "d", "--truth", clean / "prestaties.parquet"],
                 ["challenge", "new", *SMALL, "--out", tmp_path / "data" / "sealed" / "x"]):
        r = _zandbak(*args, env={**os.environ, "ZANDBAK_DATA": str(tmp_path / "data")})
        assert r.returncode == 2 and "overlaps" in r.stderr, r.stderr
        assert _files(clean) == before
    # a dataset written over an older one replaces it whole: no stale truth beside the new tables
    shutil.copytree(versions / "dirty3", tmp_path / "reused")
    assert _zandbak("generate", *SMALL, "--seed", 2, "--out", tmp_path / "reused", "--quiet").returncode == 0
    assert _files(tmp_path / "reused") == _files(versions / "seed2")
    assert not (tmp_path / "reused" / "ground_truth.parquet").exists()


def test_a_reader_refuses_a_folder_whose_files_do_not_match_its_manifest(versions, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(versions / "seed1", mixed)
    shutil.copy(versions / "seed2" / "prestaties.parquet", mixed / "prestaties.parquet")   # a torn folder
    with pytest.raises(DataError, match="prestaties.parquet: does not match manifest.json"):
        read_dataset(mixed)
    manifest = json.loads((mixed / "manifest.json").read_text())
    assert manifest["tables"]["prestaties"]["sha256"] != _files(mixed)["prestaties.parquet"]
