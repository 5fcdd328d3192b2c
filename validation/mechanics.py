"""Elasticity metrics of a displacement field: apparent moduli and Hashin–Shtrikman bounds.

The apparent Young's modulus along axis i is E_i = ∫σ_ii dx / ∫ε_ii dx. Under uniaxial
strain along i (u_i prescribed on the two faces normal to i, symmetry rollers on one face
of each other pair, the opposite faces traction-free) the average lateral stresses vanish
(average-stress theorem), so E_i is the RVE's apparent modulus along i; the network's and
the FEM displacement are measured alike. The bounds it is checked against are the
Hashin–Shtrikman bounds on (K, G) of :mod:`fem.problems.homogenisation`, taken with the
phase volume fractions measured on the mesh and turned into bounds on E = 9KG/(3K + G)
(E increases with both K and G, so the bounds carry over).
"""

from __future__ import annotations

from fem.problems import bulk_shear, hashin_shtrikman
from meshes.fenics import ufl

from .errors import integrate, strain, stress


def young_from_bulk_shear(K: float, G: float) -> float:
    """Young's modulus E = 9KG / (3K + G) of an isotropic material."""
    return 9.0 * K * G / (3.0 * K + G)


def apparent_young_modulus(u, lmbda, mu, mesh, axis: int = 0, degree: int = 2) -> float:
    """E = ∫σ_ii dx / ∫ε_ii dx of displacement `u` along `axis` (collective over mesh.comm).

    `lmbda`, `mu` are the Lamé parameters (numbers or per-phase DG0 functions).
    """
    dx = ufl.Measure("dx", domain=mesh, metadata={"quadrature_degree": degree})
    sii = integrate(stress(u, lmbda, mu)[axis, axis], dx, mesh.comm)
    eii = integrate(strain(u)[axis, axis], dx, mesh.comm)
    return sii / eii


def phase_fractions(dmesh, names: list[str] | None = None) -> dict[str, float]:
    """Volume fraction of each tagged phase of a DistributedMesh (of `names`, if given)."""
    dxp = ufl.Measure("dx", domain=dmesh.mesh, subdomain_data=dmesh.cell_tags)
    vol = {n: integrate(ufl.as_ufl(1.0), dxp(tag), dmesh.comm)
           for n, tag in dmesh.cell_names.items() if names is None or n in names}
    total = sum(vol.values())
    return {n: v / total for n, v in vol.items()}


def hashin_shtrikman_young(materials: dict[str, tuple[float, float]],
                           fractions: dict[str, float]) -> dict:
    """Hashin–Shtrikman bounds on E from the phases' (E, ν) and their volume fractions.

    Phases missing from `fractions` are left out. Returns {"lower", "upper", "fractions"}.
    """
    names = [n for n in materials if n in fractions]
    total = sum(fractions[n] for n in names)
    K, G = zip(*(bulk_shear(*materials[n]) for n in names), strict=True)
    f = {n: fractions[n] / total for n in names}
    hs = hashin_shtrikman(list(K), list(G), [f[n] for n in names])
    return {"lower": float(young_from_bulk_shear(hs["K"][0], hs["G"][0])),
            "upper": float(young_from_bulk_shear(hs["K"][1], hs["G"][1])), "fractions": f}


def loading_axis(u, mesh) -> int:
    """The axis i of the largest mean normal strain |∫ε_ii dx| of displacement u."""
    dx = ufl.Measure("dx", domain=mesh)
    d = mesh.geometry.dim
    e = [abs(integrate(strain(u)[i, i], dx, mesh.comm)) for i in range(d)]
    return int(max(range(d), key=lambda i: e[i]))


def moduli_report(u_fem, u_net, lmbda, mu, dmesh, materials: dict) -> dict:
    """Apparent Young's modulus of FEM and network along the loading axis beside the
    Hashin–Shtrikman bounds of the phases (3D), and whether each lies within them.

    `materials`: phase name → (E, ν) or {"E", "nu"}. Collective over dmesh.comm.
    """
    mesh = dmesh.mesh
    axis = loading_axis(u_fem, mesh)
    out = {"axis": "xyz"[axis],
           "fem": apparent_young_modulus(u_fem, lmbda, mu, mesh, axis),
           "network": apparent_young_modulus(u_net, lmbda, mu, mesh, axis)}
    mats = {n: (m["E"], m["nu"]) if isinstance(m, dict) else tuple(m)
            for n, m in materials.items()}
    fractions = phase_fractions(dmesh, list(mats))
    if mesh.geometry.dim == 3 and fractions:
        hs = hashin_shtrikman_young(mats, fractions)
        out.update(hs_lower=hs["lower"], hs_upper=hs["upper"], fractions=hs["fractions"])
        for side in ("fem", "network"):
            out[f"{side}_within_bounds"] = bool(hs["lower"] <= out[side] <= hs["upper"])
    out["network_rel_diff"] = (out["network"] - out["fem"]) / out["fem"] if out["fem"] else None
    return out
