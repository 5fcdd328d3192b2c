"""Geometry features of spherical-inclusion meshes that need no solve: images, distances, depth.

A network input may include, besides the coordinates, the distance to the nearest
inclusion surface (or the smooth inclusion depth of
:mod:`coupling.residuals.autograd_elastic`); with inclusions cut by the faces of a periodic
cell, the images of the spheres in the 26 neighbouring cells count too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fem.errors import ConfigError
from meshes import DistributedMesh


def sphere_images(centres: np.ndarray, radii: np.ndarray, periodic: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Sphere centres and radii, with the 26 neighbouring cells' images for a periodic cell."""
    centres, radii = np.asarray(centres, float), np.asarray(radii, float)
    if not periodic:
        return centres, radii
    shifts = np.array(np.meshgrid(*[[-1.0, 0.0, 1.0]] * 3, indexing="ij")).reshape(3, -1).T
    return (centres[None] + shifts[:, None]).reshape(-1, 3), np.tile(radii, len(shifts))


def interface_distance(x: np.ndarray, centres: np.ndarray, radii: np.ndarray,
                       periodic: bool) -> np.ndarray:
    """|signed distance to the nearest spherical inclusion surface| at points x (n, 3).

    As a network input it lets a smooth network carry the strain kink across the
    interface (|φ| has one), the way level-set-augmented networks treat interface problems
    (e.g. Hu, Lin & Lai, J. Comput. Phys. 2022). With inclusions cut by the faces of a
    periodic cell the images in the 26 neighbouring cells count too.
    """
    c, r = sphere_images(centres, radii, periodic)
    d = np.full(len(x), np.inf)
    for ci, ri in zip(c, r, strict=True):  # few inclusions: a loop keeps memory at O(n)
        d = np.minimum(d, np.abs(np.linalg.norm(x - ci, axis=1) - ri))
    return d


def with_interface_distance(x: np.ndarray, bounds, dmesh: DistributedMesh,
                            feature: str = "distance"):
    """Coordinates with |distance to the nearest inclusion| appended (``feature =
    "depth"``: the inclusion depth of :mod:`coupling.residuals.autograd_elastic`, smooth away from
    the interfaces), and extended bounds."""
    info = dmesh.info
    if dmesh.kind != "rve" or dmesh.options.get("inclusion") != "sphere" or "radii" not in info:
        raise ConfigError("inputs.interface_distance", "needs a mesh of spherical inclusions "
                          "(mesh.kind = \"rve\" with inclusion = \"sphere\")")
    periodic = dmesh.options.get("placement") == "cut"
    pts = np.zeros((len(x), 3))
    pts[:, : x.shape[1]] = x
    lo, hi = bounds
    if feature == "depth":
        top = max(np.asarray(info["radii"], float)) / 2  # ψ ≤ r/2 (the deepest point)
        return np.column_stack([x, node_depth(dmesh, pts)]), (lo + [0.0], hi + [top])
    d = interface_distance(pts, np.asarray(info["centres"], float),
                           np.asarray(info["radii"], float), periodic)
    top = float(np.linalg.norm(np.asarray(hi) - np.asarray(lo)))  # a bound valid on every rank
    return np.column_stack([x, d]), (lo + [0.0], hi + [top / 2])


def inclusion_depth(x: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor
                    ) -> torch.Tensor:
    """ψ(x) = Σ_k max(0, (r_k² − |x − c_k|²)/(2 r_k)) at points x (n, d) (differentiable)."""
    d = x.shape[1]
    out = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    for c, r in zip(centres, radii, strict=True):
        s = (r * r - torch.sum((x - c[:d]) ** 2, dim=1)) / (2 * r)
        out = out + torch.relu(s)
    return out


@dataclass
class DepthFeature:
    """The inclusion-depth input of one mesh: sphere centres (with periodic images), radii."""

    centres: torch.Tensor  # (K, 3)
    radii: torch.Tensor  # (K,)
    matrix_phase: int  # phase index whose points see ψ = 0

    def __call__(self, x: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """(n, d+1): the points with ψ of their own phase's branch appended."""
        psi = inclusion_depth(x, self.centres, self.radii)
        return torch.cat([x, torch.where(phase == self.matrix_phase, 0.0 * psi, psi)[:, None]],
                         dim=1)


def depth_feature(dmesh, names: list[str], dtype) -> DepthFeature:
    """The inclusion depth of a spherical-inclusion RVE (ConfigError on any other mesh)."""
    info = dmesh.info
    if dmesh.kind != "rve" or dmesh.options.get("inclusion") != "sphere" or "radii" not in info:
        raise ConfigError("inputs.interface_distance", "needs a mesh of spherical inclusions "
                          "(mesh.kind = \"rve\" with inclusion = \"sphere\")")
    if "matrix" not in names:
        raise ConfigError("problem.materials", "the inclusion depth needs a \"matrix\" phase "
                          f"(phases: {names})")
    centres, radii = sphere_images(info["centres"], info["radii"],
                                   dmesh.options.get("placement") == "cut")
    return DepthFeature(torch.as_tensor(centres, dtype=dtype), torch.as_tensor(radii, dtype=dtype),
                        names.index("matrix"))


def node_depth(dmesh, x: np.ndarray) -> np.ndarray:
    """ψ at mesh nodes (no phase needed: nodes lie inside, outside or on a sphere)."""
    info = dmesh.info
    centres, radii = sphere_images(info["centres"], info["radii"],
                                   dmesh.options.get("placement") == "cut")
    pts = torch.as_tensor(x, dtype=torch.float64)
    return inclusion_depth(pts, torch.as_tensor(centres), torch.as_tensor(radii)).numpy()
