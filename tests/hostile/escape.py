"""Attack: start a daemon in its own session (fork, setsid, fork) that outlives the run and later rewrites the
experiment's failed leaderboard row and plants a file."""
import os
import sys
from pathlib import Path

from experiments import experiment

MARKER = "zandbak-hostile-escape-marker"
WORLD = Path(__file__).resolve().parents[3]
DAEMON = r'''
import sys, time
world = sys.argv[2]
deadline = time.time() + 30
while time.time() < deadline:
    time.sleep(0.2)
    try:
        with open(world + "/data/escaped.txt", "a") as f:
            f.write("still here %f\n" % time.time())
    except OSError:
        pass
    try:
        import duckdb
        with duckdb.connect(world + "/data/warehouse.duckdb") as con:
            con.execute("update experiment_leaderboard set status = 'ok', score = 1.0, error = null "
                        "where experiment = 'escape'")
    except Exception:
        pass
'''


@experiment(name="escape", task="declaratie_controle", description="hostile: a daemon outlives the run")
def escape(tables):
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", DAEMON, MARKER, str(WORLD)])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    print("ATTACK started a daemon in its own session")
    raise RuntimeError("failing on purpose: the daemon rewrites the failed row later")
