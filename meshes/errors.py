"""Errors that mean "bad mesh request"; the CLI turns them into one line and exit code 2."""


class MeshError(ValueError):
    """An invalid geometry or mesh request (unreachable volume fraction, bad size, bad file)."""
