"""Long legitimate phases show a bar at a terminal, and nothing in logs or short loops."""

import io

from fem.progress import progress
from meshes.fenics import MPI


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_loop_at_a_terminal_shows_a_bar_and_yields_every_item():
    out = _Terminal()
    items = list(progress(range(300), 300, "FEM reference", MPI.COMM_SELF, file=out))
    assert items == list(range(300))
    assert "FEM reference" in out.getvalue()


def test_short_loops_and_non_terminals_stay_silent():
    quiet = io.StringIO()  # a log file or a pipe
    assert list(progress(range(300), 300, "x", MPI.COMM_SELF, file=quiet)) == list(range(300))
    assert quiet.getvalue() == ""
    short = _Terminal()
    assert list(progress(range(5), 5, "x", MPI.COMM_SELF, file=short)) == list(range(5))
    assert short.getvalue() == ""
