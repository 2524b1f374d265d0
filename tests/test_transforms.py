"""pyconv.data.transforms: shapes and dtypes, seeds, exact flips/rotations/shifts/crops, noise
statistics, Resize against torch, the Keras affine semantics against scipy.ndimage."""

import numpy as np
import pytest

import pyconv
from pyconv.data import DataLoader, TensorDataset
from pyconv.data.transforms import (
    Compose, GaussianNoise, Normalize, RandomAffine, RandomCrop, RandomHorizontalFlip,
    RandomRotation, RandomShift, RandomZoom, Resize, ToFloat, from_spec,
)

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


def images(shape=(6, 2, 9, 11), dtype=np.float32, seed=0):
    return np.random.default_rng(seed).random(shape).astype(dtype)


def random_transforms(seed=None):
    return [
        RandomHorizontalFlip(seed=seed), RandomRotation(20, seed=seed),
        RandomShift(0.2, seed=seed), RandomShift(2, 3, seed=seed), RandomZoom(0.2, seed=seed),
        RandomAffine(degrees=10, width_shift=0.1, zoom=(0.9, 1.2), fill_mode="reflect",
                     seed=seed),
        RandomCrop(padding=2, seed=seed), GaussianNoise(0.1, seed=seed),
    ]


# ----- the contract: shapes, dtypes, ranks, tensors --------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index", range(8))
def test_shape_dtype_and_single_image(dtype, index):
    x = images(dtype=dtype)
    t = random_transforms(seed=1)[index]
    out = t(x)
    assert out.shape == x.shape and out.dtype == dtype and out is not x
    single = t(x[0])
    assert single.shape == x.shape[1:] and single.dtype == dtype
    tensor_out = t(pyconv.tensor(x))
    assert isinstance(tensor_out, pyconv.Tensor) and tensor_out.shape == x.shape


@pytest.mark.parametrize("index", range(7))  # noise excluded: its range is tested below
def test_geometric_outputs_stay_in_the_input_range(index):
    x = images(seed=2)
    out = random_transforms(seed=3)[index](x)
    # bilinear samples are convex combinations of pixels; flips/crops copy or pad with zeros
    assert out.min() >= min(x.min(), 0.0) - 1e-6 and out.max() <= x.max() + 1e-6


@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "wrap"])
def test_constant_image_stays_constant(fill_mode):
    x = np.full((4, 3, 7, 8), 0.25, np.float32)
    t = RandomAffine(degrees=45, width_shift=0.3, zoom=0.4, fill_mode=fill_mode, seed=0)
    np.testing.assert_allclose(t(x), 0.25, atol=1e-7)


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="floating-point array, got dtype uint8.*ToFloat"):
        RandomRotation(10)(np.zeros((1, 1, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"an image \(C, H, W\) or a batch .* got shape \(4, 4\)"):
        RandomZoom(0.1)(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="fill_mode must be one of nearest, constant, reflect"):
        RandomShift(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="degrees must be >= 0"):
        RandomRotation(-5)
    with pytest.raises(ValueError, match=r"zoom must be in \[0, 1\)"):
        RandomZoom(1.5)
    with pytest.raises(ValueError, match="zoom must stay above 0"):
        RandomZoom((0.0, 2.0))
    with pytest.raises(ValueError, match="width_shift must be a number >= 0"):
        RandomShift(-0.1)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 2"):
        RandomHorizontalFlip(2)
    with pytest.raises(ValueError, match="std must be a finite number >= 0"):
        GaussianNoise(-1)
    with pytest.raises(TypeError, match="seed must be None, an int or a numpy Generator"):
        GaussianNoise(0.1, seed=1.5)
    with pytest.raises(ValueError, match=r"crop size \(12, 12\) is larger than the padded image"):
        RandomCrop(12)(images())
    with pytest.raises(TypeError, match="size must be an int or an"):
        Resize(2.5)


# ----- seeds -----------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(8))
def test_seeds_reproduce_and_differ(index):
    x = images(seed=4)
    first = random_transforms(seed=7)[index]
    np.testing.assert_array_equal(first(x), random_transforms(seed=7)[index](x))
    assert not np.array_equal(first(x), random_transforms(seed=7)[index](x))  # next call, new draws
    assert not np.array_equal(random_transforms(seed=8)[index](x),
                              random_transforms(seed=9)[index](x))


def test_global_generator_reproduces_with_manual_seed():
    x = images(seed=5)
    pipeline = from_spec("flip,rotate=15,shift=0.1,zoom=0.1,crop=2,noise=0.1")
    pyconv.manual_seed(123)
    first = pipeline(x)
    pyconv.manual_seed(123)
    np.testing.assert_array_equal(pipeline(x), first)
    assert not np.array_equal(pipeline(x), first)


def test_one_draw_per_image():
    x = np.repeat(images((1, 1, 9, 9), seed=6), 16, axis=0)
    for t in (RandomRotation(30, seed=0), RandomShift(0.3, seed=0), RandomZoom(0.3, seed=0),
              RandomCrop(padding=3, seed=0), GaussianNoise(0.1, seed=0)):
        out = t(x)
        distinct = {out[i].tobytes() for i in range(len(out))}
        assert len(distinct) > 12, t


# ----- exact geometry ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_flip_is_exact(dtype):
    x = (images(seed=7) * 255).astype(dtype)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x), x)
    drawn = RandomHorizontalFlip(seed=3).draw(len(x))
    assert 0 < drawn.sum() < len(x)
    out = RandomHorizontalFlip(seed=3)(x)
    for i, flipped in enumerate(drawn):
        np.testing.assert_array_equal(out[i], x[i, ..., ::-1] if flipped else x[i])


