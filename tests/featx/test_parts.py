import numpy as np
import pytest

from featx.errors import FeatxError
from featx.loader import ChunkBatches
from featx.parts import ChunkWriter, Parts


def test_chunk_files_roundtrip_and_check(tmp_path):
    parts = Parts(tmp_path / "c.h5")
    parts.create({"fingerprint": "x"})
    assert parts.exists() and parts.read_meta() == {"fingerprint": "x"}
    writer = ChunkWriter(parts)
    feats = {"L4": np.arange(15, dtype=np.float16).reshape(3, 5)}
    writer.put(2, feats, np.array([True, False, True]), ["", "truncated", ""])
    writer.close()
    got, valid, errors = parts.read_chunk(2)
    assert np.array_equal(got["L4"], feats["L4"]) and got["L4"].dtype == np.float16
    assert valid.tolist() == [True, False, True] and errors == ["", "truncated", ""]
    assert parts.chunk_ok(2, 3, {"L4": 5})
    assert not parts.chunk_ok(2, 4, {"L4": 5}) and not parts.chunk_ok(2, 3, {"L4": 5, "L0": 64})
    assert not parts.chunk_ok(1, 3, {"L4": 5})
    blob = parts.chunk_path(2).read_bytes()
    parts.chunk_path(2).write_bytes(blob[: len(blob) // 2])  # as a lost disk cache might leave it
    assert not parts.chunk_ok(2, 3, {"L4": 5})
    assert [p.name for p in parts.dir.iterdir() if p.name.startswith(".")] == []  # no temp files
    parts.remove()
    assert not parts.dir.exists()


def test_writer_thread_error_reaches_the_caller(tmp_path):
    parts = Parts(tmp_path / "c.h5")
    parts.create({})
    writer = ChunkWriter(parts)
    parts.dir.rename(tmp_path / "gone")  # every later write fails
    writer.put(0, {"L4": np.zeros((1, 2), np.float32)}, np.ones(1, bool), [""])
    with pytest.raises(FeatxError, match="chunk-000000.npz"):
        writer.close()


def test_batches_never_cross_chunks():
    b = ChunkBatches([0, 2, 3], chunk_size=8, batch_size=3, n=30)
    batches = list(b)
    assert batches[:3] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert batches[3] == [16, 17, 18] and batches[-1] == [27, 28, 29]
    assert all(len({i // 8 for i in batch}) == 1 for batch in batches)
    assert len(b) == len(batches) and b.n_rows() == 8 + 8 + 6
    assert sorted(i for batch in batches for i in batch) == list(range(8)) + list(range(16, 30))
