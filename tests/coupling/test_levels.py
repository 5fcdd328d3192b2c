"""Coarse-to-fine training (coupling.Levels, ``[training] levels``): fewer fine steps to the
single-level error, resume inside a level equal to the uninterrupted run, per-level records,
bad hierarchies refused with one line naming the key, the off-node probe's keys."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import coupling
from conftest import set_key
from coupling.cli import main
from coupling.config import parse_run_config
from coupling.runs.network import Trainer
from coupling.training.checkpoint import read_checkpoint
from coupling.training.resume import list_checkpoints
from fem.errors import ConfigError
from meshes.fenics import MPI

FINE = 0.1  # the target mesh of the API test: 506 nodes; levels 0.3 (61) and 0.2 (150)


@functools.cache
def lshape(size: float):
    """−Δu = 1 on the L-shape, u = 0: its Galerkin discretisation at `size` (float64, with
    the FEM reference; no off-node probe: these tests score the nodes)."""
    import ufl

    import fem
    import meshes

    dm = meshes.build("lshape", size, comm=MPI.COMM_SELF)
    V = fem.functionspace(dm)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    pb = fem.VariationalProblem(dm, ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx,
                                1.0 * v * ufl.dx, bcs={"*": 0.0})
    disc = coupling.discretise(pb, dtype=torch.float64, reference=pb.solve())
    disc.offnode = False
    return disc


class Errors(coupling.Callback):
    """(step, level, nodal rel_l2) of every metrics record."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, float]] = []

    def on_log(self, state, record: dict) -> None:
        self.rows.append((record["step"], record.get("level", 0), record["rel_l2"]))


def _train(levels: list[tuple[float, int]]) -> list[tuple[int, int, float]]:
    import spiking

    torch.set_num_threads(1)
    fine = lshape(FINE)
    net = spiking.MLP(fine.in_dim, [32, 32], fourier=16, fourier_scale=0.5, seed=0,
                      bounds=fine.bounds, dtype=torch.float64)
    errors = Errors()
    plan = coupling.Levels([coupling.Level(lshape(size), steps, size=size)
                            for size, steps in levels])
    coupling.fit(net, plan, lr=1e-2, log_every=10, callbacks=[errors], handle_signals=False)
    return errors.rows


def test_coarse_to_fine_reaches_the_single_level_error_in_fewer_fine_steps():
    """400 Adam steps on the fine mesh alone end at e (0.90% here); after 200 steps at size
    0.3 and 200 at 0.2 (cheap: 61 and 150 nodes against 506), the same network reaches e
    within 250 fine steps (180 here): the fine level starts from an answer right at the
    coarse scale."""
    single = _train([(FINE, 400)])
    target = single[-1][2]
    assert target < 0.012, single[-1]
    rows = _train([(0.3, 200), (0.2, 200), (FINE, 250)])
    assert [r[1] for r in rows] == [0] * 20 + [1] * 20 + [2] * 25  # the level in every row
    fine = [(step - 400, err) for step, level, err in rows if level == 2]
    reached = next((step for step, err in fine if err <= target), None)
    print(f"single level: {target:.4%} after 400 fine steps; coarse to fine: reached after "
          f"{reached} fine steps")
    assert reached is not None and reached <= 250, fine[-5:]


def test_levels_of_fit_are_checked_with_one_line():
    """The API's hierarchy errors name the entry and the setting."""
    disc = lshape(0.3)
    net = torch.nn.Linear(2, 1).double()
    for plan, steps, needle in [
        ([coupling.Level(disc, 0), coupling.Level(disc, 5)], None, "levels[0].steps = 0"),
        ([coupling.Level(disc, 5), coupling.Level(disc)], None, "levels[1].steps = None"),
        ([coupling.Level(disc, 5, size=0.2), coupling.Level(disc, 5, size=0.3)], None,
         "levels[1].size = 0.3"),
        ([coupling.Level(disc, 5, lr=-1.0), coupling.Level(disc, 5)], None, "levels[0].lr"),
        ([coupling.Level(disc, 5), coupling.Level(disc)], 5, "steps = 5"),
    ]:
        with pytest.raises(ValueError, match=r"^fit: ") as err:
            coupling.fit(net, coupling.Levels(plan), steps=steps, handle_signals=False)
        assert needle in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="moments = 'forget'"):
        coupling.Levels([coupling.Level(disc, 5)], moments="forget")