def test_flip_probability():
    flags = RandomHorizontalFlip(p=0.3, seed=0).draw(20000)
    assert abs(flags.mean() - 0.3) < 0.015


@pytest.mark.parametrize("angle,k", [(90, -1), (-90, 1), (180, 2), (270, 1)])
def test_right_angle_rotation_matches_rot90(angle, k):
    square = images((3, 2, 7, 7), np.float64, seed=8)
    out = RandomRotation((angle, angle))(square)
    np.testing.assert_allclose(out, np.rot90(square, k, axes=(-2, -1)), atol=1e-12)
    if angle != 180:  # 5x7 turned a quarter: the middle 5 columns are the middle 5 rotated rows
        wide = images((3, 2, 5, 7), np.float64, seed=9)
        out = RandomRotation((angle, angle))(wide)
        np.testing.assert_allclose(out[..., 1:6], np.rot90(wide, k, axes=(-2, -1))[..., 1:6, :],
                                   atol=1e-12)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_zero_rotation_shift_zoom_is_the_identity(fill_mode):
    x = images(seed=10)
    for t in (RandomRotation(0, fill_mode=fill_mode), RandomShift(0, fill_mode=fill_mode),
              RandomZoom(0, fill_mode=fill_mode), RandomZoom((1, 1), fill_mode=fill_mode),
              RandomAffine(fill_mode=fill_mode), RandomCrop(padding=0)):
        np.testing.assert_array_equal(t(x), x)


def test_whole_pixel_shift_is_roll_inside_and_nearest_at_the_border():
    x = images((8, 2, 10, 12), np.float64, seed=11)
    shifter = RandomShift(4, seed=5)
    params = RandomShift(4, seed=5).draw(8, 10, 12)
    out = shifter(x)
    for i in range(8):
        dr, dc = int(params["shift_rows"][i]), int(params["shift_cols"][i])
        assert (dr, dc) == (params["shift_rows"][i], params["shift_cols"][i])  # whole pixels
        assert max(abs(dr), abs(dc)) <= 3
        rolled = np.roll(x[i], (-dr, -dc), axis=(-2, -1))  # Keras: output p reads input p + t
        inside = (slice(None), slice(max(0, -dr), 10 - max(0, dr)),
                  slice(max(0, -dc), 12 - max(0, dc)))
        np.testing.assert_allclose(out[i][inside], rolled[inside], atol=1e-12)
        rows = np.clip(np.arange(10) + dr, 0, 9)
        cols = np.clip(np.arange(12) + dc, 0, 11)
        np.testing.assert_allclose(out[i], x[i][:, rows][:, :, cols], atol=1e-12)  # edge fill


