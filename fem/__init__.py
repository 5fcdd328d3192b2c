"""DOLFINx reference solutions, per-rank training data and assembled operators.

The public API (names load on first use, so ``import fem`` stays light)::

    V = fem.functionspace(dm)                                  # P1 Lagrange on a mesh
    problem = fem.VariationalProblem(dm, a, L, bcs={"*": 0.0})  # any symmetric elliptic form
    problem.solve()                                            # PETSc reference
    fem.phase_field(dm, {"matrix": 1.0, "inclusion": 10.0}, "k")  # DG0 per-phase coefficient
    fem.build_problem(dm, spec)                                # a built-in problem from config

Every problem satisfies :class:`fem.Problem`. Modules:

- :mod:`fem.config`      — validate the ``[mesh]`` / ``[problem]`` TOML tables.
- :mod:`fem.expressions` — safe expression strings in x, y, z, t → UFL / NumPy.
- :mod:`fem.problems`    — Poisson, Poisson–Boltzmann, heat, Burgers, elasticity,
  homogenisation, user forms (``VariationalProblem``).
- :mod:`fem.solvers`     — MUMPS LU / CG + GAMG (rigid-body near-nullspace) by dof count.
- :mod:`fem.reference`   — solve-once cache on disk, XDMF/VTX output, reload on any partition.
- :mod:`fem.data`        — owned quadrature points/weights, boundary points/normals.
- :mod:`fem.operators`   — K, M, b as torch CSR (owned rows, local columns), Dirichlet dofs.
- :mod:`fem.volumes`     — finite-volume geometry of a mesh (cells as control volumes).
- :mod:`fem.evaluate`    — parallel point evaluation of FE functions.
- :mod:`fem.parameters`  — parameter boxes (``[parameters]``), sampling, held-out sets.
- :mod:`fem.problems.parametric` — a built-in problem over a box, affinely decomposed.
- :mod:`fem.cli`         — ``neurofem fem solve CONFIG --out DIR``.
"""

from meshes.lazy import lazy_names

_LAZY = {
    "Problem": "problems.protocol",
    "VariationalProblem": "problems.variational",
    "functionspace": "problems.variational",
    "phase_field": "problems.common",
    "Solution": "problems.common",
    "build_problem": "problems",
    "assemble_operators": "operators",
    "ParametricProblem": "problems.parametric",
    "parse_parameters": "parameters",
}

__getattr__, __dir__, __all__ = lazy_names(__name__, _LAZY)
