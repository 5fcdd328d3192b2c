"""Surrogate gradients for the Heaviside spike function.

The forward pass is always the exact step H(x) = 1 if x > 0 else 0 (H(0) = 0, so a
neuron whose memory sits exactly at threshold, or a silent neuron with threshold 0,
does not fire). The backward pass replaces the Dirac delta H'(x) by a smooth
"surrogate" g_k(x) of slope (sharpness) k (Neftci, Mostafa & Zenke, IEEE Signal
Process. Mag. 36, 2019). With x = m - θ:

================  ==========================  ======================================
kind              g_k(x) (backward)           primitive F_k(x)
================  ==========================  ======================================
arctan            (k/2) / (1 + (π k x / 2)²)  1/2 + arctan(π k x/2)/π
fast_sigmoid      1 / (1 + k|x|)²             x / (1 + k|x|)
sigmoid           k σ(kx) (1 − σ(kx))         σ(kx)
triangle          k · max(0, 1 − k|x|)        1/2 + kc − k²c|c|/2, c = clamp(x, ±1/k)
straight_through  1                           x
================  ==========================  ======================================

arctan (Fang et al., ICCV 2021; snnTorch ``atan``), sigmoid and triangle integrate to
1 over the real line (they are normalised approximations of δ); fast_sigmoid (Zenke &
Ganguli, SuperSpike, Neural Comput. 2018) integrates to 2/k; straight_through (Bengio,
Léonard & Courville 2013) ignores k. ``F_k`` is the smooth function whose derivative is
g_k; it is exposed so tests can check the backward pass against finite differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SURROGATE_KINDS = ("arctan", "fast_sigmoid", "sigmoid", "triangle", "straight_through")

# Defaults follow snnTorch where it has the same function (atan α=2, fast_sigmoid/sigmoid
# slope 25); triangle uses k=1 (support |x| < 1), straight-through has no slope.
DEFAULT_SLOPE = {
    "arctan": 2.0,
    "fast_sigmoid": 25.0,
    "sigmoid": 25.0,
    "triangle": 1.0,
    "straight_through": 1.0,
}


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Exact step H(x) = 1 for x > 0, else 0, in the dtype of x."""
    return (x > 0).to(x.dtype)


def surrogate_derivative(x: torch.Tensor, kind: str, slope: float) -> torch.Tensor:
    """Surrogate g_k(x) for H'(x) (formulas in the module docstring)."""
    k = float(slope)
    if kind == "arctan":
        return (k / 2.0) / (1.0 + (math.pi * k * x / 2.0) ** 2)
    if kind == "fast_sigmoid":
        return 1.0 / (1.0 + k * x.abs()) ** 2
    if kind == "sigmoid":
        # σ(kx)(1 − σ(kx)) = σ(kx)σ(−kx): the latter has no cancellation and stays even.
        return k * torch.sigmoid(k * x) * torch.sigmoid(-k * x)
    if kind == "triangle":
        return k * torch.clamp(1.0 - k * x.abs(), min=0.0)
    if kind == "straight_through":
        return torch.ones_like(x)
    raise ValueError(f"unknown surrogate kind {kind!r}; choose one of {SURROGATE_KINDS}")


def surrogate_primitive(x: torch.Tensor, kind: str, slope: float) -> torch.Tensor:
    """Smooth F_k(x) with F_k' = g_k (the function whose gradient the surrogate is)."""
    k = float(slope)
    if kind == "arctan":
        return 0.5 + torch.atan(math.pi * k * x / 2.0) / math.pi
    if kind == "fast_sigmoid":
        return x / (1.0 + k * x.abs())
    if kind == "sigmoid":
        return torch.sigmoid(k * x)
    if kind == "triangle":
        xc = torch.clamp(x, -1.0 / k, 1.0 / k)
        return 0.5 + k * xc - 0.5 * k * k * xc * xc.abs()
    if kind == "straight_through":
        return x.clone()
    raise ValueError(f"unknown surrogate kind {kind!r}; choose one of {SURROGATE_KINDS}")


class _SpikeFunction(torch.autograd.Function):
    """Heaviside forward, surrogate backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kind: str, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.kind = kind
        ctx.slope = slope
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * surrogate_derivative(x, ctx.kind, ctx.slope), None, None


@dataclass(frozen=True)
class Surrogate:
    """A spike nonlinearity: exact Heaviside forward, surrogate ``kind`` of slope k backward."""

    kind: str = "arctan"
    slope: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in SURROGATE_KINDS:
            raise ValueError(
                f"surrogate: unknown kind {self.kind!r}; choose one of {SURROGATE_KINDS}"
            )
        slope = DEFAULT_SLOPE[self.kind] if self.slope is None else self.slope
        if not (isinstance(slope, int | float) and math.isfinite(slope) and slope > 0):
            raise ValueError(f"surrogate: slope must be a positive finite number, got {slope!r}")
        object.__setattr__(self, "slope", float(slope))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Spike H(x) with the surrogate gradient attached (none needed: H(x) alone)."""
        if not (torch.is_grad_enabled() and x.requires_grad):  # inference: skip autograd
            return heaviside(x)
        return _SpikeFunction.apply(x, self.kind, self.slope)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """g_k(x), the value the backward pass uses for H'(x)."""
        return surrogate_derivative(x, self.kind, self.slope)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """F_k(x), the smooth function whose derivative is g_k."""
        return surrogate_primitive(x, self.kind, self.slope)


def as_surrogate(spec: Surrogate | str | None, slope: float | None = None) -> Surrogate:
    """Surrogate from an instance, a kind name (with optional slope) or None (arctan)."""
    if isinstance(spec, Surrogate):
        if slope is not None and slope != spec.slope:
            return Surrogate(spec.kind, slope)
        return spec
    if spec is None:
        spec = "arctan"
    if not isinstance(spec, str):
        raise ValueError(f"surrogate: expected a kind name or Surrogate, got {spec!r}")
    return Surrogate(spec, slope)
