"""Attack: three children of 150 MB each under a 300 MB limit (RLIMIT_DATA alone is per process).

Each child is a fresh interpreter, so its own data segment stays under the per-process limit."""
import os
import sys

import polars as pl

from experiments import experiment

CHILD = "import time; block = b'x' * (150 << 20); time.sleep(4)"     # 150 MB, written, so resident


def accept_all(tables):
    return tables["to_predict"].select("regel").with_columns(besluit=pl.lit("accept"), retourcode=pl.lit(None, pl.String))


@experiment(name="fork_memory", task="declaratie_controle", description="hostile: memory spread over processes")
def fork_memory(tables):
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            try:
                os.execv(sys.executable, [sys.executable, "-c", CHILD])
            finally:
                os._exit(1)
        children.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    if codes == [0, 0, 0]:
        print("ATTACK 3 children of 150 MB ran")
    else:
        print(f"ATTACK children failed: exit codes {codes}")
    return accept_all(tables)
