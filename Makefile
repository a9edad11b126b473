# Two commands do all the set-up: `make lab` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ARGS ?=
# torch and torchvision must be a pair built together; these two lie on this kind of machine's disk.
TORCH_PAIR ?= torch==2.14.1 torchvision==0.29.1

.PHONY: lab test unit quick lint jstest notebooks ui bench chromium docs wheel clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_PAIR)
	$(PIP) install --quiet -e '.[lab]'
	touch $@

# biome (lint and format of the widgets' JavaScript), pinned in package-lock.json
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PIP) install --quiet -e '.[dev]'
	touch $@

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks/01_quickstart.ipynb $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) $(ARGS)

chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

# ruff (lint + format), mypy and biome (the JavaScript), as the pre-commit hooks run them
lint: $(VENV)/.dev-installed node_modules/.installed
	$(VENV)/bin/ruff check hardex_nb tests tests_install bench docs_hooks.py
	$(VENV)/bin/ruff format --check hardex_nb tests tests_install bench docs_hooks.py
	$(VENV)/bin/mypy
	npx --no-install biome check hardex_nb/widgets/static tests/js

# the widgets' JavaScript units (geometry, key table, number format), node's test runner
jstest:
	node --test tests/js/

# two pytest-xdist workers, a module or notebook each at a time (loadscope: one JupyterLab
# for the browser tests, one kernel per notebook, its cells in order), the longest first
# (tests/conftest.py); on 2 cores 1,162 s on 2026-12-04 (over the 10-minute budget: see
# docs/ARCHITECTURE.md), 497 s in an earlier round. ARGS='-n 0': one process
test: lint chromium jstest
	$(PY) -m pytest tests --nbval-lax notebooks -p no:cacheprovider --durations=25 \
		-n 2 --dist loadscope --no-loadscope-reorder $(ARGS)

unit: $(VENV)/.dev-installed
	$(PY) -m pytest tests --ignore=tests/ui $(ARGS)

# the unit tests that train nothing and start no process group: a minute or two while editing
quick: $(VENV)/.dev-installed
	$(PY) -m pytest tests --ignore=tests/ui -m "not slow" $(ARGS)

# the documentation site (mkdocs.yml, docs/) into site/, every warning an error
docs: $(VENV)/.dev-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# the wheel `python -m build` makes, installed into a fresh venv with its runtime dependencies
# only: imports, widget bundles and stylesheet from the installed files, the quickstart's first cells
wheel: $(VENV)/.dev-installed
	$(PY) -m pytest tests_install -p no:cacheprovider $(ARGS)

bench: $(VENV)/.dev-installed
	$(PIP) install --quiet -e '.[bench]' || true
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist site *.egg-info node_modules
