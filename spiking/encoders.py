"""Spiking input encoder: events instead of dense analog values into the first hidden layer.

A coordinate network's first layer normally multiplies every normalised coordinate (or
Fourier feature) by every weight: N_in·N_out MACs at every point, whatever the spiking
activity downstream — the floor of the energy ratio at zero activity. A
:class:`PopulationEncoder` replaces the dense vector by a few events: each input feature
x_i ∈ [-1, 1] is coded by a population of K place cells with centres
c_k = -1 + 2k/(K−1), k = 0..K−1, of which at most two fire:

* ``mode = "hat"`` (graded events): with u = (x+1)(K−1)/2, i = ⌊u⌋ (clamped to K−2),
  t = u − i, cell i emits 1 − t and cell i+1 emits t (linear finite-element hat
  functions). The first layer W·e then is, per feature, a piecewise-linear function with
  K knots — a superset of the dense linear layer (W_k = w·c_k + b reproduces w·x + b), and
  it costs 2 graded events per feature, i.e. 2·d·N_out MACs instead of F·N_out;
* ``mode = "onehot"`` (binary events): cell round(u) emits 1; the first layer adds one
  weight column per feature (d·N_out accumulates, no multiply), at a resolution of 2/(K−1)
  (a piecewise-constant input: no gradient with respect to x).

The code is static, so the encoder runs once per point and the first layer's synaptic
current is computed once and repeated for the T_s steps, like a dense input.
Its cost (:func:`spiking.energy.encoder_ops`): per feature one MAC (u = a·x + b) and one
(onehot) or three (hat: floor, t, 1 − t) accumulates; reads of x, a and b; writes of each
event word and, for the hat, the cell index. Second derivatives with respect to x vanish
(piecewise linear): use it with Galerkin / energy residuals, not strong-form autograd ones.

>>> enc = PopulationEncoder(2, 5)
>>> enc(torch.tensor([[0.0, -1.0]])).tolist()
[[0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

ENCODER_MODES = ("hat", "onehot")


class PopulationEncoder(nn.Module):
    """Place-cell code of each input feature in [-1, 1]: ``levels`` cells per feature."""

    def __init__(self, in_dim: int, levels: int = 16, mode: str = "hat") -> None:
        super().__init__()
        if not (isinstance(in_dim, int) and in_dim > 0):
            raise ValueError(f"encoder.in_dim = {in_dim!r}: expected a positive integer")
        if isinstance(levels, bool) or not (isinstance(levels, int) and levels >= 2):
            raise ValueError(f"encoder.levels = {levels!r}: expected an integer >= 2")
        if mode not in ENCODER_MODES:
            raise ValueError(f"encoder.kind = {mode!r}: expected one of {ENCODER_MODES}")
        self.in_dim, self.levels, self.mode = in_dim, levels, mode

    @classmethod
    def from_dict(cls, table: Mapping, in_dim: int, prefix: str = "network.encoder"
                  ) -> PopulationEncoder:
        """Encoder from a TOML table ``{kind = "hat" | "onehot", levels = K}``."""
        unknown = set(table) - {"kind", "levels"}
        if unknown:
            raise ValueError(f"{prefix}.{sorted(unknown)[0]}: unknown key; known: kind, levels")
        try:
            return cls(in_dim, table.get("levels", 16), table.get("kind", "hat"))
        except ValueError as err:
            raise ValueError(str(err).replace("encoder.", f"{prefix}.", 1)) from None

    @property
    def graded(self) -> bool:
        """Whether the events carry values (hat) or are binary (onehot)."""
        return self.mode == "hat"

    @property
    def out_dim(self) -> int:
        """Number of cells (the first Linear layer's input width)."""
        return self.in_dim * self.levels

    @property
    def events_per_point(self) -> int:
        """Events emitted per point (an upper bound for the hat: 2 per feature)."""
        return self.in_dim * (2 if self.graded else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Events of x (…, in_dim) → (…, in_dim·levels), at most 2 nonzero per feature."""
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"PopulationEncoder: last input dim {x.shape[-1]} != {self.in_dim}")
        K = self.levels
        u = (x.clamp(-1.0, 1.0) + 1.0) * (0.5 * (K - 1))
        if self.mode == "onehot":
            idx = torch.round(u).detach().long()
            out = nn.functional.one_hot(idx, K).to(x.dtype)
        else:
            idx = torch.floor(u).detach().clamp(max=K - 2)
            t = (u - idx).unsqueeze(-1)
            lo = nn.functional.one_hot(idx.long(), K).to(x.dtype)
            hi = nn.functional.one_hot(idx.long() + 1, K).to(x.dtype)
            out = lo * (1.0 - t) + hi * t
        return out.reshape(*x.shape[:-1], self.out_dim)

    def extra_repr(self) -> str:
        return f"{self.in_dim}, levels={self.levels}, mode={self.mode}"


__all__ = ["ENCODER_MODES", "PopulationEncoder"]
