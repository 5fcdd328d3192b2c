"""Parametric problems: parameter boxes, the affine decomposition vs direct assembly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import meshes
from fem.config import parse_problem
from fem.errors import ConfigError
from fem.operators import assemble_operators
from fem.parameters import parse_parameters
from fem.problems.parametric import ParametricProblem

POISSON = {"type": "poisson", "coefficients": 1.0, "source": "1 + x*y",
           "bcs": [{"boundary": "x0", "type": "dirichlet", "value": 0.0},
                   {"boundary": "x1", "type": "dirichlet", "value": "y"},
                   {"boundary": "y0", "type": "neumann", "value": 0.5}]}
ELASTIC = {"type": "elasticity", "materials": {"domain": {"E": 1.0, "nu": 0.3}},
           "bcs": [{"boundary": "*", "type": "affine", "strain": np.zeros((3, 3)).tolist()}]}


@pytest.fixture(scope="module")
def square():
    return meshes.build("rectangle", 0.25)


@pytest.fixture(scope="module")
def poisson(square):
    box = parse_parameters({"ranges": {"k": {"low": 0.5, "high": 5.0, "scale": "log"},
                                       "source": [0.0, 2.0], "value.x0": [-1.0, 1.0]}})
    p = ParametricProblem(square, parse_problem(POISSON), box)
    return p, p.operators()


@pytest.fixture(scope="module")
def elastic(square):
    box = parse_parameters({"ranges": {"E.domain": [1.0, 10.0], "nu.domain": [0.2, 0.45],
                                       "strain.11": [-1.0, 1.0], "strain.12": [-1.0, 1.0]}})
    p = ParametricProblem(square, parse_problem(ELASTIC), box)
    return p, p.operators()


def _check_against_direct(p, ops, t) -> None:
    mu = p.box.from_unit(np.asarray(t)[None])[0]
    direct = assemble_operators(p.problem_at(mu))
    K = ops.K(p.theta(mu))
    c = p.load_coefficients(mu)[0]
    scale = abs(direct.K_scipy).max()
    assert abs(K - direct.K_scipy).max() <= 1e-12 * scale
    assert np.abs(ops.load(c) - direct.b.numpy()).max() <= 1e-12 * max(
        np.abs(direct.b.numpy()).max(), 1.0)
    assert np.array_equal(ops.dirichlet_dofs, direct.dirichlet_dofs)
    assert np.abs(ops.data(c) - direct.dirichlet_values).max() <= 1e-12


@settings(max_examples=8, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_poisson_decomposition_equals_direct_assembly(poisson, t):
    p, ops = poisson
    assert p.operator_names == ["k"] and p.load_names == ["source", "value.x0"]
    assert p.n_channels == 3  # the fixed data (u = y on x1, the Neumann flux) is a channel
    _check_against_direct(p, ops, t)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=4, max_size=4))
def test_elasticity_decomposition_equals_direct_assembly(elastic, t):
    p, ops = elastic
    assert p.n_channels == 2  # no fixed load: only the two strain components
    _check_against_direct(p, ops, t)


@pytest.mark.parametrize("ranges, key", [
    ({}, "parameters.ranges"),
    ({"k": [2.0, 1.0]}, "parameters.ranges.k"),
    ({"k": [1.0]}, "parameters.ranges.k"),
    ({"k": {"low": -1.0, "high": 1.0, "scale": "log"}}, "parameters.ranges.k"),
    ({"k": 3.0}, "parameters.ranges.k"),
    ({"k": {"low": 1.0, "high": "x"}}, "parameters.ranges.k.high"),
])
def test_bad_ranges_name_their_key(ranges, key):
    with pytest.raises(ConfigError) as err:
        parse_parameters({"ranges": ranges})
    assert str(err.value).startswith(f"config {key}:"), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name, problem", [("E.matrix", POISSON), ("k.inclusion", POISSON),
                                           ("value.y1", POISSON), ("E.fibre", ELASTIC),
                                           ("strain.33", ELASTIC), ("strain.xx", ELASTIC)])
def test_unknown_parameter_names_are_refused(square, name, problem):
    box = parse_parameters({"ranges": {name: [1.0, 2.0]}})
    with pytest.raises(ConfigError) as err:
        ParametricProblem(square, parse_problem(problem), box)
    assert str(err.value).startswith(f"config parameters.ranges.{name}:"), str(err.value)


def test_parse_checks_names_and_box():
    box = parse_parameters({"ranges": {"k": [1.0, 2.0], "source": [0.0, 1.0]}})
    assert np.allclose(box.parse({"k": 1.5, "source": 0.0}), [1.5, 0.0])
    for values, words in [({"k": 3.0, "source": 0.5}, "outside the trained box"),
                          ({"k": 1.5}, "missing parameter 'source'"),
                          ({"k": 1.5, "source": 0.5, "f": 1.0}, "unknown parameter 'f'")]:
        with pytest.raises(ConfigError, match=words):
            box.parse(values)


def test_held_out_points_are_fixed_inside_the_box_and_apart_from_validation():
    box = parse_parameters({"ranges": {"a": {"low": 5.0, "high": 50.0, "scale": "log"},
                                       "b": [-1.0, 1.0]}, "held_out": 20})
    h = box.held_out_points()
    assert h.shape == (20, 2) and np.array_equal(h, box.held_out_points())
    assert (h[:, 0] >= 5).all() and (h[:, 0] <= 50).all() and (np.abs(h[:, 1]) <= 1).all()
    v = box.validation_points()
    assert np.min(np.linalg.norm(h[:, None] - v[None], axis=2)) > 0
    # log scale: half the held-out points lie below the geometric mean (√250 ≈ 15.8)
    assert 6 <= int((h[:, 0] < np.sqrt(250)).sum()) <= 14
