"""The experiment sandbox against the hostile experiments of tests/hostile/ (one attack each).

Each attack runs through `experiments.run` from a throw-away project (`world`) that holds what an attacker wants:
the pickled task data with its truth in dagster_home/storage, the truth under data/challenges, a warehouse with a
leaderboard, a lake file and another team's code. An attack must get no better than the baseline score (accepting
every line) or fail with a clear status, and none may change a file outside its scratch folder, reach a listener,
or leave a process behind.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import select
import shutil
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import polars as pl
import pytest

import experiments as ex
from experiments import sandbox

HOSTILE = Path(__file__).resolve().parent / "hostile"
REAL = Path(ex.__file__).resolve().parent.parent
ESCAPE_MARKER = "zandbak-hostile-escape-marker"
AVAILABLE = sandbox.available()


def needs(*mechanisms):
    missing = [m for m in mechanisms if m not in AVAILABLE]
    return pytest.mark.skipif(bool(missing), reason=f"not available on this machine: {', '.join(missing)}")


def accept_all(tables):
    return tables["to_predict"].select("regel").with_columns(besluit=pl.lit("accept"), retourcode=pl.lit(None, pl.String))


@pytest.fixture(scope="module")
def task():
    return ex.prepare("declaratie_controle", seed=11, scale=0.05)


@pytest.fixture(scope="module")
def baseline(task):
    return ex.score(task.task, accept_all(task.inputs), task.truth)["score"]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root with the sha256 of its content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_socket()}


def real_snapshot() -> dict[str, str]:
    """The files of the real project an attack could aim at and that nobody edits while the tests run."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((REAL / "experiments" / "teams").rglob("*.py"))}


class World:
    def __init__(self, root: Path, task):
        self.root = root
        self.teams = root / "experiments" / "teams"
        storage = root / "dagster_home" / "storage"
        storage.mkdir(parents=True)
        (storage / "task_declaratie_controle").write_bytes(pickle.dumps(task))
        (root / "data" / "challenges" / "c1").mkdir(parents=True)
        task.truth.write_parquet(root / "data" / "challenges" / "c1" / "truth.parquet")
        lake = root / "data" / "lake" / "seed=11_years=2024_scale=0.05" / "prestaties"
        lake.mkdir(parents=True)
        task.inputs["prestaties"].write_parquet(lake / "all.parquet")
        ex.record(root / "data" / "warehouse.duckdb", ex.RunResult(
            team="someone", experiment="earlier", task=task.task, status="failed", error="x", runtime_s=1.0,
            seed=task.seed, dataset_hash=task.dataset_hash))
        (self.teams / "victim").mkdir(parents=True)
        (self.teams / "victim" / "model.py").write_text(
            "import polars as pl\nfrom experiments import experiment\n\n"
            "@experiment(name='victim_model', task='declaratie_controle')\n"
            "def victim_model(tables):\n    return tables['to_predict']\n")
        (self.teams / "mallory").mkdir()
        self.planted = [Path("/tmp") / f"zandbak-hostile-planted-{root.name}",
                        Path.home() / ".zandbak-hostile-planted"]

    def attacker(self, name: str, **replace: str) -> ex.Experiment:
        source = (HOSTILE / f"{name}.py").read_text()
        for line, new in replace.items():
            assert line in source
            source = source.replace(line, new)
        (self.teams / "mallory" / f"{name}.py").write_text(source)
        [exp] = [e for e in ex.discover(self.teams) if e.name == name]
        return exp


@pytest.fixture
def world(task):
    """The throw-away project, inside the real project's data folder (gitignored): so the attacks aim at a real
    data location, outside /tmp (which the mount namespace hides anyway, when there is one)."""
    data = Path(os.environ.get("ZANDBAK_SANDBOX_TEST_DIR", REAL / "data"))    # e.g. for a user who cannot write here
    created = not data.exists()
    base = data / f".sandbox-test-{uuid.uuid4().hex[:12]}"
    w = World(base / "world", task)
    yield w
    for p in w.planted:      # only the unsandboxed code of old could plant these
        p.unlink(missing_ok=True)
    shutil.rmtree(base, ignore_errors=True)
    if created:
        try:
            data.rmdir()
        except OSError:
            pass


