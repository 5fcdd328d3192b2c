# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing (scripts/setup-venv.sh), then runs its job.
VENV   ?= .venv
PY     := $(VENV)/bin/python
MPIEXEC:= $(VENV)/bin/mpiexec
STAMP  := $(VENV)/.neurofem-installed
# One BLAS/OpenMP thread per MPI rank, so 2 ranks do not oversubscribe 2 cores.
MPIENV := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: demo test test-serial test-mpi setup lint docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup-venv.sh
	bash scripts/setup-venv.sh $(VENV)
	touch $@

demo: $(STAMP)
	$(VENV)/bin/neurofem demo

test: test-serial test-mpi

test-serial: $(STAMP)
	$(PY) -m pytest -m "not mpi" --durations=15

# Every rank runs pytest on the `mpi`-marked tests; rank 0's report is the one to read.
test-mpi: $(STAMP)
	$(MPIENV) $(MPIEXEC) -n 2 $(PY) -m pytest -m mpi -p no:cacheprovider --timeout=300

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The documentation site (mkdocs.yml, docs/) into site/; any warning fails the build.
# tests/test_docs.py runs the same build in the serial pass of `make test`.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache site
