"""Errors of a training run that end it with one line and exit code 2 (light: the CLI
imports them to build its parser)."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN/inf); the message says what was kept."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, not ours, or from a different config."""
