"""Source terms and boundary data from config strings such as ``"sin(pi*x)*exp(-t)"``.

A string is parsed once with :mod:`ast` against a whitelist (coordinates ``x, y, z``,
time ``t``, constants ``pi, e``, elementary functions, arithmetic) and can then be
turned into a UFL expression on a mesh (for forms) or a NumPy callable (for
interpolation and exact-solution checks). Nothing outside the whitelist is evaluated.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import FemError

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
        from meshes._dolfinx import ufl

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
        from scipy.special import erf

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
    """Validate a number or expression string; raise FemError naming `key` if it is not allowed."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FemError(f"{key}: expected a number or an expression string, got {value!r}")
    text = repr(float(value)) if not isinstance(value, str) else value.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise FemError(f"{key}: cannot parse expression {value!r} ({exc.msg})") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in VARIABLES and node.id not in CONSTANTS and node.id not in FUNCTIONS:
                raise FemError(
                    f"{key}: unknown name {node.id!r} in {value!r} "
                    f"(allowed: {', '.join(VARIABLES + tuple(CONSTANTS) + FUNCTIONS)})"
                )
        elif isinstance(node, ast.Call):
            if (
                not isinstance(node.func, ast.Name)
                or node.func.id not in FUNCTIONS
                or node.keywords
            ):
                raise FemError(f"{key}: only calls of {', '.join(FUNCTIONS)} allowed in {value!r}")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float) or isinstance(node.value, bool):
                raise FemError(f"{key}: only numeric constants allowed in {value!r}")
        elif not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Load, *_OPS)):
            raise FemError(f"{key}: {type(node).__name__} not allowed in {value!r}")
    return ScalarExpr(text, tree)


def parse_vector(values: Value | Sequence[Value], dim: int, key: str) -> list[ScalarExpr]:
    """Validate a vector of `dim` numbers/expressions (a scalar 0 means the zero vector)."""
    if isinstance(values, int | float) and not isinstance(values, bool) and values == 0:
        values = [0.0] * dim
    if not isinstance(values, list | tuple) or len(values) != dim:
        raise FemError(f"{key}: expected a list of {dim} numbers or expressions, got {values!r}")
    return [parse(v, f"{key}[{i}]") for i, v in enumerate(values)]


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
                    return lhs**rhs
        case ast.Call(func=ast.Name(id=fname), args=args):
            return names[fname](*(_evaluate(a, names) for a in args))
    raise FemError(f"unsupported expression node {ast.dump(node)}")
