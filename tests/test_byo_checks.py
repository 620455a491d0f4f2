"""Bring your own checks: a team's GX suite, SQL folder, pandera schema or polars module, scored per check from the CLI
(`zandbak score DIRTY --checks PATH`) on a small dirty dataset (gemeente 0147 at scale 0.2, demo fault profile)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from synthetic_data.faults.score import paired_codes, score

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "expectations" / "examples"
REFERENCE = ["gx_suite.py", "sql", "pandera_schema.py", "polars_checks.py"]


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("byo")
    assert main(["generate", "--region", "0147", "--scale", "0.2", "--out", str(base / "clean"), "--quiet"]) == 0
    assert main(["corrupt", str(base / "clean"), "--profile", "demo", "--out", str(base / "dirty")]) == 0
    return base / "dirty"


def _score(capsys, *argv) -> dict:
    capsys.readouterr()
    assert main(["score", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _error(capsys, *argv) -> str:
    capsys.readouterr()
    assert main(["score", *map(str, argv)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zandbak: error: ") and "Traceback" not in err, err
    return err


def _per_check(result: dict) -> list[tuple]:
    """What a check did, without its name (pandera names its not-null check after the column)."""
    return sorted((c["table"], c["flagged"], c["tp"], c["fp"], json.dumps(c["by_fault_type"], sort_keys=True))
                  for c in result["checks"])


def test_the_four_formats_of_the_reference_rules_score_identically(dirty, capsys):
    results = {k: _score(capsys, dirty, "--checks", EXAMPLES / k) for k in REFERENCE}
    kinds = {k: r["run"]["kind"] for k, r in results.items()}
    assert kinds == {"gx_suite.py": "gx", "sql": "sql", "pandera_schema.py": "pandera", "polars_checks.py": "polars"}
    first = results["polars_checks.py"]
    o = first["suite"]["overall"]
    print("reference rules, every format: " + json.dumps({k: o[k] for k in ("tp", "fp", "fn", "precision",
                                                                             "recall")}))
    assert o["tp"] > 0 and o["fp"] == 0 and o["precision"] == 1.0
    assert first["scope"]["tables"] == ["prestaties", "zorgstops", "zorgstarts"]
    for k, r in results.items():
        assert r["suite"]["overall"] == o, k
        assert r["suite"]["by_fault_type"] == first["suite"]["by_fault_type"], k
        assert _per_check(r) == _per_check(first), k
        assert len(r["checks"]) == 6 and r["never_fire"] and not r["false_alarms"], k
    caught = {f["fault_type"] for f in first["fault_types"] if f["found"]}
    assert caught == {"amount_in_euros", "volume_not_positive", "bsn_elfproef_invalid", "code_not_in_list",
                      "prestatie_without_toewijzing", "start_before_toewijzing"}
    assert "duplicate_prestatie" in first["uncaught"]


def test_printed_table_and_self_contained_html(dirty, capsys, tmp_path):
    page = tmp_path / "scorecard.html"
    capsys.readouterr()
    assert main(["score", str(dirty), "--checks", str(EXAMPLES / "sql"), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "per check:" in out and "per fault type:" in out and "TR346_bedrag_is_volume_maal_tarief" in out
    assert "checks that never fire: CS002_bsn_niet_leeg" in out
    assert "fault types no check catches: " in out and "(the tables the checks cover)" in out
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "TR346_bedrag_is_volume_maal_tarief" in html
    assert not re.search(r"https?://|<script|<link|@import|src=", html)


def test_weak_suite_scores_low_recall_on_prestaties_only(dirty, capsys):
    weak = _score(capsys, dirty, "--checks", EXAMPLES / "gx_weak.json")
    ref = _score(capsys, dirty, "--checks", EXAMPLES / "gx_suite.py", "--tables", "prestaties")
    assert weak["scope"]["tables"] == ["prestaties"] and ref["scope"]["tables"] == ["prestaties"]
    w, r = weak["suite"]["overall"], ref["suite"]["overall"]
    assert w["records"] == r["records"]            # the same denominator: the faulty prestaties
    assert 0 < w["recall"] < 0.2 and w["recall"] < r["recall"] / 2
    # scored on prestaties only: every other table's faults would have counted against it before
    truth = pl.read_parquet(dirty / "ground_truth.parquet")
    everywhere = score(pl.DataFrame({"table": ["prestaties"] * w["tp"], "key": [None] * w["tp"]},
                                    schema={"table": pl.String, "key": pl.String}), truth)["overall"]
    assert everywhere["records"] > w["records"]
    assert set(weak["scope"]["left_out_with_faults"]) >= {"jeugdigen", "zorgstarts"}
    assert all(f["table"] == "prestaties" for f in weak["fault_types"])


def test_false_alarm_suite_loses_precision(dirty, capsys):
    res = _score(capsys, dirty, "--checks", EXAMPLES / "gx_false_alarm.py")
    [alarm] = res["false_alarms"]
    assert alarm["check"] == "CD087_volume_tussen_1_en_600" and alarm["fp"] > 0
    by = {c["check"]: c for c in res["checks"]}
    assert by["TR346_bedrag_is_volume_maal_tarief"]["precision"] == 1.0
    assert by["CD087_volume_tussen_1_en_600"]["precision"] < 1.0   # how much depends on how many clean lines are large
    assert res["suite"]["overall"]["precision"] < 1.0


def test_tables_narrows_the_scope(dirty, capsys):
    res = _score(capsys, dirty, "--checks", EXAMPLES / "polars_checks.py", "--tables", "zorgstops,prestaties")
    assert res["scope"]["tables"] == ["prestaties", "zorgstops"] and res["scope"]["narrowed_to"]
    assert {c["table"] for c in res["checks"]} == {"prestaties", "zorgstops"}
    _error(capsys, dirty, "--checks", EXAMPLES / "polars_checks.py", "--tables", "prestatie")


def test_tr346_findings_match_faults_filed_under_cd087(dirty, capsys, tmp_path):
    assert {"CD087", "TR346", "CS339"} <= set(paired_codes(["TR346"]))
    res = _score(capsys, dirty, "--checks", EXAMPLES / "sql")
    [amount] = [c for c in res["checks"] if c["check"] == "TR346_bedrag_is_volume_maal_tarief"]
    assert amount["rule_code"] == "TR346" and amount["target"]["recall"] == 1.0
    assert set(amount["target"]["fault_types"]) == {"amount_in_euros", "volume_not_positive"}
    # the findings path too: a finding labelled TR346 counts under CD087 (its false positives are attributed)
    truth = pl.read_parquet(dirty / "ground_truth.parquet")
    rows = truth.filter(pl.col("rule_code") == "CD087").select("table", "key")
    findings = pl.concat([rows, pl.DataFrame({"table": ["prestaties"], "key": ["98999999|000000000000000"]})]
                         ).with_columns(pl.lit("TR346").alias("rule_code"))
    cd087 = score(findings, truth)["by_rule_code"]["CD087"]
    assert cd087["recall"] == 1.0 and cd087["fp"] == 1
    path = tmp_path / "f.csv"
    findings.write_csv(path)
    capsys.readouterr()
    assert main(["score", str(dirty), "--findings", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["by_rule_code"]["CD087"]["fp"] == 1


def test_existing_findings_and_truth_options_still_work(dirty, capsys, tmp_path):
    truth = pl.read_parquet(dirty / "ground_truth.parquet")
    path = tmp_path / "findings.csv"
    truth.filter(pl.col("table") == "zorgstops").select("table", "key").write_csv(path)
    capsys.readouterr()
    assert main(["score", "--findings", str(path), "--truth", str(dirty / "ground_truth.parquet"),
                 "--dataset", str(dirty), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["fp"] == 0
    assert main(["score", "--findings", str(path), "--truth", str(dirty / "ground_truth.parquet")]) == 0
    assert "overall" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # GX 1.9+ deprecates string row conditions
def test_bad_inputs_give_one_line_and_exit_2(dirty, capsys, tmp_path):
    odd = tmp_path / "checks.txt"
    odd.write_text("SELECT 1")
    assert "unknown kind" in _error(capsys, dirty, "--checks", odd)
    assert "does not exist" in _error(capsys, dirty, "--checks", tmp_path / "nope")
    assert "both given" in _error(capsys, dirty, "--checks", odd, "--findings", odd)
    assert "without DIRTY" in _error(capsys, "--checks", EXAMPLES / "sql", "--truth", dirty / "ground_truth.parquet")

    sql = tmp_path / "sql"
    sql.mkdir()
    (sql / "broken.sql").write_text("SELECT agb_code, referentie_nummer FROM prestaties WHERE no_such_column > 1")
    err = _error(capsys, dirty, "--checks", sql)
    assert "broken.sql: the query failed" in err and "no_such_column" in err

    mod = tmp_path / "keyless.py"
    mod.write_text("import polars as pl\n\ndef te_hoog(prestaties):\n"
                   "    return prestaties.filter(pl.col('geleverd_volume') > 100).select('bsn')\n")
    err = _error(capsys, dirty, "--checks", mod)
    assert "'te_hoog' returned no key columns agb_code, referentie_nummer of prestaties" in err

    crash = tmp_path / "crash.py"
    crash.write_text("def boem(prestaties):\n    return 1 / 0\n")
    assert "check 'boem' failed: ZeroDivisionError" in _error(capsys, dirty, "--checks", crash)

    gx_json = tmp_path / "prestaties.json"
    gx_json.write_text(json.dumps({"name": "prestaties", "meta": {}, "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "bsn"}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 10}}]}))
    err = _error(capsys, dirty, "--checks", gx_json)
    assert "expect_table_row_count_to_be_between on prestaties cannot be scored" in err and "aggregate" in err

    gx_mean = tmp_path / "mean.py"
    gx_mean.write_text("import great_expectations as gx\nimport great_expectations.expectations as gxe\n\n"
                       "def suites():\n    s = gx.ExpectationSuite(name='prestaties')\n"
                       "    s.add_expectation(gxe.ExpectColumnMeanToBeBetween(column='geleverd_volume', max_value=5))\n"
                       "    s.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column='bsn', "
                       "row_condition='geleverd_volume > 0', condition_parser='pandas'))\n"
                       "    return {'prestaties': s}\n")
    assert "expect_column_mean_to_be_between on prestaties cannot be scored" in _error(capsys, dirty, "--checks",
                                                                                        gx_mean)
    gx_mean.write_text(gx_mean.read_text().replace("    s.add_expectation(gxe.ExpectColumnMeanToBeBetween("
                                                   "column='geleverd_volume', max_value=5))\n", ""))
    assert "row_condition" in _error(capsys, dirty, "--checks", gx_mean)

    of_type = tmp_path / "of_type.json"       # fails on the column as a whole: never a silent pass
    of_type.write_text(json.dumps({"name": "x", "meta": {"table": "prestaties"}, "expectations": [
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "geleverd_volume", "type_": "str"}}]}))
    assert "gave no failing rows" in _error(capsys, dirty, "--checks", of_type)

    pandera_dtype = tmp_path / "pa_dtype.py"
    pandera_dtype.write_text("import pandera.polars as pa\n\n"
                             "def schemas():\n    return {'prestaties': pa.DataFrameSchema({'bsn': pa.Column(int)})}\n")
    assert "cannot be mapped to records" in _error(capsys, dirty, "--checks", pandera_dtype)


def test_gx_uniqueness_falls_back_to_polars(dirty, capsys, tmp_path):
    """GX's index list is unreliable for uniqueness: the duplicated rows are computed in polars instead."""
    suite = tmp_path / "prestaties.json"
    suite.write_text(json.dumps({"name": "prestaties", "meta": {"table": "prestaties"}, "expectations": [
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["agb_code", "referentie_nummer"]},
         "meta": {"check": "TR314_referentie_nummer_uniek"}}]}))
    res = _score(capsys, dirty, "--checks", suite)
    [c] = res["checks"]
    assert c["by_fault_type"] == {"duplicate_prestatie": {"tp": 4, "records": 4, "recall": 1.0}} and c["fp"] == 0