def test_shift_fill_modes_at_the_border():
    x = images((1, 1, 4, 6), np.float64, seed=12)
    params = {"angle": np.zeros(1), "shift_rows": np.zeros(1), "shift_cols": np.array([-2.0]),
              "zoom_rows": np.ones(1), "zoom_cols": np.ones(1)}
    row = x[0, 0]
    expected = {  # output col c reads input col c - 2
        "nearest": np.concatenate([row[:, :1], row[:, :1], row[:, :4]], axis=1),
        "constant": np.concatenate([np.full((4, 2), 0.5), row[:, :4]], axis=1),
        "reflect": np.concatenate([row[:, 1::-1], row[:, :4]], axis=1),
        "wrap": np.concatenate([row[:, 4:], row[:, :4]], axis=1),
    }
    for mode, want in expected.items():
        got = RandomAffine(fill_mode=mode, cval=0.5).apply(x, params)[0, 0]
        np.testing.assert_allclose(got, want, atol=1e-12, err_msg=mode)


def test_zoom_and_rotation_keep_the_centre_pixel():
    x = images((10, 3, 9, 13), np.float64, seed=13)
    for t in (RandomZoom(0.5, seed=0), RandomZoom((0.5, 2.0), seed=1), RandomRotation(180, seed=2)):
        np.testing.assert_allclose(t(x)[..., 4, 6], x[..., 4, 6], atol=1e-12)


def test_crop_is_pad_then_slice_at_the_drawn_offsets():
    x = images((7, 3, 8, 10), seed=14)
    for kwargs, pad in [({"padding": 3}, ((3, 3), (3, 3))),
                        ({"size": (6, 9), "padding": (1, 2)}, ((2, 2), (1, 1))),
                        ({"size": 12, "padding": (0, 1, 2, 3), "fill": 0.5}, ((1, 3), (0, 2))),
                        ({"size": 11, "pad_if_needed": True}, ((3, 3), (1, 1))),
                        ({"padding": 2, "padding_mode": "reflect"}, ((2, 2), (2, 2)))]:
        out = RandomCrop(seed=3, **kwargs)(x)
        mode = kwargs.get("padding_mode", "constant")
        extra = {"constant_values": kwargs.get("fill", 0)} if mode == "constant" else {}
        padded = np.pad(x, ((0, 0), (0, 0)) + pad, mode=mode, **extra)
        h, w = out.shape[-2:]
        size = kwargs.get("size", x.shape[-2:])
        assert (h, w) == tuple(np.broadcast_to(size, 2))
        top, left = RandomCrop(seed=3, **kwargs).draw(len(x), padded.shape[-2:], (h, w))
        expected = np.stack([padded[i, :, t:t + h, l:l + w]
                             for i, (t, l) in enumerate(zip(top, left))])
        np.testing.assert_array_equal(out, expected, err_msg=str(kwargs))
    offsets = RandomCrop(padding=2, seed=0).draw(5000, (12, 14), (8, 10))
    for drawn in offsets:
        assert set(np.unique(drawn)) == set(range(5))  # uniform over [0, padded - size]


# ----- Keras semantics: draws, and the affine map against scipy.ndimage ------------------------


def test_keras_parameter_draws():
    n, h, w = 20000, 20, 30
    p = RandomAffine(degrees=15, width_shift=0.1, height_shift=0.2, zoom=0.25, seed=0).draw(n, h, w)
    assert -15 <= p["angle"].min() < -14.9 and 14.9 < p["angle"].max() <= 15
    assert np.abs(p["shift_cols"]).max() <= 0.1 * w and np.abs(p["shift_cols"]).max() > 0.099 * w
    assert np.abs(p["shift_rows"]).max() <= 0.2 * h and np.abs(p["shift_rows"]).max() > 0.199 * h
    for z in (p["zoom_rows"], p["zoom_cols"]):
        assert 0.75 <= z.min() < 0.751 and 1.249 < z.max() <= 1.25
    assert abs(np.corrcoef(p["zoom_rows"], p["zoom_cols"])[0, 1]) < 0.03  # drawn independently
    pixels = RandomShift(2.5, seed=0).draw(n, h, w)["shift_cols"]  # float >= 1: pixels
    assert 2.49 < np.abs(pixels).max() <= 2.5 and not np.all(pixels == np.round(pixels))
    whole = RandomShift(3, seed=0).draw(n, h, w)["shift_cols"]  # int: Keras' sign * choice(3)
    values, counts = np.unique(whole, return_counts=True)
    assert values.tolist() == [-2, -1, 0, 1, 2]
    np.testing.assert_allclose(counts / n, [1 / 6, 1 / 6, 1 / 3, 1 / 6, 1 / 6], atol=0.015)


