"""The GX engine on the rule registry: no false alarms on clean data, and for every rule exactly the records that its
polars implementation (`violations`) reports on the data its breaker broke; the CLI."""
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from expectations import findings, load_rules, validate, violations
from expectations.gx_custom import bsn_valid
from synthetic_data import DataError, write_dataset
from synthetic_data.ijw import key_expr
from synthetic_data.testing import PROCESS_NOISE_RULES, break_rule


RULES = load_rules()
ZANDBAK = Path(sys.executable).with_name("zandbak")


@pytest.fixture(scope="module")
def tables(ijw_tables):
    return ijw_tables


def test_registry_has_enough_rules():
    assert len(RULES) >= 25
    assert {r.severity for r in RULES} == {"ERROR", "WARN"}
    assert any(r.uses for r in RULES)       # cross-table rules are in


def test_clean_data_passes_every_rule(tables, tmp_path):
    results = validate(tables, docs_dir=tmp_path / "docs")
    # the timeliness rules the clean process breaks at a realistic rate report only their late records
    failed = [(r.rule.id, r.failing, r.error) for r in results if not r.passed and r.rule.id not in PROCESS_NOISE_RULES]
    assert not failed
    noise = [r for r in results if r.rule.id in PROCESS_NOISE_RULES]
    assert all(not r.error and r.failing == violations(r.rule, tables).height for r in noise)
    assert findings(results).filter(~pl.col("rule_id").is_in(list(PROCESS_NOISE_RULES))).height == 0
    assert (tmp_path / "docs" / "index.html").exists()      # GX Data Docs written


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_gx_reports_what_violations_reports(tables, rule):
    """GX (its own expectation for a column rule, the in-set [True] flag for a derived one) reports exactly the
    records of the polars implementation, the broken record among them."""
    broken, keys = break_rule(rule.id, tables)
    results = validate(broken, [rule])
    assert not results[0].error, results[0].error
    f = findings(results)
    got = set(zip(f["table"], f["key"]))
    polars_keys = {(rule.table, k) for k in violations(rule, broken).select(key_expr(rule.table)).to_series()}
    assert got == polars_keys, f"{rule.id}: GX {sorted(got)[:5]}, polars {sorted(polars_keys)[:5]}"
    assert set(keys.rows()) <= got
    assert results[0].failing == len(violations(rule, broken))
    assert set(f["rule_code"]) == {rule.code} and set(f["severity"]) == {rule.severity}


def test_bsn_condition_vectorised():
    import pandas as pd

    s = pd.Series(["111222333", "111222334", "12345678", "abcdefghi", "999990019"])
    assert bsn_valid(s).tolist() == [True, False, False, False, True]


def test_unusable_input_is_a_clear_error(tables):
    with pytest.raises(DataError, match=r"prestaties\.ingediend_bedrag: missing column"):
        validate(dict(tables, prestaties=tables["prestaties"].drop("ingediend_bedrag")))
    with pytest.raises(DataError, match=r"prestaties\.geleverd_volume: type String"):
        validate(dict(tables, prestaties=tables["prestaties"].with_columns(pl.col("geleverd_volume").cast(pl.String))))
    with pytest.raises(DataError, match="zorgstops: missing table"):
        validate({k: v for k, v in tables.items() if k != "zorgstops"})


def _run(*args):
    """The real `zandbak` command (a fresh interpreter that imports GX: about 10 s a check on 2 cores)."""
    return subprocess.run([str(ZANDBAK), *map(str, args)], capture_output=True, text=True, timeout=300)


def _main(capsys, *args):
    """`zandbak args` in this process: the code path of the console script (which exits with main's return value)
    without the interpreter start and the GX import, which the tests above already paid for."""
    from pipelines.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["zandbak", *map(str, args)], code, out, err)


def test_cli_exit_codes_and_findings(tables, ijw_config, tmp_path, capsys):
    config = ijw_config
    clean = tmp_path / "clean"
    write_dataset(tables, clean, config.as_dict())
    r = _main(capsys, "check", clean)
    assert r.returncode == 0 and "0 ERROR rules fail" in r.stdout

    # an ERROR rule broken: exit 1, one finding per failing record
    broken, keys = break_rule("CS002_bsn_elfproef_prestaties", tables)
    bad = tmp_path / "bad"
    write_dataset(broken, bad, config.as_dict())
    r = _run("check", bad, "--findings", tmp_path / "f.parquet")
    # a claim line with a wrong BSN fails CS002 and no longer matches its toewijzing's client (TR304)
    assert r.returncode == 1 and "2 ERROR rules fail" in r.stdout
    f = pl.read_parquet(tmp_path / "f.parquet").filter(~pl.col("rule_id").is_in(list(PROCESS_NOISE_RULES)))
    assert sorted(f.select("table", "rule_code", "severity", "key").rows()) == [
        ("prestaties", "CS002", "ERROR", keys["key"][0]), ("prestaties", "TR338", "ERROR", keys["key"][0])]

    # only a WARN rule broken: exit 0, reported
    broken, _ = break_rule("OP271_start_binnen_5_werkdagen", tables)
    warn = tmp_path / "warn"
    write_dataset(broken, warn, config.as_dict())
    r = _main(capsys, "check", warn, "--findings", tmp_path / "w.csv")
    # the clean process's own late messages fail the timeliness rules (OP271 among them) anyway
    assert r.returncode == 0 and "0 ERROR rules fail" in r.stdout and f"{len(PROCESS_NOISE_RULES)} WARN rules fail" in r.stdout
    w = pl.read_csv(tmp_path / "w.csv", schema_overrides={"key": pl.String})
    assert set(w["severity"]) == {"WARN"} and set(w["rule_id"]) <= set(PROCESS_NOISE_RULES)
    # the one broken start on top of the clean data's own late ones
    base = violations(next(r for r in load_rules() if r.id == "OP271_start_binnen_5_werkdagen"), tables).height
    assert w.filter(pl.col("rule_code") == "OP271").height == base + 1


def test_cli_unusable_input_exit_2(tables, ijw_config, tmp_path, capsys):
    # in this process (the console script's exit code 2 and one line: tests/test_cli.py, tests/test_bad_input.py)
    config = ijw_config
    ds = tmp_path / "ds"
    write_dataset(tables, ds, config.as_dict())
    (ds / "zorgstops.parquet").unlink()
    r = _main(capsys, "check", ds)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "zorgstops" in r.stderr and "Traceback" not in r.stderr
    write_dataset(dict(tables, prestaties=tables["prestaties"].drop("eenheid")), ds, config.as_dict())
    r = _main(capsys, "check", ds)
    assert r.returncode == 2 and "prestaties.eenheid: missing column" in r.stderr
    r = _main(capsys, "check", ds, "--findings", tmp_path / "f.xlsx")
    assert r.returncode == 2
    r = _main(capsys, "check", tmp_path / "nowhere")
    assert r.returncode == 2 and "not a folder" in r.stderr
