"""Shared helpers of the fem tests (exact solutions, trapezoid weights)."""

from __future__ import annotations

import numpy as np

from fem.config import parse_problem
from fem.data import quadrature_data


def mesh_size(dmesh) -> float:
    """Effective h = (|Ω| / #cells)^(1/d), from the exported quadrature weights."""
    comm = dmesh.comm
    vol = comm.allreduce(quadrature_data(dmesh, 1).weights.sum())
    n = dmesh.mesh.topology.index_map(dmesh.tdim).size_global
    return (vol / n) ** (1.0 / dmesh.tdim)


def fitted_rate(hs, errs) -> float:
    """Least-squares slope of log(err) against log(h)."""
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


def trapezoid_weights(x: np.ndarray) -> np.ndarray:
    """1D trapezoid-rule weights on the nodes x."""
    w = np.zeros_like(x)
    d = np.diff(x)
    w[:-1] += d / 2
    w[1:] += d / 2
    return w


def dirichlet_everywhere(ptype: str, degree: int, source: str, exact: str, **extra):
    """A scalar problem with the exact solution imposed on every exterior facet."""
    return parse_problem(
        {
            "type": ptype,
            "degree": degree,
            "source": source,
            "exact": exact,
            "bcs": [{"boundary": "*", "type": "dirichlet", "value": exact}],
            **extra,
        }
    )
