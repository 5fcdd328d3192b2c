"""The error of a bad network or neuron setting (no torch: the CLI imports it to start)."""

from __future__ import annotations

from typing import Any

_UNSET = object()


class SpikingConfigError(ValueError):
    """A network/neuron setting is invalid: ``prefix.key = value: detail`` in one line.

    `key` (relative to the table), `value` and `detail` are kept apart, so a run config
    that nests the ``[network]`` table reports it under its own dotted key and format
    (:meth:`fem.errors.ConfigError.from_validation` reads them).
    """

    def __init__(self, key: str, detail: str, value: Any = _UNSET, prefix: str = "network"
                 ) -> None:
        self.key, self.detail, self.value, self.prefix = key, detail, value, prefix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ".".join(p for p in (self.prefix, self.key) if p)
        shown = "" if self.value is _UNSET else f" = {self.value!r}"
        return f"{where}{shown}: {self.detail}"

    @property
    def got(self) -> str:
        """The value as a config error shows it (empty when there is none)."""
        return "" if self.value is _UNSET else f", got {self.value!r}"

    def under(self, prefix: str) -> SpikingConfigError:
        """The same error named under another table prefix."""
        return SpikingConfigError(self.key, self.detail, self.value, prefix)
