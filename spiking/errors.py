"""The error of a bad network or neuron setting: the one config error type of neurofem.

``spiking`` may not import ``fem``, so :class:`ConfigError` lives in the dependency-free
:mod:`neurofem_errors`; it is the same class that ``fem`` and ``coupling`` raise, with the
same one-line message ``config <dotted key>: <message>`` (``spiking.ConfigError``).
"""

from __future__ import annotations

from typing import Any

from neurofem_errors import ConfigError, short

__all__ = ["ConfigError", "bad_value"]


def bad_value(key: str, detail: str, value: Any) -> ConfigError:
    """The error of `key` holding `value`: ``config <key>: <detail>, got <value>``."""
    return ConfigError(key, f"{detail}, got {short(value)}")
