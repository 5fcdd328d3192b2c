"""Piecewise-elasticity residuals on 2 ranks (run under `mpiexec -n 2`): the strong-form SP
rows stay exact for the laminate solution, and the vanilla PINN's loss is the serial one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from elastic_helpers import laminate_exact, laminate_mesh, laminate_spec

import coupling
import fem
import meshes
from fem.config import parse_problem
from meshes.fenics import MPI

pytestmark = pytest.mark.mpi
comm = MPI.COMM_WORLD


@pytest.mark.parametrize("dim", [2, 3])
def test_sp_rows_exact_for_the_laminate_on_two_ranks(dim):
    """Every owned row of the SP residual (interior, interface, traction) vanishes (to 1e-12)
    for the analytic laminate displacement on a distributed mesh, on every rank; the rows
    reach off-rank nodes (their serial stencils), evaluated at the residual's inputs."""
    dm = laminate_mesh(dim, 12 if dim == 2 else 6, comm)
    disc = coupling.discretise(fem.build_problem(dm, laminate_spec(dim)), "sp",
                               boundary="soft", dtype=torch.float64)
    res = disc.residual
    x = res.x.numpy()[:, :dim]  # every column's node: local, and off-rank stencil nodes
    assert len(x) >= disc.operators.layout.n_local // dim
    u = torch.as_tensor(laminate_exact(x, dim).reshape(-1))
    rows = (res.A @ u[:, None])[:, 0] - res.c
    counts = comm.allreduce(np.array(res.counts))
    assert counts.min() > 0  # interior, interface and traction rows exist
    assert float(rows.abs().max()) < 1e-12


def test_autograd_elastic_loss_is_the_serial_loss():
    """The same RVE on 2 ranks and on one: per-term sums over ranks equal the serial terms
    (owned cells and facets each counted once), for the same network."""
    spec = parse_problem({"type": "elasticity", "materials": {
        "matrix": {"E": 3.5, "nu": 0.35}, "inclusion": {"E": 70.0, "nu": 0.22}},
        "bcs": [{"boundary": "x0", "type": "roller", "component": 0, "value": 0.0},
                {"boundary": "x1", "type": "roller", "component": 0, "value": 0.01}]})

    def terms(c):
        dm = meshes.build("rve", 0.3, c, n=2, inclusion="sphere")
        disc = coupling.discretise(fem.build_problem(dm, spec), "autograd", boundary="soft",
                                   dtype=torch.float64, interface_distance=True)
        torch.manual_seed(3)
        net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(),
                                  torch.nn.Linear(16, 3)).double()
        res = disc.residual
        sizes = np.array([len(res.volume.w), len(res.interface_p.w), len(res.traction.w)])
        return {k: float(v.detach()) for k, v in res.terms(net).items()}, sizes

    par, n_par = terms(comm)
    ser, n_ser = terms(MPI.COMM_SELF)
    assert np.array_equal(comm.allreduce(n_par), n_ser)
    for k, v in ser.items():
        assert comm.allreduce(par[k]) == pytest.approx(v, rel=1e-10), k
