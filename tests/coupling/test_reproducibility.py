"""What is reproducible (docs/reproducibility.md), checked: the same machine and thread count
give the same training bit for bit; another thread count gives it to the stated tolerance;
and `fit` says which thread count it ran with. Also the input/output-width check of `fit`."""


import pytest
import torch

import coupling
import spiking
from coupling.training.guards import check_network, threads_in_use
from coupling.training.loop import Callback
from coupling.training.parallel import set_threads_per_rank
from meshes.fenics import MPI

# The stated tolerance across thread counts (docs/reproducibility.md): smooth (ANN) float64
# training, 40 Adam steps: losses and parameters agree to 1e-9 relative. BLAS and torch's
# parallel reductions sum in a different order with another thread count, so the last bits
# may differ from the first step on and Adam carries them forward (measured on a 2-core
# Xeon: identical for this 250-node problem; the bound leaves room for other CPUs).
ACROSS_THREADS_RTOL = 1e-9


@pytest.fixture(scope="module")
def disc(make_lshape_poisson):
    return make_lshape_poisson()


class Record(Callback):
    def __init__(self):
        self.losses, self.threads = [], None

    def on_start(self, state):
        self.threads = threads_in_use()

    def on_step(self, state, values):
        self.losses.append(values["loss"])


def _train(disc, threads: int, steps: int = 40):
    """Train a small float64 tanh MLP with `threads` torch/BLAS threads (restored after)."""
    before = torch.get_num_threads()
    set_threads_per_rank(MPI.COMM_SELF, threads)
    try:
        net = spiking.MLP(disc.in_dim, [32, 32], fourier=16, fourier_scale=0.5, seed=0,
                          dtype=torch.float64)
        rec = Record()
        res = coupling.fit(net, disc, steps=steps, lr=5e-3, callbacks=[rec], log_every=steps,
                           handle_signals=False)
    finally:
        set_threads_per_rank(MPI.COMM_SELF, before)
    params = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    return rec, res, params


def test_same_threads_is_bit_for_bit(disc):
    a, ra, pa = _train(disc, 1)
    b, rb, pb = _train(disc, 1)
    assert a.threads == b.threads == 1
    assert a.losses == b.losses and torch.equal(pa, pb)  # identical computation: no tolerance
    assert ra.measures == rb.measures


def test_other_thread_count_agrees_to_the_stated_tolerance(disc):
    one, r1, p1 = _train(disc, 1)
    two, r2, p2 = _train(disc, 2)
    assert (one.threads, two.threads) == (1, 2)
    torch.testing.assert_close(torch.tensor(two.losses), torch.tensor(one.losses),
                               rtol=ACROSS_THREADS_RTOL, atol=0)
    torch.testing.assert_close(p2, p1, rtol=ACROSS_THREADS_RTOL, atol=ACROSS_THREADS_RTOL)
    assert r2.measures["rel_l2"] == pytest.approx(r1.measures["rel_l2"],
                                                  rel=ACROSS_THREADS_RTOL)


def test_fit_result_records_its_thread_count(disc):
    for n in (1, 2):
        _, res, _ = _train(disc, n, steps=2)
        assert res.threads == n


def _net(disc, **kw):
    return spiking.MLP(kw.pop("in_dim", disc.in_dim), [8], seed=0, dtype=torch.float64, **kw)


def test_matching_network_passes_the_width_check(disc):
    check_network(_net(disc), disc)
    check_network(torch.nn.Linear(disc.in_dim, 1), disc)  # no in_dim attribute: not checked


def test_wrong_in_dim_named_in_one_line(disc):
    with pytest.raises(ValueError, match=rf"net.in_dim = 3.*disc.in_dim = {disc.in_dim}") as e:
        check_network(_net(disc, in_dim=3), disc)
    assert len(str(e.value).splitlines()) == 1


def test_wrong_out_dim_named_in_one_line(disc):
    with pytest.raises(ValueError, match="net.out_dim = 2.*1 component") as e:
        check_network(_net(disc, out_dim=2), disc)
    assert len(str(e.value).splitlines()) == 1


def test_fit_refuses_wrong_in_dim_before_any_step(disc):
    rec = Record()
    with pytest.raises(ValueError, match="net.in_dim = 3"):
        coupling.fit(_net(disc, in_dim=3), disc, steps=5, callbacks=[rec],
                     handle_signals=False)
    assert rec.losses == []
