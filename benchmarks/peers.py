"""External peers of `neurofem bench`: DeepXDE's vanilla PINN (Lu et al., SIAM Rev. 63, 2021).

The peer trains DeepXDE's own PINN (PyTorch backend, ``dde.data.PDE`` / ``TimePDE``,
``dde.nn.FNN``, Adam) on the same PDE, the same geometry (DeepXDE's CSG of the domain the
Gmsh mesh discretises), as many collocation points as the mesh has nodes (what our
autograd PINN draws per step), as many boundary points as its boundary quadrature,
the same hidden widths and step budget; it is then measured at the same FEM nodes with
the same integral weights.
DeepXDE is an optional extra (``pip install -e .[peers]``): without it the cell is
``skipped`` with a message.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import numpy as np

from fem.expressions import CONSTANTS, FUNCTIONS

from .grid import TARGETS
from .measure import peak_memory_mb, reset_peak_memory, time_to, weighted_rel_l2


def available() -> bool:
    """Whether DeepXDE can be imported."""

    return importlib.util.find_spec("deepxde") is not None


def _torch_funcs():
    import torch  # deferred: loads torch

    funcs = {f: getattr(torch, f) for f in FUNCTIONS if hasattr(torch, f)}
    funcs.update(atan=torch.atan, asin=torch.asin, acos=torch.acos, atan2=torch.atan2,
                 erf=torch.erf, min=torch.minimum, max=torch.maximum)
    return {**funcs, **CONSTANTS}


def torch_expression(expr, x, t=None):
    """A fem.expressions.ScalarExpr evaluated on torch coordinates x (n, d) [and t]."""
    import torch  # deferred: loads torch

    cols = [x[:, i : i + 1] for i in range(x.shape[1])]
    zero = torch.zeros_like(cols[0])
    names = {"x": cols[0], "y": cols[1] if len(cols) > 1 else zero,
             "z": cols[2] if len(cols) > 2 else zero, "t": zero if t is None else t,
             **_torch_funcs()}
    v = expr.evaluate(names)
    return v + zero if not torch.is_tensor(v) else v


def numpy_expression(expr, x: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """The same on numpy points (n, d) → (n, 1), time per point."""

    funcs = {f: getattr(np, f) for f in FUNCTIONS if hasattr(np, f)}
    zero = np.zeros(len(x))
    names = {"x": x[:, 0], "y": x[:, 1] if x.shape[1] > 1 else zero,
             "z": x[:, 2] if x.shape[1] > 2 else zero, "t": zero if t is None else t,
             **funcs, **CONSTANTS}
    return (np.asarray(expr.evaluate(names), dtype=np.float64) + zero).reshape(-1, 1)


def _geometry(dde, mesh_spec):
    """DeepXDE's CSG of the benchmark's mesh kind."""
    o = mesh_spec.options
    kind = mesh_spec.kind
    if kind == "rectangle":
        return dde.geometry.Rectangle([o.get("x0", 0.0), o.get("y0", 0.0)],
                                      [o.get("x1", 1.0), o.get("y1", 1.0)])
    if kind == "lshape":
        # [-1,1]² minus (0,1]² as CSG (DeepXDE's Polygon calls np.cross on 2-vectors,
        # an error under NumPy 2)
        return (dde.geometry.Rectangle([-1.0, -1.0], [1.0, 1.0])
                - dde.geometry.Rectangle([0.0, 0.0], [1.0, 1.0]))
    if kind == "cube_minus_spheres":
        geom = dde.geometry.Cuboid([0, 0, 0], [1, 1, 1])
        radii = list(o["radii"])
        for i, c in enumerate(o["centres"]):
            geom = geom - dde.geometry.Sphere(c, radii[i] if len(radii) > 1 else radii[0])
        return geom
    if kind == "interval":
        return dde.geometry.Interval(0.0, 1.0)
    raise ValueError(f"no DeepXDE geometry for mesh kind {kind!r}")


def _coefficient(spec, x):
    """k at torch points: one number, or two layers split at z = 0.5 (cube_minus_spheres)."""
    import torch  # deferred: loads torch

    k = spec.coefficients
    if not isinstance(k, dict):
        return float(k)
    if set(k) == {"layer0", "layer1"}:
        return torch.where(x[:, 2:3] < 0.5, k["layer0"], k["layer1"])
    values = set(k.values())
    if len(values) == 1:
        return float(values.pop())
    raise ValueError(f"no DeepXDE coefficient map for phases {sorted(k)}")


def _dirichlet(g, space_time: bool):
    """x → g(x[, t]) with one argument (DeepXDE reads a second one as auxiliary data)."""
    if space_time:
        return lambda x: numpy_expression(g, x[:, :1], x[:, 1])
    return lambda x: numpy_expression(g, x)


def _pde(dde, spec):
    """The strong-form residual of `spec` (poisson, heat or Burgers) for DeepXDE."""
    def pde(x, u):
        if spec.type == "poisson":
            lap = sum(dde.grad.hessian(u, x, i=i, j=i) for i in range(x.shape[1]))
            f = torch_expression(spec.source[0], x) if spec.source else 0.0
            return -_coefficient(spec, x) * lap - f
        u_t = dde.grad.jacobian(u, x, i=0, j=1)
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_xx = dde.grad.hessian(u, x, i=0, j=0)
        if spec.type == "heat":
            f = torch_expression(spec.source[0], x[:, :1], x[:, 1:2]) if spec.source else 0.0
            return u_t - _coefficient(spec, x) * u_xx - f
        return u_t + u * u_x - spec.viscosity * u_xx

    return pde


def _data(dde, cfg, disc, space_time: bool):
    """DeepXDE's PDE data on the same domain: (data, point counts)."""
    spec, res = cfg.problem, disc.residual
    geom = _geometry(dde, cfg.mesh)
    bcs = []
    if space_time:
        geom = dde.geometry.GeometryXTime(geom, dde.geometry.TimeDomain(0.0, spec.time.t_end))
        n_ic = int((res.x_data[:, 1] == 0).sum())
        counts = {"num_domain": len(res.rows), "num_boundary": len(res.x_data) - n_ic,
                  "num_initial": n_ic}
        init = spec.time.initial
        bcs.append(dde.icbc.IC(geom, lambda x: numpy_expression(init, x[:, :1]),
                               lambda _, on_initial: on_initial))
    else:
        # as many collocation points as FEM nodes (what our autograd PINN draws per step)
        counts = {"num_domain": int(disc.n_owned), "num_boundary": len(res.soft.x)}
    for bc in spec.bcs:
        if bc.type != "dirichlet":
            raise ValueError(f"DeepXDE peer: boundary type {bc.type!r} not mapped")
        bcs.append(dde.icbc.DirichletBC(geom, _dirichlet(bc.value[0], space_time),
                                        lambda _, on_b: on_b))
    data_cls = dde.data.TimePDE if space_time else dde.data.PDE
    return data_cls(geom, _pde(dde, spec), bcs, train_distribution="pseudo", **counts), counts


