# ruff: noqa: I001  (import order matters: dolfinx_solver first)
"""The public way to import DOLFINx, PETSc, MPI and UFL in the right order.

>>> from meshes.fenics import MPI, PETSc, dolfinx, ufl
>>> MPI.COMM_WORLD.size >= 1
True

The `dolfinx-solver-real` wheel ships DOLFINx with its own PETSc and MPICH;
importing `dolfinx_solver` first sets up library paths and initialises MPI in the
right order (importing `petsc4py` or `dolfinx` before it can load the wrong libraries).
A user's own DOLFINx (conda, Spack, Docker) has no such module and works as it is.
Every neurofem module, and every user script, imports these names from here.
"""

try:  # the binary wheel: must be imported before dolfinx / petsc4py
    import dolfinx_solver  # noqa: F401
except ImportError:  # a user's own DOLFINx installation
    pass

from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

import basix  # noqa: E402
import dolfinx  # noqa: E402
import dolfinx.fem  # noqa: E402
import dolfinx.fem.petsc  # noqa: E402
import dolfinx.geometry  # noqa: E402
import dolfinx.io  # noqa: E402
import dolfinx.io.gmsh  # noqa: E402
import dolfinx.mesh  # noqa: E402
import ufl  # noqa: E402

__all__ = ["MPI", "PETSc", "basix", "dolfinx", "ufl"]
