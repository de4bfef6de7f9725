# pnf — one command per job. `make figures` and `make test` set everything up themselves.
# PROFILE=quick (default: 2 CPU cores, minutes) or PROFILE=paper (the paper's scale).

PROFILE ?= quick
PYTHON ?= python3
VENV ?= .venv
# The CPU build on disk here; on a CUDA machine e.g. TORCH_SPEC="torch==2.13.0 --index-url <cuda index>"
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
export PNF_CACHE ?= $(CURDIR)/reports/cache
export PNF_DATA ?= $(CURDIR)/data
export MPLBACKEND := Agg

IMAGE_NOTEBOOKS := image_convergence fig1a_image
BOCC_NOTEBOOKS :=
NERF_NOTEBOOKS :=
OTHER_NOTEBOOKS :=
NOTEBOOKS := $(IMAGE_NOTEBOOKS) $(BOCC_NOTEBOOKS) $(NERF_NOTEBOOKS) $(OTHER_NOTEBOOKS)

PNF_SOURCES := $(shell find pnf -name '*.py' 2>/dev/null)
REPORT_DEPS := $(PNF_SOURCES) reports/.profile-$(PROFILE) $(VENV)/.installed $(wildcard $(PNF_DATA)/*)

.PHONY: figures image-exp bocc-exp nerf-exp test data bench lab env clean-cache clean
.DELETE_ON_ERROR:

figures: $(NOTEBOOKS:%=reports/%.html) reports/index.html
image-exp: $(IMAGE_NOTEBOOKS:%=reports/%.html) reports/index.html
bocc-exp: $(BOCC_NOTEBOOKS:%=reports/%.html) reports/index.html
nerf-exp: $(NERF_NOTEBOOKS:%=reports/%.html) reports/index.html

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Reports of another profile are stale: this stamp changes when PROFILE does.
reports/.profile-$(PROFILE):
	mkdir -p reports
	rm -f reports/.profile-*
	touch $@

# Execute with Papermill (a failing cell fails make with its traceback and leaves no
# HTML), keep the executed notebook beside the HTML, hide code cells in the HTML.
reports/%.html: notebooks/%.ipynb $(REPORT_DEPS)
	rm -f $@
	cd notebooks && ../$(BIN)/papermill --log-output --no-progress-bar $*.ipynb ../reports/$*.ipynb -p profile $(PROFILE)
	$(BIN)/jupyter nbconvert --log-level WARN --to html --no-input reports/$*.ipynb --output-dir reports

reports/index.html: $(wildcard reports/*.ipynb) $(VENV)/.installed
	$(BIN)/python -m pnf.index reports

test: $(VENV)/.installed
	$(BIN)/python -m pytest

data: $(VENV)/.installed
	$(BIN)/python -m pnf.fetch $(PNF_DATA)

lab: $(VENV)/.installed
	$(BIN)/jupyter lab notebooks

clean-cache:
	rm -rf $(PNF_CACHE)

clean:
	rm -rf reports/*.html reports/*.ipynb reports/.profile-*
