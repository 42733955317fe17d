# Two entry points (see README): `make book` sets up and builds the book; `make test` runs every test.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat constraints.txt pyproject.toml | cksum | cut -d' ' -f1)
ASSETS  := _assets/.fetched-v3
export NCBOOK_FAST ?= 1

.PHONY: book test setup notebooks lint clean

book: setup
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "Book built: open _build/html/index.html"

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

setup: $(STAMP) $(ASSETS)

$(STAMP): constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[widgets,data,book,course,dev]"
	rm -f $(VENV)/.installed-* && touch $@

$(ASSETS): scripts/fetch_assets.sh
	bash scripts/fetch_assets.sh

# Regenerate each chapter's .ipynb twin (no outputs) from its MyST .md source.
notebooks: setup
	$(BIN)/python scripts/sync_notebooks.py

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf _build

# Colab's ipywidgets 7 in a folder of its own, for tests/test_colab.py (it goes ahead of the venv there).
IPYW7   := $(VENV)/ipywidgets7
setup: $(IPYW7)/.installed
$(IPYW7)/.installed: tests/colab-ipywidgets7.txt $(STAMP)
	rm -rf $(IPYW7)
	$(BIN)/python -m pip install -q --no-deps --target $(IPYW7) -r tests/colab-ipywidgets7.txt
	touch $@
