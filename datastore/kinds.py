"""What a stored array holds: the one list of array kinds.

The description's ``kind`` (``datastore.describe``), the manifest entries (``datastore.layout``),
the API's shape checks and the worker's batch readers all name kinds with these values.
"""

from enum import StrEnum


class ArrayKind(StrEnum):
    dense = "dense"  # a plain array, samples first (a CSV column too)
    sequence = "sequence"  # samples of different lengths (steps concatenated plus one length each)
    images = "images"  # image files, one per sample, decoded when trained on


# Manifest only: one column of a stored CSV table, read as a dense array.
STORED_COLUMN = "column"
