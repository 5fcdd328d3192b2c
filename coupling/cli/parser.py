"""An argparse parser whose usage errors are one line: ``neurofem: error: ...``, exit 2.

argparse prints the usage (up to three lines here) and then ``prog: error: message``;
every other bad input of neurofem is one ``neurofem: error:`` line, so a script or a user
reads the same shape whatever went wrong. Subparsers inherit the class (argparse builds
them with ``type(parent)``), so switching the top-level parser covers every command.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

USAGE_EXIT = 2


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser that reports a usage error in one line naming the command."""

    def error(self, message: str) -> NoReturn:
        """One line ``neurofem: error: <command>: <message> (see `<command> --help`)``."""
        text = " ".join(str(message).split())
        command = self.prog.removeprefix("neurofem").strip()
        where = f"{command}: " if command else ""
        self.exit(USAGE_EXIT, f"neurofem: error: {where}{text} (see `{self.prog} --help`)\n")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message if status == 0 else " ".join(message.split()) + "\n")
        sys.exit(status)
