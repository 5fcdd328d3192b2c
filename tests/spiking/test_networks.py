"""MLP builder: input normalisation, Fourier features, output scaling, configs, ANN twin."""

import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spiking import (
    LIF,
    VSN,
    ConfigError,
    MLPConfig,
    build_mlp,
    equal_shape_ann,
    mlp_from_config,
)
from spiking.networks import Activation

F64 = torch.float64


@settings(max_examples=30, deadline=None)
@given(
    lo=st.lists(st.floats(-100, 100), min_size=3, max_size=3),
    width=st.lists(st.floats(0.01, 50), min_size=3, max_size=3),
    t=st.lists(st.floats(0, 1), min_size=3, max_size=3),
)
def test_box_normalisation_maps_bounds_to_unit_cube(lo, width, t):
    hi = [a + w for a, w in zip(lo, width, strict=True)]
    net = build_mlp(3, 1, [4], neuron="ann", activation="tanh", bounds=[lo, hi], dtype=F64)
    x = torch.tensor([lo, hi, [a + s * w for a, s, w in zip(lo, t, width, strict=True)]],
                     dtype=F64)
    u = net.normalise(x)
    torch.testing.assert_close(u[0], -torch.ones(3, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(u[1], torch.ones(3, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(u[2], torch.tensor(t, dtype=F64) * 2 - 1, atol=1e-9, rtol=0)


def test_fourier_features_formula_and_shapes():
    net = build_mlp(3, 1, [8], neuron="vsn", fourier_features=5, fourier_scale=2.0,
                    fourier_keep_input=True, seed=4, dtype=F64)
    B = net.fourier.B
    assert B.shape == (5, 3) and net.widths == [3 + 10, 8, 1]
    x = torch.rand(7, 3, dtype=F64)
    proj = 2 * math.pi * x @ B.T
    torch.testing.assert_close(net.features(x), torch.cat([x, proj.sin(), proj.cos()], 1))
    assert "fourier.B" in dict(net.named_buffers())
    learn = build_mlp(3, 1, [8], fourier_features=5, fourier_learnable=True, seed=4)
    assert "fourier.B" in dict(learn.named_parameters())
    # σ = fourier_scale: the sample std of a large B is close to it
    big = build_mlp(2, 1, [4], fourier_features=4000, fourier_scale=3.0, seed=1)
    assert float(big.fourier.B.std()) == pytest.approx(3.0, rel=0.03)


def test_vector_output_scaling_and_shift():
    kw = dict(neuron="vsn", activation="tanh", num_steps=2, threshold=0.05, seed=2, dtype=F64)
    raw = build_mlp(3, 3, [6, 6], **kw)
    scaled = build_mlp(3, 3, [6, 6], output_scale=[1e-3, 2.0, -1.0], output_shift=0.5, **kw)
    x = torch.randn(9, 3, dtype=F64)
    y = scaled(x)
    assert y.shape == (9, 3)
    expected = raw(x) * torch.tensor([1e-3, 2.0, -1.0], dtype=F64) + 0.5
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("neuron, unit", [("vsn", VSN), ("lif", LIF), ("ann", Activation)])
def test_hidden_unit_kinds_and_seeded_init(neuron, unit):
    a = build_mlp(2, 1, [5, 7], neuron=neuron, seed=11)
    b = build_mlp(2, 1, [5, 7], neuron=neuron, seed=11)
    assert all(isinstance(u, unit) for u in a.units) and len(a.units) == 2
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    c = build_mlp(2, 1, [5, 7], neuron=neuron, seed=12)
    assert not torch.equal(a.linears[0].weight, c.linears[0].weight)
    assert torch.all(a.linears[0].bias == 0)
    bound = math.sqrt(6 / (2 + 5))  # Glorot-uniform
    assert float(a.linears[0].weight.detach().abs().max()) <= bound


def test_equal_shape_ann():
    net = build_mlp(3, 3, [16, 12], neuron="vsn", activation="identity", num_steps=3,
                    fourier_features=6, bounds=[[0, 0, 0], [2, 1, 1]], output_scale=0.1,
                    seed=5)
    ann = equal_shape_ann(net)
    assert ann.neuron == "ann" and ann.num_steps == 1
    assert ann.config.activation == "tanh"  # identity would make the ANN linear
    assert ann.widths == net.widths
    assert torch.equal(ann.fourier.B, net.fourier.B)
    assert torch.equal(ann.normalise.lo, net.normalise.lo)
    assert torch.equal(ann.output_scale, net.output_scale)
    n_ann = sum(p.numel() for p in ann.parameters())
    n_vsn = sum(p.numel() for p in net.parameters())
    assert n_ann == n_vsn  # β, θ are fixed buffers here: identical trainable shape
    assert equal_shape_ann(net, activation="relu").config.activation == "relu"


def test_learnable_neuron_parameters_through_builder():
    net = build_mlp(2, 1, [4, 4], neuron="vsn", learn_beta=True, learn_threshold=True, beta=0.5)
    names = {n for n, _ in net.named_parameters()}
    assert {"units.0.raw_beta", "units.0.threshold", "units.1.raw_beta"} <= names
    pickle.loads(pickle.dumps(net))


def test_from_config_round_trip():
    table = {
        "neuron": "vsn", "hidden": [32, 32], "activation": "tanh", "num_steps": 4,
        "beta": 0.8, "threshold": 0.1, "learn_threshold": True, "surrogate": "fast_sigmoid",
        "slope": 10.0, "fourier_features": 8, "out_dim": 3, "seed": 1,
    }
    net = mlp_from_config(table, in_dim=3, bounds=[(0, 0, 0), (1, 2, 3)])
    assert net.widths == [16, 32, 32, 3] and net.num_steps == 4
    assert net.units[0].surrogate.kind == "fast_sigmoid" and net.units[0].surrogate.slope == 10
    assert net.config.bounds == [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]
    again = mlp_from_config(net.config.to_dict())
    for pa, pb in zip(net.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    assert net(torch.rand(4, 3)).shape == (4, 3)


@pytest.mark.parametrize(
    "table, message",
    [
        ({"hiden": [8]}, r"network\.hiden: unknown key"),
        ({"hidden": 64}, r"network\.hidden: expected a list.*, got 64$"),
        ({"hidden": [64, 0]}, r"network\.hidden\[1\]: expected a positive integer width.*, got 0$"),
        ({"neuron": "izhikevich"}, r"network\.neuron: expected one of .*, got 'izhikevich'$"),
        ({"activation": "sigmoid"}, r"network\.activation: .*φ\(0\) = 0\.5.*, got 'sigmoid'$"),
        ({"activation": "swish"}, r"network\.activation: expected one of .*, got 'swish'$"),
        ({"beta": 1.2}, r"network\.beta: expected a number in \[0, 1\], got 1\.2$"),
        ({"num_steps": 0}, r"network\.num_steps: expected an integer in \[1, 1000\], got 0$"),
        ({"num_steps": True}, r"network\.num_steps: .*, got True$"),
        ({"surrogate": "atan"}, r"network\.surrogate: expected one of .*, got 'atan'$"),
        ({"slope": 0}, r"network\.slope: expected a positive number, got 0$"),
        ({"learn_beta": "yes"}, r"network\.learn_beta: expected true or false, got 'yes'$"),
        ({"bounds": [[0, 0], [1, 0]]}, r"network\.bounds: .*lo < hi.*, got "),
        ({"bounds": [[0, 0], [1]]}, r"network\.bounds: .*2 numbers.*, got "),
        ({"output_scale": [1, 2]}, r"network\.output_scale: expected a number or.*, got \[1, 2\]$"),
        ({"output_scale": 0}, r"network\.output_scale: scale must be nonzero, got 0$"),
        ({"reset": "soft"}, r"network\.reset: expected one of .*, got 'soft'$"),
    ],
)
def test_config_errors_name_key_and_value(table, message):
    with pytest.raises(ConfigError, match=message) as err:
        mlp_from_config(table, in_dim=2)
    assert str(err.value).startswith("config network.") and "\n" not in str(err.value)


def test_config_in_dim_must_match_data():
    with pytest.raises(ConfigError,
                       match=r"^config network\.in_dim: the data have 3 coordinates, got 2$"):
        mlp_from_config({"in_dim": 2}, in_dim=3)


def test_config_error_is_value_error_and_prefix():
    with pytest.raises(ValueError, match=r"model\.hidden"):
        MLPConfig.from_dict({"hidden": []}, prefix="model")
    with pytest.raises(ConfigError, match="expected a table"):
        mlp_from_config([1, 2])
