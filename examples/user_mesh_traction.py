# # Your own mesh, a traction on a named boundary, solved by a spiking network
#
# An elastic bar Ω = [0, 2] × [0, 0.4] × [0, 0.4] (E = 1, ν = 0.3, dimensionless) comes
# from a Gmsh `.msh` file with named physical groups: the volume "solid", the face
# "clamp" (x = 0), the face "tip" (x = 2) and the rest "sides". It is clamped on "clamp"
# and pulled by a traction t = (10⁻³, 0, 0) on "tip":
#
#     −div σ(u) = 0 in Ω,   u = 0 on clamp,   σ n = t on tip,   σ n = 0 on sides,
#
# with σ = λ tr(ε) I + 2μ ε, ε = sym ∇u. Weak form: find u with u = 0 on the clamp and
#
#     a(u, v) = ∫ σ(u) : ε(v) dx = ∫_tip t · v ds = L(v)   for all v (v = 0 on the clamp).
#
# a is symmetric and coercive, so the network is trained on the Galerkin energy
# ½ uᵀKu − bᵀu. The clamp is carried by the network itself, u(x) = D(x)·N(x) with D an
# approximate distance to the clamp (the ADF lift), so u = 0 holds at *every* point of the
# clamped face, not only at its nodes. We then read the network at arbitrary points and
# price its inference against an equal ANN. Run `python examples/user_mesh_traction.py`
# (`--size 0.2 --steps 100` is a quick look), or under `mpiexec -n 2`.

import argparse
import tempfile
from pathlib import Path

import gmsh
import numpy as np
import torch
import ufl

import coupling, fem, meshes, spiking  # noqa: E401 (neurofem's packages)
from fem.evaluate import PointEvaluator
from meshes.fenics import MPI

parser = argparse.ArgumentParser(description="VSN network on a user's .msh bar under traction")
parser.add_argument("--size", type=float, default=0.1, help="mesh size (bar length 2)")
parser.add_argument("--steps", type=int, default=2000, help="Adam steps")
args = parser.parse_args()
torch.set_default_dtype(torch.float64)
comm = MPI.COMM_WORLD

# ## A user's mesh file
# Any Gmsh `.msh` with physical groups will do; here we write one with the Gmsh API
# (rank 0) into a temporary folder. Facet groups become names of the loaded mesh.
def write_bar(path: Path, size: float) -> None:
    """A meshed bar with physical groups solid, clamp, tip and sides."""
    gmsh.initialize(["", "-v", "0"])
    gmsh.model.occ.addBox(0, 0, 0, 2, 0.4, 0.4)
    gmsh.model.occ.synchronize()
    x = {t: gmsh.model.occ.getCenterOfMass(2, t)[0] for _, t in gmsh.model.getEntities(2)}
    clamp = [t for t, c in x.items() if abs(c) < 1e-9]
    tip = [t for t, c in x.items() if abs(c - 2) < 1e-9]
    gmsh.model.addPhysicalGroup(3, [1], name="solid")
    gmsh.model.addPhysicalGroup(2, clamp, name="clamp")
    gmsh.model.addPhysicalGroup(2, tip, name="tip")
    gmsh.model.addPhysicalGroup(2, [t for t in x if t not in clamp + tip], name="sides")
    gmsh.option.setNumber("Mesh.MeshSizeMax", size)
    gmsh.model.mesh.generate(3)
    gmsh.write(str(path))
    gmsh.finalize()


folder = tempfile.TemporaryDirectory() if comm.rank == 0 else None
path = comm.bcast(str(Path(folder.name) / "bar.msh") if folder else None)
if comm.rank == 0:
    write_bar(Path(path), args.size)
comm.barrier()
dm = meshes.build("file", path=path)  # read on rank 0, distributed over the ranks

# ## The problem, in UFL
# A P1 vector space; the traction acts on the facets tagged "tip" only.
E, nu, t = 1.0, 0.3, ufl.as_vector([1e-3, 0.0, 0.0])
mu, lam = E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))
V = fem.functionspace(dm, shape=(3,))
u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
eps = lambda w: ufl.sym(ufl.grad(w))  # noqa: E731
sigma = lambda w: lam * ufl.tr(eps(w)) * ufl.Identity(3) + 2 * mu * eps(w)  # noqa: E731
ds = ufl.ds(domain=dm.mesh, subdomain_data=dm.facet_tags, subdomain_id=dm.facet_names["tip"])
a = ufl.inner(sigma(u), eps(v)) * ufl.dx
problem = fem.VariationalProblem(dm, a, ufl.inner(t, v) * ds, bcs={"clamp": [0.0, 0.0, 0.0]})

# ## Residual and network
# Galerkin energy, clamp carried by the ADF lift (the default `lift="adf"`). The outputs
# are scaled by the expected tip displacement (|t| L / E = 0.002) so they are O(1).
disc = coupling.discretise(problem, residual="galerkin")
vsn = lambda n: spiking.VSN(n, activation="tanh", num_steps=2, threshold=0.005)  # noqa: E731
net = spiking.MLP(disc.in_dim, [64, 64], out_dim=3, unit=vsn, fourier=16, fourier_scale=0.5,
                  output_scale=0.002, seed=0)
result = coupling.fit(net, disc, steps=args.steps, lr=1e-2, schedule="cosine")

# ## Point values
# The network is a function of x: read it on the bar's axis and on the clamped face, and
# set it beside the FEM solution (PETSc) there. Every rank asks for the same points.
axis = np.array([[x, 0.2, 0.2] for x in (0.5, 1.0, 1.5, 2.0)])
u_net = disc.evaluate_at(net, axis)
u_fem = PointEvaluator(dm.mesh, axis)(problem.solve().u).reshape(len(axis), 3)
on_clamp = np.random.default_rng(0).uniform(0, 0.4, (200, 3)) * [0, 1, 1]
clamp_error = np.abs(disc.evaluate_at(net, on_clamp)).max()

# ## Energy
# One monitored pass at the nodes counts the spikes per layer; the report prices them
# (45 nm, Horowitz 2014) against an ANN of the same shape.
monitor = spiking.ActivityMonitor(net)
with torch.no_grad(), monitor:
    disc.field(net)
report = spiking.energy_report(net, monitor)

if comm.rank == 0:
    for p, un, uf in zip(axis, u_net, u_fem, strict=True):
        print(f"x = {p[0]:.1f}: u_x network {un[0]:+.4e}, FEM {uf[0]:+.4e}")
    print(f"tip displacement network {u_net[-1, 0]:.4e} FEM {u_fem[-1, 0]:.4e}")
    print(f"max |u| on the clamp {clamp_error:.1e} after {result.step} steps")
    print(report.to_markdown())
    print(f"energy ratio {report.ratio:.3f} (compute only {report.compute_only().ratio:.3f})")