# ------------------------------------------------------------------ the config path


def small_levels(**training) -> dict:
    """examples/lshape-vsn-galerkin.toml at size 0.2, float64, through 0.4 → 0.3 → 0.2."""
    import tomllib

    with open(Path(__file__).resolve().parents[2] / "examples" / "lshape-vsn-galerkin.toml",
              "rb") as fh:
        doc = tomllib.load(fh)
    doc["mesh"]["size"] = 0.2
    doc["network"]["hidden"] = [16, 16]
    doc["training"].pop("steps")
    doc["training"].update({"dtype": "float64", "log_every": 5, "checkpoint_every": 7,
                            "progress": False, "offnode_every": 2,
                            "levels": [{"size": 0.4, "steps": 14}, {"size": 0.3, "steps": 21,
                                                                     "lr": 1e-2},
                                       {"steps": 14}], **training})
    return doc


class Crash(coupling.Callback):
    """Ends the run like a killed process right after the checkpoint of step `at`."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_checkpoint(self, state, stopped: bool) -> None:
        if state.step == self.at:
            raise KeyboardInterrupt(f"killed after step {self.at}")


def run_levels(doc: dict, run_dir: Path, comm=MPI.COMM_SELF, resume: bool = False,
         callbacks=()) -> Trainer:
    trainer = Trainer(parse_run_config(doc), run_dir, comm)
    trainer.setup()
    trainer.train(resume=resume, callbacks=callbacks)
    return trainer


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("cut", [28, 14], ids=["inside-level-1", "at-the-end-of-level-0"])
def test_resume_inside_a_level_equals_the_uninterrupted_run(tmp_path, cut):
    """Killed after the checkpoint of step `cut` (inside level 1, or at level 0's end) and
    resumed, the run ends with the parameters of the uninterrupted run (float64: to 1e-12)
    and the same metrics, every row and checkpoint naming its level."""
    torch.set_num_threads(1)
    doc = small_levels()
    full = run_levels(doc, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_levels(doc, tmp_path / "cut", callbacks=[Crash(cut)])
    resumed = run_levels(doc, tmp_path / "cut", resume=True)
    assert full.step == resumed.step == 49
    for (name, a), (_, b) in zip(full.net.state_dict().items(),
                                 resumed.net.state_dict().items(), strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-12, err_msg=name)
    rows, again = _metrics(tmp_path / "full"), _metrics(tmp_path / "cut")
    assert [r["step"] for r in rows] == [r["step"] for r in again] == \
        [5, 10, 14, 15, 20, 25, 30, 35, 40, 45, 49]
    assert [r["level"] for r in rows] == [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2]
    for a, b in zip(rows, again, strict=True):
        assert b["level"] == a["level"] and b["loss"] == pytest.approx(a["loss"], abs=1e-12)
    # the cosine schedule restarts on every level, from the level's own rate
    lr0, lr1 = doc["training"]["lr"], 1e-2
    assert rows[2]["lr"] == pytest.approx(0.0, abs=1e-15)  # level 0 annealed to 0
    assert rows[3]["lr"] == pytest.approx(lr1 * (1 + np.cos(np.pi / 21)) / 2, rel=1e-12)
    assert rows[8]["lr"] == pytest.approx(lr0 * (1 + np.cos(5 * np.pi / 14)) / 2, rel=1e-12)
    step, path = list_checkpoints(tmp_path / "cut")[-1]
    meta = read_checkpoint(path)["metadata"]
    assert step == 49 and meta["level"] == 2 and meta["level_step"] == 14


def test_a_resume_with_other_levels_is_refused(tmp_path, capsys):
    """The levels are part of the config: another hierarchy is another run."""
    import tomli_w

    doc = small_levels()
    with pytest.raises(KeyboardInterrupt):
        run_levels(doc, tmp_path / "run", callbacks=[Crash(21)])
    other = set_key(doc, "training.levels", [{"size": 0.4, "steps": 20}, {"steps": 29}])
    (tmp_path / "run" / "config.toml").write_text(tomli_w.dumps(other))
    assert main(["resume", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "different config" in err, err


BAD_LEVELS = [
    ([{"size": 0.3, "steps": 10}, {"size": 0.4, "steps": 10}, {"steps": 10}],
     "training.levels[1].size"),  # sizes increasing
    ([{"size": 0.4, "steps": 0}, {"steps": 10}], "training.levels[0].steps"),
    ([{"size": 0.4, "steps": 10, "mesh": 1}, {"steps": 10}], "training.levels[0].mesh"),
    ([{"size": 0.4, "steps": 10}, {"steps": 10, "size": 0.1}], "training.levels[1].size"),
    ([{"size": 0.1, "steps": 10}, {"steps": 10}], "training.levels[0].size"),  # below [mesh]
    ([{"steps": 10}, {"steps": 10}], "training.levels[0].size"),
    ([{"size": 0.4, "steps": 10}, {}], "training.levels[1].steps"),
    ([{"size": 0.4, "steps": 10}], "training.levels"),
    ([{"size": 0.4, "steps": 10, "batch": -1}, {"steps": 10}], "training.levels[0].batch"),
    ([{"size": 0.4, "steps": 10}, {"steps": 10, "batch": 5}], "training.levels[1].batch"),
    ({"size": 0.4}, "training.levels"),
]


@pytest.mark.parametrize(("levels", "key"), BAD_LEVELS, ids=[f"{b[1]}-{i}" for i, b in
                                                              enumerate(BAD_LEVELS)])
def test_a_bad_hierarchy_ends_with_one_line_naming_the_key(tmp_path, capsys, levels, key):
    import tomli_w

    doc = set_key(small_levels(), "training.levels", levels)
    (tmp_path / "bad.toml").write_text(tomli_w.dumps(doc))
    assert main(["train", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"neurofem: error: config {key}:"), err
    assert not (tmp_path / "run").exists()


def test_training_steps_is_the_total_and_sets_the_last_level():
    """Without training.steps the total is the levels' sum; with it (`--steps`), the last
    level takes what the coarser ones leave; a resolved config reads back the same."""
    cfg = parse_run_config(small_levels())
    assert cfg.training.steps == 49 and cfg.training.level_steps() == [14, 21, 14]
    longer = parse_run_config(set_key(small_levels(), "training.steps", 60))
    assert longer.training.level_steps() == [14, 21, 25]
    again = parse_run_config(cfg.resolved())
    assert again.training.level_steps() == [14, 21, 14] and again.resolved() == cfg.resolved()
    with pytest.raises(ConfigError, match=r"^config training.steps: 35 leaves no steps"):
        parse_run_config(set_key(small_levels(), "training.steps", 35))
    import tomllib

    with open(Path(__file__).resolve().parents[2] / "examples" / "poisson-parametric.toml",
              "rb") as fh:
        parametric = tomllib.load(fh)
    parametric["training"]["levels"] = [{"size": 0.1, "steps": 10}, {"steps": 10}]
    parametric["training"].pop("steps", None)
    with pytest.raises(ConfigError, match=r"^config training.levels: a parametric run"):
        parse_run_config(parametric)


def test_offnode_probe_cadence_and_point_budget(tmp_path):
    """training.offnode_every = 2: every other metrics row has the off-node errors (0: none);
    training.offnode_points: the probe evaluates about that many points, not every cell's."""
    torch.set_num_threads(1)
    doc = set_key(small_levels(offnode_points=120), "training.levels",
                  [{"size": 0.3, "steps": 10}, {"steps": 10}])
    trainer = run_levels(doc, tmp_path / "every2")
    rows = _metrics(tmp_path / "every2")
    # the probe counts per level: rows 1 and 3 of each level's records
    assert [("offnode" in r, r["level"]) for r in rows] == [(True, 0), (False, 0), (True, 1),
                                                          (False, 1)]
    probe = trainer.disc._offnode
    cells = trainer.dmesh.mesh.topology.index_map(2).size_local
    assert 60 <= len(probe.pts.x) <= 200 < 6 * cells, len(probe.pts.x)  # 6 per triangle
    assert probe.pts.rows.shape[0] == len(probe.pts.x) == len(probe.ref)
    run_levels(set_key(doc, "training.offnode_every", 0), tmp_path / "never")
    assert not any("offnode" in r for r in _metrics(tmp_path / "never"))
