"""Class-per-folder PNG/JPEG datasets (ImageFolder, load_dataset("folder")), on images written
here with Pillow; expected pixels come from the arrays written (PNG) or Pillow's own decoding."""

import os

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from pyconv.data import ImageFolder, load_dataset, read_images  # noqa: E402


def save(path, array, fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)
    return path


def gray(seed, h=5, w=4):
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def rgb(seed, h=5, w=4):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_grayscale_pngs_sorted_classes_exact_values(tmp_path):
    arrays = {("zebra", "a.png"): gray(0), ("ant", "b.png"): gray(1), ("ant", "a.PNG"): gray(2)}
    for (cls, name), a in arrays.items():
        save(str(tmp_path / cls / name), a, fmt="PNG")
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["ant", "zebra"]
    assert ds.images.shape == (3, 1, 5, 4) and ds.images.dtype == np.float32
    np.testing.assert_array_equal(ds.labels, [0, 0, 1])
    expected = [arrays[("ant", "a.PNG")], arrays[("ant", "b.png")], arrays[("zebra", "a.png")]]
    np.testing.assert_array_equal(ds.images[:, 0], np.stack(expected) / np.float32(255))


def test_one_color_image_makes_everything_rgb(tmp_path):
    g, c = gray(0), rgb(1)
    save(str(tmp_path / "a" / "g.png"), g)
    save(str(tmp_path / "b" / "c.png"), c)
    ds = ImageFolder(tmp_path)
    assert ds.images.shape == (2, 3, 5, 4)
    for k in range(3):  # grayscale replicated into every channel
        np.testing.assert_array_equal(ds.images[0, k], g / np.float32(255))
    np.testing.assert_array_equal(ds.images[1], c.transpose(2, 0, 1) / np.float32(255))
    forced = ImageFolder(tmp_path, mode="L")
    assert forced.images.shape == (2, 1, 5, 4)
    expected = np.asarray(Image.fromarray(c).convert("L")) / np.float32(255)
    np.testing.assert_array_equal(forced.images[1, 0], expected)


def test_jpeg_matches_pillows_decoding(tmp_path):
    path = save(str(tmp_path / "x" / "p.jpg"), rgb(3, 16, 16), fmt="JPEG")
    out = read_images([path])
    reference = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_array_equal(out[0], reference.transpose(2, 0, 1))


def test_sizes_must_agree_unless_resized(tmp_path):
    a = save(str(tmp_path / "a" / "1.png"), gray(0, 5, 4))
    b = save(str(tmp_path / "a" / "2.png"), gray(1, 6, 6))
    with pytest.raises(ValueError, match=rf"{a} is 5x4, {b} is 6x6, H x W\); pass size=\(H, W\)"):
        ImageFolder(tmp_path)
    ds = ImageFolder(tmp_path, size=(3, 2))
    assert ds.images.shape == (2, 1, 3, 2)
    expected = np.asarray(Image.open(b).resize((2, 3), Image.BILINEAR)) / np.float32(255)
    np.testing.assert_array_equal(ds.images[1, 0], expected)
    assert ImageFolder(tmp_path, size=7).images.shape == (2, 1, 7, 7)
    with pytest.raises(ValueError, match=r"size must be a positive int or \(H, W\), got \(0, 2\)"):
        ImageFolder(tmp_path, size=(0, 2))
    with pytest.raises(ValueError, match="mode must be 'L', 'RGB' or None, got 'CMYK'"):
        ImageFolder(tmp_path, size=3, mode="CMYK")


def test_folder_errors_name_the_folder_or_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} has no class subfolders"):
        ImageFolder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=f"class folder {tmp_path / 'empty'} holds no"):
        ImageFolder(tmp_path)
    bad = tmp_path / "empty" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match=f"cannot read {bad} as an image"):
        ImageFolder(tmp_path)
    good = save(str(tmp_path / "empty" / "broken.png"), gray(0, 40, 40), fmt="PNG")
    data = open(good, "rb").read()
    open(good, "wb").write(data[: len(data) // 2])  # truncated pixel data
    with pytest.raises(ValueError, match=f"cannot read {good} as an image"):
        ImageFolder(tmp_path)


def test_load_dataset_folder_with_train_and_test(tmp_path):
    for k in range(3):
        save(str(tmp_path / "train" / "cat" / f"{k}.png"), gray(k))
        save(str(tmp_path / "train" / "dog" / f"{k}.png"), gray(10 + k))
    color = rgb(20)
    save(str(tmp_path / "test" / "dog" / "0.png"), color)  # test has one class, in color
    train = load_dataset("folder", "train", data_dir=tmp_path)
    test = load_dataset("folder", "test", data_dir=tmp_path)
    assert train.classes == test.classes == ["cat", "dog"]
    assert train.images.shape == (6, 3, 5, 4) and test.images.shape == (1, 3, 5, 4)
    np.testing.assert_array_equal(test.labels, [1])  # the training set's index of "dog"
    np.testing.assert_array_equal(test.images[0], color.transpose(2, 0, 1) / np.float32(255))
    small = load_dataset("folder", "test", data_dir=tmp_path, size=2, mode="L")
    assert small.images.shape == (1, 1, 2, 2)
    save(str(tmp_path / "test" / "bird" / "0.png"), gray(0))
    with pytest.raises(ValueError, match=r"class folders \['bird'\] that are not among"):
        load_dataset("folder", "test", data_dir=tmp_path)
    with pytest.raises(TypeError, match=r"dataset 'mnist' takes no option\(s\) \['size'\]"):
        load_dataset("mnist", data_dir=tmp_path, size=3)


def test_load_dataset_single_tree_is_split_by_seed(tmp_path):
    for k in range(10):
        save(str(tmp_path / "one" / f"{k}.png"), gray(k))
        save(str(tmp_path / "two" / f"{k}.png"), gray(100 + k))
    train = load_dataset("folder", "train", data_dir=tmp_path, seed=1, test_fraction=0.3)
    test = load_dataset("folder", "test", data_dir=tmp_path, seed=1, test_fraction=0.3)
    assert len(train) == 14 and len(test) == 6
    np.testing.assert_array_equal(np.bincount(test.labels), [3, 3])
    rows = {r.tobytes() for r in train.images} | {r.tobytes() for r in test.images}
    assert len(rows) == 20  # disjoint and complete
    other = load_dataset("folder", "test", data_dir=tmp_path, seed=2, test_fraction=0.3)
    assert not np.array_equal(other.images, test.images)
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="test is missing: a folder dataset has both"):
        load_dataset("folder", data_dir=tmp_path)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    wide = np.random.default_rng(0).integers(0, 65536, (5, 4)).astype(np.uint16)
    path = str(tmp_path / "a" / "w.png")
    save(path, wide, fmt="PNG")
    assert Image.open(path).mode in ("I", "I;16")
    out = read_images([path])
    assert out.shape == (1, 1, 5, 4)
    np.testing.assert_allclose(out[0, 0], wide / 65535.0, rtol=1e-6)
    as_rgb = read_images([path], mode="RGB")
    np.testing.assert_array_equal(as_rgb[0], np.repeat(out[0], 3, axis=0))
