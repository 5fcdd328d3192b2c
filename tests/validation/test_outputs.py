"""Building blocks of reports: provenance (flags, reproduce commands), colour ranges, and
the rendered colour-bar check (it must find an overlap when there is one)."""

import numpy as np
import pytest

from validation import figures as fig
from validation.provenance import (
    completeness,
    flagged,
    git_commit,
    launcher,
    reproduce_command,
    versions,
)


def test_incomplete_flag_and_reproduce_command():
    s = {"run": completeness(177, 6000)}
    assert s["run"] == {"steps_done": 177, "steps_planned": 6000, "complete": False}
    assert flagged("error 3%", s) == "INCOMPLETE run (stopped at step 177 of 6000): error 3%"
    assert flagged("error 3%", {"run": completeness(6000, 6000)}) == "error 3%"
    assert launcher(1) == "" and launcher(2) == "mpiexec -n 2 "
    cmd = reproduce_command("runs/a b", 2, 2)
    assert cmd == ("mpiexec -n 2 neurofem train 'runs/a b'/config.toml --out 'runs/a b' "
                   "--force && mpiexec -n 2 neurofem report 'runs/a b'")


def test_versions_and_commit():
    v = versions()
    assert v["dolfinx"].startswith("0.") and v["torch"] and v["python"].count(".") == 2
    sha = git_commit()
    assert sha is None or len(sha.split("-")[0]) == 40


def test_data_range_is_the_datas_own():
    assert fig.data_range(np.array([0.2, 0.35, 0.3])) == (0.2, 0.35)
    lo, hi = fig.data_range(np.array([0.0, 1e-14, 3.0]), log=True)
    assert (lo, hi) == (pytest.approx(3e-12), 3.0)  # floored at 1e-12 of the largest
    lo, hi = fig.data_range(np.array([0.5, 0.5]))
    assert lo < 0.5 < hi and hi - lo < 1e-2


def _grid():
    import pyvista as pv

    g = pv.ImageData(dimensions=(8, 8, 8), spacing=(0.1, 0.1, 0.1)).cast_to_unstructured_grid()
    g.point_data["u"] = g.points[:, 0] * 1e-3
    g.cell_data["phase"] = 1 + (np.linalg.norm(g.cell_centers().points - 0.35, axis=1)
                                < 0.2).astype(int)
    g.cell_data["c"] = np.linspace(1e-9, 1e3, g.n_cells)
    return g


def test_panels_pass_the_rendered_colorbar_check(tmp_path):
    g = _grid()
    origin = fig.cut_origin(g, 2, 2)
    info = fig.panels(g, [
        {"field": "u", "label": "displacement magnitude network [mm]", "title": "u"},
        {"field": "c", "label": "force imbalance density, FEM [GPa/mm]", "cell": True,
         "log": True},
        {"field": "c", "label": "c on the cut", "cell": True, "cut": (2, origin),
         "outlines": fig.outlines(g, [2], 2, origin)}], tmp_path / "p.png")
    bars = info["colorbars"]
    assert [b["clim"] for b in bars] == [pytest.approx([0.0, 7e-4]),
                                         pytest.approx([1e-9, 1e3]), pytest.approx([1e-9, 1e3])]
    for b in bars:
        assert b["title_px"] > 100 and b["label_px"] > 100 and b["overlap_px"] == 0, b
    assert abs(origin[2] - 0.35) < 0.1  # the cut goes through the inclusion
    assert fig.pixel_std(tmp_path / "p.png") > 0.02


def test_colorbar_check_finds_an_overlap():
    """A title drawn over the tick labels is caught (the check is not vacuous)."""
    pv = fig._pyvista()
    p = pv.Plotter(off_screen=True, window_size=(600, 600))
    p.set_background("white")
    p.add_mesh(_grid(), scalars="u", scalar_bar_args=fig._bar("u [mm]"))
    bar = p.scalar_bars["u [mm]"]
    title = fig._bar_title(p, bar, "a title on the labels")
    title.SetPosition(0.5, 0.12)  # where the tick labels are
    p.screenshot(None, return_img=True)
    (c,) = fig.colorbar_check(p, [(bar, title)])
    p.close()
    assert c["overlap_px"] > 20 and c["title_px"] > 100 and c["label_px"] > 100
