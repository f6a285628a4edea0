"""Errors a user can act on: the CLI prints their message on one line and exits with 2."""


class StylefillError(Exception):
    """Base class of errors caused by the user's input or environment, not by a bug."""


class InputError(StylefillError):
    """Bad input: missing or broken file, unknown class or backbone, wrong weights."""


class Cancelled(StylefillError):
    """A long computation was cancelled by its caller."""
