"""The benchmark harness of `neurofem bench`: NeuroPINNs' problems × methods, measured here.

Problems (one base config each, shipped in ``benchmarks/configs/``: the same files as the
repository's ``examples/``) and methods (overrides applied to that config, so every
method gets the same network shape, mesh, points and step budget):

========================  =================================================================
``ann-autograd``          vanilla PINN: tanh ANN, strong-form residual by autograd (soft BCs)
``ann-sp``                SP-PINN: tanh ANN, stochastic-projection derivatives
``vsn-sp``                NeuroPINN (Garg & Chakraborty, arXiv 2511.06081): VSN + SP
``vsn-galerkin``          ours: VSN on the FEM-backed Galerkin energy (steady problems)
``ann2snn``               ReLU ANN trained, then converted to an IF network
                          (Diehl et al. 2015; Rueckauer et al. 2017), rate-coded over T steps
``deepxde``               DeepXDE's vanilla PINN (PyTorch backend) on the same geometry
``clif``                  PISNN (Zhang & Wang, arXiv 2511.21784): the conservative spiking
                          solver, C-LIF interface neurons moving integer flux quanta
========================  =================================================================

Modules: :mod:`~benchmarks.grid` (problems, methods, the config of each cell),
:mod:`~benchmarks.cells` (running and measuring one cell; the worker process),
:mod:`~benchmarks.measure` (memory, time to accuracy, conversion, energy, elasticity
extras), :mod:`~benchmarks.peers` (DeepXDE), :mod:`~benchmarks.harness` (the driver:
workers, scaling study, provenance) and :mod:`~benchmarks.tables` (JSON and Markdown).
``record_demo.py`` records a finished ``neurofem demo`` run. Recorded results live in
``benchmarks/results/`` of the repository. Importing this package imports nothing heavy.
"""
