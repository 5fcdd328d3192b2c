"""The training machinery: the one loop (`fit`), its callbacks, checkpoints, run directories,
MPI helpers, devices, resource estimates, and the config-driven trainer of `neurofem train`."""