def test_pandera_unique_without_lazy_support_is_computed_in_polars(dirty, monkeypatch):
    """Some pandera versions raise NotImplementedError for `unique` with lazy=True (#2119)."""
    import pandera.polars as pa

    from expectations.adapters import pandera_schema
    from synthetic_data.dataset import present_tables, read_dataset

    real = pandera_schema._validate

    def old_pandera(schema, df):
        if any(c.unique for c in schema.columns.values()):
            raise NotImplementedError("unique with lazy=True")
        return real(schema, df)

    monkeypatch.setattr(pandera_schema, "_validate", old_pandera)

    class Mod:
        __name__ = "team"

        @staticmethod
        def schemas():
            return {"prestaties": pa.DataFrameSchema({"referentie_nummer": pa.Column(str, unique=True),
                                                      "geleverd_volume": pa.Column(int, pa.Check.ge(1))})}

    run = pandera_schema.run(Mod, read_dataset(dirty, present_tables(dirty)))
    flagged = run.findings.group_by("check").len()
    assert set(flagged["check"]) <= {"prestaties.referentie_nummer.unique",
                                     "prestaties.geleverd_volume.greater_than_or_equal_to"}
    assert flagged.filter(pl.col("check") == "prestaties.geleverd_volume.greater_than_or_equal_to")["len"].item() > 0


