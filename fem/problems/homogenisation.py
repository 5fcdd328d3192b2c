"""Computational homogenisation of an RVE under kinematic uniform boundary conditions.

Six unit macroscopic strains Ē (Voigt order 11, 22, 33, 23, 13, 12 with *engineering*
shear strains γ_ij = 2ε_ij) are imposed as u = Ē·x on the whole RVE boundary; the
volume-averaged stress of load case j is column j of the apparent stiffness
C (σ_Voigt = C · ε_Voigt, σ in order 11, 22, 33, 23, 13, 12). The isotropic K and G are
the isotropic projection of C; Hashin–Shtrikman (1963) bounds are provided for checks.
Kinematic BCs give an upper estimate of the effective stiffness (Hill 1963; Kanit et al.
2003); the discrete C is symmetric up to solver tolerance because u − Ē·x is an
admissible test function (Hill–Mandel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meshes import DistributedMesh
from meshes.fenics import MPI, dolfinx, ufl

from ..config import BCTable, ProblemTable, parse_problem
from ..errors import ConfigError
from ..solvers import global_norms
from .common import ALL_BOUNDARY, BuiltinProblem, Solution
from .elasticity import ElasticityProblem, affine_displacement, sigma

VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))  # engineering shear in 3..5


def unit_strain(j: int) -> np.ndarray:
    """The 3x3 strain tensor of Voigt unit vector e_j (γ = 1 means ε_ij = ε_ji = 1/2)."""
    E = np.zeros((3, 3))
    a, b = VOIGT[j]
    if a == b:
        E[a, a] = 1.0
    else:
        E[a, b] = E[b, a] = 0.5
    return E


def isotropic_moduli(C: np.ndarray) -> tuple[float, float]:
    """Bulk and shear modulus of the isotropic projection of a Voigt stiffness (eng. shear)."""
    a = C[0, 0] + C[1, 1] + C[2, 2]
    b = C[0, 1] + C[0, 2] + C[1, 2]
    c = C[3, 3] + C[4, 4] + C[5, 5]
    return (a + 2 * b) / 9.0, (a - b + 3 * c) / 15.0


def bulk_shear(E: float, nu: float) -> tuple[float, float]:
    """(K, G) of an isotropic material."""
    return E / (3 * (1 - 2 * nu)), E / (2 * (1 + nu))


def hashin_shtrikman(
    K: list[float], G: list[float], f: list[float]
) -> dict[str, tuple[float, float]]:
    """Hashin–Shtrikman bounds on (K, G) of an isotropic n-phase composite.

    Hashin & Shtrikman, J. Mech. Phys. Solids 11 (1963) 127; the general (not necessarily
    well-ordered) form of Walpole (1966). Returns {"K": (lower, upper), "G": (lower, upper)}.
    """
    K, G, f = (np.asarray(a, dtype=np.float64) for a in (K, G, f))
    if not np.isclose(f.sum(), 1.0):
        raise ValueError(f"volume fractions must sum to 1, got {f.sum()}")

    def k_bound(g_ref):
        return 1.0 / np.sum(f / (K + 4.0 / 3.0 * g_ref)) - 4.0 / 3.0 * g_ref

    def g_bound(k_ref, g_ref):
        zeta = g_ref / 6.0 * (9 * k_ref + 8 * g_ref) / (k_ref + 2 * g_ref)
        return 1.0 / np.sum(f / (G + zeta)) - zeta

    return {
        "K": (k_bound(G.min()), k_bound(G.max())),
        "G": (g_bound(K.min(), G.min()), g_bound(K.max(), G.max())),
    }


@dataclass
class Homogenised:
    """Apparent stiffness of an RVE and what is derived from it."""

    C: np.ndarray  # (6, 6) Voigt, engineering shear
    K: float
    G: float
    volume: float
    fractions: dict[str, float]  # measured phase volume fractions

    def as_dict(self) -> dict:
        return {
            "C_voigt": self.C.tolist(),
            "K": self.K,
            "G": self.G,
            "volume": self.volume,
            "volume_fractions": self.fractions,
            "voigt_convention": "sigma=[s11,s22,s33,s23,s13,s12], eps=[e11,e22,e33,2e23,2e13,2e12]",
        }


class HomogenisationProblem(BuiltinProblem):
    """Six kinematic-uniform load cases on a 3D RVE → the 6x6 apparent stiffness."""

    vector = True

    def __init__(self, dmesh: DistributedMesh, spec: ProblemTable):
        if dmesh.tdim != 3:
            raise ConfigError("mesh.kind", f"homogenisation needs a 3D RVE, got {dmesh.tdim}D")
        self.dmesh, self.spec = dmesh, spec
        bc = BCTable(boundary=ALL_BOUNDARY, type="affine", strain=unit_strain(0).tolist())
        self.elastic = ElasticityProblem(dmesh, spec.model_copy(update={"bcs": [bc],
                                                                        "source": []}))
        self.V = self.elastic.V
        self.stiffness, self.mass, self.load = (
            self.elastic.stiffness,
            self.elastic.mass,
            self.elastic.load,
        )
        self.bcs = self.elastic.bcs

    def solve(self) -> Solution:
        """Solve the six load cases with one factorisation / AMG setup."""

        comm = self.dmesh.comm
        g = self.elastic.affine[0]
        fields, C = {}, np.zeros((6, 6))
        uh = dolfinx.fem.Function(self.V, name="u")
        solver = self.elastic.solver(uh)
        dx = self.elastic.dx
        volume = comm.allreduce(
            dolfinx.fem.assemble_scalar(dolfinx.fem.form(1.0 * ufl.dx(domain=self.dmesh.mesh))),
            op=MPI.SUM,
        )
        stress = sigma(uh, self.elastic.lmbda, self.elastic.mu)
        forms = [dolfinx.fem.form(stress[a, b] * dx) for a, b in VOIGT]
        for j in range(6):
            g.interpolate(affine_displacement(unit_strain(j)))
            solver.solve()
            C[:, j] = [
                comm.allreduce(dolfinx.fem.assemble_scalar(f), op=MPI.SUM) / volume for f in forms
            ]
            fields[f"u_{j}"] = uh.copy()
            fields[f"u_{j}"].name = f"u_case{j}"
        K, G = isotropic_moduli(C)
        fractions = {}
        for name in self.dmesh.cell_names:
            dxp = ufl.Measure("dx", domain=self.dmesh.mesh, subdomain_data=self.dmesh.cell_tags)
            vol = dolfinx.fem.assemble_scalar(
                dolfinx.fem.form(1.0 * dxp(self.dmesh.cell_names[name]))
            )
            fractions[name] = comm.allreduce(vol, op=MPI.SUM) / volume
        hom = Homogenised(C, float(K), float(G), float(volume), fractions)
        info = {**solver.info(), "norms": global_norms(fields["u_0"])}
        return Solution(fields["u_0"], info, self, fields=fields, results=hom.as_dict())


def homogenise(
    dmesh: DistributedMesh, materials: dict[str, tuple[float, float]], degree: int = 1, **solver
) -> tuple[Homogenised, Solution]:
    """Apparent 6x6 stiffness of the RVE `dmesh` with isotropic (E, ν) per phase."""

    spec = parse_problem(
        {
            "type": "homogenisation",
            "degree": degree,
            "materials": {k: {"E": e, "nu": n} for k, (e, n) in materials.items()},
            "solver": solver,
        }
    )
    sol = HomogenisationProblem(dmesh, spec).solve()
    r = sol.results
    return Homogenised(
        np.array(r["C_voigt"]), r["K"], r["G"], r["volume"], r["volume_fractions"]
    ), sol
