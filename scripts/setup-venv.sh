#!/usr/bin/env bash
# Create the virtual environment VENV (default .venv) when missing and install
# neurofem into it, editable, with its test extras. Safe to re-run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-.venv}

if [ ! -x "$venv/bin/python" ]; then
  py=$(bash "$here/scripts/find-python.sh")
  echo "setup: creating $venv with $py"
  "$py" -m venv "$venv"
fi
echo "setup: installing neurofem (editable, extras: test) into $venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# The solver wheel pulls PETSc, MPICH (mpiexec lands in $venv/bin) and mpi4py.
"$venv/bin/python" -m pip install --quiet -e "$here[test]"
"$venv/bin/python" -c "import meshes.fenics as d; print('setup: DOLFINx', d.dolfinx.__version__, '| PETSc', '.'.join(map(str, d.PETSc.Sys.getVersion())))"
