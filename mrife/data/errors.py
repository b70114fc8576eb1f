"""The errors of the data readers: each message names the file and the fix."""


class DataError(ValueError):
    """A data file or folder that cannot be used; the message names it and the fix."""


class MissingDataError(DataError, FileNotFoundError):
    """A file or folder that should exist does not (also a FileNotFoundError)."""
