"""The one error of the datastore: a file that is not a usable dataset."""

from collections.abc import Sequence


class DatasetFileError(ValueError):
    """The file is not a usable dataset; the message says why, for the client.

    ``loc`` points at the culprit: ``("file",)`` for the upload as a whole,
    ``("file", "<member path>")`` for one member of an archive. ``too_large``:
    refused for its size (a configured limit), not its content.
    """

    def __init__(self, message: str, loc: Sequence[str] = ("file",), *, too_large: bool = False) -> None:
        super().__init__(message)
        self.loc = tuple(loc)
        self.too_large = too_large
