# # A 3D composite under tension, solved by a spiking network
#
# A unit cube of epoxy (E = 3.5 GPa, ν = 0.35) holds glass spheres (E = 70 GPa,
# ν = 0.22) at 15% volume fraction: a representative volume element (RVE) of a
# particle composite. We pull it to 1% strain along x with symmetry rollers,
#
#     u_x = 0 on x = 0,  u_x = 0.01 on x = 1,  u_y = 0 on y = 0,  u_z = 0 on z = 0,
#
# the other faces traction-free, and solve linear elasticity −div σ(u) = 0 with
# σ = λ tr(ε) I + 2μ ε, ε = sym ∇u and (λ, μ) piecewise constant per phase.
#
# The built-in elasticity problem (the same one `neurofem train` builds from a TOML
# `[problem]` table) gives the UFL forms and the Dirichlet data; the network maps
# x ↦ u(x) ∈ ℝ³ and is trained on the Galerkin energy ½ uᵀKu − bᵀu, whose minimiser is
# the FEM solution. Errors, stresses and the force balance then come from
# `validation.compare`. Run it as `python examples/rve_elasticity.py` (about 3 min here;
# `--size 0.2 --steps 200` is a quick look), or under `mpiexec -n 2`.

import argparse


import coupling
import fem
import meshes
import spiking
import validation
from fem.config import parse_problem

parser = argparse.ArgumentParser(description="VSN network on a 3D RVE under tension")
parser.add_argument("--size", type=float, default=0.12, help="mesh size (edge 1)")
parser.add_argument("--steps", type=int, default=3000, help="Adam steps")
args = parser.parse_args()

# ## The mesh
# Gmsh places 8 non-overlapping spheres (seeded, so the geometry is reproducible) and
# tags the phases "matrix" and "inclusion" and the faces x0, x1, y0, ...
dm = meshes.build("rve", args.size, inclusion="sphere", volume_fraction=0.15, n=8, seed=0)

# ## The problem
# Materials per phase and the roller conditions, as in a `[problem]` table.
rollers = [("x0", 0, 0.0), ("x1", 0, 0.01), ("y0", 1, 0.0), ("z0", 2, 0.0)]
spec = parse_problem({
    "type": "elasticity",
    "materials": {"matrix": {"E": 3.5, "nu": 0.35}, "inclusion": {"E": 70.0, "nu": 0.22}},
    "bcs": [{"boundary": b, "type": "roller", "component": c, "value": g}
            for b, c, g in rollers],
})
problem = fem.build_problem(dm, spec)

# ## Residual and network
# The Dirichlet dofs are imposed exactly; the network decides the free ones. Outputs are
# scaled by the applied displacement (0.01) so the raw outputs are O(1).
disc = coupling.discretise(problem, residual="galerkin")
vsn = lambda n: spiking.VSN(n, activation="tanh", num_steps=2, threshold=0.005)  # noqa: E731
net = spiking.MLP(disc.in_dim, [96, 96, 96], out_dim=3, unit=vsn, fourier=32,
                  fourier_scale=0.5, output_scale=0.01, seed=0)

# ## Training
# Adam with a cosine schedule; under MPI each rank holds its part of K and b and the
# gradients are summed over ranks every step.
result = coupling.fit(net, disc, steps=args.steps, lr=1e-2, schedule="cosine")

# ## Validation against FEM
# Displacement, energy-norm and stress errors (per phase), von Mises stress, and the
# force and moment balance of network and FEM fields; rank 0 prints.
comparison = validation.compare(problem, disc.to_function(net))
comparison.print()
if dm.comm.rank == 0:
    print(f"activity {result.measures['activity']['mean']:.1%} after {result.step} steps")
