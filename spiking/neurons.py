"""Spiking neurons with explicit state: VSN (graded spikes), LIF and IF (binary spikes),
C-LIF (signed integer spike counts that carry quanta of a conserved quantity).

All neurons run ``num_steps`` time steps τ = 1..T_s on an input current that is either
repeated every step (``forward``) or given as a sequence (``run``). State is explicit,
snnTorch style: ``step(z, mem) -> (out, spike, mem)`` advances one step and the caller
owns ``mem``. β (leak) and θ (threshold) are per-neuron tensors of shape (n,), each a
learnable ``nn.Parameter`` or a fixed buffer; β is clamped to [0, 1] whenever used.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from .activations import Activation, activation_name, get_activation
from .surrogate import SURROGATE_KINDS, Surrogate, as_surrogate, surrogate_derivative

if TYPE_CHECKING:
    from .monitor import LayerRecord

RESET_MODES = ("subtract", "zero", "none")


def _per_neuron(value, n: int, name: str, dtype) -> torch.Tensor:
    """Broadcast a scalar or length-n sequence to a float tensor of shape (n,)."""
    t = torch.as_tensor(value, dtype=dtype).detach().clone()
    if t.ndim == 0:
        t = t.expand(n).clone()
    if t.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or {n} values, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: values must be finite, got {value!r}")
    return t


class SpikingNeuron(nn.Module, abc.ABC):
    """Shared parts of VSN/LIF/IF: per-neuron β and θ, surrogate, steps, activity record."""

    #: whether spikes carry a real value (VSN) or are binary (LIF, IF); used for energy.
    graded: bool = False
    #: per-neuron constants read per inference (β and θ); used for energy accounting.
    state_params: int = 2

    def __init__(
        self,
        num_neurons: int,
        *,
        num_steps: int = 1,
        beta: float | Sequence[float] | torch.Tensor = 1.0,
        threshold: float | Sequence[float] | torch.Tensor = 1.0,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        surrogate: Surrogate | str | None = "arctan",
        slope: float | None = None,
        detach_reset: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not (isinstance(num_neurons, int) and num_neurons > 0):
            raise ValueError(f"num_neurons must be a positive integer, got {num_neurons!r}")
        if not (isinstance(num_steps, int) and num_steps > 0):
            raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
        dtype = dtype or torch.get_default_dtype()
        self.num_neurons = num_neurons
        self.num_steps = num_steps
        self.surrogate = as_surrogate(surrogate, slope)
        self.detach_reset = detach_reset
        b = _per_neuron(beta, num_neurons, "beta", dtype)
        if ((b < 0) | (b > 1)).any():
            raise ValueError(f"beta: leak factors must lie in [0, 1], got {beta!r}")
        th = _per_neuron(threshold, num_neurons, "threshold", dtype)
        self._register("raw_beta", b, learn_beta)
        self._register("threshold", th, learn_threshold)
        # Activity recording is off unless an ActivityMonitor attaches a record here;
        # the hot path then pays one `is None` test per step and keeps no tensors.
        self.record: LayerRecord | None = None

    def _register(self, name: str, value: torch.Tensor, learnable: bool) -> None:
        if learnable:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    @property
    def beta(self) -> torch.Tensor:
        """Leak factors clamped to [0, 1], shape (n,)."""
        return self.raw_beta.clamp(0.0, 1.0)

    def init_state(self, like: torch.Tensor) -> torch.Tensor:
        """Zero membrane for an input shaped like ``like`` (…, n)."""
        return torch.zeros_like(like)

    def _integrate(self, mem: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        """m ← β m + z; from rest (mem None) simply z (no zero-filled state to multiply)."""
        return z if mem is None else self.beta * mem + z

    def _reset_mask(self, s: torch.Tensor) -> torch.Tensor:
        # snnTorch detaches the reset by default: the gradient then flows only through
        # the spike's effect on the output, not through the memory it wiped.
        return s.detach() if self.detach_reset else s

    def _check_input(self, z: torch.Tensor) -> None:
        if z.shape[-1] != self.num_neurons:
            raise ValueError(
                f"{type(self).__name__}: last input dim {z.shape[-1]} != num_neurons "
                f"{self.num_neurons}"
            )

    @abc.abstractmethod
    def step(
        self, z: torch.Tensor, mem: torch.Tensor | None, *, last: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Advance one step: returns (output, spike, new membrane) (each neuron model's own).

        ``mem`` None is the resting state; with ``last`` the reset is skipped (nobody reads
        the membrane after the last step) and the returned membrane is None."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Run ``num_steps`` steps on z repeated each step; return the mean output."""
        self._check_input(z)
        if self.record is not None:
            self.record.begin()
        mem, total, steps = None, None, self.num_steps
        for t in range(steps):
            out, _, mem = self.step(z, mem, last=t == steps - 1)
            total = out if total is None else total + out
        return total if steps == 1 else total * (1.0 / steps)

    def run(self, z_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run on a sequence z_seq (T, …, n) from rest; return (outputs, spikes), both (T, …, n)."""
        self._check_input(z_seq)
        if self.record is not None:
            self.record.begin()
        mem = self.init_state(z_seq[0])
        outs, spikes = [], []
        for z in z_seq:
            out, s, mem = self.step(z, mem)
            outs.append(out)
            spikes.append(s)
        return torch.stack(outs), torch.stack(spikes)


class VSN(SpikingNeuron):
    """Variable Spiking Neuron (Garg & Chakraborty, arXiv 2511.06081; J. Comput. Phys. 2023).

    Per step τ: m(τ) = β m(τ−1) + z(τ); s(τ) = H(m(τ) − θ); y(τ) = φ(z(τ) s(τ));
    m(τ) ← 0 where s(τ) = 1. ``forward`` repeats z every step and returns mean_τ y(τ).
    φ must satisfy φ(0) = 0 (checked), so a silent neuron emits exactly 0.
    """

    graded = True

    def __init__(
        self,
        num_neurons: int,
        *,
        activation: str | Activation = "identity",
        beta: float | Sequence[float] | torch.Tensor = 1.0,
        threshold: float | Sequence[float] | torch.Tensor = 0.5,
        **kwargs,
    ) -> None:
        super().__init__(num_neurons, beta=beta, threshold=threshold, **kwargs)
        self.activation = get_activation(activation, zero_at_zero=True, who="VSN activation")

    def step(self, z, mem, *, last: bool = False):
        """One VSN step: returns (y, s, m) with the reset applied to m."""
        mem = self._integrate(mem, z)
        s = self.surrogate(mem - self.threshold)
        y = self.activation(z * s)
        mem = None if last else mem * (1.0 - self._reset_mask(s))
        if self.record is not None:
            self.record.add_step(s, y)
        return y, s, mem

    def extra_repr(self) -> str:
        return (
            f"{self.num_neurons}, steps={self.num_steps}, activation="
            f"{activation_name(self.activation)}, surrogate={self.surrogate.kind}"
            f"(k={self.surrogate.slope:g})"
        )


class LIF(SpikingNeuron):
    """Leaky integrate-and-fire neuron with binary spikes (Gerstner & Kistler 2002).

    Per step: m(τ) = β m(τ−1) + z(τ); s(τ) = H(m(τ) − θ); reset "subtract":
    m ← m − θ s (rate-preserving, Rueckauer et al. 2017), "zero": m ← m (1 − s),
    "none": no reset. Output is the spike s; ``forward`` returns the rate mean_τ s(τ).
    """

    graded = False

    def __init__(
        self,
        num_neurons: int,
        *,
        reset: str = "subtract",
        beta: float | Sequence[float] | torch.Tensor = 0.9,
        threshold: float | Sequence[float] | torch.Tensor = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(num_neurons, beta=beta, threshold=threshold, **kwargs)
        if reset not in RESET_MODES:
            raise ValueError(f"reset: unknown mode {reset!r}; choose one of {RESET_MODES}")
        self.reset = reset

    def step(self, z, mem, *, last: bool = False):
        """One LIF step: returns (s, s, m) with the reset applied to m."""
        mem = self._integrate(mem, z)
        s = self.surrogate(mem - self.threshold)
        r = self._reset_mask(s)
        if last:
            mem = None
        elif self.reset == "subtract":
            mem = mem - r * self.threshold
        elif self.reset == "zero":
            mem = mem * (1.0 - r)
        if self.record is not None:
            self.record.add_step(s, s)
        return s, s, mem

    def extra_repr(self) -> str:
        return f"{self.num_neurons}, steps={self.num_steps}, reset={self.reset}"


class IF(LIF):
    """Integrate-and-fire neuron: an LIF with β = 1 fixed (no leak)."""

    state_params = 1

    def __init__(self, num_neurons: int, **kwargs) -> None:
        if "beta" in kwargs or "learn_beta" in kwargs:
            raise ValueError("IF: beta is fixed to 1; use LIF for a leaky neuron")
        super().__init__(num_neurons, beta=1.0, **kwargs)


class _TruncSpike(torch.autograd.Function):
    """s = trunc(v) forward (signed integer count); surrogate derivative backward."""

    @staticmethod
    def forward(ctx, v, kind: str, slope: float):
        ctx.save_for_backward(v)
        ctx.kind, ctx.slope = kind, slope
        return torch.trunc(v)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        if ctx.kind == "straight_through":
            return grad, None, None
        # trunc(v) = Σ_{k≥1} H(v − k) − H(−v − k): each step at an integer k ≠ 0 gets the
        # surrogate of H', centred on the nearest such integer.
        a = v.abs()
        nearest = torch.clamp(torch.round(a), min=1.0)
        return grad * surrogate_derivative(a - nearest, ctx.kind, ctx.slope), None, None


def trunc_spike(v: torch.Tensor, kind: str = "straight_through", slope: float = 1.0
                ) -> torch.Tensor:
    """Signed integer spike count trunc(v); backward: a spiking.surrogate ``kind``."""
    if kind not in SURROGATE_KINDS:
        raise ValueError(f"surrogate: unknown kind {kind!r}; choose one of {SURROGATE_KINDS}")
    return _TruncSpike.apply(v, kind, float(slope))


class CLIF(SpikingNeuron):
    """Conservative LIF neuron (PISNN: Zhang & Wang, arXiv 2511.21784).

    Per step: v ← β v + z (z in quanta, e.g. a flux·Δt/q); s = trunc(v), a *signed
    integer* spike count; v ← v − s (reset by subtraction of what was sent, so the
    fractional remainder carries over and nothing is lost). The spike s stands for s
    quanta moved across an interface: a conservative solver adds it to one cell and
    subtracts it from another, so its total is invariant exactly.

    Two paths through the same ``step``:

    * float (``exact=False``, training): s is a float tensor holding integer values,
      with a surrogate gradient for trunc (``surrogate`` kind centred on the nearest
      nonzero integer; ``straight_through`` passes the gradient unchanged);
    * exact (``exact=True``, inference): s is int64, ready for integer bookkeeping
      (``index_add_`` of counts into int64 cell totals), no autograd.

    Both give the same counts and the same membrane: trunc and v − trunc(v) are exact in
    floating point, so only the membrane's fractional part is ever rounded. The threshold
    is one quantum (fixed); only β is a neuron parameter. The reset is not detached by
    default (the gradient sees the subtraction of the sent count).
    """

    graded = True
    state_params = 1

    def __init__(
        self,
        num_neurons: int,
        *,
        beta: float | Sequence[float] | torch.Tensor = 1.0,
        surrogate: str = "straight_through",
        slope: float = 1.0,
        detach_reset: bool = False,
        dtype: torch.dtype | None = torch.float64,
        **kwargs,
    ) -> None:
        if "threshold" in kwargs or "learn_threshold" in kwargs:
            raise ValueError("CLIF: the threshold is one quantum (fixed)")
        super().__init__(num_neurons, beta=beta, threshold=1.0, surrogate=surrogate,
                         slope=slope, detach_reset=detach_reset, dtype=dtype, **kwargs)

    def step(self, z, mem, *, exact: bool = False, last: bool = False):
        """One C-LIF step: returns (s, s, v) with s the signed count (int64 if `exact`).

        The remainder v is the neuron's state across solver steps, so it is always kept."""
        mem = self._integrate(mem, z)
        if exact:
            with torch.no_grad():
                s = torch.trunc(mem)
                mem = mem - s
                s = s.to(torch.int64)
        else:
            s = trunc_spike(mem, self.surrogate.kind, self.surrogate.slope)
            mem = mem - self._reset_mask(s)
        if self.record is not None:
            self.record.add_step((s != 0).to(mem.dtype), s)
        return s, s, mem

    def extra_repr(self) -> str:
        return (f"{self.num_neurons}, steps={self.num_steps}, surrogate="
                f"{self.surrogate.kind}(k={self.surrogate.slope:g})")
