"""Errors of a training run that end it with one line and exit code 2."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN/inf); the message says what was kept."""