def _doc_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "score-your-own-checks.md").read_text()
    return re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S)


def test_score_your_own_checks_doc(tmp_path, capsys, monkeypatch):
    """Follows docs/score-your-own-checks.md: make a dirty dataset, score an example, write a check, score it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "expectations").symlink_to(ROOT / "expectations")
    blocks = _doc_blocks()
    files = {}
    for lang, body in blocks:
        first = body.splitlines()[0]
        m = re.match(r"(?:--|#) file: (\S+)", first)
        if m:
            files[m.group(1)] = body
    assert "my_checks/TR314_referentie_nummer_uniek.sql" in files and "my_checks.py" in files
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    commands = [line.strip() for lang, body in blocks if lang in ("bash", "sh") for line in body.splitlines()
                if line.strip().startswith("zandbak ")]
    assert any("--checks my_checks " in c or c.endswith("--checks my_checks") for c in commands)
    outputs = []
    for cmd in commands:
        capsys.readouterr()
        assert main(cmd.split()[1:]) == 0, cmd
        outputs.append(capsys.readouterr().out)
    assert (tmp_path / "scorecard.html").is_file()
    mine = _score(capsys, "data/borne_dirty", "--checks", "my_checks")
    [c] = mine["checks"]
    assert c["check"] == "TR314_referentie_nummer_uniek" and c["fp"] == 0
    assert c["by_fault_type"]["duplicate_prestatie"]["recall"] == 1.0
    for other in ("my_checks.py", "my_suite.py", "my_schema.py"):
        assert _per_check(_score(capsys, "data/borne_dirty", "--checks", other)) == _per_check(mine), other


def test_a_teams_checks_folder_becomes_asset_checks_and_a_scorecard(tmp_path):
    """checks/teams/<team>/<suite> (here ZANDBAK_CHECKS-style roots): asset checks on the dirty assets, a scorecard."""
    import shutil
    import warnings

    import dagster as dg

    from pipelines.assets import ADMIN_TABLES, GeneratorResource, build_assets
    from pipelines.settings import Settings
    from pipelines.storage import ParquetIOManager
    from pipelines.team_checks import build_team_check_assets, discover

    warnings.simplefilter("ignore")   # Dagster's preview warning for partitioned asset checks
    team = tmp_path / "checks" / "blue"
    team.mkdir(parents=True)
    shutil.copytree(EXAMPLES / "sql", team / "sql_regels")
    shutil.copy(EXAMPLES / "gx_weak.json", team / "zwak.json")
    (team / "kapot.py").write_text("def x(:\n")          # a broken file is left out, not fatal
    assert [s.key for s in discover([tmp_path / "checks"])] == ["blue__kapot", "blue__sql_regels", "blue__zwak"]

    parts = dg.StaticPartitionsDefinition(["0147"])
    settings = Settings(region="0147", years="2024", seed=5, scale=0.3, data_dir=str(tmp_path / "data"),
                        fault_profile="demo")
    assets = {a.node_def.name: a for a in build_assets(parts)}
    extra = build_team_check_assets(parts, [tmp_path / "checks"])
    checks = [a for a in extra if not a.node_def.name.startswith("team_scorecard_")]
    cards = [a for a in extra if a.node_def.name.startswith("team_scorecard_")]
    assert {a.node_def.name for a in cards} == {"team_scorecard_blue__sql_regels", "team_scorecard_blue__zwak"}
    on = {(k.asset_key.path[-1], k.name) for a in checks for k in a.check_keys}
    assert on == {("dirty_prestaties", "team_blue__sql_regels"), ("dirty_zorgstops", "team_blue__sql_regels"),
                  ("dirty_zorgstarts", "team_blue__sql_regels"), ("dirty_prestaties", "team_blue__zwak")}
    resources = {"generator": GeneratorResource(region="0147", years="2024", seed=5, scale=0.3,
                                                data_dir=settings.data_dir, fault_profile="demo"),
                 "parquet": ParquetIOManager(lake=str(settings.lake), config_json=json.dumps(
                     settings.config().as_dict()))}
    dg.Definitions.validate_loadable(dg.Definitions(assets=[*assets.values(), *extra], resources=resources))
    assert dg.materialize([assets["reference"]], resources=resources).success
    assert dg.materialize([assets["administration"]], partition_key="0147", resources=resources).success
    base = [assets["reference"], assets["administration"], assets["dirty_administration"]]
    res = dg.materialize([*base, *checks], partition_key="0147", resources=resources, selection=(
        dg.AssetSelection.assets(*[f"dirty_{t}" for t in ADMIN_TABLES], "ground_truth", "check_findings")
        | dg.AssetSelection.checks(*[k for a in checks for k in a.check_keys])))
    assert res.success
    team_evals = {(e.asset_key.path[-1], e.check_name): e for e in res.get_asset_check_evaluations()
                  if e.check_name.startswith("team_")}
    assert set(team_evals) == on
    sql_on_prestaties = team_evals[("dirty_prestaties", "team_blue__sql_regels")]
    assert not sql_on_prestaties.passed and sql_on_prestaties.metadata["tp"].value > 0
    assert sql_on_prestaties.metadata["fp"].value == 0
    res = dg.materialize([*base, *cards], resources=resources, selection=[a.key for a in cards])
    assert res.success
    meta = {m.asset_key.path[-1]: m.materialization.metadata for m in res.get_asset_materialization_events()}
    sql, weak = meta["team_scorecard_blue__sql_regels"], meta["team_scorecard_blue__zwak"]
    assert sql["precision"].value == 1.0 and sql["recall"].value > weak["recall"].value
    assert weak["tables"].value == "prestaties" and sql["never_fire"].value == "CS002_bsn_niet_leeg"
    assert (tmp_path / "data" / "scorecards" / "blue__sql_regels.html").is_file()


def test_other_shapes_of_each_format(dirty, capsys, tmp_path):
    """Module-level GX suites and pandera models, a folder of GX JSON, one .sql file, `tables`-style functions."""
    gx_mod = tmp_path / "gx_module_level.py"
    gx_mod.write_text("import great_expectations as gx\nimport great_expectations.expectations as gxe\n\n"
                      "volume = gx.ExpectationSuite(name='volume', meta={'table': 'prestaties'})\n"
                      "volume.add_expectation(gxe.ExpectColumnValuesToBeBetween(column='geleverd_volume', "
                      "min_value=1, meta={'check': 'CD087_volume_positief'}))\n")
    pa_mod = tmp_path / "pa_model.py"
    pa_mod.write_text("import pandera.polars as pa\n\n\nclass Prestaties(pa.DataFrameModel):\n"
                      "    geleverd_volume: int = pa.Field(ge=1)\n")
    pl_mod = tmp_path / "pl_tables.py"
    pl_mod.write_text("import polars as pl\n\n\ndef prestaties__volume_positief(tables):\n"
                      "    return tables['prestaties'].lazy().filter(pl.col('geleverd_volume') < 1)\n")
    sql_file = tmp_path / "CD087_volume_positief.sql"
    sql_file.write_text("SELECT * FROM prestaties WHERE geleverd_volume < 1")
    json_dir = tmp_path / "suites"
    json_dir.mkdir()
    shutil_copy = (EXAMPLES / "gx_weak.json").read_text()
    (json_dir / "prestaties.json").write_text(shutil_copy)
    results = {p.name: _score(capsys, dirty, "--checks", p) for p in (gx_mod, pa_mod, pl_mod, sql_file, json_dir)}
    kinds = [r["run"]["kind"] for r in results.values()]
    assert kinds == ["gx", "pandera", "polars", "sql", "gx"]
    volume = {n: r["checks"][0]["by_fault_type"] for n, r in results.items() if n != "suites"}
    assert all(v == {"volume_not_positive": {"tp": 4, "records": 4, "recall": 1.0}} for v in volume.values()), volume
    assert results["suites"]["scope"]["tables"] == ["prestaties"]
