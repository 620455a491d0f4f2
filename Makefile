# Two commands on a fresh machine: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3000
export DAGSTER_HOME := $(CURDIR)/dagster_home

.PHONY: install run ui generate test bench docs clean demo

install: $(STAMP)

# Re-install only when the project definition changes; quick when already done.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Every asset of the default region (Twente 2024, seed 42; ZANDBAK_* variables override) through real Dagster runs.
run: install
	$(BIN)/zandbak run

# The Dagster UI on 127.0.0.1 with the runs of `make run`; Ctrl-C stops it.
ui: install
	$(BIN)/zandbak ui --port $(PORT)

# Something to show within two minutes: a small gemeente's challenge in the arena (127.0.0.1:8000) and the Dagster
# UI (127.0.0.1:$(PORT)), with the gemeente's full run materialising behind them; Ctrl-C stops everything.
ARENA_PORT ?= 8000
demo: install
	$(BIN)/zandbak demo --ui-port $(PORT) --arena-port $(ARENA_PORT)

# A dataset folder without Dagster: make generate OUT=data/twente
OUT ?= data/twente
generate: install
	$(BIN)/zandbak generate --region twente --years 2024 --seed 42 --scale 1.0 --out $(OUT)

# The suite in PYTEST_WORKERS processes (pytest-xdist), whole files per worker so each module builds its data once;
# PYTEST_WORKERS=0 runs it in this process. Half the suite waits on subprocesses, GX or imports (one core each).
PYTEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

# Speed is measured here, not in tests: generator, rule registry and scoring a team's checks, each against
# baselines of the same run.
bench: install
	$(BIN)/python benchmarks/bench_generate.py
	$(BIN)/python benchmarks/bench_check.py
	$(BIN)/python benchmarks/bench_byo.py
	$(BIN)/python benchmarks/bench_ijw.py

docs: install
	$(BIN)/zandbak docs

clean:
	rm -rf data .pytest_cache dagster_home/storage dagster_home/history dagster_home/schedules
