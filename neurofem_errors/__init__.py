"""The one error type of a bad request, shared by every neurofem package (the lowest layer).

A bad config value anywhere (``[mesh]``, ``[problem]``, ``[network]``, ``[training]``, a
circuit setting, a ``--param``) is one :class:`ConfigError` with the one-line message
``config <key>: <message>``, where the key is the dotted path into the TOML document
(``training.lr``, ``problem.bcs[1].value``, ``network.slope``). The config schemas
(pydantic) report through :meth:`ConfigError.from_validation`, which turns the first error
of a pydantic ``ValidationError`` into that form.

This module imports nothing of neurofem and no third-party package, so ``spiking`` (which
may not import ``fem``) raises the same type as ``fem`` and ``coupling``.

>>> str(ConfigError("network.slope", "expected a number > 0, got 0"))
'config network.slope: expected a number > 0, got 0'
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "RequestError"]

_KINDS = {
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected an array",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "dataclass_type": "expected a table",
    "greater_than": "expected a number > {gt}",
    "greater_than_equal": "expected a number >= {ge}",
    "less_than": "expected a number < {lt}",
    "less_than_equal": "expected a number <= {le}",
    "too_short": "expected at least {min_length} entries",
    "too_long": "expected at most {max_length} entries",
    "literal_error": "choose from {expected}",
    "missing": "missing",
    "extra_forbidden": "unknown key",
}


class RequestError(ValueError):
    """A bad request (config, problem definition): the CLI prints one line, exit code 2.

    ``fem.errors.FemError`` is this class."""


class ConfigError(RequestError):
    """A bad value in a config; the message names the key, e.g. ``problem.type``."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = " ".join(str(message).split())  # always one line
        self.relative: str | None = None  # the key inside the table `under` named it in
        super().__init__(f"config {key}: {self.message}")

    def under(self, prefix: str) -> ConfigError:
        """The same error with its key under the table `prefix` (``slope`` → ``network.slope``).

        The key inside the table is kept, so naming the error under a table again (a model
        whose own constructor named it, validated nested in a run config) re-bases the key
        instead of repeating the prefix."""
        if not prefix:
            return self
        inner = self.key if self.relative is None else self.relative
        sep = "" if not inner or inner.startswith("[") else "."
        err = ConfigError(f"{prefix}{sep}{inner}", self.message)
        err.relative = inner
        return err

    @classmethod
    def from_validation(cls, exc: Any, prefix: str = "") -> ConfigError:
        """The first error of a pydantic ValidationError as a ConfigError under `prefix`.

        Location parts written ``<tag>`` (union members) are dropped; a ConfigError raised
        inside a validator extends the location by its own key."""
        err = exc.errors(include_url=False)[0]
        key = _dotted([prefix] if prefix else [], err["loc"])
        ctx = err.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, ConfigError):
            return inner.under(key)
        if err["type"] == "value_error":
            return cls(key, str(inner) if inner is not None else err["msg"])
        template = _KINDS.get(err["type"])
        text = template.format(**ctx) if template else err["msg"].replace("Input should be",
                                                                           "expected")
        bounds = [ctx[k] for k in ("gt", "ge", "lt", "le") if k in ctx]
        if bounds and all(type(b) is int for b in bounds):  # an integer field's range
            text = text.replace("a number", "an integer")
        if err["type"] == "literal_error":
            text = f"unknown value {short(err.get('input'))} ({text})"
        elif err["type"] not in ("missing", "extra_forbidden"):
            text += f", got {short(err.get('input'))}"
        return cls(key, text)


def _dotted(head: list[str], loc: tuple) -> str:
    """('bcs', 1, 'value') -> 'bcs[1].value' (after `head`), without <tag> parts."""
    out = ".".join(head)
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not (part.startswith("<") and part.endswith(">")):
            out += f".{part}" if out else part
    return out


def short(value: Any) -> str:
    """`value`'s repr, cut to 80 characters (how a config error quotes a value)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
