"""`neurofem bench` input checked before any work (issue 28): --mpi/--steps >= 1, --out not a
file, the --pareto config readable, TOML, with [mesh] and valid — one line, exit 2, in
seconds, nothing written."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import pytest
import tomli_w

from benchmarks.cli import check_args
from benchmarks.grid import BenchError
from coupling.cli import main
from coupling.cli.parser import OneLineParser

ROOT = Path(__file__).resolve().parents[2]


def _lshape() -> dict:
    return tomllib.loads((ROOT / "examples" / "lshape-vsn-galerkin.toml").read_text())


def _write(path: Path, content) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        path.write_text(tomli_w.dumps(content))
    else:
        path.write_text(content)
    return path


def _without(doc: dict, key: str) -> dict:
    return {k: v for k, v in doc.items() if k != key}


def _with(doc: dict, table: str, key: str, value) -> dict:
    return doc | {table: {**doc.get(table, {}), key: value}}


PARETO_CASES = {
    "invalid-toml": ("[mesh\nsize = ", "invalid TOML"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a UTF-8 text file"),
    "empty": ("", "no [mesh] table"),
    "no-mesh": (_without(_lshape(), "mesh"), "no [mesh] table"),
    "mesh-not-table": (_lshape() | {"mesh": 3}, "no [mesh] table"),
    "clif-model": (_lshape() | {"model": "clif"}, "model = 'clif'"),
    "training-not-table": (_lshape() | {"training": 5}, "[training] is not a table"),
    "bad-threshold": (_with(_lshape(), "network", "threshold", -1.0), "network.threshold"),
    "unknown-key": (_with(_lshape(), "training", "stpes", 3), "training.stpes"),
    "huge-network": (_with(_lshape(), "network", "hidden", [100_000] * 6), "network.hidden"),
}


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _one_line(capsys, code: int, match: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [ln for ln in err if ln.startswith("neurofem: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in "\n".join(err), err
    assert match in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def imported():
    """The modules a check imports, loaded once: the 5 s budget is for the check itself."""
    import coupling.config
    import coupling.training.resources  # noqa: F401


@pytest.mark.parametrize("name", sorted(PARETO_CASES))
def test_bad_pareto_config_is_one_line_before_any_work(name, imported, tmp_path, capsys):
    content, match = PARETO_CASES[name]
    cfg = _write(tmp_path / "mine.toml", content)
    out = tmp_path / "out"
    code = _run(["bench", "--pareto", str(cfg), "--quick", "--out", str(out)])
    line = _one_line(capsys, code, match)
    assert str(cfg) in line
    assert not out.exists()


def test_pareto_out_naming_a_file_is_refused_first(tmp_path, capsys):
    out = _write(tmp_path / "results.json", "{}")
    code = _run(["bench", "--pareto", "lshape", "--quick", "--out", str(out)])
    _one_line(capsys, code, "exists and is not a directory")
    assert out.read_text() == "{}"


def test_unknown_pareto_problem_is_one_line(tmp_path, capsys):
    code = _run(["bench", "--pareto", "donut", "--out", str(tmp_path / "o")])
    _one_line(capsys, code, "expected one of")


def _ns(**kw) -> argparse.Namespace:
    base = {"mpi": 1, "steps": None, "out": Path("/tmp/nf-bench-out"), "pareto": None,
            "quick": True}
    return argparse.Namespace(**(base | kw))


@pytest.mark.parametrize("kw, match", [({"mpi": 0}, "--mpi 0"), ({"mpi": -2}, "--mpi -2"),
                                       ({"steps": 0}, "--steps 0"),
                                       ({"mpi": True}, "--mpi True")])
def test_ranks_and_steps_below_one_refused(kw, match):
    with pytest.raises(BenchError, match=match):
        check_args(_ns(**kw))


def _parser() -> OneLineParser:
    import benchmarks.cli

    parser = OneLineParser(prog="neurofem")
    benchmarks.cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.mark.parametrize("argv, match", [(["--mpi", "0"], "argument --mpi: 0: expected an "
                                          "integer >= 1"),
                                         (["--mpi", "-1"], "--mpi: -1: expected"),
                                         (["--mpi", "two"], "invalid int value: 'two'"),
                                         (["--steps", "0"], "--steps: 0: expected")])
def test_mpi_zero_refused_by_the_parser_in_one_line(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["bench", *argv])
    err = capsys.readouterr().err.splitlines()
    assert e.value.code == 2 and len(err) == 1 and match in err[0], err
