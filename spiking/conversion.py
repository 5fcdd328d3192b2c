"""ANN→SNN conversion baseline: a trained ReLU MLP run as an IF network with rate coding.

Data-based layer-wise normalisation (Diehl et al., IJCNN 2015; Rueckauer et al., Front.
Neurosci. 11:682, 2017): with λ_l the maximum (Diehl) or p-th percentile (Rueckauer,
robust; p = 99.9 by default) of the nonzero ReLU activations of hidden layer l over
calibration data, and λ_{-1} = 1 for the analog input,

    W'_l = W_l λ_{l−1} / λ_l,   b'_l = b_l / λ_l   (hidden layers, threshold θ = 1),
    W'_L = W_L λ_{L−1},         b'_L = b_L         (readout, not spiking).

The IF network runs T steps: the first layer receives the constant current W'_0 x + b'_0
every step, hidden layers receive binary spikes, membranes reset by subtraction, and the
readout is W'_L (Σ_t s_{L−1}(t)) / T + b'_L, so firing rates r_l ≈ a_l / λ_l encode the
ANN activations. Membranes start at v_init·θ; v_init = 0.5 turns the rate quantisation
from flooring into rounding (Bu et al., ICLR 2022), halving the worst-case error.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .networks import MLP, input_features
from .neurons import IF


class ConvertedSNN(nn.Module):
    """IF network obtained from a ReLU :class:`~spiking.networks.MLP` (see module docstring)."""

    def __init__(self, ann: MLP, scales: Sequence[float], *, v_init: float = 0.5) -> None:
        super().__init__()
        if len(scales) != len(ann.units):
            raise ValueError(f"need one scale per hidden layer ({len(ann.units)}), "
                             f"got {len(scales)}")
        self.normalise = copy.deepcopy(ann.normalise)
        self.fourier = copy.deepcopy(ann.fourier)
        self.scales = [float(s) for s in scales]
        self.v_init = float(v_init)
        self.linears = nn.ModuleList()
        prev = 1.0
        with torch.no_grad():
            for l, lin in enumerate(ann.linears):
                new = copy.deepcopy(lin)
                if l < len(ann.units):
                    lam = self.scales[l]
                    new.weight.mul_(prev / lam)
                    new.bias.div_(lam)
                    prev = lam
                else:
                    new.weight.mul_(prev)
                new.requires_grad_(False)
                self.linears.append(new)
        self.neurons = nn.ModuleList(
            IF(lin.out_features, threshold=1.0, reset="subtract", dtype=lin.weight.dtype)
            for lin in self.linears[:-1]
        )
        self.register_buffer("output_scale", ann.output_scale.clone())
        self.register_buffer("output_shift", ann.output_shift.clone())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Input map of the source ANN (normalisation, Fourier features)."""
        return input_features(x, self.normalise, self.fourier)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """Rate-coded output after ``steps`` time steps."""
        if not (isinstance(steps, int) and steps > 0):
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        current0 = self.linears[0](self.features(x))
        mems = []
        for neuron, lin in zip(self.neurons, self.linears, strict=False):
            if neuron.record is not None:
                neuron.record.begin()
            mems.append(torch.full(x.shape[:-1] + (lin.out_features,), self.v_init,
                                   dtype=current0.dtype))
        spike_sum = None
        for _ in range(steps):
            current = current0
            for l, neuron in enumerate(self.neurons):
                s, _, mems[l] = neuron.step(current, mems[l])
                current = s if l + 1 == len(self.neurons) else self.linears[l + 1](s)
            spike_sum = current if spike_sum is None else spike_sum + current
        out = self.linears[-1](spike_sum / steps)
        return out * self.output_scale + self.output_shift


def activation_scales(ann: MLP, x: torch.Tensor, percentile: float | str = 99.9) -> list[float]:
    """λ_l per hidden layer: max or p-th percentile of its nonzero ReLU activations on x."""
    if percentile != "max" and not (isinstance(percentile, int | float) and 0 < percentile <= 100):
        raise ValueError(f"percentile = {percentile!r}: expected 'max' or a number in (0, 100]")
    scales = []
    with torch.no_grad():
        h = ann.features(x)
        for lin, unit in zip(ann.linears, ann.units, strict=False):
            h = unit(lin(h))
            act = h[h > 0].to(torch.float64)
            if act.numel() == 0:
                scales.append(1.0)  # a dead layer: any scale reproduces its zeros
            elif percentile == "max":
                scales.append(float(act.max()))
            else:
                scales.append(float(torch.quantile(act, percentile / 100.0)))
    return scales


def convert_relu_mlp(
    ann: MLP, x_calib: torch.Tensor, *, percentile: float | str = 99.9, v_init: float = 0.5
) -> ConvertedSNN:
    """IF network from a trained ReLU MLP, thresholds normalised on calibration points."""
    if ann.neuron != "ann" or ann.config.activation != "relu":
        raise ValueError(
            f"conversion needs a ReLU ANN, got neuron={ann.neuron!r}, "
            f"activation={ann.config.activation!r}"
        )
    return ConvertedSNN(ann, activation_scales(ann, x_calib, percentile), v_init=v_init)


@dataclass(frozen=True)
class ConversionPoint:
    """Conversion error at one number of time steps."""

    steps: int
    rel_l2_vs_ann: float
    rel_l2_vs_target: float | None


def conversion_errors(
    ann: MLP,
    snn: ConvertedSNN,
    x: torch.Tensor,
    steps: Sequence[int] = (8, 32, 128),
    target: torch.Tensor | None = None,
) -> list[ConversionPoint]:
    """Relative L2 error of the converted network vs the ANN (and a target) for each T."""
    with torch.no_grad():
        ref = ann(x)
        out = []
        for T in steps:
            y = snn(x, T)
            vs_t = None if target is None else float((y - target).norm() / target.norm())
            out.append(ConversionPoint(T, float((y - ref).norm() / ref.norm()), vs_t))
    return out
