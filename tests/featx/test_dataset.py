import shutil
from pathlib import Path

import numpy as np
import pytest

from featx.dataset import load_collection
from featx.errors import FeatxError
from featx.synthetic import generate_images


def _copy_in_order(src: Path, dst: Path, reverse: bool) -> None:
    files = sorted(p for p in src.rglob("*") if p.is_file())
    for p in (reversed(files) if reverse else files):
        target = dst / p.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target)


def test_folder_layout(tmp_path):
    root = generate_images(tmp_path / "d", n_per_class=3, size=24, classes=("fear", "awe"))
    (root / "fear").rename(root / "Fear")
    (root / "Fear" / "notes.txt").write_text("not an image")
    (root / "Fear" / "sub").mkdir()
    shutil.copyfile(root / "Fear" / "fear_0000.jpg", root / "Fear" / "sub" / "deep.JPG")
    c = load_collection(root)
    assert c.classes == ["awe", "fear"]
    assert len(c) == 7
    assert c.paths == sorted(c.paths)
    assert "Fear/sub/deep.JPG" in c.paths and not any(p.endswith(".txt") for p in c.paths)
    assert c.labels.dtype == np.int16 and c.split.dtype == np.uint8
    assert c.labels[c.paths.index("Fear/sub/deep.JPG")] == 1
    assert c.abspath(0).is_file()


def test_split_independent_of_file_order_and_repeatable(tmp_path):
    src = generate_images(tmp_path / "src", n_per_class=12, size=16)
    a, b = tmp_path / "a", tmp_path / "b"
    _copy_in_order(src, a, reverse=False)
    _copy_in_order(src, b, reverse=True)
    ca, cb, ca2 = load_collection(a), load_collection(b), load_collection(a)
    assert ca.paths == cb.paths
    assert np.array_equal(ca.split, cb.split) and np.array_equal(ca.split, ca2.split)
    assert set(np.unique(ca.split)) == {0, 1, 2}
    assert not np.array_equal(ca.split, load_collection(a, seed=1).split)


def test_duplicates_reported_and_on_one_side(tmp_path):
    root = generate_images(tmp_path / "d", n_per_class=10, size=16, classes=("awe", "fear"))
    for i in range(6):  # identical copies under other names, even across classes
        shutil.copyfile(root / "awe" / f"awe_{i:04d}.jpg", root / "fear" / f"copy_{i}.jpg")
    for seed in range(4):
        c = load_collection(root, split="50/25/25", seed=seed)
        assert len(c.duplicates) == 6
        index = {p: i for i, p in enumerate(c.paths)}
        for group in c.duplicates:
            assert len({int(c.split[index[p]]) for p in group}) == 1


def test_csv_manifest(tmp_path):
    root = generate_images(tmp_path / "imgs", n_per_class=4, size=16, classes=("awe", "fear"))
    rows = [f"imgs/{p.parent.name}/{p.name},{p.parent.name.upper()}"
            for p in sorted(root.rglob("*.jpg"))]
    (tmp_path / "m.csv").write_text("path,label\n" + "\n".join(reversed(rows)) + "\n")
    c = load_collection(tmp_path / "m.csv", split="50/25/25")
    assert c.classes == ["awe", "fear"] and len(c) == 8 and c.paths == sorted(c.paths)
    assert (c.root / c.paths[0]).is_file()
    with_split = ["path,label,split"] + [f"{r},{s}" for r, s in
                                         zip(rows, ["train", "val", "test", "train"] * 2)]
    (tmp_path / "s.csv").write_text("\n".join(with_split) + "\n")
    c2 = load_collection(tmp_path / "s.csv")
    assert c2.split_spec == "csv"
    assert c2.split[c2.paths.index(rows[1].split(",")[0])] == 1


@pytest.mark.parametrize("content,match", [
    ("file,label\na.jpg,x\n", "path,label"),
    ("path,label,split\na.jpg,x,holdout\n", "holdout"),
    ("path,label\n,x\n", "empty path"),
])
def test_csv_errors(tmp_path, content, match):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(FeatxError, match=match):
        load_collection(tmp_path / "m.csv")


def test_missing_and_empty(tmp_path):
    with pytest.raises(FeatxError, match="no such"):
        load_collection(tmp_path / "nope")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(FeatxError, match="no images"):
        load_collection(tmp_path / "empty")
