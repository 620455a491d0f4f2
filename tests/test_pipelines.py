"""The Dagster code location: definitions, in-process partition runs with checks, the warehouse, the runner, the UI."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from pipelines.assets import ADMIN_TABLES, GeneratorResource, build_assets
from pipelines.settings import Settings
from pipelines.storage import ParquetIOManager
from synthetic_data import ConfigError
from synthetic_data.dictionary import table_names, tables as dictionary

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_definitions_load_with_every_table_as_an_asset():
    from pipelines.definitions import GEMEENTEN, defs

    assert dg.Definitions.validate_loadable(defs) is None
    graph = defs.resolve_asset_graph()
    keys = {k.path[-1] for k in graph.get_all_asset_keys()}
    dirty = {f"dirty_{t}" for t in ADMIN_TABLES} | {"ground_truth", "check_findings", "check_scorecard"}
    import experiments as ex

    exps = ex.discover()
    experiment_assets = ({f"task_{e.task}" for e in exps} | {f"experiment_{e.team}__{e.name}" for e in exps}
                         | {f"score_{e.team}__{e.name}" for e in exps})
    assert keys == set(table_names()) | {"warehouse", "report", "ijw_messages"} | dirty | experiment_assets
    assert len(GEMEENTEN.get_partition_keys()) == 14     # Twente by default
    spec = {s.key.path[-1]: s for s in defs.resolve_all_asset_specs()}
    schema = spec["prestaties"].metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns] == list(dictionary()["prestaties"]["columns"])
    assert spec["prestaties"].group_name == "claims" and spec["trajecten"].group_name == "ground_truth"


def test_bad_environment_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("ZANDBAK_REGION", "atlantis")
    with pytest.raises(ConfigError, match="ZANDBAK_REGION: unknown region 'atlantis'"):
        Settings.from_env()
    monkeypatch.setenv("ZANDBAK_REGION", "twente")
    monkeypatch.setenv("ZANDBAK_SCALE", "0")
    with pytest.raises(ConfigError, match="ZANDBAK_SCALE"):
        Settings.from_env()


def _small_defs(data_dir: Path):
    settings = Settings(region="0147", years="2024", seed=5, scale=0.3, data_dir=str(data_dir))
    parts = dg.StaticPartitionsDefinition(["0147"])
    assets = build_assets(parts)
    resources = {
        "generator": GeneratorResource(region="0147", years="2024", seed=5, scale=0.3, data_dir=settings.data_dir),
        "parquet": ParquetIOManager(lake=str(settings.lake), config_json=json.dumps(settings.config().as_dict())),
    }
    return settings, {a.node_def.name: a for a in assets}, resources


@pytest.fixture(scope="module")
def materialised(tmp_path_factory):
    """reference and the 0147 partition of administration materialised once (each materialisation runs the GX
    checks of every table): the result, and the data folder the tests below copy instead of materialising again."""
    settings, assets, resources = _small_defs(tmp_path_factory.mktemp("materialised") / "data")
    assert dg.materialize([assets["reference"]], resources=resources).success
    res = dg.materialize([assets["administration"]], partition_key="0147", resources=resources)
    return settings, assets, resources, res


@pytest.fixture
def materialised_copy(materialised, tmp_path):
    """The definitions on a copy of the materialised data folder: as if reference and administration had just run."""
    import shutil

    shutil.copytree(materialised[0].data_dir, tmp_path / "data")
    return _small_defs(tmp_path / "data")


def test_partition_materialises_with_passing_checks(materialised):
    settings, assets, resources, res = materialised
    assert res.success
    checks = res.get_asset_check_evaluations()
    from pipelines.checks import rules_on

    from synthetic_data.faults import catalogue

    # every check passes but the WARN timeliness rules, which the clean data's normal late messages break
    normal = {f["rule_id"] for f in catalogue() if f.get("normal_process")}
    assert len(checks) == len(ADMIN_TABLES) + len(rules_on(ADMIN_TABLES))
    assert all(c.passed for c in checks if c.check_name not in normal)
    assert all(c.severity == dg.AssetCheckSeverity.WARN for c in checks if not c.passed)
    by_name = {c.check_name: c for c in checks}
    tr338 = by_name["TR338_TR304_prestatie_bij_toewijzing_van_client"].metadata
    assert tr338["rule_code"].value == "TR338" and tr338["failing"].value == 0
    # GX Data Docs of this partition run and the index of all, as file:// URLs that open the offline pages
    from urllib.parse import unquote, urlparse

    assert tr338["data_docs"].value.startswith("file://")
    assert Path(unquote(urlparse(tr338["data_docs"].value).path)).exists()
    assert Path(unquote(urlparse(tr338["data_docs_index"].value).path)).exists()
    mats = {m.asset_key.path[-1]: m for m in res.get_asset_materialization_events()}
    assert set(mats) == set(ADMIN_TABLES)
    meta = mats["prestaties"].materialization.metadata
    assert meta["dagster/row_count"].value > 0 and "referentie_nummer" in meta["preview"].value
    # the partition's file is watermarked and equals the generator's own output for that gemeente
    from synthetic_data import GeneratorConfig, generate
    from synthetic_data.dataset import is_synthetic

    path = settings.lake / "prestaties" / "0147.parquet"
    assert is_synthetic(path)
    expected = generate(GeneratorConfig(region="0147", years="2024", seed=5, scale=0.3))["prestaties"]
    assert pl.read_parquet(path).equals(expected)


def test_key_check_fails_on_duplicate_rows():
    from pipelines.assets import _key_result

    df = pl.DataFrame({"agb_code": ["98000001", "98000001"], "referentie_nummer": ["R1", "R1"]})
    result = _key_result("prestaties", df)
    assert not result.passed and result.metadata["duplicate_rows"].value == 2


def test_warehouse_holds_a_partition_once_after_two_materialisations(materialised_copy):
    settings, assets, resources = materialised_copy      # materialised once already
    assert dg.materialize([assets["administration"]], partition_key="0147", resources=resources).success
    assert dg.materialize([assets["warehouse"], assets["report"]], resources=resources,
                          selection=["warehouse", "report"]).success
    once = pl.read_parquet(settings.lake / "toewijzingen" / "0147.parquet").height
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        n = con.execute("select count(*) from toewijzingen where gemeente_code = '0147'").fetchone()[0]
        dup = con.execute("select count(*) - count(distinct (gemeente_code, toewijzing_nummer, versie)) from toewijzingen").fetchone()[0]
    assert n == once > 0 and dup == 0
    assert "SYNTHETIC DATA" in settings.report.read_text()


def _env(tmp_path, **extra):
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "home"), ZANDBAK_DATA=str(tmp_path / "data"),
               ZANDBAK_SEED="3", ZANDBAK_YEARS="2024", **extra)
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


def test_runner_records_runs_and_reports_a_failing_partition(tmp_path):
    # Flevoland has 6 gemeenten; a folder where Lelystad's trajecten file should go makes that one partition fail.
    # no team experiments (the sandboxed experiments are test_run_kills' and test_experiments_cli's subject): the
    # experiments job still runs, on nothing, so the run stays a few partitions' work on a loaded CI machine
    (tmp_path / "no_teams").mkdir()
    env = _env(tmp_path, ZANDBAK_REGION="Flevoland", ZANDBAK_SCALE="0.05", ZANDBAK_TEAMS=str(tmp_path / "no_teams"))
    settings = Settings(region="Flevoland", years="2024", seed=3, scale=0.05, data_dir=env["ZANDBAK_DATA"])
    (settings.lake / "trajecten" / "0995.parquet").mkdir(parents=True)
    r = subprocess.run([str(BIN / "zandbak"), "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "gemeente 0995 FAILED" in r.stdout and "1 run(s) FAILED: 0995" in r.stderr
    others = [line for line in r.stdout.splitlines() if "] gemeente" in line and "0995" not in line]
    assert len(others) == 5 and all(line.endswith(" ok") for line in others)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        gemeenten = {g for (g,) in con.execute("select distinct gemeente_code from prestaties").fetchall()}
    assert len(gemeenten) == 5 and "0995" not in gemeenten
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 9      # reference, 6 gemeenten, warehouse, experiments
        assert sum(r.status == dg.DagsterRunStatus.FAILURE for r in runs) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dagster_dev_serves_the_asset_graph_and_stops_on_ctrl_c(tmp_path):
    port = _free_port()
    env = _env(tmp_path, ZANDBAK_REGION="twente")
    # `zandbak ui` (what `make ui` runs) starts `dagster dev` on loopback in its own process group
    proc = subprocess.Popen([str(BIN / "zandbak"), "ui", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url + "/server_info", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("dagster dev did not answer within 90 s")
        query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
        req = urllib.request.Request(url + "/graphql", data=query, headers={"Content-Type": "application/json"})
        nodes = json.load(urllib.request.urlopen(req, timeout=30))["data"]["assetNodes"]
        assert {n["assetKey"]["path"][-1] for n in nodes} >= set(table_names())
    finally:
        proc.send_signal(signal.SIGINT)          # Ctrl-C, by PID
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("zandbak ui did not stop within 60 s of Ctrl-C")
    assert "Dagster UI stopped." in proc.stdout.read()
    with pytest.raises(OSError):                 # nothing is left listening: the webserver stopped with it
        urllib.request.urlopen(url + "/server_info", timeout=2)


def test_a_students_downstream_asset_receives_the_partition(materialised_copy):
    settings, assets, resources = materialised_copy
    parts = assets["administration"].partitions_def

    @dg.asset(partitions_def=parts, io_manager_key="parquet")
    def claims_per_product(prestaties: pl.DataFrame) -> pl.DataFrame:
        return prestaties.group_by("product_code").agg(pl.col("ingediend_bedrag").sum())

    res = dg.materialize([assets["administration"], claims_per_product], partition_key="0147", resources=resources,
                         selection=[claims_per_product])
    assert res.success
    out = pl.read_parquet(settings.lake / "claims_per_product" / "0147.parquet")
    total = pl.read_parquet(settings.lake / "prestaties" / "0147.parquet")["ingediend_bedrag"].sum()
    assert out["ingediend_bedrag"].sum() == total > 0


def test_check_factory_reports_failures_with_metadata(tmp_path):
    from pipelines.checks import check_results
    from synthetic_data import GeneratorConfig, generate

    tables = generate(GeneratorConfig(region="0147", years="2024", seed=5, scale=0.3))
    bad = tables["prestaties"].with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("123456789")).otherwise("bsn").alias("bsn"))
    results = {r.check_name: r for r in check_results(dict(tables, prestaties=bad), ["prestaties"], tmp_path / "docs")}
    cs002 = results["CS002_bsn_elfproef_prestaties"]
    assert not cs002.passed and cs002.severity == dg.AssetCheckSeverity.ERROR
    assert cs002.metadata["failing"].value == 3 and cs002.metadata["rule_code"].value == "CS002"
    assert "referentie_nummer" in cs002.metadata["sample_failing_keys"].value
    assert results["XSD_agb_code_prestaties"].passed


def test_dirty_partition_truth_findings_and_scorecard(materialised_copy):
    settings, assets, resources = materialised_copy
    res = dg.materialize([assets["reference"], assets["administration"], assets["dirty_administration"]],
                         partition_key="0147", resources=resources,
                         selection=[f"dirty_{t}" for t in ADMIN_TABLES] + ["ground_truth", "check_findings"])
    assert res.success
    truth = pl.read_parquet(settings.lake / "ground_truth" / "0147.parquet")
    found = pl.read_parquet(settings.lake / "check_findings" / "0147.parquet")
    assert truth.height > 0 and found.height > 0
    checks = res.get_asset_check_evaluations()
    assert any(not c.passed for c in checks)                  # the suite sees the faults, non-blocking
    assert all(c.asset_key.path[-1].startswith("dirty_") for c in checks)
    res = dg.materialize([assets[a] for a in ("reference", "administration", "dirty_administration", "check_scorecard")],
                         resources=resources, selection=["check_scorecard"])
    assert res.success
    meta = res.get_asset_materialization_events()[0].materialization.metadata
    assert meta["recall"].value > 0.5 and meta["precision"].value > 0.9


def test_a_dropped_experiment_file_becomes_assets_and_scores(tmp_path):
    import experiments as ex
    from pipelines.experiment_assets import build_experiment_assets

    root = tmp_path / "teams"
    ex.scaffold("mijn_eerste", "team_x", task="verzoek_triage", root=root)
    assets = build_experiment_assets(seed=3, root=root)
    keys = {k.path[-1] for a in assets for k in a.keys}
    assert keys == {"task_verzoek_triage", "experiment_team_x__mijn_eerste", "score_team_x__mijn_eerste"}
    generator = GeneratorResource(region="0147", years="2024", seed=3, scale=0.3, data_dir=str(tmp_path / "data"))
    res = dg.materialize(assets, resources={"generator": generator})
    assert res.success
    score_meta = next(m for m in res.get_asset_materialization_events()
                      if m.asset_key.path[-1] == "score_team_x__mijn_eerste").materialization.metadata
    assert score_meta["status"].value == "ok" and 0 <= score_meta["score"].value <= 1
    # what Dagster stores between assets holds neither the truth nor the team's predictions
    stored_task = res.output_for_node("task_verzoek_triage")
    assert stored_task.truth.height == 0 and stored_task.inputs["to_predict"].height > 0
    assert res.output_for_node("experiment_team_x__mijn_eerste").predictions is None
    assert list((tmp_path / "data" / "sealed" / "tasks" / "verzoek_triage").glob("*.truth.parquet"))
    board = ex.leaderboard(tmp_path / "data" / "warehouse.duckdb")
    assert board["experiment"].to_list() == ["mijn_eerste"]
