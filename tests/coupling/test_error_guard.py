"""One rank's exception ends a 2-rank run promptly with that rank's message (no deadlock)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coupling.training.parallel import run_collectively
from meshes.fenics import MPI

VENV = Path(sys.executable).parent
MPIEXEC = VENV / "mpiexec"

SCRIPT = """
import sys, time
import numpy as np
from meshes.fenics import MPI
from coupling.training.parallel import run_collectively

comm = MPI.COMM_WORLD
MODE = sys.argv[1]

def work():
    comm.Barrier()
    if MODE == "one" and comm.rank == 1:
        print(f"RAISED_AT {time.time()!r}", flush=True)
        raise ValueError("injected failure on rank 1")
    if MODE == "all":
        raise ValueError("bad config: training.lr must be > 0")
    # Rank 0 goes on into a collective that rank 1 never joins: without the guard,
    # this blocks forever.
    buf = np.zeros(1)
    comm.Allreduce(np.ones(1), buf)
    time.sleep(60)

run_collectively(work, comm=comm, user_errors=(ValueError,))
"""


def launch(tmp_path, mode: str):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, str(script), mode]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    return proc, time.time()


def test_exception_on_one_rank_aborts_all_with_its_message(tmp_path):
    proc, ended = launch(tmp_path, "one")
    raised = float(proc.stdout.split("RAISED_AT ")[1].split()[0])
    latency = ended - raised
    print(f"rank 1 raised -> mpiexec returned in {latency:.2f} s; exit code {proc.returncode}")
    assert proc.returncode != 0, proc.stderr
    assert proc.stderr.count("neurofem: error: [rank 1] injected failure on rank 1") == 1
    assert "Traceback" not in proc.stderr  # a user error: one line, no traceback
    assert latency < 10  # acceptance: the whole run ends within 10 s of the exception


def test_same_error_on_all_ranks_prints_once(tmp_path):
    proc, _ = launch(tmp_path, "all")
    assert proc.returncode == 2
    assert proc.stderr.count("neurofem: error:") == 1, proc.stderr
    assert "bad config: training.lr must be > 0" in proc.stderr


def test_serial_reraises_unchanged():
    def boom():
        raise KeyError("plain")

    with pytest.raises(KeyError, match="plain"):
        run_collectively(boom, comm=MPI.COMM_SELF)
    assert run_collectively(lambda a, b=1: a + b, 2, b=3, comm=MPI.COMM_SELF) == 5
