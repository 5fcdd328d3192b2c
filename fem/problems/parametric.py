"""Parametric problems: one built-in problem over a box of parameters, affinely decomposed.

A :class:`ParametricProblem` is a ``[problem]`` table plus a ``[parameters]`` table
(:class:`fem.parameters.ParametersTable`).
Its discrete operator, load and Dirichlet data are affine in functions of μ,

    K(μ) = Σ_q θ_q(μ) K_q,     b(μ) = Σ_k c_k(μ) b_k,     g(μ) = Σ_k c_k(μ) g_k,

with every K_q, b_k, g_k assembled **once** (:meth:`ParametricProblem.operators`):

- elasticity and homogenisation: per phase p, K_λp = ∫_p tr ε(u) tr ε(v) and
  K_μp = ∫_p 2 ε(u):ε(v) with θ = (λ_p, μ_p) = lame(E_p, ν_p) — parameters ``E.<phase>``,
  ``nu.<phase>``; the macroscopic strain Ē = Σ_j ``strain.<j>`` · e_j (Voigt order 11, 22,
  33, 23, 13, 12, engineering shear) of the affine boundary data u = Ē·x is a load
  coefficient. A homogenisation problem trains as elasticity with u = Ē(μ)·x on the whole
  boundary; its six unit load cases give the apparent stiffness C.
- scalar Poisson (κ²u allowed): K_p = ∫_p ∇u·∇v per phase with θ = ``k.<phase>`` (``k``
  for one coefficient), κ²M fixed; ``source`` scales the configured source, and
  ``value.<boundary>`` is the constant Dirichlet value of that boundary.

The load coefficients c(μ) are a leading 1 for whatever is not parametrised (when it is
nonzero) followed by the load parameters themselves; b_k and g_k come from problems built
at unit load parameters (the data are linear in them). :meth:`ParametricProblem.spec_at`
gives the plain problem at any μ — the FEM reference at a held-out point is its solve.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from meshes import DistributedMesh
from meshes.fenics import MPI, ufl

from ..config import ProblemTable, parse_problem
from ..errors import ConfigError
from ..operators import assemble_owned_csr, assemble_owned_vector, dirichlet_arrays
from ..parameters import ParametersTable, parse_parameters
from . import build_problem
from .elasticity import epsilon, lame
from .homogenisation import VOIGT, unit_strain

VOIGT_NAMES = ("11", "22", "33", "23", "13", "12")
PARAMETRIC_TYPES = ("poisson", "poisson_boltzmann", "elasticity", "homogenisation")


@dataclass
class AffineOperators:
    """The assembled terms of K(μ), b(μ), g(μ) on one rank (owned rows × local columns)."""

    K_terms: list  # SciPy CSR (n_owned, n_local) per θ_q
    M: object  # SciPy CSR mass matrix
    b: np.ndarray  # (L, n_owned) load per channel
    g: np.ndarray  # (L, n_dirichlet) Dirichlet data per channel at `dirichlet_dofs`
    dirichlet_dofs: np.ndarray  # local unrolled indices (< layout.n_function)
    layout: object  # fem.operators.IndexLayout

    def K(self, theta: np.ndarray):
        """K(μ) from θ(μ)."""
        return sum(t * K for t, K in zip(theta, self.K_terms, strict=True))

    def load(self, c: np.ndarray) -> np.ndarray:
        """b(μ) from the load coefficients c(μ)."""
        return np.asarray(c) @ self.b

    def data(self, c: np.ndarray) -> np.ndarray:
        """g(μ) at the Dirichlet dofs from c(μ)."""
        return np.asarray(c) @ self.g


class ParametricProblem:
    """A built-in problem over a parameter box (see the module docstring)."""

    def __init__(self, dmesh: DistributedMesh, spec: ProblemTable, box: ParametersTable) -> None:
        if spec.type not in PARAMETRIC_TYPES:
            raise ConfigError("problem.type", f"{spec.type!r} has no parametric form (one of "
                              f"{', '.join(PARAMETRIC_TYPES)})")
        self.dmesh, self.spec, self.box = dmesh, spec, box
        self.vector = spec.type in ("elasticity", "homogenisation")
        self.roles = {n: _role(n, spec, dmesh) for n in box.names}
        self.operator_names = [n for n in box.names if self.roles[n] == "operator"]
        self.load_names = [n for n in box.names if self.roles[n] == "load"]
        if spec.type == "homogenisation" and not self.load_names:
            raise ConfigError("parameters.ranges", "a parametric homogenisation needs at least "
                              "one 'strain.<ij>' parameter (the macroscopic strain)")
        self.problem = self.problem_at(box.centre())  # V, mass, boundary geometry
        self.V = self.problem.V
        self._fixed = None

    @classmethod
    def from_tables(cls, dmesh: DistributedMesh, problem: dict, parameters: dict
                    ) -> ParametricProblem:
        """From a ``[problem]`` and a ``[parameters]`` table (dicts), both validated."""
        return cls(dmesh, parse_problem(problem), parse_parameters(parameters))

    @property
    def name(self) -> str:
        """The problem type (its config name)."""
        return self.spec.type

    # -- the plain problem at one μ -------------------------------------------------------
    def table_at(self, mu: np.ndarray) -> dict:
        """The ``[problem]`` table of the (trainable) problem at μ."""
        t = copy.deepcopy(self.spec.raw)
        values = dict(zip(self.box.names, map(float, mu), strict=True))
        if self.spec.type == "homogenisation":
            t = {k: v for k, v in t.items() if k in ("degree", "materials", "solver",
                                                     "quadrature_degree")}
            t.update(type="elasticity", bcs=[{"boundary": "*", "type": "affine",
                                              "strain": np.zeros((3, 3)).tolist()}])
        strain = np.zeros((3, 3))
        for name, v in values.items():
            kind, _, what = name.partition(".")
            if kind in ("E", "nu"):
                t["materials"][what][kind] = v
            elif kind == "k":
                t["coefficients"] = v if not what else {**t["coefficients"], what: v}
            elif kind == "source":
                t["source"] = f"({v!r})*({_source_text(t.get('source'))})"
            elif kind == "value":
                for bc in t["bcs"]:
                    if bc.get("boundary") == what and bc.get("type", "dirichlet") == "dirichlet":
                        bc["value"] = v
            elif kind == "strain":
                strain += v * unit_strain(VOIGT_NAMES.index(what))
        if any(k.startswith("strain.") for k in values):
            for bc in t["bcs"]:
                if bc.get("type") == "affine":
                    bc["strain"] = strain.tolist()
        return t

    def spec_at(self, mu: np.ndarray) -> ProblemTable:
        """The validated spec of the trainable problem at μ (its FEM solve is the reference)."""
        return parse_problem(self.table_at(mu))

    def homogenisation_spec_at(self, mu: np.ndarray) -> ProblemTable:
        """The six-load-case homogenisation spec at μ's moduli (homogenisation problems)."""
        t = self.table_at(mu)
        t = {k: v for k, v in t.items() if k in ("degree", "materials", "solver",
                                                 "quadrature_degree")}
        return parse_problem({**t, "type": "homogenisation"})

    def problem_at(self, mu: np.ndarray):
        """The trainable built-in problem at μ (collective)."""

        return build_problem(self.dmesh, self.spec_at(mu))

    # -- the affine decomposition ---------------------------------------------------------
    def theta(self, mu: np.ndarray) -> np.ndarray:
        """θ(μ): the coefficients of the stiffness terms (order of :meth:`stiffness_terms`)."""
        values = dict(zip(self.box.names, map(float, mu), strict=True))
        out = []
        if self.vector:
            for phase, (E, nu) in self.spec.materials.items():
                lm, mu_ = lame(values.get(f"E.{phase}", E), values.get(f"nu.{phase}", nu))
                out += [lm, mu_]
            return np.array(out)
        k = self.spec.coefficients
        if isinstance(k, dict):
            out = [values.get(f"k.{p}", v) for p, v in k.items()]
        else:
            out = [values.get("k", k)]
        return np.array(out + ([self.spec.kappa**2] if self.spec.kappa else []))

    def stiffness_terms(self) -> list[ufl.Form]:
        """The bilinear forms K_q (order of :meth:`theta`)."""
        V, mesh = self.V, self.dmesh.mesh
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
        md = ({"quadrature_degree": self.spec.quadrature_degree}
              if self.spec.quadrature_degree else None)
        names = self.spec.materials if self.vector else self.spec.coefficients
        phases = list(names) if isinstance(names, dict) else [None]
        forms = []
        for phase in phases:
            dx = self._dx(phase, md)
            if self.vector:
                forms += [ufl.tr(epsilon(u)) * ufl.tr(epsilon(v)) * dx,
                          2 * ufl.inner(epsilon(u), epsilon(v)) * dx]
            else:
                forms.append(ufl.inner(ufl.grad(u), ufl.grad(v)) * dx)
        if not self.vector and self.spec.kappa:
            forms.append(u * v * ufl.Measure("dx", domain=mesh, metadata=md))
        return forms

    def _dx(self, phase: str | None, md) -> ufl.Measure:
        mesh, names = self.dmesh.mesh, self.dmesh.cell_names
        if phase is None or (len(self.spec.materials) == 1 and self.vector
                             and phase not in names):
            return ufl.Measure("dx", domain=mesh, metadata=md)
        dx = ufl.Measure("dx", domain=mesh, subdomain_data=self.dmesh.cell_tags, metadata=md)
        return dx(names[phase])

    def _load_probe(self, k: int | None) -> np.ndarray:
        """μ at the box centre with every load parameter 0, except parameter `k` = 1."""
        mu = self.box.centre()
        for i, n in enumerate(self.box.names):
            if self.roles[n] == "load":
                mu[i] = 1.0 if self.load_names.index(n) == k else 0.0
        return mu

    def probe_problem(self, k: int | None):
        """The problem at the load probe k (None: all loads 0), built once (collective)."""
        probes = self.__dict__.setdefault("_probes", {})
        if k not in probes:
            probes[k] = self.problem_at(self._load_probe(k))
        return probes[k]

    def has_fixed_channel(self) -> bool:
        """Whether the unparametrised load/data are nonzero (then c(μ) starts with a 1)."""
        if self._fixed is None:
            p = self.probe_problem(None)
            b = assemble_owned_vector(p.load)
            _, g = dirichlet_arrays(p.V, p.bcs)
            size = float(np.abs(b).max(initial=0.0) + np.abs(g).max(initial=0.0))
            self._fixed = self.dmesh.comm.allreduce(size, op=MPI.MAX) > 0
        return self._fixed

    def load_coefficients(self, mu: np.ndarray) -> np.ndarray:
        """c(μ): a leading 1 for the fixed load (if any), then the load parameters."""
        mu = np.atleast_2d(mu)
        idx = [self.box.names.index(n) for n in self.load_names]
        c = mu[:, idx]
        if self.has_fixed_channel():
            c = np.column_stack([np.ones(len(mu)), c])
        return c

    @property
    def n_channels(self) -> int:
        """L, the number of load channels (length of c(μ))."""
        return len(self.load_names) + int(self.has_fixed_channel())

    def operators(self) -> AffineOperators:
        """Assemble every term once (collective)."""
        mass = ufl.inner(ufl.TrialFunction(self.V), ufl.TestFunction(self.V)) * ufl.dx
        mats, layout = assemble_owned_csr([mass, *self.stiffness_terms()], self.V)
        probes = ([None] if self.has_fixed_channel() else []) + list(range(len(self.load_names)))
        zero = self.probe_problem(None)
        b0 = assemble_owned_vector(zero.load)
        dofs, g0 = dirichlet_arrays(zero.V, zero.bcs)
        bs, gs = [], []
        for k in probes:
            p = self.probe_problem(k)
            b = assemble_owned_vector(p.load)
            d, g = dirichlet_arrays(p.V, p.bcs)
            if not np.array_equal(d, dofs):
                raise RuntimeError("Dirichlet dofs differ between load probes")
            bs.append(b if k is None else b - b0)
            gs.append(g if k is None else g - g0)
        return AffineOperators(mats[1:], mats[0], np.array(bs).reshape(len(probes), -1),
                               np.array(gs).reshape(len(probes), -1), dofs, layout)


