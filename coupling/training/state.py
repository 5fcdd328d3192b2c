"""What the training loop hands its callbacks: its state, its result, the hook points."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class FitState:
    """The loop's state, handed to every callback."""

    net: torch.nn.Module
    disc: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    steps: int
    comm: Any
    step: int = 0
    wall_offset: float = 0.0  # seconds already spent before a resume
    last_checkpoint: int | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def wall_s(self) -> float:
        """Training wall time so far (a resumed run counts its earlier part)."""
        return self.wall_offset + time.perf_counter() - self.started


@dataclass
class FitResult:
    """What a finished (or signal-stopped) `fit` reports."""

    step: int
    loss: float
    terms: dict[str, float]
    measures: dict
    wall_s: float
    stopped_by_signal: bool = False
    # torch threads of this rank when fit returned: what it ran with (reproducibility:
    # the same count gives the same bits, another one agrees to round-off)
    threads: int = field(default_factory=torch.get_num_threads)


class Callback:
    """Hooks around the loop; subclass and override what you need (all no-ops here)."""

    def on_start(self, state: FitState) -> None:
        """Before the first step (a resume restores state here)."""

    def on_step(self, state: FitState, values: dict[str, float]) -> None:
        """After each optimizer step, with the global loss terms."""

    def on_log(self, state: FitState, record: dict) -> None:
        """At each logging step, with the metrics record."""

    def on_checkpoint(self, state: FitState, stopped: bool) -> None:
        """At each checkpoint step (every `checkpoint_every`, the last step, a stop)."""

    def on_end(self, state: FitState, result: FitResult) -> None:
        """After the last step (also after a signal stop)."""
