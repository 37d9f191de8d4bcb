"""Errors a user can cause and fix. The CLI prints them as one line, without a traceback."""


class PlayerguardError(Exception):
    """A problem with the user's input, configuration or data, explained in one line."""


class ConfigError(PlayerguardError):
    """A setting, mapping or definition file is invalid."""


class DataError(PlayerguardError):
    """Input data cannot be used (missing columns, empty lake, unknown player...)."""
