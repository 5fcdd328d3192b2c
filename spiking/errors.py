"""The error of a bad network or neuron setting (no torch: the CLI imports it to start)."""


class SpikingConfigError(ValueError):
    """A network/neuron configuration value is invalid (message names key and value)."""
