"""Each dataset reader on a small generated copy of its published layout; malformed files give
one-line errors naming the file and line; detection; label conflicts; k-fold."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest

from featx.dataset import load_collection
from featx.datasets import ReadOptions, detect_format
from featx.errors import FeatxError
from featx.splits import SPLIT_NAMES

from . import dataset_layouts as lay


def _counts(c, split=None):
    rows = range(len(c)) if split is None else c.indices(split)
    return Counter(c.classes[c.labels[i]] for i in rows)


def _one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_emoset_official_split_and_attributes(tmp_path):
    root = lay.emoset(tmp_path / "EmoSet", {"train": {"amusement": 4, "fear": 3},
                                            "val": {"amusement": 1, "fear": 1},
                                            "test": {"amusement": 2, "fear": 2}},
                      drop_annotation="fear_00012")
    assert detect_format(root) == "emoset"
    c = load_collection(root)
    assert c.dataset_format == "emoset" and c.split_spec == "official"
    assert c.classes == lay.MIKELS  # the eight classes, whatever a small copy holds
    assert _counts(c, "train") == {"amusement": 4, "fear": 3}
    assert _counts(c, "val") == {"amusement": 1, "fear": 1}
    assert _counts(c, "test") == {"amusement": 2, "fear": 2}
    i = c.paths.index("image/amusement/amusement_00001.jpg")
    assert c.extras["brightness"][i] == pytest.approx(0.1)
    assert c.extras["object"][i] == "person|tree" and c.extras["scene"][i] == "scene1"
    j = c.paths.index("image/fear/fear_00012.jpg")  # its annotation file is missing
    assert np.isnan(c.extras["brightness"][j]) and c.extras["scene"][j] == ""
    assert any("1 annotation files missing" in n for n in c.notes)
    # the three-item form ([emotion, image_path, annotation_path]) reads alike
    other = lay.emoset(tmp_path / "E3", {"train": {"awe": 2}, "val": {"awe": 1},
                                         "test": {"awe": 1}}, four_items=False)
    assert len(load_collection(other)) == 4
    # kfold replaces the official split
    k = load_collection(root, split="kfold:3")
    assert k.fold is not None and set(k.split.tolist()) == {0}


def test_emoset_malformed(tmp_path):
    root = lay.emoset(tmp_path / "E", {"train": {"awe": 2}, "val": {"awe": 1},
                                       "test": {"awe": 1}})
    (root / "val.json").write_text('[["awe", "x", "image/awe/x.jpg", "a.json"], '
                                   '["joy", "y", "image/awe/y.jpg", "b.json"]]')
    with pytest.raises(FeatxError) as e:
        load_collection(root)
    assert "val.json:entry 1" in _one_line(e) and "'joy'" in str(e.value)
    (root / "val.json").write_text('[["awe", "x"]]')
    with pytest.raises(FeatxError, match="val.json:entry 0"):
        load_collection(root)
    (root / "val.json").write_text('[["awe", "x", ')
    with pytest.raises(FeatxError, match="val.json:1: not valid JSON"):
        load_collection(root)


def _e6_rows():
    # (path, anger, disgust, fear, joy, sadness, surprise, neutral)
    return [("anger/1.jpg", [0.6, 0.1, 0.1, 0, 0.1, 0, 0.1]),
            ("anger/2.jpg", [0.3, 0.3, 0.1, 0, 0.1, 0.1, 0.1]),  # tie for the most-voted
            ("joy/1.jpg", [0, 0, 0, 0.9, 0, 0.1, 0]),
            ("joy/2.jpg", [0, 0, 0, 0.3, 0, 0.1, 0.6]),  # most-voted: neutral
            ("fear/1.jpg", [0.1, 0, 0.7, 0, 0.1, 0.1, 0])]


def test_emotion6_keyword_and_dominant(tmp_path):
    root = lay.emotion6(tmp_path / "Emotion6", _e6_rows())
    assert detect_format(root) == "emotion6"
    kw = load_collection(root)
    assert kw.dataset_format == "emotion6"
    assert kw.classes == ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
    assert _counts(kw) == {"anger": 2, "joy": 2, "fear": 1}
    assert kw.label_dist.shape == (5, 6)
    np.testing.assert_allclose(kw.label_dist.sum(axis=1), 1, atol=1e-6)
    i = kw.paths.index("joy/2.jpg")  # neutral's 0.6 dropped from the six-class distribution
    assert kw.label_dist[i, kw.classes.index("joy")] == pytest.approx(0.75)
    assert kw.extras["p_neutral"][i] == pytest.approx(0.6)
    assert kw.extras["valence"][0] == pytest.approx(3.0)
    dom = load_collection(root, options=ReadOptions(label="dominant"))
    assert "neutral" in dom.classes and len(dom.classes) == 7
    assert _counts(dom) == {"anger": 1, "joy": 1, "neutral": 1, "fear": 1}
    assert dom.dropped == {"tied most-voted emotion": 1}
    assert dom.label_dist[dom.paths.index("joy/2.jpg"), dom.classes.index("neutral")] == \
        pytest.approx(0.6)


def test_emotion6_malformed(tmp_path):
    rows = _e6_rows()
    rows[2] = ("joy/1.jpg", [0, 0, 0, 0.5, 0, 0.1, 0])  # sums to 0.6, on line 4
    root = lay.emotion6(tmp_path / "E6", rows)
    with pytest.raises(FeatxError) as e:
        load_collection(root)
    assert "ground_truth.txt:4: probabilities sum to 0.6" in _one_line(e)
    gt = root / "ground_truth.txt"
    lines = gt.read_text().splitlines()
    lines[2] = "\t".join(lines[2].split("\t")[:-1])  # a missing column on line 3
    gt.write_text("\n".join(lines) + "\n")
    with pytest.raises(FeatxError, match=r"ground_truth.txt:3: 9 tab-separated columns"):
        load_collection(root)


def test_abstract_cr_quoted_ties(tmp_path):
    root = lay.abstract(tmp_path / "testImages_abstract", [
        ("abstract_1.jpg", [0, 0, 5, 1, 0, 0, 0, 1]),
        ("abstract_2.jpg", [3, 0, 0, 0, 0, 0, 0, 3]),  # tie: dropped
        ("abstract_3.jpg", [0, 0, 0, 4, 0, 0, 0, 0]),
        ("abstract_4.jpg", [0, 1, 0, 0, 0, 0, 0, 6])])
    assert b"\r" in (root / "ABSTRACT_groundTruth.csv").read_bytes()
    assert detect_format(root) == "abstract"
    c = load_collection(root)
    assert c.paths == ["abstract_1.jpg", "abstract_3.jpg", "abstract_4.jpg"]
    assert [c.classes[y] for y in c.labels] == ["awe", "contentment", "sadness"]
    assert c.dropped == {"tied majority vote": 1}
    np.testing.assert_allclose(c.label_dist[0, [2, 3, 7]], [5 / 7, 1 / 7, 1 / 7], rtol=1e-6)
    assert c.extras["n_votes"] == [7, 4, 7]
    # a row with a column missing
    gt = root / "ABSTRACT_groundTruth.csv"
    gt.write_bytes(gt.read_bytes().replace(b"'abstract_3.jpg',0,0,0,4,0,0,0,0",
                                           b"'abstract_3.jpg',0,0,0,4,0,0,0"))
    with pytest.raises(FeatxError) as e:
        load_collection(root)
    assert "ABSTRACT_groundTruth.csv:4: 8 columns, the header has 9" in _one_line(e)


def test_artphoto_flat_folder(tmp_path):
    root = lay.artphoto(tmp_path / "testImages_artphoto",
                        {"anger": 3, "sad": 2, "contentment": 1})
    assert detect_format(root) == "artphoto"
    c = load_collection(root)
    assert _counts(c) == {"anger": 3, "sadness": 2, "contentment": 1}
    assert c.classes == lay.MIKELS
    lay.write_image(root / "joy_0100.jpg")
    with pytest.raises(FeatxError) as e:
        load_collection(root, format="artphoto")
    assert "joy_0100.jpg" in _one_line(e) and "does not start with an emotion" in str(e.value)
    # detection is no longer certain: it says so and asks for --format
    with pytest.raises(FeatxError, match="not certain.*--format"):
        load_collection(root)


def test_twitter1_agree_subsets(tmp_path):
    labels = {f"{i:04d}.jpg": i % 2 for i in range(10)}
    agree = {n: 5 if i < 5 else (4 if i < 8 else 3) for i, n in enumerate(labels)}
    root = lay.twitter1(tmp_path / "twitter", labels, agree)
    assert detect_format(root) == "twitter1"
    sizes = {a: len(load_collection(root, options=ReadOptions(agree=a))) for a in (5, 4, 3)}
    assert sizes == {5: 5, 4: 8, 3: 10}
    c = load_collection(root, options=ReadOptions(agree=3))
    assert c.classes == ["negative", "positive"]
    assert _counts(c) == {"negative": 5, "positive": 5}
    assert c.extras["agree"][c.paths.index("0009.jpg")] == 3
    assert c.extras["agree"][c.paths.index("0000.jpg")] == 5
    (root / "ground_truth" / "four_agree.txt").write_text("0000.jpg 1\n0001.jpg maybe\n")
    with pytest.raises(FeatxError) as e:
        load_collection(root, options=ReadOptions(agree=4))
    assert "four_agree.txt:2: label 'maybe'" in _one_line(e)


def test_twitter2_fi_folder_and_csv(tmp_path):
    for cls in ("Positive", "negative"):
        for i in range(3):
            lay.write_image(tmp_path / "tw2" / cls / f"{i}.jpg", seed=i + len(cls))
    assert detect_format(tmp_path / "tw2") == "twitter2"
    assert load_collection(tmp_path / "tw2").classes == ["negative", "positive"]
    for cls in lay.MIKELS:
        lay.write_image(tmp_path / "FI" / cls / f"{cls}_1.jpg")
    assert detect_format(tmp_path / "FI") == "fi"
    assert len(load_collection(tmp_path / "FI")) == 8
    lay.write_image(tmp_path / "FI" / "joy" / "x.jpg")
    with pytest.raises(FeatxError, match="FI/joy: folder 'joy' is not one of FI's"):
        load_collection(tmp_path / "FI", format="fi")
    assert load_collection(tmp_path / "FI", format="folder").classes[-1] == "sadness"
    # CSV with a distribution and extra columns
    for i in range(4):
        lay.write_image(tmp_path / "c" / f"{i}.jpg", seed=100 + i)
    (tmp_path / "c" / "m.csv").write_text(
        "path,label,p_awe,p_fear,valence,scene\n0.jpg,awe,0.7,0.3,1.5,beach\n"
        "1.jpg,fear,0.2,0.8,-2,road\n2.jpg,awe,1,0,0.5,sky\n3.jpg,fear,0,1,0,sea\n")
    c = load_collection(tmp_path / "c" / "m.csv")
    assert c.dataset_format == "csv" and c.classes == ["awe", "fear"]
    np.testing.assert_allclose(c.label_dist[0], [0.7, 0.3])
    assert c.extras["valence"][1] == -2.0 and c.extras["scene"][0] == "beach"
    (tmp_path / "c" / "m.csv").write_bytes(b"path,label\ncaf\xe9.jpg,awe\n")
    with pytest.raises(FeatxError, match=r"m.csv: not UTF-8 text \(byte 14\)"):
        load_collection(tmp_path / "c" / "m.csv")
    (tmp_path / "c" / "m.csv").write_text("path,label,p_awe,p_fear\n0.jpg,awe,0.7,0.2\n")
    with pytest.raises(FeatxError) as e:
        load_collection(tmp_path / "c" / "m.csv")
    assert "m.csv:2: probabilities sum to 0.9" in _one_line(e)
    (tmp_path / "c" / "m.csv").write_text("path,label,p_awe,p_fear\n0.jpg,awe,nan,0.5\n")
    with pytest.raises(FeatxError) as e:
        load_collection(tmp_path / "c" / "m.csv")
    assert "m.csv:2: a probability is not a finite number" in _one_line(e)


def test_detection_uncertain_asks_for_format(tmp_path):
    root = lay.emotion6(tmp_path / "both", _e6_rows())
    lay.emoset(root, {"train": {"awe": 1}, "test": {"awe": 1}})
    with pytest.raises(FeatxError) as e:
        load_collection(root)
    assert "could be emoset or emotion6" in _one_line(e) and "--format" in str(e.value)
    assert load_collection(root, format="emotion6").dataset_format == "emotion6"
    (tmp_path / "flat").mkdir()
    lay.write_image(tmp_path / "flat" / "img1.jpg")
    with pytest.raises(FeatxError, match="no known dataset layout.*--format"):
        load_collection(tmp_path / "flat")


def _conflict_tree(root):
    for cls in ("awe", "fear"):
        for i in range(6):
            lay.write_image(root / cls / f"{cls}_{i}.jpg", seed=i + (0 if cls == "awe" else 50))
    # identical bytes under two labels: (awe, fear) and (awe, awe, fear)
    shutil.copyfile(root / "awe" / "awe_0.jpg", root / "fear" / "copy_a.jpg")
    shutil.copyfile(root / "awe" / "awe_1.jpg", root / "fear" / "copy_b.jpg")
    shutil.copyfile(root / "awe" / "awe_1.jpg", root / "awe" / "again_b.jpg")
    return root


def test_label_conflicts_policies(tmp_path):
    root = _conflict_tree(tmp_path / "d")
    keep = load_collection(root)
    assert len(keep.conflicts) == 2 and keep.conflict_policy == "keep" and len(keep) == 15
    groups = sorted(sorted(c["labels"]) for c in keep.conflicts)
    assert groups == [["awe", "awe", "fear"], ["awe", "fear"]]
    drop = load_collection(root, conflicts="drop")
    assert len(drop) == 15 - 5 and not any("copy" in p for p in drop.paths)
    maj = load_collection(root, conflicts="majority")
    # awe_1's group (awe, awe, fear) becomes awe; awe_0's tie (awe, fear) is dropped
    assert len(maj) == 13 and maj.labels[maj.paths.index("fear/copy_b.jpg")] == 0
    assert "fear/copy_a.jpg" not in maj.paths
    with pytest.raises(FeatxError, match="--conflicts"):
        load_collection(root, conflicts="vote")


def test_kfold_every_image_in_one_fold_stratified_duplicate_safe(tmp_path):
    root = _conflict_tree(tmp_path / "d")
    for extra in range(7):
        lay.write_image(root / "awe" / f"more_{extra}.jpg", seed=200 + extra)
    c = load_collection(root, split="kfold:3", seed=1)
    assert c.split_spec == "kfold:3" and c.fold.dtype == np.int8
    assert set(np.unique(c.fold).tolist()) == {0, 1, 2} and (c.split == 0).all()
    for cls in range(len(c.classes)):  # stratified: per-class fold sizes differ by <= 1 + dups
        sizes = np.bincount(c.fold[c.labels == cls], minlength=3)
        assert sizes.max() - sizes.min() <= 2
    index = {p: i for i, p in enumerate(c.paths)}
    for group in c.duplicates:
        assert len({int(c.fold[index[p]]) for p in group}) == 1
    again = load_collection(root, split="kfold:3", seed=1)
    assert np.array_equal(c.fold, again.fold)
    view = load_collection(root, split="kfold:3:1", seed=1)  # finetune's form: one round
    assert np.array_equal(view.fold, c.fold) and view.split_spec == "kfold:3:1"
    assert np.array_equal(view.split == SPLIT_NAMES.index("test"), c.fold == 1)
    assert np.array_equal(view.split == SPLIT_NAMES.index("val"), c.fold == 2)
    for bad in ("kfold:1", "kfold:x", "kfold:3:3"):
        with pytest.raises(FeatxError, match="--split"):
            load_collection(root, split=bad)


def test_map_file_that_is_not_utf8_is_a_one_line_error(tmp_path):
    from featx.tasks import read_map_file

    (tmp_path / "map.csv").write_bytes(b"class,sentiment\nd\xe9go\xfbt,negative\n")
    with pytest.raises(FeatxError) as e:
        read_map_file(tmp_path / "map.csv")
    assert "map.csv: not UTF-8 text (byte 17)" in _one_line(e)