def _train(dde, model, disc, comm, t, x_eval) -> tuple[list[dict], float, object]:
    """Adam for t.steps, the error logged every t.log_every: (history, wall s, rel_l2 fn)."""
    import torch  # deferred: loads torch

    history: list[dict] = []

    def rel_l2() -> float:
        u = torch.as_tensor(model.predict(x_eval).reshape(-1), dtype=torch.float64)
        return weighted_rel_l2(disc, u, comm)

    class Probe(dde.callbacks.Callback):
        def on_epoch_end(self):
            step = self.model.train_state.epoch
            if step % t.log_every == 0 or step == t.steps:
                history.append({"step": step, "rel_l2": rel_l2(),
                                "wall_s": time.perf_counter() - self.t0})

        def on_train_begin(self):
            self.t0 = time.perf_counter()

    wall0 = time.perf_counter()
    model.train(iterations=t.steps, display_every=max(t.steps, 1), callbacks=[Probe()],
                verbose=0)
    return history, time.perf_counter() - wall0, rel_l2


def run_deepxde(problem, doc: dict, workdir: Path, comm) -> dict:
    """Train DeepXDE's PINN on `problem` and measure it like our cells (serial only)."""
    if not available():
        return {"status": "skipped", "reason": "DeepXDE is not installed (pip install -e "
                ".[peers])"}
    if comm.size > 1:
        return {"status": "n/a", "reason": "the DeepXDE peer runs on one rank"}
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    import deepxde as dde  # deferred: optional extra, and DDE_BACKEND must be set first

    from coupling.config import parse_run_config  # deferred: loads DOLFINx, torch
    from coupling.runs.network import Trainer  # deferred: loads DOLFINx, torch, Gmsh, SciPy
    from coupling.training.parallel import set_threads_per_rank  # deferred: loads DOLFINx, torch

    set_threads_per_rank(comm)
    reset_peak_memory()
    t0 = time.perf_counter()
    cfg = parse_run_config(doc)  # the autograd-PINN config: same points, widths, budget
    trainer = Trainer(cfg, workdir / problem.name / "deepxde", comm,
                      reference_cache=workdir / problem.name / "reference")
    trainer.setup()

    dde.config.set_random_seed(cfg.training.seed)
    disc, space_time = trainer.disc, problem.space_time
    data, counts = _data(dde, cfg, disc, space_time)
    hidden = list(cfg.network.hidden)
    net = dde.nn.FNN([disc.in_dim, *hidden, 1], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    model.compile("adam", lr=cfg.training.lr)
    x_eval = (disc.x_eval if space_time else disc.x_nodes[: disc.n_owned]).detach().numpy()
    t = cfg.training
    setup_s = time.perf_counter() - t0
    history, train_s, rel_l2 = _train(dde, model, disc, comm, t, x_eval)
    return {"rel_l2": rel_l2(), "train_s": train_s, "setup_s": setup_s, "steps": t.steps,
            "epochs_per_s": t.steps / train_s, "activity": None, "energy_ratio": 1.0,
            "params": sum(p.numel() for p in net.parameters()),
            "widths": [disc.in_dim, *hidden, 1], "points": counts,
            "residual": "deepxde-pinn", "boundary": "soft (DeepXDE)",
            "history": history, "time_to": {f"{x:g}": time_to(history, x) for x in TARGETS},
            "peak_mem_mb": peak_memory_mb(), "peak_mem_mb_per_rank": [peak_memory_mb()],
            "deepxde": dde.__version__ if hasattr(dde, "__version__") else None}