def attack(world: World, task, name: str, limits: ex.Limits | None = None, **replace) -> ex.RunResult:
    """Run one hostile experiment; assert it changed no file outside its scratch folder."""
    exp = world.attacker(name, **replace)
    before, real_before = snapshot(world.root), real_snapshot()
    result = ex.run(exp, task, limits or ex.Limits(timeout_s=60, memory_mb=1024))
    attack_lines = [ln for ln in result.log.splitlines() if ln.startswith("ATTACK")]
    print(f"\n{name}: status {result.status}, score {result.score}, sandbox {getattr(result, 'sandbox', None)!r}, "
          f"error {result.error}\n  " + "\n  ".join(attack_lines))
    assert snapshot(world.root) == before, "the attack changed a file of the project"
    assert real_snapshot() == real_before, "the attack changed a team's file in the real project"
    assert not [p for p in world.planted if p.exists()], "the attack planted a file outside its scratch folder"
    return result


def no_better(result: ex.RunResult, baseline: float) -> bool:
    return result.score is None or result.score <= baseline + 1e-12


# ------------------------------------------------------------------------------------------------------ the attacks

def test_benign_experiment_prints_and_imports(world, task, baseline):
    r = attack(world, task, "benign")
    assert r.status == "ok", r.error
    assert "hello from the benign experiment" in r.log and "temp file" in r.log and "scratch works" in r.log
    assert r.score == pytest.approx(baseline)


def test_unpickling_dagster_storage_gets_no_truth(world, task, baseline):
    r = attack(world, task, "unpickle_storage")
    assert "ATTACK got the truth" not in r.log
    assert no_better(r, baseline), f"scored {r.score} with the unpickled truth"


def test_searching_the_project_for_the_truth_finds_nothing(world, task, baseline):
    r = attack(world, task, "find_truth")
    assert "ATTACK read" not in r.log and "ATTACK got the truth" not in r.log
    assert no_better(r, baseline), f"scored {r.score} with the truth it found"


def test_writing_outside_scratch_changes_nothing(world, task, baseline):
    r = attack(world, task, "write_outside")       # attack() compares the hashes of every file before and after
    assert r.status == "ok", r.error
    done = [ln for ln in r.log.splitlines() if ln.startswith("ATTACK") and "failed to" not in ln]
    assert done == [], done
    assert no_better(r, baseline)


@pytest.fixture
def listener(world):
    """A TCP and UDP listener on 127.0.0.1 and two unix sockets (abstract, and a file in the project's data folder,
    outside the folders the mount namespace hides); what each received."""
    tcp = socket.create_server(("127.0.0.1", 0))
    port = tcp.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    abstract = f"\0zandbak-hostile-{uuid.uuid4().hex}"
    unix_path = str(world.root.parent / "l.sock")
    unix = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
    for s, address in zip(unix, (abstract, unix_path)):
        s.bind(address)
        s.listen()
    got: dict[str, bytes] = {}
    stop = threading.Event()
    names = {tcp: "tcp", udp: "udp", unix[0]: "abstract unix", unix[1]: "unix file"}

    def serve():
        conns = {}
        while not stop.is_set():
            ready, _, _ = select.select([*names, *conns], [], [], 0.05)
            for s in ready:
                if s is udp:
                    got["udp"] = got.get("udp", b"") + udp.recv(65536)
                elif s in names:
                    c, _ = s.accept()
                    conns[c] = names[s]
                    got.setdefault(names[s], b"connected: ")
                else:
                    data = s.recv(65536)
                    got[conns[s]] += data
                    if not data:
                        conns.pop(s).close()
        for c in conns:
            c.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, [abstract, unix_path], got
    stop.set()
    thread.join(5)
    for s in names:
        s.close()


