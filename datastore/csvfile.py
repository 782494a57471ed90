"""CSV uploads: a header row, then one sample per row.

Stored as one ``(rows, columns)`` float64 table (exact for integers up to 2**53),
each column an array of its own name. A column whose cells are not all numbers
is categorical: its distinct values, sorted, are mapped to 0, 1, 2, ... and the
mapping is kept (``categories``), so labels like ``cat``/``dog`` train as classes.

Two passes over the file, a chunk of rows at a time, so a large CSV is never
held in memory: the first checks every row and learns each column's type, the
second writes the table and the statistics (exact, over every row).
"""

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from datastore.describe import MAX_LABELS, RunningStats
from datastore.errors import DatasetFileError
from datastore.labels import labels_of
from datastore.layout import DatasetWriter
from datastore.limits import Limits

CHUNK_ROWS = 50_000
CHUNK_CELLS = 500_000  # a chunk of a wide table has fewer rows: memory follows cells, not rows
MAX_CATEGORIES = 10_000  # of one text column
MAX_TOTAL_CATEGORIES = 1_000_000  # of all text columns together
# Characters of one record (a row, or the header). csv.reader builds a whole record before it is
# checked, so a record of a billion commas must be refused while it is read.
MAX_RECORD_CHARS = 16 * 1024 * 1024
HEADER_CHARS_PER_COLUMN = 256
csv.field_size_limit(1024 * 1024)


@dataclass
class Column:
    name: str
    kind: str = "integer"  # integer -> float as cells demand; categorical when no cell is a number
    distinct: set[str] | None = field(default_factory=set)  # a text column's values; None past MAX_CATEGORIES
    numbers: np.ndarray | None = field(default_factory=lambda: np.empty(0))  # distinct numbers; None past MAX_LABELS
    seen: int = 0  # rows learnt so far

    def learn(self, cells: np.ndarray, lines: list[int]) -> None:
        try:
            values = cells.astype(np.float64)
        except ValueError:
            values = None
        numbers_before = self.kind != "categorical" and self.seen > 0
        self.seen += len(cells)
        if values is None or self.kind == "categorical":
            if self.distinct is not None:
                self.distinct.update(cells.tolist())
                if len(self.distinct) > MAX_CATEGORIES:
                    self.distinct = None
            self._text(cells, lines, numbers_before)
            return
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            line = lines[int(bad[0])]
            raise DatasetFileError(
                f"line {line}, column '{self.name}' is '{cells[bad[0]]}'; missing or infinite values are not accepted",
                ("file", f"line {line}"),
            )
        if self.numbers is not None:  # only whether they are few enough to be labels: a few KB a column
            self.numbers = np.union1d(self.numbers, values)
            if len(self.numbers) > MAX_LABELS:
                self.numbers = None
        if self.kind == "integer" and not _parses(cells, np.int64):
            self.kind = "float"

    def _text(self, cells: np.ndarray, lines: list[int], numbers_before: bool) -> None:
        """A chunk with text in it: the whole column must be text (categories), never text mixed with numbers."""
        number = next((i for i, cell in enumerate(cells.tolist()) if _is_number(cell)), None)
        if number is not None or numbers_before:
            at = lines[number] if number is not None else lines[0]
            raise DatasetFileError(
                f"column '{self.name}' mixes numbers and text (see line {at}); a column is either numeric or "
                "categorical", ("file", self.name),
            )
        if self.distinct is None:
            raise DatasetFileError(
                f"column '{self.name}' holds text with more than {MAX_CATEGORIES} distinct values; only numbers and "
                "categorical labels are accepted", ("file", self.name),
            )
        self.kind = "categorical"

    @property
    def categories(self) -> list[str] | None:
        return sorted(self.distinct) if self.kind == "categorical" and self.distinct is not None else None

    @property
    def countable(self) -> bool:
        """Few enough distinct whole values (or categories) to be class labels."""
        if self.kind == "categorical":
            return self.distinct is not None and len(self.distinct) <= MAX_LABELS
        # The one label rule (datastore/labels.py), on the column's distinct values: 1.0/0.0 are labels too.
        return self.numbers is not None and labels_of(self.numbers.reshape(-1, 1)) is not None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _parses(cells: np.ndarray, dtype: type) -> bool:
    try:
        cells.astype(dtype)
    except (ValueError, OverflowError):
        return False
    return True


class _Records:
    """The file's lines for ``csv.reader``, refusing a record longer than ``limit`` characters
    while it is being read (``start_record`` is called as each record has been taken)."""

    def __init__(self, text: TextIO, limit: int, what: str) -> None:
        self.text, self.limit, self.spent, self.what = text, limit, 0, what

    def start_record(self, limit: int, what: str) -> None:
        self.limit, self.spent, self.what = limit, 0, what

    def __iter__(self) -> "_Records":
        return self

    def __next__(self) -> str:
        line = self.text.readline(self.limit - self.spent + 1)
        if not line:
            raise StopIteration
        self.spent += len(line)
        if self.spent > self.limit:
            raise DatasetFileError(f"{self.what} is longer than the limit of {self.limit} characters", too_large=True)
        return line


