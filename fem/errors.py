"""Errors that mean "bad problem request"; the CLI turns them into one line and exit code 2.

A bad config value is one :class:`ConfigError` with the one-line message
``config <key>: <message>``, where the key is the dotted path into the TOML document
(``training.lr``, ``problem.bcs[1].value``). It is defined once, in the dependency-free
:mod:`neurofem_errors` (so ``spiking`` raises the same type), and re-exported here; the
config schemas (pydantic) report through :meth:`ConfigError.from_validation`, which turns
the first error of a pydantic ``ValidationError`` into that form.
"""

from __future__ import annotations

from neurofem_errors import ConfigError, RequestError

__all__ = ["ConfigError", "FemError", "SolverError"]

#: An invalid problem definition (unknown type, missing phase, bad expression); every
#: ConfigError is one.
FemError = RequestError


class SolverError(FemError):
    """A PETSc solve that did not converge."""
