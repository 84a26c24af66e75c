"""The --decode gpu path, run here on the CPU (torchvision's decode_jpeg takes any device): the
same images, orientation and failures as the CPU decoder."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from featx.gpu_decode import GPU_DECODER, ORIENT, orient_resize_crop
from featx.loader import CPU_DECODER
from .featx_corpus import rotated_jpeg


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_table_matches_pil(orientation):
    a = np.random.default_rng(orientation).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(a)
    img.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(img))
    got = ORIENT[orientation](torch.from_numpy(a).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    assert np.array_equal(got, expected)


def test_resize_crop_close_to_pil():
    a = np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)
    a = np.asarray(Image.fromarray(a).resize((180, 120)))  # smooth-ish content
    from featx.preprocess import resize_center_crop
    ref = np.asarray(resize_center_crop(Image.fromarray(a), 48)).astype(int)
    got = orient_resize_crop(torch.from_numpy(a.copy()).permute(2, 0, 1).contiguous(), 1, 48)
    assert tuple(got.shape) == (3, 48, 48)
    assert np.abs(got.permute(1, 2, 0).numpy().astype(int) - ref).mean() < 3


def test_mixed_batch_like_the_cpu_decoder(tmp_path):
    rotated_jpeg(tmp_path / "rot.jpg")
    Image.new("RGB", (50, 40), (10, 200, 30)).save(tmp_path / "plain.png")
    Image.new("RGB", (50, 40), (10, 20, 230)).convert("CMYK").save(tmp_path / "cmyk.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    paths = [tmp_path / n for n in ("rot.jpg", "plain.png", "cmyk.jpg", "bad.jpg")]
    batches = {}
    for dec in (GPU_DECODER, CPU_DECODER):
        ds = dec.dataset(paths, 32)
        items = dec.collate([ds[i] for i in range(len(paths))])
        batches[dec.name] = dec.finish(items, torch.device("cpu"), 32)
    (gi, gx, ge), (ci, cx, ce) = batches["gpu"], batches["cpu"]
    assert gi.tolist() == ci.tolist() == [0, 1, 2, 3]
    assert ge[:3] == ["", "", ""] and ge[3] and ce[3] and gx.shape == cx.shape == (4, 3, 32, 32)
    diff = (gx[:3].int() - cx[:3].int()).abs().float().mean().item()
    assert diff < 4
    assert gx[0, 0, 2, 16] > 200 and gx[0, 2, 29, 16] > 200  # red on top, blue at the bottom
    assert GPU_DECODER.preprocessing != CPU_DECODER.preprocessing


@pytest.mark.parametrize("mode,crop,resize", [("shortest", 40, 45), ("squash", 40, 45),
                                              ("longest", 40, 40), ("shortest", 48, 41)])
def test_resize_modes_and_padding_as_the_cpu_path(mode, crop, resize):
    """The device path takes featx.preprocess.geometry's sizes, padding and crop offsets; only
    the interpolation kernels differ (torch's antialiased vs PIL's) in the last bits."""
    from featx.backbones import Preprocess
    from featx.preprocess import to_model_input

    a = np.random.default_rng(1).integers(0, 255, (30, 45, 3), dtype=np.uint8)
    a = np.asarray(Image.fromarray(a).resize((90, 60)))  # smooth-ish content
    pp = Preprocess(crop, resize, interpolation="bicubic", resize_mode=mode, fill=(9, 99, 199))
    ref = np.asarray(to_model_input(Image.fromarray(a), pp)).astype(int)
    got = orient_resize_crop(torch.from_numpy(a.copy()).permute(2, 0, 1).contiguous(), 1, pp)
    got = got.permute(1, 2, 0).numpy().astype(int)
    assert got.shape == ref.shape == (crop, crop, 3)
    padded = np.all(ref == pp.pad_fill, axis=-1)
    assert padded.any() == (mode == "longest" or resize < crop)
    assert np.array_equal(got[padded], ref[padded])
    assert np.abs(got - ref).mean() < 3
