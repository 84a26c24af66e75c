import numpy as np
import pytest

from featx.decode import DecodeError, load_image
from featx.preprocess import load_preprocessed, resize_center_crop

from .featx_corpus import rotated_jpeg, write_bad, write_good


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, write_good(root / "good"), write_bad(root / "bad")


def test_good_images_of_every_mode_decode_to_rgb(corpus):
    root, good, _ = corpus
    assert len(good) >= 12
    for name in good:
        img = load_image(root / "good" / name)
        assert img.mode == "RGB", name
        x, err = load_preprocessed(root / "good" / name, 32)
        assert err == "" and tuple(x.shape) == (3, 32, 32), name


def test_bad_files_raise_a_reason(corpus):
    root, _, bad = corpus
    assert len(bad) >= 10
    reasons = {}
    for name in bad:
        with pytest.raises(DecodeError) as e:
            load_image(root / "bad" / name)
        reasons[name] = str(e.value)
        assert reasons[name] and "\n" not in reasons[name]
        x, err = load_preprocessed(root / "bad" / name, 32)
        assert err == reasons[name] and not x.any()
    assert "bomb" in reasons["bomb.png"]
    assert "empty" in reasons["empty.jpg"]
    assert "not found" in reasons["broken-link.jpg"]
    assert "not an image" in reasons["text.jpg"]


def test_exif_orientation_applied(tmp_path):
    rotated_jpeg(tmp_path / "r.jpg")
    img = load_image(tmp_path / "r.jpg")
    assert img.size == (24, 48)  # portrait once rotated
    a = np.asarray(img).astype(int)
    assert a[2, 12, 0] > 200 and a[2, 12, 2] < 60  # red on top
    assert a[45, 12, 2] > 200 and a[45, 12, 0] < 60  # blue at the bottom


def test_modes_converted_sensibly(corpus):
    root, _, _ = corpus
    alpha = np.asarray(load_image(root / "good" / "alpha.png")).astype(int)
    rgb = np.asarray(load_image(root / "good" / "rgb.jpg")).astype(int)
    # half-transparent over white: brighter than the opaque original on average
    assert alpha.mean() > rgb.mean() + 30
    sixteen = np.asarray(load_image(root / "good" / "sixteen.png"))
    assert sixteen.std() > 30  # scaled from 16 bits, not clipped to white


def test_resize_center_crop_shape_and_draft(tmp_path):
    from PIL import Image
    Image.new("RGB", (500, 375), (10, 200, 30)).save(tmp_path / "big.jpg")
    img = load_image(tmp_path / "big.jpg", draft_size=64)
    assert min(img.size) >= 64 and img.size[0] < 500  # draft mode decoded at a reduced scale
    out = resize_center_crop(img, 64)
    assert out.size == (64, 64)
