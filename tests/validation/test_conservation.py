"""Conservation checks: the FEM solution balances to solver tolerance; a wrong field shows a
large imbalance exactly where it is wrong."""

import numpy as np
import pytest

import meshes
from fem.config import parse_problem
from fem.problems import build_problem
from meshes.fenics import MPI, dolfinx
from validation import conservation as cons

CENTRE, RADIUS = np.array([0.3, 0.6]), 0.15


@pytest.fixture(scope="module")
def square():
    return meshes.build("rectangle", size=0.05, comm=MPI.COMM_WORLD)


def _bump(u, amplitude):
    """u plus a smooth bump supported in the disc |x − CENTRE| < RADIUS (free dofs only)."""
    w = dolfinx.fem.Function(u.function_space)
    w.x.array[:] = u.x.array

    def bump(x):
        r2 = ((x[0] - CENTRE[0]) ** 2 + (x[1] - CENTRE[1]) ** 2) / RADIUS**2
        v = np.where(r2 < 1, amplitude * (1 - r2) ** 2, 0.0)
        return v if bs == 1 else np.stack([v] * bs)

    b = dolfinx.fem.Function(u.function_space)
    bs = u.function_space.dofmap.index_map_bs
    b.interpolate(bump)
    w.x.array[:] += b.x.array
    return w


def _centroids(mesh):
    tdim = mesh.topology.dim
    n = mesh.topology.index_map(tdim).size_local
    return dolfinx.mesh.compute_midpoints(mesh, tdim, np.arange(n, dtype=np.int32))[:, :2]


def test_poisson_balance_fem_and_wrong_field(square):
    spec = parse_problem({"type": "poisson", "source": "1 + x*y", "coefficients": 2.0, "bcs": [
        {"boundary": "x0", "type": "dirichlet", "value": 0.0},
        {"boundary": "y1", "type": "dirichlet", "value": "x"},
        {"boundary": "x1", "type": "neumann", "value": 0.5}]})
    problem = build_problem(square, spec)
    u = problem.solve().u
    fem_bal = cons.flux_balance(problem, u)
    assert fem_bal["relative"] < 1e-8
    # the consistent Dirichlet flux closes the balance: ∫_ΓD k∇u·n = −(∫f + Neumann data)
    assert fem_bal["boundary_flux"] == pytest.approx(-fem_bal["sources"], rel=1e-8)
    # ∫(1 + xy) + ∫_x1 0.5 = 1.25 + 0.5
    assert fem_bal["sources"] == pytest.approx(1.75, rel=1e-10)
    # the pointwise P1 gradient is only O(h) accurate: its balance is not at solver tolerance
    assert fem_bal["direct_relative"] > 1e3 * fem_bal["relative"]
    fem_map = cons.cell_imbalance(problem, u)
    scale = fem_bal["scale"]
    assert np.abs(fem_map.x.array).max() < 1e-8 * scale

    wrong = _bump(u, 0.05)
    bal = cons.flux_balance(problem, wrong, scale=scale)
    imap = cons.cell_imbalance(problem, wrong)
    n = square.mesh.topology.index_map(2).size_local
    dens = np.abs(imap.x.array[:n])
    c = _centroids(square.mesh)
    dist = np.linalg.norm(c - CENTRE, axis=1)
    h = 0.05
    local_max = MPI.COMM_WORLD.allreduce(dens.max(initial=0.0), op=MPI.MAX)
    outside = MPI.COMM_WORLD.allreduce(dens[dist > RADIUS + 2 * h].max(initial=0.0), op=MPI.MAX)
    # the largest imbalance sits inside the bump; none outside its one-ring
    where = dist[np.argmax(dens)] if len(dens) and dens.max() == local_max else np.inf
    assert MPI.COMM_WORLD.allreduce(where, op=MPI.MIN) < RADIUS + h
    assert outside < 1e-10 * local_max
    assert cons.imbalance_l1(problem, wrong, scale) > 1e-2
    # an interior bump moves flux around inside but leaves the global balance intact
    # (Σ_free (Kδ)_i = Σ_all (Kδ)_i = 0): only the local map sees it
    assert bal["relative"] < 1e-10
    # scaling the field changes the boundary fluxes: Σ_free r(1.1 u) = −0.1 Σ_free b
    scaled = dolfinx.fem.Function(problem.V)
    scaled.x.array[:] = 1.1 * u.x.array
    assert cons.flux_balance(problem, scaled, scale=scale)["relative"] > 1e-2


