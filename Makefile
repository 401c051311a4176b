# Everything a fresh machine needs: `make test` and `make book` create (or reuse) the
# virtualenv in .venv and install the package with its extras into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.d2lcv-installed
WORKERS ?= 2
CH ?=

.PHONY: install test unit book chapter colab bench clean browser site-test screenshots

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[book,test]"
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps "d2l==1.0.3"
	touch $@

# The whole test suite: unit tests, then every chapter notebook under nbval (smoke profile),
# then the browser test of the built book (site-test, below).
# One thread per process: two xdist workers, their notebook kernels and DataLoader workers
# share 2 cores, and oversubscribed OpenMP threads spin instead of working.
test: $(STAMP)
	D2LCV_PROFILE=smoke MPLBACKEND=Agg TQDM_DISABLE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests book \
		-n $(WORKERS) --dist loadfile --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=300 --timeout=600 --durations=15 --ignore=tests/site
	$(MAKE) --no-print-directory site-test

# Unit tests only (no notebooks, no browser).
unit: $(STAMP)
	$(BIN)/python -m pytest tests -n $(WORKERS) --dist loadfile --ignore=tests/site

# Debian's headless Chromium, for the browser test and the screenshots (never a browser that a
# pip package downloads): installed when missing and we are root (CI, a fresh machine). Not
# root: `sudo apt-get install chromium`, or CHROMIUM=/path/to/chrome. Without it the browser
# test is skipped, except in CI (CI=true), where it fails.
browser:
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
		|| command -v google-chrome >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium fonts-dejavu-core >/dev/null; \
	else \
		echo "No Chromium, and not root: 'sudo apt-get install chromium' to run the browser test"; \
	fi

# The browser test: the book built once in the smoke profile into _build/html, then every page
# of the toc opened from disk, network off, in Chromium (tests/site), with a screenshot of each.
SITE_PROFILE ?= smoke
site-test: $(STAMP) browser
	D2LCV_PROFILE=$(SITE_PROFILE) $(BIN)/python -m d2lcv_book build
	D2LCV_SITE_TEST=1 $(BIN)/python -m pytest tests/site -p no:cacheprovider --timeout=600 --durations=5

# A PNG of the top of every page and of its first figure, in _build/screenshots, for review
# (of the book in _build/html; built in the active profile first when there is none).
screenshots: $(STAMP) browser
	test -f _build/html/index.html || $(BIN)/python -m d2lcv_book build
	$(BIN)/python -m d2lcv_book.browser screenshots --out _build/screenshots

# The whole book, every notebook executed in the active profile, into _build/html.
book: $(STAMP)
	$(BIN)/python -m d2lcv_book build

# One chapter: make chapter CH=book/cnn/convolutions.md [FORCE=1]  (HTML in _build/chapters/)
chapter: $(STAMP)
	@test -n "$(CH)" || (echo "usage: make chapter CH=book/<chapter>/<name>.md [FORCE=1]" && false)
	$(BIN)/python -m d2lcv_book chapter $(CH) $(if $(FORCE),--force,)

# Notebooks for Colab (published to the `notebooks` branch by the release workflow).
colab: $(STAMP)
	$(BIN)/python -m d2lcv_book colab --out _build/colab

bench: $(STAMP)
	for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf _build
