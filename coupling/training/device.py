"""Where training runs: ``"auto" | "cpu" | "cuda"`` (one GPU per MPI rank on a node).

Training tensors — the network, the residual's data and sparse operators — move to the
device together (:func:`to_device`); FEM data, validation and checkpoints stay on the
CPU (gradients and parameters cross to the host for the MPI Allreduce).
"""

from __future__ import annotations

import dataclasses

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The torch device for `name`; "auto" is a GPU when one is visible, else the CPU."""
    if name not in DEVICES:
        raise ValueError(f"device = {name!r}: expected one of {', '.join(DEVICES)}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("device = 'cuda' but torch sees no GPU on this machine (use 'auto' or "
                         "'cpu')")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def _movable(value) -> bool:
    """A tensor, or an object that moves itself (``to_device``, e.g. a sparse operator)."""
    return isinstance(value, torch.Tensor) or callable(getattr(value, "to_device", None))


def to_device(obj, device: torch.device, _seen: dict | None = None):
    """`obj` with every tensor inside (dataclass fields, objects with ``to_device``) on
    `device`.

    Dataclasses are updated in place (the discretisation keeps its identity); tensors and
    objects with their own ``to_device`` come back moved.
    """
    seen = {} if _seen is None else _seen
    if id(obj) in seen:
        return seen[id(obj)]
    if isinstance(obj, torch.Tensor):
        out = obj.to(device)
    elif _movable(obj):
        out = obj.to_device(device)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        seen[id(obj)] = obj
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if _movable(value) or dataclasses.is_dataclass(value):
                setattr(obj, f.name, to_device(value, device, seen))
        return obj
    else:
        return obj
    seen[id(obj)] = out
    return out
