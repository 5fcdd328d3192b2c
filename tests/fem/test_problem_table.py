"""The ``[problem]`` and ``[parameters]`` tables are one pydantic model each: validated once,
type-dependent defaults filled in by the model, and that model is the record solvers read."""

from __future__ import annotations

import numpy as np
import pytest

from fem.config import BCTable, ProblemTable, TimeTable, parse_problem
from fem.errors import ConfigError
from fem.parameters import ParametersTable, RangeTable, parse_parameters

HEAT = {"type": "heat", "source": "1 + t", "time": {"t_end": 1.0, "dt": 0.1},
        "bcs": [{"boundary": "*", "type": "dirichlet", "value": 0.0}]}
ELASTIC = {"type": "elasticity", "materials": {"matrix": {"E": 2.0, "nu": 0.25}},
           "bcs": [{"boundary": "x0", "type": "roller", "component": 0, "strain": [0] * 6},
                   {"boundary": "*", "type": "affine", "strain": [1, 0, 0, 0, 0, 0],
                    "value": 3.0}]}


def test_the_validated_table_is_the_record_with_its_defaults_filled_in():
    heat = parse_problem(HEAT)
    assert type(heat) is ProblemTable and type(heat.time) is TimeTable
    assert heat.time.theta == 0.5 and heat.time.steps == 10  # heat's θ, 1.0 / 0.1 steps
    assert heat.kappa == 0.0 and heat.materials == {} and not heat.vector
    assert (heat.output_points, heat.output_times) == (101, 101)
    assert [bc.key for bc in heat.bcs] == ["problem.bcs[0]"]
    burgers = parse_problem({**HEAT, "type": "burgers", "viscosity": 0.01})
    assert burgers.time.theta == 1.0  # Burgers' own default θ
    poisson = parse_problem({**HEAT, "type": "poisson"})
    assert poisson.time is None and poisson.source[0].text == "1 + t"


def test_boundary_entries_keep_what_their_type_uses():
    p = parse_problem(ELASTIC)
    roller, affine = p.bcs
    assert type(roller) is BCTable and roller.key == "problem.bcs[0]"
    assert float(roller.value[0].numpy()(np.zeros((3, 1)))[0]) == 0.0  # 0 unless given
    assert roller.strain is None and roller.component == 0
    assert affine.value is None and affine.component is None and affine.key == "problem.bcs[1]"
    assert np.allclose(affine.strain, np.diag([1.0, 0.0, 0.0]))
    E, nu = p.materials["matrix"]  # a material unpacks as (E, ν)
    assert (E, nu) == (2.0, 0.25) and p.vector and p.source == []


def test_homogenisation_drops_the_source_and_the_raw_table_is_kept():
    table = {"type": "homogenisation", "source": [1.0, 0.0], "materials": ELASTIC["materials"]}
    p = parse_problem(table)
    assert p.source == [] and p.raw == table
    assert p.digest() == parse_problem(dict(table)).digest()


def test_a_copy_with_other_keys_has_another_cache_key():
    p = parse_problem(HEAT)
    q = p.model_copy(update={"degree": 2})
    assert q.degree == 2 and q.raw["degree"] == 2 and p.raw.get("degree") is None
    assert q.digest() != p.digest()
    assert p.model_copy().digest() == p.digest()


def test_the_parameter_box_is_the_parameters_table():
    box = parse_parameters({"ranges": {"k": {"low": 0.5, "high": 5.0, "scale": "log"},
                                       "a": [1.0, 3.0]}, "batch": 8})
    assert type(box) is ParametersTable and box.names == ["a", "k"]  # canonical order
    assert all(type(p) is RangeTable for p in box.parameters) and box.batch == 8
    assert np.allclose(box.centre(), [2.0, np.sqrt(2.5)])  # the log range's centre: √(0.5·5)
    assert np.allclose(box.to_unit(box.from_unit(np.array([[0.25, 0.75]]))), [[0.25, 0.75]])


@pytest.mark.parametrize("table, key", [
    ({**HEAT, "time": {"t_end": 1.0, "dt": 0.3}}, "problem.time.dt"),
    ({**ELASTIC, "bcs": [{"boundary": "x0", "type": "roller"}]}, "problem.bcs[0].component"),
    ({**ELASTIC, "materials": {"matrix": {"E": 1.0, "nu": 0.5}}}, "problem.materials.matrix.nu"),
])
def test_bad_values_name_their_key_in_one_line(table, key):
    with pytest.raises(ConfigError) as err:
        parse_problem(table)
    assert str(err.value).startswith(f"config {key}: ") and "\n" not in str(err.value)
