"""Network vs FEM on one mesh: every error and conservation number of a report, collectively."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meshes.fenics import MPI, dolfinx, ufl

from . import conservation as cons
from .errors import elasticity_errors, field_errors, integrate, von_mises
from .fields import elastic_fields, magnitude


@dataclass
class Comparison:
    """The numbers (plain JSON data) and the fields the figures and ParaView files show.

    ``str(comparison)`` is a short summary: relative L2 / H1 / max errors and the
    conservation check of network and FEM.
    """

    numbers: dict
    fields: dict[str, dolfinx.fem.Function] = field(default_factory=dict)
    comm: object = None  # the mesh's communicator: rank 0 alone prints

    def print(self) -> None:
        """Print the summary on rank 0 only (the others stay silent)."""
        if self.comm is None or self.comm.rank == 0:
            print(self, flush=True)

    def __str__(self) -> str:
        n = self.numbers
        e = n["errors"]
        parts = [f"{n['problem']} (P{n['degree']}): rel. L2 {e['l2']['relative']:.3e}"]
        for key, label in (("h1", "H1"), ("energy", "energy"), ("stress", "stress")):
            if key in e:
                parts.append(f"{label} {e[key]['relative']:.3e}")
        parts.append(f"max {e['max']['relative']:.3e}")
        cons = n.get("conservation", {})
        key = "relative" if "relative" in cons.get("network", {}) else "force_relative"
        if key in cons.get("network", {}):
            parts.append(f"imbalance network {cons['network'][key]:.2e} / "
                         f"FEM {cons['fem'][key]:.2e}")
        return "; ".join(parts)


def _elastic(problem) -> bool:
    return hasattr(problem, "lmbda") and hasattr(problem, "mu")


def compare(problem, u: dolfinx.fem.Function, reference: dolfinx.fem.Function | None = None
            ) -> Comparison:
    """Errors of `u` against the FEM solution of `problem` and conservation of both.

    `problem` is any :class:`fem.Problem` (`u` lives on its space); the reference is
    ``problem.solve()`` unless given. Collective.
    """
    u_ref = reference if reference is not None else problem.solve().u
    return _compare(problem, problem.dmesh, u, u_ref)


def _compare(problem, dmesh, u_net: dolfinx.fem.Function, u_ref: dolfinx.fem.Function
             ) -> Comparison:
    phases = dict(dmesh.cell_names) if dmesh.cell_tags is not None else {}
    tags = dmesh.cell_tags
    diff = dolfinx.fem.Function(problem.V, name="error")
    diff.x.array[:] = u_net.x.array - u_ref.x.array
    fields = {"u_fem": u_ref, "u_network": u_net, "error": diff}
    degree = problem.V.ufl_element().embedded_superdegree
    numbers: dict = {"problem": problem.name, "degree": degree}
    if _elastic(problem):
        lm, mu = problem.lmbda, problem.mu
        numbers["errors"] = elasticity_errors(u_net, u_ref, lm, mu, tags, phases)
        fields["von_mises_fem"] = von_mises(u_ref, lm, mu)
        fields["von_mises_network"] = von_mises(u_net, lm, mu)
        fields["|u_fem|"] = magnitude(u_ref, "displacement_fem")
        fields["|u_network|"] = magnitude(u_net, "displacement_network")
        fields["|error|"] = magnitude(diff, "error_magnitude")
        fields.update(elastic_fields(u_ref, u_net, lm, mu))
        fem_bal = cons.force_balance(problem, u_ref, dmesh)
        net_bal = cons.force_balance(problem, u_net, dmesh, scale=fem_bal["scale"])
        numbers["conservation"] = {
            "fem": {**fem_bal, "traction_jump": cons.traction_jump(u_ref, lm, mu, dmesh)},
            "network": {**net_bal, "traction_jump": cons.traction_jump(u_net, lm, mu, dmesh)},
        }
        scale = fem_bal["scale"]
    else:
        numbers["errors"] = field_errors(u_net, u_ref, tags, phases)
        fields["|error|"] = magnitude(diff, "error_magnitude")
        fem_bal = cons.flux_balance(problem, u_ref)
        net_bal = cons.flux_balance(problem, u_net, scale=fem_bal["scale"])
        numbers["conservation"] = {"fem": fem_bal, "network": net_bal}
        scale = fem_bal["scale"]
    if degree == 1:
        for side, u in (("fem", u_ref), ("network", u_net)):
            fields[f"imbalance_{side}"] = cons.cell_imbalance(problem, u)
            numbers["conservation"][side]["local_l1_relative"] = cons.imbalance_l1(
                problem, u, scale)
    return Comparison(numbers, fields, dmesh.comm)


def mesh_statistics(dmesh) -> dict:
    """Global counts, phase volumes and quality figures of the mesh (collective)."""
    mesh = dmesh.mesh
    tdim = dmesh.tdim
    out = {"cells": int(mesh.topology.index_map(tdim).size_global),
           "vertices": int(mesh.topology.index_map(0).size_global),
           "dimension": tdim, "cell_type": mesh.topology.cell_name(),
           "ranks": mesh.comm.size, "phases": {}, "boundaries": sorted(dmesh.facet_names)}

    dx = ufl.Measure("dx", domain=mesh, subdomain_data=dmesh.cell_tags)
    one = dolfinx.fem.Constant(mesh, 1.0)
    total = integrate(one, dx, mesh.comm)
    out["volume"] = total
    for name, tag in dmesh.cell_names.items():
        vol = integrate(one, dx(tag), mesh.comm)
        out["phases"][name] = {"volume": vol, "fraction": vol / total if total else 0.0}
    q = dmesh.info.get("quality") if dmesh.info else None
    if q:
        out["quality"] = {k: v for k, v in q.items() if isinstance(v, int | float)}
    h = dolfinx.cpp.mesh.h(mesh._cpp_object, tdim,
                           np.arange(mesh.topology.index_map(tdim).size_local, dtype=np.int32))

    out["h_min"] = float(mesh.comm.allreduce(float(h.min(initial=np.inf)), op=MPI.MIN))
    out["h_max"] = float(mesh.comm.allreduce(float(h.max(initial=0.0)), op=MPI.MAX))
    return out
