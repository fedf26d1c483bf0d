# Attention, from first principles: one command builds the book, one tests everything.
#   make book       set up (.venv, browser assets) and build the static book into _build/html
#   make test       set up, then ruff, unit tests, nbval over every chapter, the book build, the browser test
#   make execute    re-execute every chapter notebook in place, storing outputs and widget state
#   make exercises  write learner notebooks (solutions removed) into _build/exercises
#   make experiments  (maintainers) re-run the sweeps behind the chapters, SWEEPS=name|module to choose
#   make bench      print the performance table (ratios against references, one run)
#   make gpu-check  on a CUDA GPU: the tests marked cuda, then the bench rows on the GPU, one table
#   make lab        open JupyterLab on the chapters
SHELL := bash
.DEFAULT_GOAL := book
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest -p no:cacheprovider
STAMP := $(VENV)/.installed
STATIC := _build/static
NOTEBOOKS := $(shell find chapters -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' | sort)
# Notebooks and tests run their small models on one thread: on a 2-core machine that is busy with
# anything else, PyTorch's default two threads make tiny recurrent steps 10-70x slower. The stored
# runtimes are measured this way. `make bench` keeps the default threads (it times large kernels).
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: setup lint book test unit nbval browser execute exercises experiments bench gpu-check lab clean constraints

# The environment: re-installed only when its inputs change.
$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24,<27"
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# Browser-side files the book serves itself (no CDN): widget manager, require.js, MathJax.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

$(STATIC)/.stamp: node_modules/.installed $(wildcard attnlib/course/book_static/*)
	rm -rf $(STATIC) && mkdir -p $(STATIC)/requirejs $(STATIC)/widgets $(STATIC)/mathjax $(STATIC)/course
	cp attnlib/course/book_static/*.js attnlib/course/book_static/*.css $(STATIC)/course/
	cp node_modules/requirejs/require.js $(STATIC)/requirejs/
	cp node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js $(STATIC)/widgets/
	cp node_modules/@jupyter-widgets/html-manager/dist/*.{woff,woff2,ttf,eot,svg} $(STATIC)/widgets/
	cp -r node_modules/mathjax/es5/{tex-chtml.js,input,output,a11y,ui} $(STATIC)/mathjax/
	touch $@

setup: $(STAMP) $(STATIC)/.stamp

book: setup
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going

lint: setup
	$(VENV)/bin/ruff check attnlib tests

unit: setup
	$(ONE_THREAD) $(PYTEST) -m "not browser" tests

nbval: setup
	$(ONE_THREAD) $(PYTEST) --nbval-lax --nbval-current-env --nbval-cell-timeout=300 $(NOTEBOOKS)

browser: setup
	$(PYTEST) -m browser tests

test: lint unit nbval book browser

execute: setup
	$(ONE_THREAD) $(PY) -m attnlib.course.execute $(NOTEBOOKS)

exercises: setup
	$(PY) -m attnlib.course.learner --out _build/exercises $(NOTEBOOKS)

# Maintainer sweeps too long for a notebook; results go to attnlib/experiments/results/ and are committed.
experiments: setup
	$(ONE_THREAD) $(PY) -m attnlib.experiments.results $(SWEEPS)

bench: setup
	$(PY) -m attnlib.course.bench

# The tests marked `cuda` (elsewhere they skip), then every bench row on the GPU; needs a CUDA torch.
gpu-check: setup
	$(PYTEST) -m cuda -rs tests
	$(PY) -m attnlib.course.bench --device cuda

lab: setup
	$(VENV)/bin/jupyter lab chapters

constraints: setup
	{ echo "# Fully pinned versions CI tested; regenerate with 'make constraints'."; \
	  $(PY) -m pip freeze --exclude-editable | sed -e 's/+cpu$$//'; } > constraints.txt

clean:
	rm -rf _build
