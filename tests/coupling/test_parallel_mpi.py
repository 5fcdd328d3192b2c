"""Data-parallel training on 2 ranks equals serial training (run under `mpiexec -n 2`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coupling.training.parallel import (
    allreduce_gradients,
    allreduce_scalars,
    broadcast_state,
    set_threads_per_rank,
)
from meshes.fenics import MPI

pytestmark = pytest.mark.mpi
comm = MPI.COMM_WORLD


def mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 1),
    ).double()


def data(n: int = 97):
    rng = np.random.default_rng(42)  # same on every rank
    x = torch.tensor(rng.uniform(-1, 1, size=(n, 3)))
    y = torch.sin(3 * x[:, :1]) * x[:, 1:2] + x[:, 2:] ** 2
    w = torch.tensor(rng.uniform(0.5, 1.5, size=(n, 1)))  # quadrature-like weights
    return x, y, w


def loss_fn(model, x, y, w):
    return (w * (model(x) - y) ** 2).sum()  # a sum over points: additive over ranks


def my_part(n: int) -> np.ndarray:
    return np.array_split(np.arange(n), comm.size)[comm.rank]


def flat(model) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()


def test_broadcast_makes_parameters_identical():
    model = mlp(seed=100 + comm.rank)  # different on purpose
    model.register_buffer("scale", torch.full((3,), float(comm.rank)))
    broadcast_state(model, comm)
    mine = np.concatenate([flat(model), model.scale.numpy()])
    everyone = comm.allgather(mine)
    assert all(np.array_equal(e, everyone[0]) for e in everyone)
    assert np.array_equal(model.scale.numpy(), np.zeros(3))


def test_summed_gradient_equals_serial_gradient():
    x, y, w = data()
    model = mlp(0)
    broadcast_state(model, comm)
    idx = my_part(len(x))
    loss_fn(model, x[idx], y[idx], w[idx]).backward()
    allreduce_gradients(model, comm)
    serial = mlp(0)
    loss_fn(serial, x, y, w).backward()
    diffs = [
        (p.grad - q.grad).abs().max().item()
        for p, q in zip(model.parameters(), serial.parameters(), strict=True)
    ]
    scale = max(q.grad.abs().max().item() for q in serial.parameters())
    assert max(diffs) < 1e-10 * scale


def test_parameters_without_gradient_on_some_ranks():
    model = torch.nn.ModuleDict({"a": torch.nn.Linear(2, 2), "b": torch.nn.Linear(2, 1)}).double()
    broadcast_state(model, comm)
    x = torch.ones(1, 2, dtype=torch.float64)
    out = model["a"](x).sum() + (model["b"](x).sum() if comm.rank == 0 else 0.0)
    out.backward()
    allreduce_gradients(model, comm)
    # b has a gradient on rank 0 only: the sum is rank 0's; unused-everywhere would stay None
    assert np.allclose(model["b"].weight.grad.numpy(), [[1.0, 1.0]])
    assert np.allclose(model["a"].weight.grad.numpy(), comm.size * np.ones((2, 2)))
    unused = torch.nn.Linear(2, 2)
    allreduce_gradients(unused, comm)
    assert unused.weight.grad is None


def test_scalars_summed_in_one_call():
    total = allreduce_scalars({"pde": 1.0 + comm.rank, "bc": 0.5}, comm)
    assert total == {"pde": sum(1.0 + r for r in range(comm.size)), "bc": 0.5 * comm.size}


def train(comm_, steps: int = 20) -> np.ndarray:
    x, y, w = data()
    model = mlp(7)
    broadcast_state(model, comm_)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    idx = np.array_split(np.arange(len(x)), comm_.size)[comm_.rank]
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model, x[idx], y[idx], w[idx]).backward()
        allreduce_gradients(model, comm_)
        opt.step()
    return flat(model)


def test_twenty_adam_steps_parallel_equal_serial():
    parallel = train(comm)
    serial = train(MPI.COMM_SELF)
    assert np.abs(parallel - serial).max() < 1e-8
    everyone = comm.allgather(parallel)
    assert all(np.array_equal(e, everyone[0]) for e in everyone)  # identical on all ranks


def test_threads_per_rank_share_the_cores():
    threads = set_threads_per_rank(comm)
    assert threads >= 1 and torch.get_num_threads() == threads
