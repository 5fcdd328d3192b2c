"""Package namespaces whose names load on first use (PEP 562), so CLIs start fast."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_names(package: str, table: dict[str, str]
               ) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` of `package` for {name: submodule}."""
    namespace = import_module(package).__dict__

    def __getattr__(name: str):
        if name in table:
            value = getattr(import_module(f".{table[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__, list(table)