def _chunks(source: Path, max_columns: int) -> Iterator[tuple[list[str], list[int], list[list[str]]]]:
    """(header, line number of each row, rows) a chunk at a time; every row checked for its width.

    The header's width is checked against ``max_columns`` before any row is read."""
    try:
        with source.open(encoding="utf-8-sig", newline="") as text:
            header_limit = max_columns * HEADER_CHARS_PER_COLUMN + 1024
            records = _Records(text, header_limit, f"the header (at most {max_columns} columns)")
            reader = csv.reader(records)
            header = next(reader, None)
            if header is None:
                raise DatasetFileError("the file is empty")
            if len(header) > max_columns:
                raise DatasetFileError(f"the header has {len(header)} columns, more than the limit of {max_columns}",
                                       too_large=True)
            header = [h.strip() for h in header]
            chunk_rows = max(1, min(CHUNK_ROWS, CHUNK_CELLS // len(header)))
            lines: list[int] = []
            rows: list[list[str]] = []
            records.start_record(MAX_RECORD_CHARS, f"the row after line {reader.line_num}")
            for row in reader:
                records.start_record(MAX_RECORD_CHARS, f"the row after line {reader.line_num}")
                if not row:  # a blank line
                    continue
                if len(row) != len(header):
                    raise DatasetFileError(
                        f"line {reader.line_num} has {len(row)} fields but the header has {len(header)}",
                        ("file", f"line {reader.line_num}"),
                    )
                lines.append(reader.line_num)
                rows.append(row)
                if len(rows) == chunk_rows:
                    yield header, lines, rows
                    lines, rows = [], []
            if rows:
                yield header, lines, rows
    except UnicodeDecodeError as exc:
        raise DatasetFileError(f"the file is not UTF-8 text: {exc.reason} at byte {exc.start} of a block") from exc
    except csv.Error as exc:
        raise DatasetFileError(f"not a valid CSV file: {exc}") from exc


def _check_header(header: list[str]) -> None:
    for position, name in enumerate(header, start=1):
        if not name:
            raise DatasetFileError(f"column {position} of the header has no name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DatasetFileError(f"the header names column '{name}' twice")
        seen.add(name)


def _cells(rows: list[list[str]], lines: list[int], columns: list[Column]) -> list[np.ndarray]:
    """Each column's stripped cells; an empty cell is refused with its line and column."""
    out = []
    for j, column in enumerate(columns):
        cells = np.array([row[j].strip() for row in rows], dtype=str)
        empty = np.flatnonzero(cells == "")
        if len(empty):
            line = lines[int(empty[0])]
            raise DatasetFileError(
                f"line {line}, column '{column.name}' is empty; missing values are not accepted (fill or drop them)",
                ("file", f"line {line}"),
            )
        out.append(cells)
    return out


def _check_categories(columns: list[Column]) -> None:
    """The categories of every text column are held while the file is read: bound them together."""
    total = sum(len(c.distinct) for c in columns if c.kind == "categorical" and c.distinct is not None)
    if total > MAX_TOTAL_CATEGORIES:
        raise DatasetFileError(f"the text columns hold more than {MAX_TOTAL_CATEGORIES} distinct values together",
                               too_large=True)


def ingest_csv(source: Path, writer: DatasetWriter, limits: Limits) -> dict[str, dict[str, Any]]:
    """Write the table; returns the description entry of each column (statistics included)."""
    columns: list[Column] = []
    rows = 0
    for header, lines, chunk in _chunks(source, limits.max_csv_columns):
        if not columns:
            _check_header(header)
            columns = [Column(name) for name in header]
        for column, cells in zip(columns, _cells(chunk, lines, columns), strict=True):
            column.learn(cells, lines)
        _check_categories(columns)
        rows += len(chunk)
    if rows == 0:
        raise DatasetFileError("the file has a header but no data rows")
    size = rows * len(columns) * 8
    if size > limits.max_unpacked_bytes:
        raise DatasetFileError(f"the table takes {size} bytes, more than the limit of {limits.max_unpacked_bytes}",
                               too_large=True)
    return _write(source, writer, columns, rows, limits.max_csv_columns)


def _write(source: Path, writer: DatasetWriter, columns: list[Column], rows: int,
           max_columns: int) -> dict[str, dict[str, Any]]:
    table = writer.new_table((rows, len(columns)), [c.name for c in columns])
    stats = RunningStats(len(columns))
    counts: list[dict[str, int] | None] = [{} if c.countable else None for c in columns]
    lookups = [np.array(c.categories) if c.categories is not None else None for c in columns]
    start = 0
    for _, lines, chunk in _chunks(source, max_columns):
        block = np.empty((len(chunk), len(columns)), np.float64)
        for j, cells in enumerate(_cells(chunk, lines, columns)):
            lookup = lookups[j]
            block[:, j] = np.searchsorted(lookup, cells) if lookup is not None else cells.astype(np.float64)
            if counts[j] is not None:
                values, found = np.unique(block[:, j], return_counts=True)
                for value, count in zip(values.tolist(), found.tolist(), strict=True):
                    key = str(int(value))
                    counts[j][key] = counts[j].get(key, 0) + count  # type: ignore[index]
        table[start:start + len(chunk)] = block
        stats.update(block)
        start += len(chunk)
    table.flush()
    del table
    entries = {}
    for j, column in enumerate(columns):
        entries[column.name] = {
            "stats": stats.feature(j).as_json(rows=rows, sampled=False),
            "label_counts": (dict(sorted(counts[j].items(), key=lambda kv: int(kv[0])))
                             if counts[j] is not None else None),
            "column_type": column.kind,
            "categories": column.categories,
        }
    writer.categories = {c.name: c.categories for c in columns if c.categories is not None}
    return entries
