# pnf — one command per job. `make figures` and `make test` set everything up themselves.
# PROFILE=quick (default: 2 CPU cores, minutes) or PROFILE=paper (the paper's scale).
# EXECUTOR=pool (default: a process a core, one torch thread each), inline, local or slurm: where missing
# runs are computed (pnf/runs/executors.py).

PROFILE ?= quick
EXECUTOR ?= pool
PYTHON ?= python3
VENV ?= .venv
# The CPU build on disk here; on a CUDA machine e.g. TORCH_SPEC="torch==2.13.0 --index-url <cuda index>"
TORCH_SPEC ?= torch==2.13.0
REPORTS ?= reports
# Reports built side by side once every run is computed (`runs`); each report's kernel gets
# cores / JOBS torch threads and pool workers.
JOBS ?= 2
MAKEFLAGS += -j$(JOBS)
KERNEL_CORES := $(shell n=$$(nproc); echo $$(( n / $(JOBS) > 0 ? n / $(JOBS) : 1 )))
NOTEBOOK_DIR ?= notebooks
BIN := $(abspath $(VENV))/bin
export PNF_CACHE ?= $(CURDIR)/reports/cache
export PNF_DATA ?= $(CURDIR)/data
export PNF_REPORTS := $(abspath $(REPORTS))
export PNF_PROFILE := $(PROFILE)
export PNF_EXECUTOR := $(EXECUTOR)

# Every notebook is a report; a task's reports are the notebooks named <task>_*.ipynb.
NOTEBOOKS := $(sort $(basename $(notdir $(wildcard $(NOTEBOOK_DIR)/*.ipynb))))
task_notebooks = $(filter $(1)_%,$(NOTEBOOKS))

PNF_SOURCES := $(shell find pnf -name '*.py' 2>/dev/null)
REPORT_DEPS := $(PNF_SOURCES) pnf/templates/offline.html.j2 $(REPORTS)/.profile-$(PROFILE) $(VENV)/.installed $(wildcard $(PNF_DATA)/*)

.PHONY: figures image-exp occupancy-exp bocc-exp nerf-exp test browser data data-if-online estimate runs bench lab env clean-cache clean
.DELETE_ON_ERROR:

# Reports are executed by pnf.render: JOBS side by side, each in a fresh kernel (the next one started,
# torch, matplotlib and pnf imported, while they run); a report is rendered when its HTML is older
# than its notebook or any of REPORT_DEPS; then the index (the scorecard) is written.
render = cd $(NOTEBOOK_DIR) && OMP_NUM_THREADS=$(KERNEL_CORES) PNF_WORKERS=$(KERNEL_CORES) $(BIN)/python -m pnf.render \
  --out $(PNF_REPORTS) --profile $(PROFILE) --jobs $(JOBS) --depends-on $(abspath $(REPORT_DEPS))

figures: $(REPORT_DEPS) | runs
	@$(render) --index -- $(NOTEBOOKS:%=%.ipynb)
# One task's reports sweep only that task's runs.
image-exp: SWEEP_TASKS = --family image
occupancy-exp: SWEEP_TASKS = --family occupancy
nerf-exp: SWEEP_TASKS = --family nerf
image-exp occupancy-exp nerf-exp: %-exp: $(REPORT_DEPS) | runs
	@$(render) --index -- $(addsuffix .ipynb,$(call task_notebooks,$*))
bocc-exp: occupancy-exp

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $@

# Reports of another profile are stale: this stamp changes when PROFILE does.
$(REPORTS)/.profile-$(PROFILE):
	mkdir -p $(REPORTS)
	rm -f $(REPORTS)/.profile-*
	touch $@

# One report: `make reports/NAME.html` (a failing cell fails make with its traceback and leaves
# no HTML; the executed notebook stays beside it). HTML hides the code cells and loads nothing
# from CDNs (pnf/templates/offline.html.j2), so reports read offline.
$(REPORTS)/%.html: $(NOTEBOOK_DIR)/%.ipynb $(REPORT_DEPS) | runs
	@$(render) -- $*.ipynb

test: $(VENV)/.installed browser
	$(BIN)/python -m pytest

# Headless Chromium for the reports' browser check: Debian's packages, installed when absent
# (needs root or sudo; without it the browser test is skipped and says why).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	    >/dev/null 2>&1 || echo "could not install chromium; the browser check will be skipped"; }

data: $(VENV)/.installed
	$(BIN)/python -m pnf.data.fetch $(PNF_DATA)

# Reports first fetch the real data; offline that fails, which is no error: they use embedded data and say so.
data-if-online: $(VENV)/.installed
	$(BIN)/python -m pnf.data.fetch $(PNF_DATA) || echo "make data failed (offline?); reports use the data at hand"

# About how long training the missing runs of PROFILE will take.
estimate: $(VENV)/.installed data-if-online
	$(BIN)/python -m pnf.estimate $(PROFILE)

# Every run the reports read, in one batch of the executor (no core waits for one notebook's
# last run), after saying about how long that will take (not for the tests' tiny profile, which
# trains in seconds); the reports load them from the cache.
runs: $(VENV)/.installed data-if-online
	$(BIN)/python -m pnf sweep $(PROFILE) $(SWEEP_TASKS) $(if $(filter tiny,$(PROFILE)),,--estimate)

# Speed tables -> reports/bench.md. FIGURES=1 also times the figure notebooks (many
# minutes); BENCH_ARGS passes options, e.g. BENCH_ARGS="--size reduced --threads 1".
# KINETO_LOG_LEVEL=6: torch's profiler (the matmul timings) prints no profiler_start/stop lines between the tables
# (6 is above its highest level, USDT; its errors go too, but every table checks its own numbers).
bench: $(VENV)/.installed
	KINETO_LOG_LEVEL=6 $(BIN)/python benchmarks/run.py $(if $(FIGURES),--figures --figures-profile $(PROFILE)) $(BENCH_ARGS)

# The project's own notebooks are trusted first (in this user's notebook signature database), so JupyterLab
# shows their outputs without the "not trusted" notice.
lab: $(VENV)/.installed
	$(BIN)/jupyter trust $(NOTEBOOK_DIR)/*.ipynb >/dev/null
	$(BIN)/jupyter lab $(NOTEBOOK_DIR)

clean-cache: $(VENV)/.installed  # removes only the files pnf wrote; keeps and names anything else
	$(BIN)/python -m pnf cache --clear

clean:
	rm -rf $(REPORTS)/*.html $(REPORTS)/*.ipynb $(REPORTS)/.profile-* $(REPORTS)/claims