def keras_matrix(theta, tx, ty, zx, zy, h, w):
    """Keras' apply_affine_transform matrix (rotation @ shift @ zoom about the centre), written
    from its documentation, independently of pyconv's closed form."""
    t = np.deg2rad(theta)
    rotation = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    zoom = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    ox, oy = h / 2 - 0.5, w / 2 - 0.5
    offset = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]])
    reset = np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]])
    return offset @ rotation @ shift @ zoom @ reset


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_affine_matches_keras_via_scipy(fill_mode):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = images((5, 2, 11, 14), np.float64, seed=15)
    kwargs = dict(degrees=40, width_shift=0.2, height_shift=0.15, zoom=0.3, fill_mode=fill_mode,
                  cval=0.7)
    out = RandomAffine(seed=4, **kwargs)(x)
    params = RandomAffine(seed=4, **kwargs).draw(5, 11, 14)
    # scipy's "wrap" is its legacy variant; Keras documents abcd|abcd|abcd, scipy's "grid-wrap"
    scipy_mode = "grid-wrap" if fill_mode == "wrap" else fill_mode
    for i in range(5):
        m = keras_matrix(params["angle"][i], params["shift_rows"][i], params["shift_cols"][i],
                         params["zoom_rows"][i], params["zoom_cols"][i], 11, 14)
        for c in range(2):
            want = ndimage.affine_transform(x[i, c], m[:2, :2], m[:2, 2], order=1,
                                            mode=scipy_mode, cval=0.7)
            np.testing.assert_allclose(out[i, c], want, atol=1e-10, err_msg=f"image {i}")


# ----- noise, ToFloat, Resize, Normalize ---------------------------------------------------------


def test_gaussian_noise_statistics_and_clip():
    x = np.full((64, 1, 32, 32), 0.5, np.float32)
    noise = GaussianNoise(0.2, clip=None, seed=0)(x) - 0.5
    assert abs(noise.mean()) < 0.005 and abs(noise.std() - 0.2) < 0.005
    per_image = noise.reshape(64, -1)
    assert abs(np.corrcoef(per_image[0], per_image[1])[0, 1]) < 0.1
    clipped = GaussianNoise(0.2, seed=0)(np.zeros((8, 1, 16, 16), np.float32))
    assert clipped.min() == 0.0 and clipped.max() <= 1.0
    assert abs((clipped == 0).mean() - 0.5) < 0.05
    custom = GaussianNoise(1.0, clip=(-0.1, 0.1), seed=0)(np.zeros((2, 1, 8, 8)))
    assert custom.min() == -0.1 and custom.max() == 0.1
    np.testing.assert_array_equal(GaussianNoise(0.0, seed=0)(x), x)


def test_to_float():
    raw = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    out = ToFloat()(raw)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (raw.astype(np.float64) / 255).astype(np.float32))
    np.testing.assert_allclose(ToFloat(np.float64)(np.array([[[0, 65535]]], np.uint16)), [[[0, 1]]])
    floats = images()
    assert ToFloat()(floats) is floats
    assert repr(ToFloat()) == "ToFloat()"


@pytest.mark.parametrize("size", [(28, 28), (32, 20), (5, 3), (8, 8), (17, 6)])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resize_matches_torch_interpolate(size, mode, dtype):
    torch = pytest.importorskip("torch")
    x = images((3, 2, 8, 8), dtype, seed=16)
    out = Resize(size, mode=mode)(x)
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    want = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode=mode, **kwargs)
    assert out.shape == (3, 2) + size and out.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, want.numpy(), rtol=tol, atol=tol)


def test_resize_int_keeps_the_aspect_ratio_and_constants():
    assert Resize(28)(images((1, 1, 8, 8))).shape == (1, 1, 28, 28)
    assert Resize(16)(images((1, 1, 8, 12))).shape == (1, 1, 16, 24)
    assert Resize(10)(images((2, 9, 6))).shape == (2, 15, 10)
    np.testing.assert_allclose(Resize((13, 5))(np.full((1, 1, 8, 8), 0.3)), 0.3, atol=1e-15)


