"""Spiking neurons (VSN, LIF, IF, C-LIF), surrogate gradients, coordinate networks, activity
monitors, energy accounting, the ANN→SNN conversion baseline and PISNN's conservative
C-LIF solver (flux network and CFQ rollout, :mod:`spiking.cfq`).

Independent of DOLFINx and of the other neurofem packages: only torch is needed.
"""

from .activations import ACTIVATIONS, get_activation
from .cfq import CLIFSolver, CLIFState, FluxNet, StepStats
from .conversion import ConvertedSNN, activation_scales, conversion_errors, convert_relu_mlp
from .encoders import PopulationEncoder
from .energy import (
    EnergyReport,
    EnergyTable,
    OpCounts,
    break_even_activity,
    count_energy,
    energy_report,
)
from .monitor import ActivityMonitor, ActivityPenalty, LayerActivity, spiking_layers
from .networks import (
    MLP,
    NEURON_KINDS,
    MLPConfig,
    SpikingConfigError,
    build_mlp,
    equal_shape_ann,
    mlp_from_config,
)
from .neurons import CLIF, IF, LIF, VSN, SpikingNeuron, trunc_spike
from .surrogate import SURROGATE_KINDS, Surrogate, heaviside, surrogate_derivative

__all__ = [
    "ActivityPenalty",
    "PopulationEncoder",
    "ACTIVATIONS",
    "CLIF",
    "IF",
    "LIF",
    "MLP",
    "NEURON_KINDS",
    "SURROGATE_KINDS",
    "VSN",
    "ActivityMonitor",
    "CLIFSolver",
    "CLIFState",
    "ConvertedSNN",
    "EnergyReport",
    "EnergyTable",
    "FluxNet",
    "LayerActivity",
    "MLPConfig",
    "OpCounts",
    "SpikingConfigError",
    "SpikingNeuron",
    "StepStats",
    "Surrogate",
    "activation_scales",
    "break_even_activity",
    "build_mlp",
    "conversion_errors",
    "convert_relu_mlp",
    "count_energy",
    "energy_report",
    "equal_shape_ann",
    "get_activation",
    "heaviside",
    "mlp_from_config",
    "spiking_layers",
    "surrogate_derivative",
    "trunc_spike",
]
