"""Point evaluation, the reference cache (XDMF/VTX + reload) and `neurofem fem solve`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import meshes
from coupling.cli import main
from fem.config import parse_problem
from fem.errors import FemError
from fem.evaluate import PointEvaluator, evaluate
from fem.reference import load, reference
from meshes.fenics import dolfinx


@pytest.fixture(scope="module")
def plate():
    return meshes.build("plate_with_holes", 0.1)


@pytest.fixture(scope="module")
def quadratic(plate):
    V = dolfinx.fem.functionspace(plate.mesh, ("Lagrange", 2, (2,)))
    u = dolfinx.fem.Function(V)
    u.interpolate(lambda x: np.stack([x[0] ** 2 - x[0] * x[1], 3 * x[1] + 1]))
    return u


@settings(max_examples=20, deadline=None)
@given(arrays(np.float64, (7, 2), elements=st.floats(-0.6, 0.6)))
def test_evaluate_reproduces_p2_field(quadratic, pts):
    vals = evaluate(quadratic, pts)
    inside = (
        np.min(
            np.linalg.norm(
                pts[:, None] - np.array([[0.3, 0.3], [0.3, -0.3], [-0.3, 0.3], [-0.3, -0.3]]),
                axis=2,
            ),
            axis=1,
        )
        > 0.1 + 1e-3
    )
    inside &= np.all(np.abs(pts) < 0.5 - 1e-9, axis=1)
    exact = np.c_[pts[:, 0] ** 2 - pts[:, 0] * pts[:, 1], 3 * pts[:, 1] + 1]
    assert np.allclose(vals[inside], exact[inside], atol=1e-12)
    outside = np.all(np.abs(pts) > 0.5 + 1e-9, axis=1)
    assert np.isnan(vals[outside]).all()


def test_point_evaluator_reused_for_many_functions(quadratic):
    pts = np.array([[0.0, 0.0], [0.45, -0.1], [2.0, 2.0]])
    ev = PointEvaluator(quadratic.function_space.mesh, pts)
    a = ev(quadratic)
    quadratic.x.array[:] *= 2
    b = ev(quadratic)
    quadratic.x.array[:] /= 2
    assert np.allclose(b[:2], 2 * a[:2]) and np.isnan(a[2]).all()


POISSON = {
    "type": "poisson",
    "source": 1.0,
    "bcs": [
        {"boundary": "holes", "type": "dirichlet", "value": 0.0},
        {"boundary": "x0", "type": "neumann", "value": "y"},
    ],
}


@pytest.mark.parametrize("degree,suffix", [(1, ".xdmf"), (2, ".bp")])
def test_reference_cache_roundtrip(plate, tmp_path, degree, suffix):
    spec = parse_problem({**POISSON, "degree": degree})
    first = reference(plate, spec, tmp_path)
    assert not first.from_cache
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and (folders[0] / f"field{suffix}").exists()
    again = reference(plate, spec, tmp_path)
    assert again.from_cache
    assert np.array_equal(again.u.x.array, first.u.x.array)
    assert again.info["global_dofs"] == first.info["global_dofs"]
    # another problem gets another key
    other = parse_problem({**POISSON, "degree": degree, "source": 2.0})
    assert not reference(plate, other, tmp_path).from_cache
    assert len(list(tmp_path.iterdir())) == 2


def test_reference_load_rejects_other_mesh(plate, tmp_path):
    spec = parse_problem({**POISSON, "degree": 1})
    reference(plate, spec, tmp_path)
    finer = meshes.build("plate_with_holes", 0.08)
    V = dolfinx.fem.functionspace(finer.mesh, ("Lagrange", 1))
    with pytest.raises(FemError, match="no match"):
        load(next(tmp_path.iterdir()), V)


def write(tmp_path, text: str):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return str(p)


GOOD = """
[mesh]
kind = "plate_with_holes"
size = 0.1
[problem]
type = "poisson"
degree = 2
source = "13*sin(2*x)*cos(3*y)"
exact = "sin(2*x)*cos(3*y)"
[[problem.bcs]]
boundary = "*"
type = "dirichlet"
value = "sin(2*x)*cos(3*y)"
"""


def test_cli_solve_writes_field_and_summary(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["fem", "solve", write(tmp_path, GOOD), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert len(line.splitlines()) == 1 and "poisson P2" in line and "dofs" in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dofs"] > 0 and summary["solver_iterations"] >= 1
    assert summary["solve_time_s"] > 0 and summary["norms"]["l2"] > 0
    assert summary["problem"]["type"] == "poisson"
    assert summary["l2_error"] < 1e-3
    assert (out / "field.bp").exists() and (out / "field.npz").exists()


BAD = [
    ('type = "poisson"', 'type = "poison"', "problem.type: unknown value 'poison'"),
    ("degree = 2", "degree = 7", "problem.degree"),
    ('source = "13*sin(2*x)*cos(3*y)"', 'source = "import(os)"', "problem.source"),
    ('boundary = "*"', 'boundary = "hole"', "problem.bcs[0].boundary: no facet group 'hole'"),
    ('type = "dirichlet"', 'type = "robin"', "problem.bcs[0].type"),
    ("[mesh]", "[meshes]", "config mesh: missing table"),
    ('kind = "plate_with_holes"', 'kind = "plate"', "plate"),
    ("size = 0.1", "size = -1", "mesh.size"),
    (
        "degree = 2",
        "degree = 2\ncoefficients = {matrix = 1.0}",
        "problem.coefficients.matrix: no cell group 'matrix'",
    ),
    ("degree = 2", "degree = 2\nwhatever = 1", "problem.whatever: unknown key"),
    ("[problem]", "[problem\n", "c.toml"),
]


@pytest.mark.parametrize("old,new,message", BAD)
def test_cli_bad_config_one_line_exit_2(tmp_path, capsys, old, new, message):
    assert old in GOOD
    code = main(
        ["fem", "solve", write(tmp_path, GOOD.replace(old, new, 1)), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("neurofem: error:")
    assert message in err, err


def test_cli_missing_file(tmp_path, capsys):
    assert main(["fem", "solve", str(tmp_path / "nope.toml"), "--out", str(tmp_path)]) == 2
    assert "nope.toml" in capsys.readouterr().err
