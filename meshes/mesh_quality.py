"""Mesh-quality summary and per-group measures of the current Gmsh mesh (one process)."""

from __future__ import annotations

import itertools

import gmsh
import numpy as np

# Gmsh element types: linear and quadratic simplices, and the number of corner nodes.
_SIMPLEX = {2: (2, 9), 3: (4, 11)}


def _top_dim() -> int:
    return max((d for d, _ in gmsh.model.getEntities()), default=0)


def _corner_cells(dim: int, tag: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(element tags, corner-node coordinates [n, dim+1, 3]) of the simplices of `dim`."""
    tags, conn = [], []
    for etype in _SIMPLEX[dim]:
        et, nodes = gmsh.model.mesh.getElementsByType(etype, tag)
        if len(et):
            npe = len(nodes) // len(et)
            tags.append(et)
            conn.append(np.asarray(nodes).reshape(-1, npe)[:, : dim + 1])
    if not tags:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dim + 1, 3))
    node_tags, coords, _ = gmsh.model.mesh.getNodes()
    lookup = np.zeros(int(node_tags.max()) + 1, dtype=np.int64)
    lookup[node_tags] = np.arange(len(node_tags))
    xyz = np.asarray(coords).reshape(-1, 3)
    c = np.concatenate(conn)
    return np.concatenate(tags), xyz[lookup[c]]


def simplex_measures(x: np.ndarray) -> np.ndarray:
    """Areas (triangles) or volumes (tetrahedra) of straight simplices ``x[n, d+1, 3]``."""
    e = x[:, 1:] - x[:, :1]
    if x.shape[1] == 3:
        return 0.5 * np.linalg.norm(np.cross(e[:, 0], e[:, 1]), axis=1)
    return np.abs(np.einsum("ij,ij->i", e[:, 0], np.cross(e[:, 1], e[:, 2]))) / 6.0


def min_angles(x: np.ndarray) -> np.ndarray:
    """Smallest interior angle (triangles) or dihedral angle (tetrahedra) per cell, degrees."""
    if x.shape[1] == 3:
        out = np.full(len(x), 180.0)
        for i in range(3):
            a, b = x[:, (i + 1) % 3] - x[:, i], x[:, (i + 2) % 3] - x[:, i]
            norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
            cos = np.einsum("ij,ij->i", a, b) / norms
            out = np.minimum(out, np.degrees(np.arccos(np.clip(cos, -1, 1))))
        return out
    # Dihedral angle at edge (i, j): angle between the faces (i, j, k) and (i, j, l).
    out = np.full(len(x), 180.0)
    for i, j in itertools.combinations(range(4), 2):
        k, l = (m for m in range(4) if m not in (i, j))
        e = x[:, j] - x[:, i]
        e /= np.linalg.norm(e, axis=1)[:, None]
        u, v = x[:, k] - x[:, i], x[:, l] - x[:, i]
        u -= np.einsum("ij,ij->i", u, e)[:, None] * e  # components normal to the edge
        v -= np.einsum("ij,ij->i", v, e)[:, None] * e
        cos = np.einsum("ij,ij->i", u, v) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
        out = np.minimum(out, np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return out


def quality() -> dict[str, float]:
    """Cell count, min/mean Gmsh quality ("minSICN", "gamma") and min (dihedral) angle."""
    dim = _top_dim()
    if dim not in _SIMPLEX:
        return {"cells": 0}
    tags, x = _corner_cells(dim)
    if len(tags) == 0:
        return {"cells": 0, "dim": dim}
    sicn = np.asarray(gmsh.model.mesh.getElementQualities(tags, "minSICN"))
    gamma = np.asarray(gmsh.model.mesh.getElementQualities(tags, "gamma"))
    ang = min_angles(x)
    return {
        "dim": dim,
        "cells": int(len(tags)),
        "min_sicn": float(sicn.min()),
        "mean_sicn": float(sicn.mean()),
        "min_gamma": float(gamma.min()),
        "mean_gamma": float(gamma.mean()),
        "min_angle_deg": float(ang.min()),  # dihedral in 3D
    }


def group_measures() -> dict[str, float]:
    """Area/volume of every top-dimensional physical group, by name (straight cells)."""
    dim = _top_dim()
    out = {}
    for d, ptag in gmsh.model.getPhysicalGroups(dim):
        name = gmsh.model.getPhysicalName(d, ptag) or str(ptag)
        total = 0.0
        for ent in gmsh.model.getEntitiesForPhysicalGroup(d, ptag):
            _, x = _corner_cells(dim, int(ent))
            total += float(simplex_measures(x).sum())
        out[name] = total
    return out


def summary_line(info: dict) -> str:
    """One line for the CLI: kind, cells, quality, measures (volume fraction for RVEs)."""
    q, m = info["quality"], info["measures"]
    nan = float("nan")
    angle = "min dihedral" if q.get("dim") == 3 else "min angle"
    parts = [f"{info['kind']}: {q['cells']} cells",
             f"minSICN {q.get('min_sicn', nan):.3f} (mean {q.get('mean_sicn', nan):.3f})",
             f"{angle} {q.get('min_angle_deg', nan):.1f} deg",
             "measure " + ", ".join(f"{k}={v:.5g}" for k, v in m.items())]
    if "volume_fraction_mesh" in info:
        parts.append(f"volume fraction {info['volume_fraction_mesh']:.4f} "
                     f"(target {info['volume_fraction']:.4f})")
    return "; ".join(parts)
