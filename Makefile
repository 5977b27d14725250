# Resume Training Cookbook: every target sets up what it needs itself.
# `make help` lists them.

# The Python that runs everything. By default a .venv with the pinned packages, created on
# first use. On a GPU runner with its own CUDA torch: `make test-gpu PYTHON=python3`
# (no venv, nothing downloaded; missing packages are named, see requirements-gpu.txt).
ifeq ($(origin PYTHON),command line)
DEPS :=
DOCS_DEPS :=
else
PYTHON := .venv/bin/python
DEPS := .venv/.installed
DOCS_DEPS := .venv/.docs-installed
endif
BASE_PYTHON ?= python3
CHROMIUM ?= chromium
export CHROMIUM
KATEX_VERSION := 0.19.1
# Material 9.8 prints, at every build, a notice that MkDocs 2.0 will not run it and names its
# successor (Zensical). Silenced because it is the same every build and says nothing about
# this site; the move is tracked as an open issue, and the notice matters again no later than
# Material's end of life, 2027-05-05: remove this line then, or when the move starts.
export NO_MKDOCS_2_WARNING := 1
# The examples are tiny: one thread each is faster than threads fighting over two cores.
export OMP_NUM_THREADS ?= 1

.DEFAULT_GOAL := help
.PHONY: help serve build build-times test test-all test-scaffold lint-ja verified new-page test-gpu test-portable test-a11y outputs plots zensical-parity node browser notebooks bench weight linkcheck katex clean

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# The site build needs no torch (requirements-docs.txt); the tests need everything.
.venv/.docs-installed: requirements-docs.txt
	test -x .venv/bin/python || $(BASE_PYTHON) -m venv .venv
	.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-docs.txt
	touch $@

.venv/.installed: requirements.txt requirements-docs.txt .venv/.docs-installed
	.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# nbconvert, imported by mkdocs-jupyter, otherwise loads every exporter it knows (PDF, slides...)
# to list them in a help text the build never shows: half a second of every build.
SITE_ENV := NBCONVERT_DISABLE_CONFIG_EXPORTERS=1

# Not `serve --dirtyreload`: with `strict: true` it aborts at once (a dirty build warns), and
# without strict, a snippet or output edit shows on no page, other pages keep an edited page's
# old title in their navigation, and the search index fills with duplicates (634 entries,
# 4890 after two edits). hooks/build_cache.py renders again only the pages that changed.
serve: $(DOCS_DEPS) node ## Serve the site on http://127.0.0.1:8000 (both languages)
	$(SITE_ENV) $(PYTHON) -m mkdocs serve --dev-addr 127.0.0.1:8000

build: $(DOCS_DEPS) node ## Strict build into site/ (SITE_URL=https://... for the hosted address)
	$(SITE_ENV) $(PYTHON) -m mkdocs build --strict

build-times: $(DOCS_DEPS) node ## Where the time of make build and of a make serve rebuild goes (build/reports/)
	$(PYTHON) scripts/build_times.py

# DeepSpeed compiles a small shared-memory op at its first use on a CPU (about two CPU-minutes):
# built once here, into the ignored .cache/ that tests/cookbook_testing names as
# TORCH_EXTENSIONS_DIR, so that no test run pays for it.
DS_OP := .cache/torch_extensions/.deepspeed-shm-built
$(DS_OP): $(DEPS)
	DS_ACCELERATOR=cpu TORCH_EXTENSIONS_DIR=$(CURDIR)/.cache/torch_extensions $(PYTHON) -c \
	  "from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder as B; B().load()"
	touch $@

# Two tiers, told apart by one mark (`slow`, tests/conftest.py): a slow test starts new
# interpreters, notebook kernels or the browser, seconds apiece. `make test` is the inner loop:
# every page block, parity, the outputs, the strict build and its checks, the library, all but
# the slow tests. `make test-all` runs every test, slow ones first; CI runs it (.ci/run).
# Neither writes a file that git sees (--check-tree fails the run if it did); the records of
# what each page was verified with are written only on request: `make verified`, or
# `make test-all PYTEST_ARGS=--record-verified` (the weekly job).
# Bytecode is written even where the environment says not to (PYTHONDONTWRITEBYTECODE): pytest
# keeps its rewritten test modules as bytecode, which saves each worker seconds of collection.
PYTEST_RUN = env -u PYTHONDONTWRITEBYTECODE $(PYTHON) -m pytest -n 2 --dist loadgroup --check-tree
test: $(DEPS) $(DS_OP) node node_modules/.installed ## The inner loop: every page block, parity, outputs, the build; not the slow tests
	$(PYTEST_RUN) -m "not slow and not scaffold" $(PYTEST_ARGS)

test-all: $(DEPS) $(DS_OP) node node_modules/.installed browser ## Everything a CPU-only machine can check: make test + processes killed and signalled, ranks, notebooks, the browser (CI)
	$(PYTEST_RUN) -m "not scaffold" $(PYTEST_ARGS)

test-scaffold: $(DEPS) $(DS_OP) node ## make new-page in a copy of the repository: the new page passes its tests and the build
	$(PYTHON) -m pytest -q -p no:cacheprovider -m scaffold tests/harness/test_new_page.py

verified: $(DEPS) $(DS_OP) ## Run the page blocks and notebooks; record the pages that passed (outputs/verified/)
	$(PYTHON) -m pytest -q -n 2 --dist loadgroup --record-verified tests/harness/test_pages.py tests/notebooks/test_notebooks.py

