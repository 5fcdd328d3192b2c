"""Element sampling under MPI: 2 ranks give the serial estimate for the same draws."""

import numpy as np
import pytest
import torch

import coupling
from meshes.fenics import MPI

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("refresh", [0, 1])
def test_two_ranks_equal_serial_for_the_same_draws(refresh):
    from test_elements import _poisson

    comm = MPI.COMM_WORLD
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    net = net.double()
    values = {}
    for name, c in (("serial", MPI.COMM_SELF), ("parallel", comm)):
        disc = coupling.discretise(_poisson(comm=c), dtype=torch.float64, batch=0.3, seed=5,
                                   refresh=refresh)
        got = []
        for step in range(1, 4):
            e, _ = disc.loss(net, disc.sample(step))
            net.zero_grad()
            e.backward()
            grads = np.concatenate([p.grad.reshape(-1).numpy() for p in net.parameters()])
            got.append(np.concatenate([[float(e)], grads]))
        got = np.array(got)
        values[name] = got if c.size == 1 else c.allreduce(got)
    assert np.allclose(values["serial"], values["parallel"], rtol=1e-10, atol=1e-12)
