"""Where a job's x and y come from: rows read on demand from a stored array.

A ``Source`` turns sample indices into a batch: dense arrays and CSV columns
are read row by row from disk (``datastore.rows``), variable-length sequences
are padded to the longest sample of the batch with 0.0 (so
``Masking(mask_value=0.0)`` masks exactly the padding), image files are
decoded and resized as Keras's ``image_dataset_from_directory`` does. Nothing
here holds more than one batch.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from datastore.kinds import ArrayKind
from datastore.reader import ArrayLike, ImageFolder, SequenceArray, kind_of
from datastore.rows import chunks, pad_sequences, row_bytes, take, take_steps

Transform = Callable[[np.ndarray], np.ndarray]
PAD_VALUE = 0.0


@dataclass(frozen=True)
class Source:
    array: ArrayLike
    image_size: tuple[int, int] = (256, 256)
    channels: int = 3

    @property
    def kind(self) -> ArrayKind:
        return kind_of(self.array)

    @property
    def sample_shape(self) -> tuple[int | None, ...]:
        if self.kind == ArrayKind.images:
            return (*self.image_size, self.channels)
        return tuple(self.array.shape[1:])

    @property
    def features(self) -> int:
        """Length of the last axis: what per-feature statistics are computed over."""
        last = self.sample_shape[-1] if self.sample_shape else 1
        return int(last) if last is not None else 1

    def __len__(self) -> int:
        return len(self.array)

    def fetch(self, indices: np.ndarray, transform: Transform | None = None) -> np.ndarray:
        """The samples ``indices`` as one batch; ``transform`` (scaling) applies to real values, not padding."""
        transform = transform or (lambda a: a)
        if isinstance(self.array, SequenceArray):
            steps = [transform(s) for s in take_steps(self.array, indices)]
            return pad_sequences(steps, dtype=steps[0].dtype if steps else "float32", value=PAD_VALUE)
        if isinstance(self.array, ImageFolder):
            from worker.image_decode import decode_image  # TensorFlow: imported where images are read

            images = [decode_image(str(self.array.files[i]), self.image_size, self.channels).numpy()
                      for i in np.asarray(indices).tolist()]
            return transform(np.stack(images))
        return transform(take(self.array, indices))

    def values(self, indices: np.ndarray) -> Iterator[np.ndarray]:
        """The raw values of ``indices`` a chunk at a time (a sequence's real steps only), for statistics."""
        per_row = (row_bytes(self.array) if self.kind == ArrayKind.dense
                   else 4 * int(np.prod([d or 64 for d in self.sample_shape])))
        for piece in chunks(np.sort(indices), per_row):
            if self.kind == ArrayKind.sequence:
                steps = take_steps(self.array, piece)  # type: ignore[arg-type]
                yield np.concatenate(steps)
            else:
                yield self.fetch(piece)
