"""P2 Galerkin under MPI: 2 ranks give the serial energy and gradient (whole and batched)."""

import numpy as np
import pytest
import torch

import coupling
from meshes.fenics import MPI

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("name", ["poisson", "elasticity"])
@pytest.mark.parametrize("batch, refresh", [(0, 0), (10**9, 0), (0.3, 0), (0.3, 1)])
def test_two_ranks_equal_serial(name, batch, refresh):
    """Energy and parameter gradient of a small network over 3 steps (the same draws of
    cells when batched): the P2 problem on 2 ranks == on one, to 1e-10 relative."""
    from test_galerkin_p2 import PROBLEMS

    comm = MPI.COMM_WORLD
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    net = net.double()
    values = {}
    for label, c in (("serial", MPI.COMM_SELF), ("parallel", comm)):
        problem = PROBLEMS[name](comm=c)
        disc = coupling.discretise(problem, dtype=torch.float64, batch=batch, seed=5,
                                   refresh=refresh)
        assert disc.residual.degree == 2
        bs = disc.block_size
        got = []
        for step in range(1, 4):
            e, _ = disc.loss(lambda x: net(x)[:, :bs], disc.sample(step))  # noqa: B023
            net.zero_grad()
            e.backward()
            grads = np.concatenate([p.grad.reshape(-1).numpy() for p in net.parameters()])
            got.append(np.concatenate([[float(e)], grads]))
        got = np.array(got)
        values[label] = got if c.size == 1 else c.allreduce(got)
    assert np.allclose(values["serial"], values["parallel"], rtol=1e-10,
                       atol=1e-12 * np.abs(values["serial"]).max())
