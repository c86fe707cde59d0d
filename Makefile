# The targets create .venv themselves when it is missing or older than the files that define it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-extras demo lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks
	$(BIN)/python -m pytest -q

# timm and torchvision backbones end to end, in their own venv (.extras-venv, made by
# tests/extras/venv.sh without downloading a CUDA build of torch; about 2 min to make, 2 min to run).
test-extras:
	bash tests/extras/venv.sh
	SIAMKIT_EXTRAS=1 .extras-venv/bin/python -m pytest -q tests/extras

demo: $(STAMP)
	$(BIN)/siamkit demo

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests examples benchmarks
	$(BIN)/ruff check --fix src tests examples benchmarks

# Benchmarks (docs/benchmarks.md): a separate venv with torch 2.14.1, torchvision and lightly.
# Run on an idle machine; they take about 20 minutes. Not part of `make test`.
bench:
	bash benchmarks/bench_venv.sh
	.bench-venv/bin/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .bench-venv .extras-venv build dist src/*.egg-info .pytest_cache .ruff_cache
