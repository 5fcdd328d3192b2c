"""Compiled spiking layers (torch.compile) agree with the eager ones: outputs and gradients."""

import pytest
import torch

import spiking


@pytest.mark.parametrize("unit", [
    lambda n: spiking.VSN(n, activation="tanh", num_steps=2, threshold=0.05),
    lambda n: spiking.LIF(n, num_steps=3, threshold=0.2, reset="subtract"),
], ids=["vsn", "lif"])
def test_compiled_network_equals_eager(unit):
    torch.manual_seed(0)
    net = spiking.MLP(3, [24, 24], out_dim=2, unit=unit, fourier=8, seed=1,
                      dtype=torch.float64)
    compiled = torch.compile(net)
    for n in (50, 137):  # a second shape: a recompiled (or dynamic) graph agrees too
        x = torch.rand(n, 3, dtype=torch.float64) * 2 - 1
        y_eager = net(x)
        g_eager = torch.autograd.grad(y_eager.square().sum(), list(net.parameters()))
        y_comp = compiled(x)
        g_comp = torch.autograd.grad(y_comp.square().sum(), list(net.parameters()))
        assert torch.allclose(y_comp, y_eager, rtol=1e-10, atol=1e-12)
        for a, b in zip(g_comp, g_eager, strict=True):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
