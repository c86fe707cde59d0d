"""The errors siamkit raises for input it cannot use: one base class, one subclass per area.

Every :class:`SiamkitError` carries a message that says what was wrong, where, and what to do;
the command line prints it on one line and exits with :attr:`SiamkitError.exit_code`. Anything
else that escapes is a bug in siamkit.
"""

from __future__ import annotations


class SiamkitError(Exception):
    """Input siamkit cannot use (a value, a file, a folder); the message says what to do."""

    exit_code = 2


class ConfigError(SiamkitError, ValueError):
    """A configuration that cannot run; the message names the key and the valid choices."""


class DataError(SiamkitError):
    """A dataset that cannot be used as given."""


class CheckpointError(SiamkitError):
    """A checkpoint that is missing, unreadable, not siamkit's, or lacks what a command needs."""


class RunFolderError(SiamkitError):
    """A run folder that is missing, incomplete, damaged or in use by another process."""


class TrainingError(SiamkitError, RuntimeError):
    """A run that cannot start or go on."""


class NonFiniteLoss(TrainingError):
    """The loss became NaN or infinite; the last good checkpoint is left intact."""


class Interrupted(TrainingError):
    """Stopped by SIGINT/SIGTERM after a checkpoint was written."""

    exit_code = 130


class EvaluationError(SiamkitError):
    """An evaluation that cannot run on the given encoder and data."""
