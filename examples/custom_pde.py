# # A PDE of your own, solved by a spiking network
#
# We solve −∇·((1 + x²)∇u) + u = 1 on an L-shaped domain Ω with u = 0 on ∂Ω. Its weak
# form: find u ∈ H¹₀(Ω) with a(u, v) = L(v) for all v ∈ H¹₀(Ω), where
#
#     a(u, v) = ∫ (1 + x²) ∇u·∇v + u v dx,   L(v) = ∫ v dx.
#
# a is symmetric and coercive, so u minimises the energy E(u) = ½ a(u, u) − L(u). The
# network (three layers of 64 Variable Spiking Neurons) gives the P1 coefficients at the
# mesh vertices; training minimises the assembled energy ½ uᵀKu − bᵀu ("galerkin"),
# which needs no derivative of the spiking network with respect to its input.
# Run it serially or with `mpiexec -n 2 python examples/custom_pde.py`.

import torch
import ufl

import coupling, fem, meshes, spiking, validation  # neurofem's five packages

# Float64 throughout: serial and parallel runs then agree to round-off.
torch.set_default_dtype(torch.float64)

# The mesh: Gmsh builds the L-shape on rank 0; DOLFINx distributes it over the ranks.
dm = meshes.build("lshape", size=0.05)

# The weak form, in UFL on a P1 Lagrange space.
V = fem.functionspace(dm)
u, v, x = ufl.TrialFunction(V), ufl.TestFunction(V), ufl.SpatialCoordinate(dm.mesh)
a = (1 + x[0] ** 2) * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx + u * v * ufl.dx
problem = fem.VariationalProblem(dm, a, 1.0 * v * ufl.dx, bcs={"*": 0.0})

# The residual: the network at the P1 dofs, Dirichlet dofs fixed, energy ½uᵀKu − bᵀu.
disc = coupling.discretise(problem, residual="galerkin")

# The network: 32 random Fourier features of the coordinates, then three layers of 64 VSNs
# (φ = tanh, T_s = 2 steps, threshold 0.02). Its input box comes from the mesh in `fit`.
vsn = lambda n: spiking.VSN(n, activation="tanh", num_steps=2, threshold=0.02)
net = spiking.MLP(disc.in_dim, [64, 64, 64], unit=vsn, fourier=32, fourier_scale=0.5, seed=0)

# Adam with a cosine schedule; under MPI every rank sums its gradients with the others'.
coupling.fit(net, disc, steps=3000, lr=1e-2, schedule="cosine")

# Compare with the FEM solution of the same problem (PETSc): errors and conservation,
# printed by rank 0.
validation.compare(problem, disc.to_function(net)).print()
