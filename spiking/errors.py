"""The error of a bad network or neuron setting: the one config error type of neurofem.

``spiking`` may not import ``fem``, so :class:`ConfigError` lives in the dependency-free
:mod:`neurofem_errors`; it is the same class that ``fem`` and ``coupling`` raise, with the
same one-line message ``config <dotted key>: <message>``. ``SpikingConfigError`` is that
class under the name spiking's API has always exported.
"""

from __future__ import annotations

from typing import Any

from neurofem_errors import ConfigError, short

__all__ = ["ConfigError", "SpikingConfigError", "bad_value"]

SpikingConfigError = ConfigError  # the same class (one config error type)


def bad_value(key: str, detail: str, value: Any) -> ConfigError:
    """The error of `key` holding `value`: ``config <key>: <detail>, got <value>``."""
    return ConfigError(key, f"{detail}, got {short(value)}")
