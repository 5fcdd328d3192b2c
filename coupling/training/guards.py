"""Checks `fit` makes before any work, each failing with one line that names the culprit.

Kept apart from :mod:`coupling.training.loop` so they can be tested without a training
run; `fit` calls :func:`check_network` after its settings check.
"""

from __future__ import annotations

import torch


def check_network(net: torch.nn.Module, disc) -> None:
    """Refuse a network whose input/output width does not match `disc` (ValueError).

    ``net.in_dim`` (where the network has one, as :class:`spiking.MLP` does) must equal
    ``disc.in_dim`` (coordinates plus any geometric features); ``net.out_dim`` must equal
    the outputs the discretisation expects (:func:`_components`) where both are known. Without this
    a mismatch fails deep inside torch (``mat1 and mat2 shapes cannot be multiplied``)
    without naming ``in_dim``.
    """
    want = _attr(disc, "in_dim")
    have = _attr(net, "in_dim")
    if isinstance(want, int) and isinstance(have, int) and have != want:
        raise ValueError(f"fit: net.in_dim = {have}, but the discretisation's network inputs "
                         f"are {want} wide (disc.in_dim = {want}): build the network with "
                         f"in_dim=disc.in_dim")
    components = _components(disc)
    out = _attr(net, "out_dim")
    if isinstance(components, int) and isinstance(out, int) and out != components:
        raise ValueError(f"fit: net.out_dim = {out}, but the problem's field has "
                         f"{components} component(s): build the network with "
                         f"out_dim={components}")


def threads_in_use() -> int:
    """torch's intra-op threads of this rank (what FitResult.threads records)."""
    return torch.get_num_threads()


def _attr(obj, name: str):
    try:
        return getattr(obj, name, None)
    except Exception:  # a property that cannot be computed yet: nothing to check against
        return None


def _components(disc) -> int | None:
    """Network outputs the discretisation expects: ``disc.out_dim`` (parametric: block size
    × load channels), else ``disc.block_size``, else the block size of its problem's V."""
    for name in ("out_dim", "block_size"):
        value = _attr(disc, name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    V = getattr(getattr(disc, "problem", None), "V", None)
    try:
        return int(V.dofmap.index_map_bs)
    except AttributeError:
        return None
