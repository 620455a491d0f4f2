"""The zandbak CLI: a working run, and one-line errors with exit code 2 that write nothing."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main

ZANDBAK = Path(sys.executable).with_name("zandbak")


def test_generate_writes_every_table_and_manifest(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["generate", "--region", "0147", "--years", "2024", "--seed", "3", "--scale", "0.2", "--out", str(out), "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["synthetic"] and manifest["config"] == {"region": "0147", "years": "2024", "seed": 3, "scale": 0.2}
    assert {p.stem for p in out.glob("*.parquet")} == set(manifest["tables"])
    assert "prestaties" in capsys.readouterr().out
    assert not list(tmp_path.glob(".ds.tmp-*"))   # no temporary folder left behind


@pytest.mark.parametrize("args, option", [
    (["--region", "atlantis"], "--region"),
    (["--region", "9999"], "--region"),
    (["--years", "2019"], "--years"),
    (["--years", "2025-2024"], "--years"),
    (["--years", "twenty"], "--years"),
    (["--scale", "0"], "--scale"),
    (["--scale", "-1"], "--scale"),
    (["--scale", "1.5"], "--scale"),
    (["--seed", "abc"], "--seed"),
])
def test_bad_options_give_one_line_and_exit_2(tmp_path, capsys, args, option):
    out = tmp_path / "ds"
    with pytest.raises(SystemExit) if option == "--seed" else _no_raise() as _:
        rc = main(["generate", *args, "--out", str(out), "--quiet"])
        assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err and "Traceback" not in err
    assert not out.exists()


def test_unwritable_output_gives_one_line(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    assert main(["generate", "--region", "0147", "--scale", "0.1", "--out", str(blocker / "ds"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zandbak: error: --out") and err.count("\n") == 1


def test_console_script_exit_code_and_no_traceback(tmp_path):
    r = subprocess.run([str(ZANDBAK), "generate", "--region", "nowhere", "--out", str(tmp_path / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("zandbak: error: --region: unknown region 'nowhere'")
    assert "Traceback" not in r.stderr and not (tmp_path / "x").exists()


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
