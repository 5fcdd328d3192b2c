"""Source terms and boundary data from config strings such as ``"sin(pi*x)*exp(-t)"``.

A string is parsed once with :mod:`ast` against a whitelist (coordinates ``x, y, z``,
time ``t``, constants ``pi, e``, elementary functions, arithmetic) and can then be
turned into a UFL expression on a mesh (for forms) or a NumPy callable (for
interpolation and exact-solution checks). Nothing outside the whitelist is evaluated.

Parsing also folds every constant part of the expression (no x, y, z, t) in Python floats
with :mod:`math` (``math.pow``: a tower such as ``9.0**9**9**9`` overflows at once instead
of building a huge integer) and refuses parts that raise or are not finite (``1/0``,
``log(0)``, ``exp(1000)``), and any division by a constant zero, with a
:class:`~fem.errors.ConfigError` naming the config key.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, FemError

FUNCTIONS = (
    "sin",
    "cos",
    "tan",
    "exp",
    "log",
    "sqrt",
    "tanh",
    "sinh",
    "cosh",
    "atan",
    "asin",
    "acos",
    "atan2",
    "abs",
    "sign",
    "erf",
    "min",
    "max",
)
VARIABLES = ("x", "y", "z", "t")
CONSTANTS = {"pi": math.pi, "e": math.e}
_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)

Value = float | int | str
MAX_LENGTH = 4000  # characters of one expression string

# Constant folding at parse time: Python floats and math (errors raise, never hang).
_MATH = {f: getattr(math, f) for f in FUNCTIONS if hasattr(math, f)}
_MATH.update(abs=abs, min=min, max=max, sign=lambda v: float(v > 0) - float(v < 0))


@dataclass(frozen=True)
class ScalarExpr:
    """A validated scalar expression in x, y, z, t (or a plain number)."""

    text: str
    tree: ast.Expression

    @property
    def uses_time(self) -> bool:
        return any(isinstance(n, ast.Name) and n.id == "t" for n in ast.walk(self.tree))

    @property
    def is_constant(self) -> bool:
        return not any(isinstance(n, ast.Name) and n.id in VARIABLES for n in ast.walk(self.tree))

    def ufl(self, mesh, t=None):
        """This expression as UFL on `mesh`; `t` is a number or a dolfinx Constant."""
        from meshes.fenics import ufl  # deferred: loads DOLFINx

        x = ufl.SpatialCoordinate(mesh)
        gdim = mesh.geometry.dim
        names = {
            "x": x[0],
            "y": x[1] if gdim > 1 else 0.0,
            "z": x[2] if gdim > 2 else 0.0,
            "t": 0.0 if t is None else t,
            **CONSTANTS,
        }
        funcs = {f: getattr(ufl, f) for f in FUNCTIONS if hasattr(ufl, f)}
        funcs.update(abs=abs, atan2=ufl.atan2, sign=ufl.sign, log=ufl.ln,
                     min=ufl.min_value, max=ufl.max_value)
        try:  # UFL folds constants eagerly: log(0), 1/0 fail here, not at assembly
            return _evaluate(self.tree, {**names, **funcs})
        except (ArithmeticError, ValueError) as exc:
            raise FemError(f"expression {self.text!r}: {exc}") from None

    def numpy(self, t: float = 0.0) -> Callable[[np.ndarray], np.ndarray]:
        """A callable ``f(x)`` on points of shape (3, n) (DOLFINx interpolation layout)."""
        from scipy.special import erf  # deferred: loads SciPy

        funcs = {f: getattr(np, f) for f in FUNCTIONS if hasattr(np, f)}
        funcs.update(
            atan=np.arctan,
            asin=np.arcsin,
            acos=np.arccos,
            atan2=np.arctan2,
            erf=erf,
            min=np.minimum,
            max=np.maximum,
        )

        def f(x: np.ndarray) -> np.ndarray:
            names = {"x": x[0], "y": x[1], "z": x[2], "t": t, **CONSTANTS}
            v = _evaluate(self.tree, {**names, **funcs})
            return np.broadcast_to(np.asarray(v, dtype=np.float64), x.shape[1:]).copy()

        return f

    def evaluate(self, names: dict):
        """This expression in a namespace of your own (variables, constants and the whitelisted
        functions, e.g. torch's), for backends beyond UFL and NumPy."""
        return _evaluate(self.tree, names)

    def __call__(self, x: np.ndarray, t: float = 0.0) -> np.ndarray:
        return self.numpy(t)(x)


def parse(value: Value, key: str = "expression") -> ScalarExpr:
    """Validate a number or expression string (ConfigError naming `key` if it is not allowed)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(key, f"expected a number or an expression string, got {value!r}")
    if not isinstance(value, str) and not math.isfinite(value):
        raise ConfigError(key, f"expected a finite number, got {value!r}")
    text = repr(float(value)) if not isinstance(value, str) else value.strip()
    if len(text) > MAX_LENGTH:
        raise ConfigError(key, f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(key, f"cannot parse expression {_short(value)} ({exc.msg})") from None
    except (RecursionError, MemoryError):
        raise ConfigError(key, "expression nested too deeply") from None
    for node in ast.walk(tree):
        _check_node(node, key, value)
    try:
        _fold(tree.body, key, text)
    except RecursionError:
        raise ConfigError(key, "expression nested too deeply") from None
    return ScalarExpr(text, tree)


def _short(value: Value) -> str:
    """repr of a value, cut to one short line for messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_node(node: ast.AST, key: str, value: Value) -> None:
    """Refuse a node outside the whitelist."""
    if isinstance(node, ast.Name):
        if node.id not in VARIABLES and node.id not in CONSTANTS and node.id not in FUNCTIONS:
            raise ConfigError(
                key,
                f"unknown name {node.id!r} in {_short(value)} "
                f"(allowed: {', '.join(VARIABLES + tuple(CONSTANTS) + FUNCTIONS)})",
            )
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise ConfigError(key, f"only calls of {', '.join(FUNCTIONS)} allowed in "
                              f"{_short(value)}")
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, int | float) or isinstance(node.value, bool):
            raise ConfigError(key, f"only numeric constants allowed in {_short(value)}")
    elif not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Load, *_OPS)):
        raise ConfigError(key, f"{type(node).__name__} not allowed in {_short(value)}")


