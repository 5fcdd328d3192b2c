"""DOLFINx reference solutions, per-rank training data and assembled operators.

Modules (import them directly; this package import stays light so the CLI starts fast):

- :mod:`fem.config`      — validate the ``[mesh]`` / ``[problem]`` TOML tables.
- :mod:`fem.expressions` — safe expression strings in x, y, z, t → UFL / NumPy.
- :mod:`fem.problems`    — Poisson, Poisson–Boltzmann, heat, Burgers, elasticity,
  homogenisation (``build_problem``, ``solve``, ``homogenise``, ``hashin_shtrikman``).
- :mod:`fem.solvers`     — MUMPS LU / CG + GAMG (rigid-body near-nullspace) by dof count.
- :mod:`fem.reference`   — solve-once cache on disk, XDMF/VTX output, reload on any partition.
- :mod:`fem.data`        — owned quadrature points/weights, boundary points/normals, dof
  neighbourhoods.
- :mod:`fem.operators`   — K, M, b as torch CSR (owned rows, local columns), Dirichlet dofs.
- :mod:`fem.evaluate`    — parallel point evaluation of FE functions.
- :mod:`fem.cli`         — ``neurofem fem solve CONFIG --out DIR``.
"""