def _source_text(source) -> str:
    """The configured source as an expression string (numbers and lists of one entry)."""
    if source is None:
        raise ConfigError("parameters.ranges.source", "scales problem.source, which is not set")
    if isinstance(source, list):
        if len(source) != 1:
            raise ConfigError("parameters.ranges.source", "scales a scalar problem.source")
        source = source[0]
    return str(source)


def _role(name: str, spec: ProblemTable, dmesh: DistributedMesh) -> str:
    """'operator' or 'load' for a parameter name valid for this problem, else a ConfigError."""
    kind, _, what = name.partition(".")
    key = f"parameters.ranges.{name}"
    if spec.type in ("elasticity", "homogenisation"):
        allowed = "E.<phase>, nu.<phase>, strain.<11|22|33|23|13|12>"
        if kind in ("E", "nu") and what in spec.materials:
            return "operator"
        if kind in ("E", "nu"):
            raise ConfigError(key, f"no material {what!r} in problem.materials (it has "
                              f"{', '.join(spec.materials)})")
        if kind == "strain" and what in VOIGT_NAMES:
            gdim = dmesh.mesh.geometry.dim
            if any(i >= gdim for i in VOIGT[VOIGT_NAMES.index(what)]):
                raise ConfigError(key, f"a {gdim}D mesh has no strain component {what}")
            if spec.type == "elasticity" and not any(bc.type == "affine" for bc in spec.bcs):
                raise ConfigError(key, "needs an 'affine' boundary condition in problem.bcs")
            return "load"
    else:
        allowed = "k or k.<phase>, source, value.<boundary>"
        k = spec.coefficients
        if kind == "k" and ((not what and not isinstance(k, dict))
                            or (isinstance(k, dict) and what in k)):
            return "operator"
        if kind == "source" and not what:
            _source_text(spec.raw.get("source"))
            return "load"
        if kind == "value":
            if any(bc.boundary == what and bc.type == "dirichlet" for bc in spec.bcs):
                return "load"
            raise ConfigError(key, f"no Dirichlet boundary {what!r} in problem.bcs")
    raise ConfigError(key, f"unknown parameter for a {spec.type} problem (allowed: {allowed})")
