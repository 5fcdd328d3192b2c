"""Runs driven by a validated config: a coordinate network on a PDE residual
(:mod:`~coupling.runs.network`) or PISNN's conservative solver (:mod:`~coupling.runs.clif`);
both train through :func:`coupling.fit` and write the same run directory."""
