# Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo demo-best test test-fast docs bench bench-transformer bench-tune reliability install browser clean

$(BIN)/ensemble: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,serve,mlflow]'
	touch $@

install: $(BIN)/ensemble

demo: install  ## create the environment, train the default ensemble, write submission.csv
	$(BIN)/ensemble demo

demo-best: install  ## the best preset: adds a fine-tuned transformer (weights fetched once)
	$(BIN)/ensemble demo --preset best

# The report's browser test needs Debian's chromium; installed here when missing (as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null; \
	  else \
	    echo "the browser test needs chromium: sudo apt-get install chromium"; exit 1; \
	  fi; }

test: install browser  ## create the environment, lint, build the docs, run the test suite
	$(BIN)/ruff check .
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -q
	$(BIN)/python -m pytest -q

test-fast: install  ## lint and the tests not marked slow (a quicker loop; CI runs `make test`)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow"

docs: install  ## serve the manual at http://127.0.0.1:8000 (docs/, mkdocs.yml)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: install  ## members, engine overhead, streaming at 1M rows -> benchmarks/results/ (< 20 min)
	$(BIN)/python benchmarks/members.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/streaming.py

bench-transformer: install  ## the transformer member and the best preset -> benchmarks/results/ (~2 h)
	$(BIN)/python benchmarks/transformer.py
	$(BIN)/python benchmarks/transformer_folds.py
	$(BIN)/python benchmarks/transformer_overhead.py
	$(BIN)/python benchmarks/transformer_throughput.py
	$(BIN)/python benchmarks/best_preset.py
	$(BIN)/python benchmarks/best_preset_cv.py
	$(BIN)/python benchmarks/stacking_meta.py

bench-tune: install  ## a 10-minute `ensemble tune`, before/after on the reference split, kill -9 x20 (~25 min)
	$(BIN)/python benchmarks/tune.py

reliability: install browser  ## hostile inputs and kill -9 cycles at scale -> results/reliability.md
	$(BIN)/python benchmarks/reliability.py

clean:
	rm -rf $(VENV) models/disaster-tweets submission.csv site
