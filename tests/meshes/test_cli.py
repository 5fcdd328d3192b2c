"""`neurofem mesh` and `neurofem demo`: outputs, --help, and one-line errors with exit 2."""

import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

import meshes
from coupling.cli import main


@pytest.fixture
def files(tmp_path):
    garbage = tmp_path / "garbage.step"
    garbage.write_text("this is not a STEP file\n")
    obj = tmp_path / "part.obj"
    obj.write_text("v 0 0 0\n")
    return tmp_path, str(garbage), str(obj)


# (arguments after `neurofem mesh`, a fragment the one-line message must contain)
INVALID = [
    (["rve", "--volume-fraction", "0.6"], "--volume-fraction=0.6 not reachable"),
    (["rve", "--volume-fraction", "0.34", "--max-attempts", "300"], "--volume-fraction=0.34 not "
     "reached"),
    (["rve", "--volume-fraction", "-0.2"], "--volume-fraction=-0.2"),
    (["rve", "--n", "5000"], "--n=5000"),
    (["rve", "--seed", "abc"], "--seed=abc: expected int"),
    (["rve", "--inclusion", "cube"], "--inclusion=cube: choose from sphere, ellipsoid, fibre"),
    (["rectangle", "--size", "-0.1"], "--size=-0.1"),
    (["rectangle", "--size", "0"], "--size=0"),
    (["rectangle", "--size", "1e-5"], "max_cells"),
    (["rectangle", "--x1", "-1"], "need x1 > x0"),
    (["hollow_sphere", "--a", "1", "--b", "0.5"], "--a=1.0 --b=0.5: need a < b"),
    (["polygon", "--vertices", "[[0,0],[1,1],[1,0],[0,1]]"], "self-intersecting"),
    (["polygon", "--vertices", "[[0,0],[1,0]]"], "at least 3"),
    (["polygon", "--vertices", "[[0,0],[1,0"], "--vertices="),
    (["polygon", "--holes", "[[5,5,0.1]]"], "not strictly inside"),
    (["plate_with_holes", "--radii", "0.4"], "is not strictly inside"),
    (["plate_with_holes", "--centres", "[[0,0],[0.1,0]]"], "holes 0 and 1 overlap"),
    (["bracket", "--hole-radius", "0.5"], "--hole-radius=0.5 too large"),
    (["file", "--path", "{tmp}/missing.step"], "no such file"),
    (["file", "--path", "{garbage}"], "Gmsh could not read it"),
    (["file", "--path", "{obj}"], "unsupported file type '.obj'"),
    (["nosuchkind"], "invalid choice: 'nosuchkind'"),
]


@pytest.mark.parametrize("args, fragment", INVALID, ids=[" ".join(a[:3]) for a, _ in INVALID])
def test_invalid_request_one_line_exit_2(args, fragment, files, capsys):
    tmp, garbage, obj = files
    args = [a.format(tmp=tmp, garbage=garbage, obj=obj) for a in args]
    out = str(tmp / "out.msh")
    try:
        rc = main(["mesh", *args, "-o", out])
    except SystemExit as exc:  # argparse errors (unknown kind) exit by themselves
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("neurofem: error:")
    assert fragment in lines[0]
    assert not Path(out).exists()


def test_unsupported_output_fails_before_meshing(tmp_path, capsys):
    assert main(["mesh", "rve", "-o", str(tmp_path / "rve.obj")]) == 2
    assert "unsupported format '.obj'" in capsys.readouterr().err


def test_console_script_reports_error_in_a_subprocess(tmp_path):
    exe = Path(sys.executable).parent / "neurofem"
    res = subprocess.run([str(exe), "mesh", "hollow_sphere", "--a", "2", "--b", "1", "-o",
                          str(tmp_path / "s.msh")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert res.stderr.startswith("neurofem: error: hollow_sphere radii --a=2.0 --b=1.0")
    assert "Traceback" not in res.stderr


def _std(png):
    return float(np.std(mpimg.imread(png)[..., :3]))


def test_mesh_rve_writes_msh_and_preview(tmp_path, capsys):
    msh, png = str(tmp_path / "rve.msh"), str(tmp_path / "rve.png")
    rc = main(["mesh", "rve", "--volume-fraction", "0.2", "--seed", "3", "--size", "0.12",
               "-o", msh, "--preview", png])
    out = capsys.readouterr().out.strip()
    assert rc == 0 and len(out.splitlines()) == 1
    vf = float(re.search(r"volume fraction (\S+) \(target 0.2000\)", out).group(1))
    assert abs(vf - 0.2) < 0.01
    assert _std(png) > 0.05
    dm = meshes.build("file", path=msh)  # the .msh kept the physical groups
    assert set(dm.cell_names) == {"matrix", "inclusion"}
    assert "interface" in dm.facet_names
    assert str(dm.mesh.topology.index_map(3).size_global) in out


def test_bool_flags_and_json_options_from_the_command_line(tmp_path, capsys):
    msh = str(tmp_path / "shell.vtu")
    assert main(["mesh", "hollow_sphere", "--eighth", "--size", "0.25", "-o", msh]) == 0
    assert "hollow_sphere" in capsys.readouterr().out
    verts = "[[0,0],[2,0],[2,1],[0,1]]"
    assert main(["mesh", "polygon", "--vertices", verts, "--holes", "[]", "--size", "0.25",
                 "-o", str(tmp_path / "p.msh")]) == 0
    assert "domain=2" in capsys.readouterr().out


def test_help_lists_every_option_of_every_kind(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["mesh", "--help"])
    assert exc.value.code == 0
    top = capsys.readouterr().out
    for kind, builder in meshes.kinds().items():
        assert kind in top
        with pytest.raises(SystemExit):
            main(["mesh", kind, "--help"])
        text = capsys.readouterr().out
        for option in builder.options:
            assert option.flag in text and option.flag in top, (kind, option.flag)
        assert "--size" in text and "--preview" in text
