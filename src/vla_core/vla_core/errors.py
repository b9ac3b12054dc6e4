"""Errors a user can cause: each carries one sentence naming the thing and what was expected.

The command line catches :class:`VLAError` and prints its message without a traceback;
anything else is a programming error and keeps its traceback.
"""


class VLAError(Exception):
    """Base class of user-facing errors (bad file, bad parameter, unknown instruction)."""


class ConfigError(VLAError):
    """A configuration value, file or override is invalid."""


class CheckpointError(VLAError):
    """A checkpoint directory is missing, corrupt, or does not match the caller's spec."""


class EpisodeError(VLAError):
    """An episode file is corrupt or inconsistent."""


class DatasetError(VLAError):
    """A dataset directory holds no usable episodes or is inconsistent."""
