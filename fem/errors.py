"""Errors that mean "bad problem request"; the CLI turns them into one line and exit code 2."""


class FemError(ValueError):
    """An invalid problem definition (unknown type, missing phase, bad expression)."""


class ConfigError(FemError):
    """A bad value in a TOML config; the message names the key, e.g. ``problem.type``."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config {key}: {message}")


class SolverError(FemError):
    """A PETSc solve that did not converge."""