test-gpu: $(DEPS) ## CUDA blocks and tests; fails without CUDA or if a CUDA test was skipped
	@$(PYTHON) -c "import importlib.util as u, sys; m=[n for n in ('torch','pytest','pytest_codeblocks','pymdownx','markdown','yaml') if not u.find_spec(n)]; sys.exit(f'missing: {m} (see requirements-gpu.txt)' if m else 0)"
	$(PYTHON) -m pytest --gpu --record-verified --ignore=tests/site

# Float results depend on the CPU's SIMD kernels and thread count: run the suite (without the
# site build, which does not compute) under each kernel level the CPU has, at 1 and 3 threads.
PORTABLE_CAPS = default $(if $(filter x86_64,$(shell uname -m)),avx2) $(if $(shell grep -m1 -ow avx512f /proc/cpuinfo 2>/dev/null),avx512)
test-portable: $(DEPS) $(DS_OP) ## The suite as other CPUs run it: each SIMD kernel level x 1 and 3 threads
	@set -e; for cap in $(PORTABLE_CAPS); do for threads in 1 3; do \
	  ATEN_CPU_CAPABILITY=$$cap OMP_NUM_THREADS=$$threads $(PYTHON) -c \
	    "import torch; print(f'== torch {torch.__version__}, kernels {torch.backends.cpu.get_cpu_capability()}, $$threads threads')"; \
	  ATEN_CPU_CAPABILITY=$$cap OMP_NUM_THREADS=$$threads $(PYTHON) -m pytest -q -n 2 --dist loadgroup --ignore=tests/site; \
	done; done

test-a11y: $(DEPS) node browser ## axe-core on every page, both languages and colour schemes (about 2 min)
	A11Y=all $(PYTHON) -m pytest -q tests/site/test_a11y.py

outputs: $(DEPS) $(DS_OP) ## Rerun the page blocks and rewrite their stored outputs (outputs/)
	$(PYTHON) scripts/outputs.py

new-page: $(DEPS) ## New page pair, snippet, output, test, nav: PAGE=recipes/x TITLE="..." TITLE_JA="..."
	@test -n "$(PAGE)" -a -n "$(TITLE)" -a -n "$(TITLE_JA)" || { echo 'usage: make new-page PAGE=<section>/<topic> TITLE="..." TITLE_JA="..."'; exit 2; }
	$(PYTHON) scripts/new_page.py "$(PAGE)" "$(TITLE)" "$(TITLE_JA)"

plots: $(DEPS) ## Redraw the plots pages embed (docs/assets/plots/) from the recipes' code
	$(PYTHON) scripts/plots.py

# The newest Zensical in a venv of its own (it is not pinned: the point is to see the newest).
zensical-parity: $(DOCS_DEPS) node ## Build with the newest Zensical too; report what differs (never fails)
	test -x .venv-zensical/bin/zensical || $(BASE_PYTHON) -m venv .venv-zensical
	.venv-zensical/bin/python -m pip install --quiet --disable-pip-version-check --upgrade zensical
	$(PYTHON) scripts/zensical_parity.py --zensical .venv-zensical/bin/zensical

# textlint and its Japanese presets (package.json, pinned by package-lock.json), for
# scripts/lint_ja.py, which tests/harness/test_japanese.py runs. npm comes with Node.js, but not in
# Debian's nodejs package.
node_modules/.installed: package.json package-lock.json | node
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; } || \
	  { echo "textlint needs npm on the PATH: sudo apt-get install npm"; exit 1; }
	npm ci --no-audit --no-fund --silent
	touch $@

lint-ja: node_modules/.installed ## The Japanese style sheet (textlint + the glossary's terms) on every Japanese page
	$(PYTHON) scripts/lint_ja.py

node: ## Check for Node.js, which typesets the math at build time (installs Debian's as root)
	@if command -v node >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's nodejs to typeset the math at build time"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; \
	else \
	  echo "The build needs Node.js (node on the PATH): sudo apt-get install nodejs"; exit 1; \
	fi

browser: ## Install Debian's chromium for the browser test (as root), or say what to install
	@if command -v $(CHROMIUM) >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	else \
	  echo "NOTE: the browser test needs Debian's chromium: sudo apt-get install chromium fonts-noto-cjk"; \
	fi

notebooks: $(DEPS) ## Re-execute the notebooks in place (their stored outputs are tested)
	$(PYTHON) scripts/run_notebooks.py

bench: $(DEPS) ## Checkpoint cost benchmark (CPU; minutes): JSON, plots, tables for its page
	$(PYTHON) bench/checkpoint_bench.py

weight: $(DEPS) browser ## Page weight of every built page (gzip KB, requests) against its budget
	$(PYTHON) scripts/page_weight.py

linkcheck: build ## Check the external links of the built site (needs network)
	$(PYTHON) scripts/check_links.py site

katex: ## Refresh the self-hosted KaTeX from the npm package (pinned version)
	rm -rf build/katex && mkdir -p build/katex
	cd build/katex && npm pack --silent katex@$(KATEX_VERSION) && tar xzf katex-$(KATEX_VERSION).tgz
	rm -rf docs/assets/katex && mkdir -p docs/assets/katex/fonts
	cp build/katex/package/dist/katex.min.js build/katex/package/dist/katex.min.css build/katex/package/LICENSE docs/assets/katex/
	cp build/katex/package/dist/fonts/*.woff2 docs/assets/katex/fonts/

clean: ## Remove the build outputs (keeps .venv)
	rm -rf site build .cache
