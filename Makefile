# qcdhpc: two commands on a fresh machine.
#   make run    the default job on this machine: results and report under results/
#   make test   the test suite
# Everything else is set up on demand: a virtualenv in .venv, Debian's Open MPI
# (for mpi4py and mpirun), the Python dependencies, and the native build.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.qcdhpc-deps
BUILT  := $(VENV)/.qcdhpc-built
SOURCES := $(shell find csrc -type f) CMakeLists.txt setup.py pyproject.toml
RESULTS ?= results
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: all run test build bench bench-sampler bench-cl toy-cumulants phi4-cpu-hour cl-table cl-bose-scan clean distclean system-deps

all: build

# Debian's Open MPI provides mpicc (to build mpi4py) and mpirun. Installed only
# when missing and when we are root with apt-get; otherwise MPI tests skip.
system-deps:
	@if ! command -v mpicc >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "[qcdhpc] installing Debian openmpi-bin libopenmpi-dev"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null; \
	  else echo "[qcdhpc] warning: no mpicc and cannot apt-get: MPI features and tests will be skipped"; fi; \
	fi

$(STAMP): requirements.txt | system-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@if command -v mpicc >/dev/null 2>&1; then \
	  $(PIP) install -q -r requirements.txt; \
	else grep -v '^mpi4py' requirements.txt > $(VENV)/req-nompi.txt && $(PIP) install -q -r $(VENV)/req-nompi.txt; fi
	@touch $@

$(BUILT): $(STAMP) $(SOURCES)
	$(PIP) install -q --no-build-isolation -e .
	@touch $@

build: $(BUILT)

test: build
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The default workflow (workflows/config/default.yaml) with the local profile; results/ holds the
# ensembles, models, samples, observables, logs and report.  OMPI_ALLOW_RUN_AS_ROOT lets Open MPI's
# mpirun work in root containers (it is ignored otherwise).
run: build
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
	  $(VENV)/bin/snakemake -s workflows/Snakefile --profile workflows/profiles/local \
	  --config results=$(RESULTS) $(SNAKEMAKE_ARGS)
	@echo
	@echo "report: $(RESULTS)/report.md  (and $(RESULTS)/report.html)"

bench: build
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_hmc.py --out $(RESULTS)/bench_hmc.json

bench-sampler: build
	$(PY) benchmarks/bench_sampler.py --out $(RESULTS)/bench_sampler.json

# The seeds' tables (docs/results.md): the double-Gaussian cumulants of VE and VP diffusion models,
# and the 32x32 phi^4 comparison HMC-train / HMC-test / DM sized for about an hour on a CPU.
toy-cumulants: build
	$(VENV)/bin/qcdhpc toy-cumulants --epochs 30 --out $(RESULTS)/diffusion/toy_cumulants.json

phi4-cpu-hour: build
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
	  $(VENV)/bin/snakemake -s workflows/Snakefile --configfile workflows/config/cpu_hour.yaml \
	  --profile workflows/profiles/local $(SNAKEMAKE_ARGS)

# Complex Langevin (docs/results.md): the seeds' quartic table with 10 SBM + 10 EBM models, and the
# Bose-gas <n>(mu) scans on 4^4 and 8^4.
cl-table: build
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/snakemake -s workflows/Snakefile \
	  --configfile workflows/config/cl_table.yaml --profile workflows/profiles/local $(SNAKEMAKE_ARGS)

cl-bose-scan: build
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/snakemake -s workflows/Snakefile \
	  --configfile workflows/config/cl_bose_scan.yaml --profile workflows/profiles/local $(SNAKEMAKE_ARGS)

bench-cl: build
	$(PY) benchmarks/bench_cl.py --out $(RESULTS)/bench_cl.json

clean:
	rm -rf build $(BUILT) qcdhpc/*.so *.egg-info

distclean: clean
	rm -rf $(VENV) $(RESULTS)
