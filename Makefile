# Two commands on a fresh machine: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= data/twente

.PHONY: install run test bench docs clean

install: $(STAMP)

# Re-install only when the project definition changes; quick when already done.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/zandbak generate --region twente --years 2024 --seed 42 --scale 1.0 --out $(OUT)

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/bench_generate.py

docs: install
	$(BIN)/zandbak docs

clean:
	rm -rf data .pytest_cache
