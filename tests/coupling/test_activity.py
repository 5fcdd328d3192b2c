"""fit(activity_weight=λ): the activity regulariser trades events for error; λ = 0 is
today's training bit for bit."""

import math

import pytest
import torch

import coupling
import spiking
from coupling.training.state import Callback


@pytest.fixture(scope="module")
def disc(make_lshape_poisson):
    return make_lshape_poisson()


def _net(disc, learn=False):
    vsn = lambda n: spiking.VSN(n, activation="tanh", num_steps=1, threshold=0.02,  # noqa: E731
                                learn_threshold=learn)
    return spiking.MLP(disc.in_dim, [32, 32], unit=vsn, fourier=16, fourier_scale=0.5,
                       seed=0, dtype=torch.float64)


class Losses(Callback):
    def __init__(self):
        self.losses, self.terms = [], []

    def on_step(self, state, values):
        self.losses.append(values["loss"])

    def on_log(self, state, record):
        self.terms.append(record["terms"])


def _train(disc, steps=300, learn=False, **kw):
    torch.manual_seed(0)
    net, rec = _net(disc, learn), Losses()
    res = coupling.fit(net, disc, steps=steps, lr=5e-3, schedule="cosine", callbacks=[rec],
                       log_every=50, **kw)
    return net, res, rec


def test_weight_zero_reproduces_training_bit_for_bit(disc):
    _, a, ra = _train(disc, steps=40)
    _, b, rb = _train(disc, steps=40, activity_weight=0.0, activity_target=None)
    assert ra.losses == rb.losses and a.measures == b.measures  # exact, no tolerance
    assert set(rb.terms[-1]) == {"energy"}


def test_regulariser_lowers_activity_within_a_stated_error_factor(disc):
    """λ = 0.3, learnable thresholds, 300 steps: activity at least 20% lower and error at
    most 8x the unregularised one (measured here: activity 35.4% → 26.2%, rel. L2 1.12% →
    7.4%; on this tiny problem the surrogate gradient reaches only marginal spikes)."""
    _, free, _ = _train(disc, learn=True)
    net, reg, rec = _train(disc, learn=True, activity_weight=0.3)
    a0, a1 = free.measures["activity"]["mean"], reg.measures["activity"]["mean"]
    e0, e1 = free.measures["rel_l2"], reg.measures["rel_l2"]
    assert a1 < 0.8 * a0 and e1 < 8 * e0
    # logged per layer in the metrics record's terms
    last = rec.terms[-1]
    assert {"energy", "activity", "events/units.0", "events/units.1"} <= set(last)
    assert last["activity"] > 0 and all(math.isfinite(v) for v in last.values())
    # learnable thresholds moved up under the penalty (they start at 0.02)
    assert float(net.units[0].threshold.detach().mean()) > 0.1


def test_regulariser_with_compiled_network_matches_eager(disc):
    _, eager, _ = _train(disc, steps=15, activity_weight=0.3)
    _, comp, _ = _train(disc, steps=15, activity_weight=0.3, compile=True)
    assert comp.loss == pytest.approx(eager.loss, rel=1e-8)
    assert comp.terms["activity"] == pytest.approx(eager.terms["activity"], rel=1e-8)


def test_bad_settings_and_ann_are_one_line_errors(disc):
    ann = spiking.MLP(disc.in_dim, [8], seed=0)
    with pytest.raises(ValueError, match=r"fit: activity_weight = -1"):
        coupling.fit(ann, disc, steps=1, activity_weight=-1)
    with pytest.raises(ValueError, match=r"fit: activity_target = 2"):
        coupling.fit(ann, disc, steps=1, activity_weight=0.1, activity_target=2)
    with pytest.raises(ValueError, match=r"fit: activity_weight = 0.1: .*spiking"):
        coupling.fit(ann, disc, steps=1, activity_weight=0.1)