def test_normalize_kept():
    x = images((2, 3, 4, 4), np.float64)
    out = Normalize([0.1, 0.2, 0.3], [1.0, 2.0, 4.0])(x)
    np.testing.assert_allclose(out[:, 1], (x[:, 1] - 0.2) / 2.0)


# ----- from_spec and reprs -----------------------------------------------------------------------


def test_from_spec_builds_the_pipeline():
    pipeline = from_spec("noise=0.1, flip, rotate=15,shift=0.1,zoom=0.1,crop=4")
    assert isinstance(pipeline, Compose)
    kinds = [type(t) for t in pipeline.transforms]
    assert kinds == [RandomAffine, RandomHorizontalFlip, RandomCrop, GaussianNoise]
    affine = pipeline.transforms[0]
    assert affine.degrees == (-15, 15) and affine.width_shift == affine.height_shift == 0.1
    assert affine.zoom == (0.9, 1.1)
    assert pipeline.transforms[2].padding == (4, 4, 4, 4) and pipeline.transforms[2].size is None
    assert repr(pipeline) == (
        "Compose(\n    RandomAffine(degrees=15, width_shift=0.1, height_shift=0.1, zoom=0.1)\n"
        "    RandomHorizontalFlip(p=0.5)\n    RandomCrop(padding=4)\n    GaussianNoise(std=0.1)\n)")
    assert [type(t) for t in from_spec("rotate=5").transforms] == [RandomRotation]
    assert [type(t) for t in from_spec("shift=2").transforms] == [RandomShift]
    assert from_spec("shift=2").transforms[0].width_shift == 2  # an int: whole pixels
    assert repr(from_spec("zoom=0.2").transforms[0]) == "RandomZoom(0.2)"
    assert from_spec("flip=0.25").transforms[0].p == 0.25
    x = images()
    np.testing.assert_array_equal(from_spec("")(x), x)
    seeded = from_spec("flip,rotate=15,crop=2,noise=0.05", seed=3)(x)
    np.testing.assert_array_equal(from_spec("flip,rotate=15,crop=2,noise=0.05", seed=3)(x), seeded)
    assert seeded.shape == x.shape and 0 <= seeded.min() and seeded.max() <= 1


@pytest.mark.parametrize("text,message", [
    ("blur=3", r"augment item 'blur=3': unknown key 'blur'; accepted: flip, flip=P, rotate="),
    ("rotate", r"augment item 'rotate': rotate needs a value"),
    ("rotate=abc", r"augment item 'rotate=abc': expected a number of degrees >= 0, got 'abc'"),
    ("rotate=-5", r"expected a number of degrees >= 0, got '-5'"),
    ("zoom=1.5", r"augment item 'zoom=1.5': expected a fraction in \[0, 1\)"),
    ("crop=2.5", r"augment item 'crop=2.5': expected a whole number of pixels >= 0"),
    ("flip=2", r"augment item 'flip=2': expected a probability in \[0, 1\]"),
    ("noise=nan", r"expected a standard deviation >= 0"),
    ("flip,flip", r"'flip' is given twice"),
])
def test_from_spec_errors(text, message):
    with pytest.raises(ValueError, match=message):
        from_spec(text)


def test_reprs_rebuild_the_transform():
    for t in random_transforms(seed=None) + [
            RandomRotation((-5, 20), fill_mode="constant", cval=0.5), RandomShift(0.1, 0),
            RandomZoom((0.8, 1.3)), RandomCrop(6, padding=(1, 2), fill=1, padding_mode="edge"),
            GaussianNoise(0.3, clip=None), Resize((28, 32), mode="nearest")]:
        assert repr(eval(repr(t))) == repr(t)
    assert repr(RandomShift(0.1, 0.2, seed=4)) == "RandomShift(width=0.1, height=0.2, seed=4)"


def test_transform_in_a_dataset_through_the_loader():
    x = images((10, 1, 8, 8), seed=17)
    labels = np.arange(10)
    ds = TensorDataset(x, labels, transform=Compose([Resize(16), from_spec("flip", seed=0)]))
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 1, 16, 16)
    expected = Resize(16)(x[:4])
    for i in range(4):
        got = xb.numpy()[i]
        assert np.allclose(got, expected[i]) or np.allclose(got, expected[i][..., ::-1])
