"""Images that live inside other files (a tar shard's member, a row of an Arrow/Parquet table):
small picklable references that DataLoader workers turn into bytes without unpacking anything.

A member has `size` (bytes, for duplicate detection; -1 when unknown), `data() -> bytes` (an
OSError or ValueError when it cannot be read) and `str()` (where it is, for messages)."""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class TarMember:
    """The bytes of one member of an uncompressed tar file, read at their offset."""

    shard: str
    offset: int
    size: int

    def data(self) -> bytes:
        with open(self.shard, "rb") as f:
            f.seek(self.offset)
            raw = f.read(self.size)
        if len(raw) != self.size:
            raise OSError(f"member truncated ({len(raw)} of {self.size} bytes)")
        return raw

    def __str__(self) -> str:
        return f"{self.shard}@{self.offset}"


@dataclass(frozen=True)
class ArrowTable:
    """Where an image column lives: a `save_to_disk` split folder (memory-mapped Arrow) or one
    Parquet file; opened once per process."""

    kind: str  # "arrow" | "parquet"
    path: str
    column: str

    def cell(self, row: int) -> bytes:
        start, column = _open(self, row)
        # an Image feature may hold a file's path instead of its bytes (to_parquet of images
        # loaded from files): absolute, or relative to the table's folder
        base = self.path if self.kind == "arrow" else os.path.dirname(self.path)
        return cell_bytes(column[row - start].as_py(), base)

    def __str__(self) -> str:
        return f"{self.path}[{self.column}]"


@dataclass(frozen=True)
class ArrowRow:
    """Row `row` of an image column: an `Image` feature (a struct with bytes) or plain bytes."""

    table: ArrowTable
    row: int
    size: int = -1

    def data(self) -> bytes:
        return self.table.cell(self.row)

    def __str__(self) -> str:
        return f"{self.table}#{self.row}"


def cell_bytes(value, base: str = ".") -> bytes:
    """An image cell as Python gives it (bytes, or an Image feature's {'bytes', 'path'}) ->
    bytes; a ValueError when the row holds no image, an OSError when its file cannot be read."""
    if isinstance(value, dict):
        if value.get("bytes") is None and value.get("path"):
            with open(os.path.join(base, value["path"]), "rb") as f:
                return f.read()
        value = value.get("bytes")
    if not isinstance(value, (bytes, bytearray)):
        raise ValueError("the row holds no image bytes")
    return bytes(value)


# per process: the open table (arrow) or the last Parquet row group read (batches run in order,
# so consecutive rows come from one group)
@lru_cache(maxsize=8)
def _arrow_column(path: str, column: str):
    from datasets import load_from_disk

    return load_from_disk(path).data.table.column(column)


@lru_cache(maxsize=4)
def _parquet_groups(path: str) -> tuple[int, ...]:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    starts, at = [], 0
    for g in range(meta.num_row_groups):
        starts.append(at)
        at += meta.row_group(g).num_rows
    return tuple(starts) + (at,)


@lru_cache(maxsize=2)
def _parquet_group(path: str, column: str, group: int):
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read_row_group(group, columns=[column]).column(column)


def _open(table: ArrowTable, row: int):
    """(first row of the block, the column block holding `row`)."""
    if table.kind == "arrow":
        return 0, _arrow_column(table.path, table.column)
    starts = _parquet_groups(table.path)
    if not 0 <= row < starts[-1]:
        raise ValueError(f"row {row} is past the end of {os.path.basename(table.path)}")
    group = bisect.bisect_right(starts, row) - 1
    return starts[group], _parquet_group(table.path, table.column, group)
