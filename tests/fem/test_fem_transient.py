"""Heat (θ-scheme, any dimension) and viscous Burgers (Newton per step) against exact
solutions on their space-time grids."""

from __future__ import annotations

import numpy as np
import pytest
from fem_helpers import trapezoid_weights

import meshes
from fem.config import parse_problem
from fem.interval import interval
from fem.problems import solve


def space_time_rel_l2(series, exact) -> float:
    """Relative L2 over the (t, x) grid with trapezoid weights (1D series)."""
    t, x = series.times, series.points[:, 0]
    T, X = np.meshgrid(t, x, indexing="ij")
    w = np.outer(trapezoid_weights(t), trapezoid_weights(x))
    ex = exact(T, X)
    return float(np.sqrt(np.sum(w * (series.values - ex) ** 2) / np.sum(w * ex**2)))


def heat_spec(theta, dt, degree=2, times=101):
    return parse_problem(
        {
            "type": "heat",
            "degree": degree,
            "source": "100*sin(pi*x)",
            "time": {"t_end": 1.0, "dt": dt, "theta": theta},
            "output": {"points": 101, "times": times},
            "bcs": [
                {"boundary": "x0", "type": "dirichlet", "value": 0.0},
                {"boundary": "x1", "type": "dirichlet", "value": 0.0},
            ],
        }
    )


def heat_exact(t, x):
    return 100 / np.pi**2 * (1 - np.exp(-(np.pi**2) * t)) * np.sin(np.pi * x)


@pytest.fixture(scope="module")
def unit_interval():
    return interval(1 / 32)


def test_heat_1d_matches_analytic(unit_interval):
    """u_t = u_xx + 100 sin(πx), zero IC/BC: relative space-time L2 error < 1e-3 on [0,1]²."""
    sol = solve(unit_interval, heat_spec(0.5, 0.005))
    s = sol.series
    assert s.values.shape == (101, 101)
    assert s.times[0] == 0.0 and s.times[-1] == pytest.approx(1.0)
    assert space_time_rel_l2(s, heat_exact) < 1e-3


def test_heat_time_order(unit_interval):
    """Crank–Nicolson converges at order 2 in dt, backward Euler at order 1."""
    errs = {}
    for theta in (0.5, 1.0):
        errs[theta] = [
            space_time_rel_l2(
                solve(unit_interval, heat_spec(theta, dt, times=6)).series, heat_exact
            )
            for dt in (0.04, 0.02)
        ]
    rate_cn = np.log2(errs[0.5][0] / errs[0.5][1])
    rate_be = np.log2(errs[1.0][0] / errs[1.0][1])
    assert abs(rate_cn - 2) < 0.25, errs
    assert abs(rate_be - 1) < 0.25, errs


def test_heat_2d_time_dependent_dirichlet():
    """u = t(x² + y²) solves u_t = Δu + f with f = x² + y² − 4t; θ = 1/2 is exact in time
    for linear-in-t solutions and P2 in space, so the field is reproduced to round-off."""
    dm = meshes.build("rectangle", 0.25)
    exact = "t*(x**2 + y**2)"
    spec = parse_problem(
        {
            "type": "heat",
            "degree": 2,
            "source": "x**2 + y**2 - 4*t",
            "time": {"t_end": 0.5, "dt": 0.1, "theta": 0.5},
            "output": {"points": 5, "times": 6},
            "bcs": [
                {"boundary": b, "type": "dirichlet", "value": exact}
                for b in ("x0", "x1", "y0", "y1")
            ],
        }
    )
    s = solve(dm, spec).series
    X = s.points
    ex = s.times[:, None] * (X[None, :, 0] ** 2 + X[None, :, 1] ** 2)
    assert np.max(np.abs(s.values - ex)) < 1e-10


def cole_hopf(t, x, nu, n=200):
    """Exact Burgers solution for u0 = −sin(πx) (Cole–Hopf with Gauss–Hermite quadrature)."""
    s, w = np.polynomial.hermite.hermgauss(n)
    out = np.empty_like(x)
    for i, (ti, xi) in enumerate(zip(t.ravel(), x.ravel(), strict=True)):
        if ti == 0:
            out.flat[i] = -np.sin(np.pi * xi)
            continue
        y = xi - np.sqrt(4 * nu * ti) * s
        logf = -np.cos(np.pi * y) / (2 * np.pi * nu)
        f = w * np.exp(logf - logf.max())
        out.flat[i] = -np.sum(np.sin(np.pi * y) * f) / np.sum(f)
    return out


def test_burgers_matches_cole_hopf():
    """u_t + u u_x = ν u_xx, u0 = −sin(πx) on [−1, 1], ν = 0.05, t ≤ 0.5."""
    nu = 0.05
    dm = interval(1 / 64, x0=-1.0, x1=1.0)
    spec = parse_problem(
        {
            "type": "burgers",
            "degree": 2,
            "viscosity": nu,
            "time": {"t_end": 0.5, "dt": 0.005, "theta": 0.5, "initial": "-sin(pi*x)"},
            "output": {"points": 41, "times": 11},
            "bcs": [
                {"boundary": "x0", "type": "dirichlet", "value": 0.0},
                {"boundary": "x1", "type": "dirichlet", "value": 0.0},
            ],
        }
    )
    sol = solve(dm, spec)
    s = sol.series
    T, X = np.meshgrid(s.times, s.points[:, 0], indexing="ij")
    err = space_time_rel_l2(s, lambda t, x: cole_hopf(t, x, nu))
    assert err < 2e-3, err
    assert sol.info["iterations"] >= 100  # at least one Newton step per time step
    assert np.max(np.abs(s.values[-1] - cole_hopf(T[-1], X[-1], nu))) < 5e-3
