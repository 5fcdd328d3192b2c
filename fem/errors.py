"""Errors that mean "bad problem request"; the CLI turns them into one line and exit code 2.

A bad config value is one :class:`ConfigError` with the one-line message
``config <key>: <message>``, where the key is the dotted path into the TOML document
(``training.lr``, ``problem.bcs[1].value``). The config schemas (pydantic) report through
:meth:`ConfigError.from_validation`, which turns the first error of a pydantic
``ValidationError`` into that form.
"""

from __future__ import annotations

from typing import Any

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


class FemError(ValueError):
    """An invalid problem definition (unknown type, missing phase, bad expression)."""


class ConfigError(FemError):
    """A bad value in a TOML config; the message names the key, e.g. ``problem.type``."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = " ".join(str(message).split())  # always one line
        super().__init__(f"config {key}: {self.message}")

    @classmethod
    def from_validation(cls, exc: Any, prefix: str = "") -> ConfigError:
        """The first error of a pydantic ValidationError as a ConfigError under `prefix`.

        Location parts written ``<tag>`` (union members) are dropped; a ConfigError raised
        inside a validator extends the location by its own key."""
        err = exc.errors(include_url=False)[0]
        key = _dotted([prefix] if prefix else [], err["loc"])
        ctx = err.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, ConfigError) or hasattr(inner, "detail"):
            # ours, or a nested table's own error (spiking's [network]: key, detail, value)
            sub = inner.key
            if sub and key:
                sub = sub if sub.startswith("[") else "." + sub
            text = inner.message if isinstance(inner, ConfigError) else inner.detail + inner.got
            return cls(f"{key}{sub}", text)
        if err["type"] == "value_error":
            return cls(key, str(inner) if inner is not None else err["msg"])
        template = _KINDS.get(err["type"])
        text = template.format(**ctx) if template else err["msg"].replace("Input should be",
                                                                           "expected")
        bounds = [ctx[k] for k in ("gt", "ge", "lt", "le") if k in ctx]
        if bounds and all(type(b) is int for b in bounds):  # an integer field's range
            text = text.replace("a number", "an integer")
        if err["type"] == "literal_error":
            text = f"unknown value {_short(err.get('input'))} ({text})"
        elif err["type"] not in ("missing", "extra_forbidden"):
            text += f", got {_short(err.get('input'))}"
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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class SolverError(FemError):
    """A PETSc solve that did not converge."""
