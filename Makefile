# Everything a fresh machine needs: `make test` and `make book` create (or reuse) the
# virtualenv in .venv and install the package with its extras into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.d2lcv-installed
WORKERS ?= 2
CH ?=

.PHONY: install test unit book chapter colab bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[book,test]"
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps "d2l==1.0.3"
	touch $@

# The whole test suite: unit tests, then every chapter notebook under nbval (smoke profile).
# One thread per process: two xdist workers, their notebook kernels and DataLoader workers
# share 2 cores, and oversubscribed OpenMP threads spin instead of working.
test: $(STAMP)
	D2LCV_PROFILE=smoke MPLBACKEND=Agg TQDM_DISABLE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests book \
		-n $(WORKERS) --dist loadfile --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=300 --timeout=600 --durations=15

# Unit tests only (no notebooks).
unit: $(STAMP)
	$(BIN)/python -m pytest tests -n $(WORKERS) --dist loadfile

# The whole book, every notebook executed in the active profile, into _build/html.
book: $(STAMP)
	$(BIN)/python -m d2lcv.book build

# One chapter: make chapter CH=book/cnn/convolutions.md [FORCE=1]  (HTML in _build/chapters/)
chapter: $(STAMP)
	@test -n "$(CH)" || (echo "usage: make chapter CH=book/<chapter>/<name>.md [FORCE=1]" && false)
	$(BIN)/python -m d2lcv.book chapter $(CH) $(if $(FORCE),--force,)

# Notebooks for Colab (published to the `notebooks` branch by the release workflow).
colab: $(STAMP)
	$(BIN)/python -m d2lcv.book colab --out _build/colab

bench: $(STAMP)
	for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf _build