def test_the_network_is_unreachable(world, task, baseline, listener):
    port, sockets, got = listener
    r = attack(world, task, "network", **{"PORT = 0": f"PORT = {port}", "SOCKETS = []": f"SOCKETS = {sockets!r}"})
    time.sleep(0.3)
    assert got == {}, f"the listener received: { {k: v[:60] for k, v in got.items()} }"
    assert r.status == "ok", r.error
    assert no_better(r, baseline)


def _marked() -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if ESCAPE_MARKER.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.fixture
def no_escapees():
    yield
    for pid in _marked():       # what an old, unsandboxed run left behind
        os.kill(pid, signal.SIGKILL)


def test_a_daemon_in_its_own_session_does_not_outlive_the_run(world, task, no_escapees):
    r = attack(world, task, "escape", limits=ex.Limits(timeout_s=60, memory_mb=1024))
    left = _marked()
    assert left == [], f"processes of the run are still alive: {left}"
    assert r.status == "failed" and "failing on purpose" in r.error
    ex.record(world.root / "data" / "warehouse.duckdb", r)       # as `zandbak experiment run` does
    after_record = snapshot(world.root)
    time.sleep(2.5)                                               # the daemon writes every 0.2 s while it lives
    assert snapshot(world.root) == after_record, "something of the run wrote after it ended"
    board = ex.leaderboard(world.root / "data" / "warehouse.duckdb")
    assert board.filter(pl.col("experiment") == "escape")["status"].to_list() == ["failed"]


def test_memory_limit_covers_the_whole_process_tree(world, task):
    r = attack(world, task, "fork_memory", limits=ex.Limits(timeout_s=60, memory_mb=300))
    assert "ATTACK 3 children of 150 MB ran" not in r.log
    assert r.status == "memory", f"{r.status}: {r.error}"
    assert "300 MB" in r.error and "\n" not in r.error and r.score is None
    assert r.runtime_s < 30          # stopped at the limit, not at the time limit


# --------------------------------------------------------------------------------------------- what is recorded

def test_the_result_names_the_mechanisms_in_force(world, task):
    r = attack(world, task, "benign")
    assert set(r.sandbox.split(",")) == AVAILABLE, (r.sandbox, AVAILABLE)
    wh = world.root.parent / "board.duckdb"
    ex.record(wh, r)
    assert ex.leaderboard(wh)["sandbox"].to_list() == [r.sandbox]


# ------------------------------------------------------------------------- without namespaces (e.g. Ubuntu's AppArmor)

@pytest.fixture
def no_namespaces(monkeypatch):
    monkeypatch.setattr(sandbox, "NAMESPACES", False)


@needs("landlock-fs", "landlock-scope")
def test_without_namespaces_the_subreaper_still_collects_the_daemon(world, task, no_escapees, no_namespaces):
    r = attack(world, task, "escape")
    assert "subreaper" in r.sandbox and "pidns" not in r.sandbox
    assert _marked() == [], "the daemon outlived the run"
    assert r.status == "failed"


@needs("landlock-fs")
def test_without_namespaces_the_memory_limit_still_covers_the_tree(world, task, no_namespaces):
    r = attack(world, task, "fork_memory", limits=ex.Limits(timeout_s=60, memory_mb=300))
    assert "tree-memory" in r.sandbox and "pidns" not in r.sandbox
    assert r.status == "memory" and "ATTACK 3 children of 150 MB ran" not in r.log


@needs("landlock-fs", "landlock-net")
def test_without_namespaces_landlock_still_confines(world, task, baseline, no_namespaces):
    for name in ("unpickle_storage", "find_truth", "write_outside"):
        r = attack(world, task, name)
        assert "netns" not in r.sandbox and "landlock-fs" in r.sandbox
        assert "ATTACK got the truth" not in r.log and no_better(r, baseline)
