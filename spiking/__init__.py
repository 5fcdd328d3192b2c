"""Spiking neurons (VSN, LIF, IF, C-LIF), surrogate gradients, coordinate networks, activity
monitors, energy accounting, the ANN→SNN conversion baseline and PISNN's conservative
C-LIF solver (flux network and CFQ rollout, :mod:`spiking.cfq`).

Independent of DOLFINx and of the other neurofem packages: only torch is needed.
"""

from importlib import import_module

# name -> submodule: names load on first use (PEP 562), so `neurofem --help` and the
# config schema do not import torch; spiking cannot borrow meshes.lazy (it stands alone)
_LAZY = {
    "ACTIVATIONS": "activations",
    "ActivityMonitor": "monitor",
    "ActivityPenalty": "monitor",
    "CLIF": "neurons",
    "CLIFSolver": "cfq",
    "CLIFState": "cfq",
    "ConfigError": "errors",
    "ConvertedSNN": "conversion",
    "EnergyReport": "energy",
    "EnergyTable": "energy",
    "FluxNet": "cfq",
    "IF": "neurons",
    "LIF": "neurons",
    "LayerActivity": "monitor",
    "MLP": "networks",
    "MLPConfig": "networks",
    "NEURON_KINDS": "networks",
    "OpCounts": "energy",
    "PopulationEncoder": "encoders",
    "SURROGATE_KINDS": "surrogate",
    "SpikingNeuron": "neurons",
    "StepStats": "cfq",
    "Surrogate": "surrogate",
    "VSN": "neurons",
    "activation_scales": "conversion",
    "break_even_activity": "event_costs",
    "build_mlp": "networks",
    "conversion_errors": "conversion",
    "convert_relu_mlp": "conversion",
    "count_energy": "energy",
    "energy_report": "energy",
    "equal_shape_ann": "networks",
    "get_activation": "activations",
    "heaviside": "surrogate",
    "mlp_from_config": "networks",
    "spiking_layers": "monitor",
    "surrogate_derivative": "surrogate",
    "trunc_spike": "neurons",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'spiking' has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
