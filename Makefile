# Two entry points (see README): `make book` sets up and builds the book; `make test` runs every test.
# `make check` is the quick tier: ruff, the unit and property tests and the doctests (no notebook,
# no book build, no browser). Both test targets derandomize hypothesis (profile `ci`, tests/conftest.py).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat constraints.txt pyproject.toml | cksum | cut -d' ' -f1)
ASSETS  := _assets/.fetched-v3
EXTRAS  := widgets,data,book,course,dev
REPORT  := --cov=ncbook --cov-report=term:skip-covered --durations=10
# Two pytest workers (pytest-xdist): one per core; the book is built once, by whichever needs it first.
# worksteal: an idle worker takes tests queued for the other (the browser tests are long and adjacent).
WORKERS ?= -n 2 --dist worksteal
export NCBOOK_FAST ?= 1
export HYPOTHESIS_PROFILE ?= ci

.PHONY: book test check setup browser notebooks lint clean

book: setup
	$(BIN)/python scripts/build_book.py
	@echo "Book built: open _build/html/index.html"

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(WORKERS) $(REPORT)

check: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(WORKERS) -m "not slow and not browser" $(REPORT)

setup: $(STAMP) $(ASSETS)

# The one list of dependencies is pyproject.toml (its extras); constraints.txt pins their versions.
$(STAMP): constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-* && touch $@

# npm fetches the vendored MathJax and widget assets; as root it is installed from Debian if missing.
$(ASSETS): scripts/fetch_assets.sh
	bash scripts/require.sh npm npm
	bash scripts/fetch_assets.sh

# The browser tests drive Debian's chromium (or $NCBOOK_CHROMIUM); as root it is installed if missing.
browser:
	@test -n "$$NCBOOK_CHROMIUM" || bash scripts/require.sh chromium chromium chromium-browser

# Regenerate each chapter's setup cell and its .ipynb twin (no outputs; Colab runtime) from its MyST .md source.
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