def test_elasticity_force_and_moment_balance(square):
    spec = parse_problem({"type": "elasticity", "source": [0.0, "-0.3*x"],
                          "materials": {"domain": {"E": 10.0, "nu": 0.3}}, "bcs": [
        {"boundary": "x0", "type": "dirichlet", "value": [0.0, 0.0]},
        {"boundary": "x1", "type": "traction", "value": [0.2, "0.1*y"]},
        {"boundary": "y1", "type": "roller", "component": 1, "value": 0.01}]})
    problem = build_problem(square, spec)
    u = problem.solve().u
    fem_bal = cons.force_balance(problem, u, square)
    assert fem_bal["force_relative"] < 1e-8 and fem_bal["moment_relative"] < 1e-8
    # reactions carry the applied loads: Σ R = −(∫ body force + ∫ traction) = −(0.2, −0.15 + 0.05)
    rx = sum(r[0] for r in fem_bal["reactions"].values())
    ry = sum(r[1] for r in fem_bal["reactions"].values())
    assert rx == pytest.approx(-0.2, rel=1e-8)
    assert ry == pytest.approx(0.1, rel=1e-8)
    wrong = _bump(u, 0.02)
    bal = cons.force_balance(problem, wrong, square, scale=fem_bal["scale"])
    # interior perturbations are self-equilibrated (rigid modes are in K's kernel) ...
    assert bal["force_relative"] < 1e-10 and bal["moment_relative"] < 1e-10
    # ... a wrong boundary response is not: 1.1 u has 10 % too large reactions
    scaled = dolfinx.fem.Function(problem.V)
    scaled.x.array[:] = 1.1 * u.x.array
    bad = cons.force_balance(problem, scaled, square, scale=fem_bal["scale"])
    assert bad["force_relative"] > 1e-2
    imap = cons.cell_imbalance(problem, wrong)
    n = square.mesh.topology.index_map(2).size_local
    dist = np.linalg.norm(_centroids(square.mesh) - CENTRE, axis=1)
    far = imap.x.array[:n][dist > RADIUS + 0.1]
    assert MPI.COMM_WORLD.allreduce(np.abs(far).max(initial=0.0), op=MPI.MAX) < 1e-10


def test_heat_mass_drift():
    dm = meshes.build("rectangle", size=0.1, comm=MPI.COMM_WORLD)
    spec = parse_problem({"type": "heat", "source": "1 + t", "coefficients": 0.5,
                          "time": {"t_end": 0.5, "dt": 0.05, "initial": "x*(1 - x)"},
                          "output": {"points": 5, "times": 2}, "bcs": [
        {"boundary": "x0", "type": "dirichlet", "value": 0.0},
        {"boundary": "x1", "type": "neumann", "value": "0.2*t"}]})
    problem = build_problem(dm, spec)
    from fem.solvers import LinearSolver

    uh = dolfinx.fem.Function(problem.V)
    uh.x.array[:] = problem.u_n.x.array
    solver = LinearSolver(problem.a_step, problem.L_step, problem.bcs, uh, spec.solver)
    snaps = [problem.u_n.copy()]
    times = [0.0]
    for step in range(1, spec.time.steps + 1):
        problem.t_old.value, problem.t_new.value = (step - 1) * 0.05, step * 0.05
        solver.solve()
        problem.u_n.x.array[:] = uh.x.array
        snaps.append(uh.copy())
        times.append(step * 0.05)
    bal = cons.heat_mass_balance(problem, np.array(times), snaps)
    assert bal["relative"] < 1e-8
    # ∫_0^0.5 ∫Ω (1 + t) = 0.5 + 0.125; Neumann inflow ∫_0^0.5 0.2 t = 0.025 (θ-scheme exact
    # for data linear in t)
    assert bal["source_inflow"][-1] == pytest.approx(0.625 + 0.025, rel=1e-10)
    assert bal["mass"][-1] - bal["mass"][0] == pytest.approx(
        bal["source_inflow"][-1] + bal["dirichlet_inflow"][-1], rel=1e-8)
    # a field that loses 1 % of its heat per step drifts
    lossy = [s.copy() for s in snaps]
    for k, s in enumerate(lossy):
        s.x.array[:] *= 0.99**k
    assert cons.heat_mass_balance(problem, np.array(times), lossy)["relative"] > 1e-3
