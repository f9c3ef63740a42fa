"""Errors a user can cause and fix: the CLI prints their message as one line and exits non-zero."""


class EmoviewError(Exception):
    """A problem with the user's input or setup. The message says what is wrong and what to do."""

    exit_code = 2


class InputError(EmoviewError):
    """A camera, video, folder or path that cannot be used."""


class ModelError(EmoviewError):
    """An emotion or face model that is missing, damaged or of the wrong kind."""
