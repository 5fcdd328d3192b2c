"""The building blocks of the config schemas (``fem.config``, ``coupling.config``).

A :class:`Table` is a pydantic model of one TOML table: unknown keys are refused with the
list of allowed ones, types are strict (no ``true`` for 1, no ``"1"`` for 1.0) and the
number types here refuse NaN/inf and values out of range. :func:`validate` runs a schema
and turns the first error into one :class:`~fem.errors.ConfigError` naming the dotted key.
Validators may raise ConfigError with a key relative to their table.
"""

from __future__ import annotations

import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from .errors import ConfigError

MAX_COUNT = 10**9  # the largest count (steps, iterations, dofs) any table accepts
_NESTED: ContextVar[bool] = ContextVar("nested", default=False)  # inside validate()

Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(ge=1, le=MAX_COUNT)]


def between(lo: float, hi: float, integer: bool = False) -> Any:
    """A strict int or finite float type in [lo, hi]."""
    return Annotated[int if integer else float, Field(ge=lo, le=hi, allow_inf_nan=False)]


def number_or_table(number: Any, table: Any) -> Any:
    """A field that is a number or a table (a union that reports errors by the table's keys)."""
    return Annotated[Annotated[number, Tag("<number>")] | Annotated[table, Tag("<table>")],
                     Discriminator(lambda v: "<table>" if isinstance(v, dict) else "<number>")]


class Table(BaseModel):
    """A TOML table: unknown keys refused (naming the allowed ones), strict types.

    Built directly in Python (``ResidualSpec(kind="sp", k=8)``), a bad value is the same
    ConfigError, its key under `table_key` (the table's name in a config)."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    table_key: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            if _NESTED.get():  # part of a larger document: validate() reports the full key
                raise
            raise ConfigError.from_validation(exc, type(self).table_key) from None

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in data:
                if name not in cls.model_fields:
                    raise ConfigError(str(name),
                                      f"unknown key (allowed: {', '.join(cls.model_fields)})")
        return data


def validate(model: type[BaseModel] | TypeAdapter, data: Any, key: str = "") -> Any:
    """`data` validated by `model` (a model or a TypeAdapter); errors as one ConfigError."""
    token = _NESTED.set(True)
    try:
        if isinstance(model, type):
            return model.model_validate(data)
        return model.validate_python(data)
    except ValidationError as exc:
        raise ConfigError.from_validation(exc, key) from None
    finally:
        _NESTED.reset(token)


def finite(v: Any) -> bool:
    """Whether `v` is a finite int or float (not a bool)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < float("inf")


def load_toml(path: str | Path) -> dict:
    """Read a TOML file; a missing, non-UTF-8 or malformed file is a ConfigError naming it."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                          f"offset {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"invalid TOML: {exc}") from None


def require_table(doc: dict, key: str) -> dict:
    """`doc[key]` as a table, or a ConfigError naming `key`."""
    if key not in doc:
        raise ConfigError(key, "missing table")
    if not isinstance(doc[key], dict):
        raise ConfigError(key, f"expected a table, got {doc[key]!r}")
    return doc[key]
