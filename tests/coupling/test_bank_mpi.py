"""A bank dealt over 2 ranks (run under `mpiexec -n 2`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_bank_training import BANK, _problem

import meshes
import spiking
from coupling.config.bank import FeaturesSpec as Features
from coupling.microstructure_features import microstructure_features
from coupling.residuals.bank import dealt, discretise_bank, microstructure_of
from meshes.bank import bank_members, parse_bank
from meshes.fenics import MPI


@pytest.mark.mpi
def test_ranks_hold_their_members_and_sum_to_the_mean_over_all_draws():
    """Member i lives on rank i mod 2; the loss summed over ranks is the mean of every
    rank's draws (each member's own parametric energy, recomputed serially here; 1e-10),
    so the gradients fit sums over ranks are those of that mean."""
    comm = MPI.COMM_WORLD
    train = bank_members(parse_bank({**BANK, "count": 4}))[0]
    mine = dealt(4, comm)
    assert mine == [comm.rank, comm.rank + 2]
    bank = discretise_bank([_problem(train[i]) for i in mine], mine, 4, features=Features(),
                           draws=2, validate=0, dtype=torch.float64, comm=comm)
    net = spiking.MLP(bank.in_dim, [16], out_dim=bank.out_dim, seed=0, dtype=torch.float64,
                      bounds=bank.bounds)
    draws = bank.sample(3)
    loss, _ = bank.loss(net, draws)
    total = comm.allreduce(float(loss.detach()), op=MPI.SUM)
    every = comm.allgather([(mine[i], mu.numpy()) for i, mu in draws])
    serial = discretise_bank([_problem(m) for m in train], list(range(4)), 4,
                             features=Features(), validate=0, dtype=torch.float64,
                             comm=MPI.COMM_SELF)
    energies = [float(serial.members[i].loss(net, torch.as_tensor(mu))[0])
                for part in every for i, mu in part]
    assert total == pytest.approx(np.mean(energies), rel=1e-10)


@pytest.mark.mpi
def test_features_are_the_same_on_one_and_two_ranks():
    """The features at the nodes of a mesh distributed over 2 ranks equal the serial ones
    at the same coordinates (they depend on the point and the microstructure alone)."""
    comm = MPI.COMM_WORLD
    member = bank_members(parse_bank({**BANK, "count": 1}))[0][0]
    dm = meshes.build(comm=comm, **member)
    micro = microstructure_of(dm)
    x = dm.mesh.geometry.x[:, :2]
    local = microstructure_features(x, micro["centres"], micro["radii"],
                                    micro["periodic_axes"], 2)
    xs = np.concatenate(comm.allgather(x))
    fs = np.concatenate(comm.allgather(local))
    serial = meshes.build(comm=MPI.COMM_SELF, **member)
    ms = microstructure_of(serial)
    ref = microstructure_features(xs, ms["centres"], ms["radii"], ms["periodic_axes"], 2)
    np.testing.assert_allclose(fs, ref, rtol=0, atol=1e-12)
