"""A transferred C-LIF flux network (`clif.flux_from`) on 2 ranks (run under `mpiexec -n 2`):
the serial rollout on its own case and on a new, distributed 3D mesh, drift exactly 0."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_clif_transfer import EXAMPLES, _small_heat1d

from coupling.config import parse_clif_config
from coupling.runs.clif import train_clif
from coupling.runs.network import RunResult
from fem.config import load_toml
from meshes.fenics import MPI

TOL = 1e-12  # the rollout is rank 0's either way; the 3D geometry is gathered from 2 ranks


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """One folder every rank sees (rank 0's)."""
    comm = MPI.COMM_WORLD
    return Path(comm.bcast(str(tmp_path_factory.mktemp("clif-transfer")) if comm.rank == 0
                           else None))


@pytest.fixture(scope="module")
def source(base) -> Path:
    """The small 1D heat run of test_clif_transfer (8 steps), trained by rank 0 alone."""
    comm = MPI.COMM_WORLD
    run = base / "source"
    if comm.rank == 0:
        train_clif(parse_clif_config(_small_heat1d()), run, MPI.COMM_SELF, resume=False)
    comm.barrier()
    return run


def _transfer(doc: dict, source: Path, run: Path, comm) -> RunResult:
    """`doc` run with the source's flux network unchanged (0 steps) on `comm`."""
    doc["clif"]["flux_from"] = str(source)
    doc["training"]["steps"] = 0
    return train_clif(parse_clif_config(doc), run, comm, resume=False)


def _outputs(run: Path) -> tuple[dict, dict]:
    """clif_fields.npz and rollout.json of a finished run."""
    return dict(np.load(run / "clif_fields.npz")), json.loads((run / "rollout.json").read_text())


def _assert_same_rollout(par: Path, ser: Path) -> None:
    """The 2-rank run's final field, error curve and quanta are the serial run's."""
    (fa, ra), (fb, rb) = _outputs(par), _outputs(ser)
    np.testing.assert_allclose(fa["u"], fb["u"], rtol=0, atol=TOL)
    curves = [np.array(r["rel_l2"], dtype=float) for r in (ra, rb)]  # None (no reference): nan
    np.testing.assert_allclose(*curves, rtol=0, atol=TOL)
    # exact integers: both rollouts run on rank 0 over the same gathered geometry, in the
    # same face order and float64 (u above agrees to 1e-12), so no rounding of a flux to
    # quanta can fall differently; a flip would show as a one-quantum jump in u as well
    assert np.array_equal(fa["quanta"], fb["quanta"])
    for doc in (ra, rb):  # integer quanta: the budget closes exactly at every step
        assert doc["summary"]["mass_drift"] == 0 and doc["summary"]["mass_drift_max"] == 0
        assert all(d == 0 for d in doc["mass_drift"])


@pytest.mark.mpi
def test_two_ranks_reproduce_the_source_rollout_on_its_own_case(base, source):
    """0 steps on 2 ranks from the serially trained source: its own rollout (to 1e-12),
    the same rel. L2 on every rank, metrics written with ranks = 2."""
    comm = MPI.COMM_WORLD
    run = base / "own"
    result = _transfer(_small_heat1d(), source, run, comm)
    comm.barrier()  # rank 0 wrote the outputs
    _assert_same_rollout(run, source)
    serial = json.loads((source / "rollout.json").read_text())["summary"]["rel_l2"]
    assert result.rel_l2 == pytest.approx(serial, rel=0, abs=TOL)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["ranks"] == comm.size == 2 and rows[-1]["mass_drift"] == 0


def _small_diffusion3d() -> dict:
    """examples/diffusion3d-clif.toml at mesh size 0.4 to t = 0.02 (a new mesh and dimension)."""
    doc = load_toml(EXAMPLES / "diffusion3d-clif.toml")
    doc["mesh"]["size"] = 0.4
    doc["problem"]["time"]["t_end"] = 0.02
    doc["clif"].update(train_until=0.01, window=2, batch=2, records=3)
    doc["training"].update(log_every=1, checkpoint_every=1, progress=False)
    return doc


@pytest.mark.mpi
def test_two_ranks_transfer_to_a_distributed_3d_mesh_like_one(base, source):
    """The 1D network on the cube minus spheres, its mesh split over 2 ranks: the serial
    transfer's rollout (to 1e-12, same quanta), drift exactly 0 on both."""
    comm = MPI.COMM_WORLD
    par, ser = base / "3d-par", base / f"3d-ser{comm.rank}"
    _transfer(_small_diffusion3d(), source, par, comm)
    _transfer(_small_diffusion3d(), source, ser, MPI.COMM_SELF)
    comm.barrier()
    _assert_same_rollout(par, ser)
    fields, rollout = _outputs(par)
    assert rollout["summary"]["boundary_quanta"] != 0  # the Dirichlet faces moved quanta
    assert np.isfinite(fields["u"]).all() and len(fields["u"]) > 100
