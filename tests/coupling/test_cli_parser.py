"""argparse errors in one line (issue 28): every usage error of every command is one
`neurofem: error:` line naming the command, exit code 2, no usage block."""

from __future__ import annotations

import subprocess
import sys

import pytest

from coupling.cli import build_parser
from coupling.cli.parser import OneLineParser


def _parser():
    import argparse

    from coupling.cli import _command_modules

    parser = build_parser()
    if isinstance(parser, OneLineParser):
        return parser
    # not switched yet in coupling/cli/__init__.py: build the same parser with the class
    wired = OneLineParser(prog="neurofem")
    sub = wired.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _command_modules():
        module.register(sub)
    assert isinstance(sub, argparse._SubParsersAction)
    return wired


CASES = {
    "no-command": ([], "the following arguments are required: COMMAND"),
    "unknown-command": (["trian"], "invalid choice: 'trian'"),
    "train-no-config": (["train"], "train: the following arguments are required"),
    "train-unknown-flag": (["train", "c.toml", "--out", "r", "--stpes", "3"],
                           "unrecognized arguments: --stpes 3"),
    "train-steps-not-int": (["train", "c.toml", "--out", "r", "--steps", "many"],
                            "argument --steps: invalid int value: 'many'"),
    "resume-no-dir": (["resume"], "resume: the following arguments are required: run_dir"),
    "resume-steps-float": (["resume", "r", "--steps", "2.5"], "invalid int value: '2.5'"),
    "report-extra": (["report", "r", "s"], "unrecognized arguments: s"),
    "fem-no-action": (["fem"], "fem: the following arguments are required: ACTION"),
    "fem-solve-no-out": (["fem", "solve", "c.toml"], "required: --out"),
    "points-nothing": (["points"], "the following arguments are required"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_usage_error_is_one_line(name, capsys):
    argv, match = CASES[name]
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("neurofem: error: "), err
    assert match in err[0] and "--help" in err[0], err[0]


def test_help_still_prints_the_usage(capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["train", "--help"])
    assert e.value.code == 0
    assert "usage: neurofem train" in capsys.readouterr().out


def test_console_command_prints_one_line():
    assert isinstance(build_parser(), OneLineParser)
    res = subprocess.run([sys.executable, "-m", "coupling.cli", "train", "--stpes"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