def _fold(node: ast.AST, key: str, text: str) -> float | None:
    """The value of a constant subtree (None if it depends on x, y, z or t); a constant part
    that raises or is not a finite real number, or a division by constant zero, is refused."""
    try:
        match node:
            case ast.Constant(value=v):
                value = float(v)
            case ast.Name(id=name):
                return CONSTANTS.get(name)
            case ast.UnaryOp(op=op, operand=a):
                v = _fold(a, key, text)
                if v is None:
                    return None
                value = -v if isinstance(op, ast.USub) else v
            case ast.BinOp(left=a, op=op, right=b):
                lhs, rhs = _fold(a, key, text), _fold(b, key, text)
                if isinstance(op, ast.Div) and rhs == 0:
                    raise ZeroDivisionError("division by zero")
                if lhs is None or rhs is None:
                    return None
                value = _binop(op, lhs, rhs, pow_=math.pow)
            case ast.Call(func=ast.Name(id=fname), args=args):
                vals = [_fold(a, key, text) for a in args]
                if any(v is None for v in vals):
                    return None
                value = _MATH[fname](*vals)
            case _:  # pragma: no cover - _check_node admits nothing else
                raise FemError(f"unsupported expression node {ast.dump(node)}")
    except (ArithmeticError, ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        reason = str(exc) or type(exc).__name__
        raise ConfigError(key, f"{_short(ast.unparse(node))} in {_short(text)} is not a finite "
                          f"number ({reason})") from None
    if not isinstance(value, float | int) or not math.isfinite(value):
        raise ConfigError(key, f"{_short(ast.unparse(node))} in {_short(text)} is not a finite "
                          f"number (= {value!r})")
    return float(value)


def _binop(op: ast.operator, lhs, rhs, pow_=None):
    """lhs op rhs; `pow_` replaces ** (math.pow for floats: overflow raises, never hangs)."""
    match op:
        case ast.Add():
            return lhs + rhs
        case ast.Sub():
            return lhs - rhs
        case ast.Mult():
            return lhs * rhs
        case ast.Div():
            return lhs / rhs
        case ast.Pow():
            return pow_(lhs, rhs) if pow_ is not None else lhs**rhs
    raise FemError(f"unsupported operator {type(op).__name__}")




def _evaluate(node: ast.AST, names: dict):
    """Evaluate a whitelisted AST with the given namespace (UFL or NumPy)."""
    match node:
        case ast.Expression(body=body):
            return _evaluate(body, names)
        case ast.Constant(value=v):
            return float(v)
        case ast.Name(id=name):
            return names[name]
        case ast.UnaryOp(op=ast.USub(), operand=a):
            return -_evaluate(a, names)
        case ast.UnaryOp(op=ast.UAdd(), operand=a):
            return _evaluate(a, names)
        case ast.BinOp(left=a, op=op, right=b):
            lhs, rhs = _evaluate(a, names), _evaluate(b, names)
            floats = isinstance(lhs, float) and isinstance(rhs, float)
            return _binop(op, lhs, rhs, pow_=math.pow if floats else None)
        case ast.Call(func=ast.Name(id=fname), args=args):
            return names[fname](*(_evaluate(a, names) for a in args))
    raise FemError(f"unsupported expression node {ast.dump(node)}")
