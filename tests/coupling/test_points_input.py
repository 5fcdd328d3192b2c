"""`neurofem points` input (issue 28): the CSV streamed and refused by size before reading,
each bad line one line naming it, a parametric run refused in one line, the output never
written through a link."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from coupling.cli import main
from coupling.cli.points import MAX_POINTS, read_points
from fem.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _csv(tmp_path: Path, text: str | bytes, name: str = "pts.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_header_comments_and_blank_lines(tmp_path):
    pts = read_points(_csv(tmp_path, "x,y\n# a comment\n0.1,0.2\n\n0.3, 0.4\n"))
    assert pts.tolist() == [[0.1, 0.2], [0.3, 0.4]]


def test_many_points_are_read_in_blocks(tmp_path):
    data = np.random.default_rng(0).random((200_000, 3))
    path = tmp_path / "many.csv"
    np.savetxt(path, data, delimiter=",", fmt="%.17g")
    got = read_points(path)
    assert got.shape == (200_000, 3) and np.array_equal(got, data)  # %.17g round-trips


BAD = {
    "not-numbers": ("0,0\n1,a\n", r"line 2: not numbers: '1,a'"),
    "header-late": ("0,0\nx,y\n", "line 2: not numbers"),
    "widths": ("0,0\n1,2,3\n", "line 2: expected 2 finite coordinates"),
    "inf": ("0,0\n1,inf\n", "line 2: expected 2 finite"),
    "nan": ("nan,0\n", "line 1: expected 2 finite"),
    "not-utf8": (b"0,0\n\xff\xfe,1\n", "line 2: not UTF-8 text"),
    "empty": ("", "no points"),
    "header-only": ("x,y,z\n", "no points"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_is_one_line_naming_the_line(name, tmp_path):
    text, match = BAD[name]
    with pytest.raises(ConfigError, match=match) as e:
        read_points(_csv(tmp_path, text))
    assert len(str(e.value).splitlines()) == 1 and str(e.value).startswith("config --file")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_points(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="cannot read|Is a directory"):
        read_points(tmp_path)


def _sparse(tmp_path: Path, rows: int) -> Path:
    """A file that claims `rows` short rows: real first lines, then a sparse tail."""
    path = tmp_path / "huge.csv"
    head = "0.125,0.25\n" * 10_000
    path.write_text(head)
    os.truncate(path, rows * len("0.125,0.25\n"))
    return path


@pytest.mark.timeout(120)  # a hang guard: parsing 2e7 rows instead would run for minutes
def test_over_max_points_refused_from_the_size_before_reading(tmp_path):
    path = _sparse(tmp_path, 2 * MAX_POINTS)
    with pytest.raises(ConfigError, match=r"about 2e\+07 points.*split the file") as e:
        read_points(path)
    assert len(str(e.value).splitlines()) == 1 and str(path) in str(e.value)


def test_over_the_memory_limit_refused(tmp_path):
    path = _csv(tmp_path, "0.5,0.5\n" * 1000)
    with pytest.raises(ConfigError, match=r"needs about .* GB"):
        read_points(path, limit_bytes=10_000)
    assert read_points(path, limit_bytes=1e9).shape == (1000, 2)


def _run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _one_line(capsys, code, match) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [ln for ln in err if ln.startswith("neurofem: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in "\n".join(err), err
    assert match in lines[0], lines[0]
    return lines[0]


def test_points_on_a_parametric_run_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(tomli_w.dumps({"parameters": {"batch": 4}}))
    code = _run_main(["points", str(run), "--file", str(_csv(tmp_path, "0,0\n")),
                      "--out", str(tmp_path / "vals.csv")])
    _one_line(capsys, code, "is a parametric run")
    assert not (tmp_path / "vals.csv").exists()


@pytest.mark.timeout(120)  # a hang guard: reading 1e8 rows instead would run for minutes
def test_huge_points_file_refused_by_the_command_before_reading(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text("")
    path = _sparse(tmp_path, 10**8)  # 1.1 GB that would be ~6 GB in memory
    code = _run_main(["points", str(run), "--file", str(path), "--out", str(tmp_path / "o.csv")])
    _one_line(capsys, code, "about 1e+08 points")
    assert not (tmp_path / "o.csv").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("pts")
    doc = tomllib.loads((ROOT / "examples" / "lshape-vsn-galerkin.toml").read_text())
    doc["mesh"]["size"] = 0.25
    doc["network"]["hidden"] = [8]
    doc["training"].update({"steps": 2, "log_every": 1, "checkpoint_every": 2,
                            "progress": False})
    (base / "c.toml").write_text(tomli_w.dumps(doc))
    assert main(["train", str(base / "c.toml"), "--out", str(base / "run")]) == 0
    return base / "run"


def test_output_through_a_link_is_refused(trained, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "vals.csv"
    os.symlink(victim, out)
    code = _run_main(["points", str(trained), "--file", str(_csv(tmp_path, "-0.5,-0.5\n")),
                      "--out", str(out)])
    _one_line(capsys, code, "symbolic link")
    assert victim.read_text() == "precious\n"
    assert _run_main(["points", str(trained), "--file", str(tmp_path / "pts.csv"),
                      "--out", str(tmp_path / "ok.csv")]) == 0
    assert (tmp_path / "ok.csv").read_text().splitlines()[0] == "x,y,u"
