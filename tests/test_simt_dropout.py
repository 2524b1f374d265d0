"""kernels/dropout.cu on the SIMT emulator, and the counter-based keep-mask that the reference
and the kernel share: same (seed, index), same bit, in every backend."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv import backends
from pyconv.backends.numpy_ref.dropout import keep_mask, keep_threshold
from simt_support import require_simt, schedule  # noqa: F401 - schedule is a fixture

pytestmark = require_simt()

DTYPES = [np.float64, np.float32]
SEEDS = [0, 1, 12345, 2**63 - 2]
# none a multiple of the 256-thread block; (5, 7, 11) and (3, 333) take several blocks
SHAPES = [(1,), (257,), (3, 333), (5, 7, 11)]
_M64 = 2**64 - 1


def _splitmix64(seed, index):
    """Output number ``index`` of Vigna's splitmix64 seeded with ``seed``, in Python integers."""
    z = (seed + (index + 1) * 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def numpy_backend():
    return backends.get("numpy")


def simt_backend():
    return backends.get("simt")


# --- the function itself (reference only) ----------------------------------------------------


def test_splitmix64_known_answers():
    # the published first outputs of splitmix64 seeded with 1234567
    assert [_splitmix64(1234567, i) for i in range(3)] == [
        6457827717110365317, 3203168211198807973, 9817491932198370423]


@pytest.mark.parametrize("seed", [0, 1234567, 2**63 - 1, 2**64 - 1])
def test_reference_mask_is_the_documented_function(seed):
    n, p = 3000, 0.37
    want = [(_splitmix64(seed, i) >> 40) >= keep_threshold(p) for i in range(n)]
    np.testing.assert_array_equal(keep_mask((n,), p, seed), want)


def test_seed_is_taken_modulo_two_to_the_64():
    np.testing.assert_array_equal(keep_mask((500,), 0.5, -1), keep_mask((500,), 0.5, 2**64 - 1))
    np.testing.assert_array_equal(keep_mask((500,), 0.5, 2**64 + 7), keep_mask((500,), 0.5, 7))


def test_keep_threshold_is_exactly_u_at_least_p():
    for k in (1, 5033165, 2**23, 2**24 - 1):
        assert keep_threshold(k / 2**24) == k  # u == p keeps
        assert keep_threshold(np.nextafter(k / 2**24, 1.0)) == k + 1
        assert keep_threshold(np.nextafter(k / 2**24, 0.0)) == k
    assert keep_threshold(0.0) == 0


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_kept_fraction_is_binomial(p):
    n = 100_000
    kept = keep_mask((n,), p, 2024).mean()
    assert abs(kept - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)


def test_different_seeds_give_different_masks():
    masks = [keep_mask((4096,), 0.5, s) for s in (0, 1, 2, 2**40)]
    for i in range(len(masks)):
        for j in range(i):
            assert 0.4 < (masks[i] != masks[j]).mean() < 0.6  # uncorrelated: half the bits differ


def test_reference_mask_and_values():
    x = np.arange(1.0, 13.0).reshape(3, 4)
    y, mask = numpy_backend().dropout_forward(x, 0.25, 9)
    assert mask.dtype == bool and mask.shape == x.shape
    np.testing.assert_array_equal(mask, keep_mask(x.shape, 0.25, 9))
    np.testing.assert_array_equal(y, np.where(mask, x * (1 / 0.75), 0.0))


# --- the kernels against the reference --------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_and_backward_match_reference_exactly(schedule, dtype, shape):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(dtype)
    grad_y = rng.standard_normal(shape).astype(dtype)
    for seed in SEEDS:
        for p in (0.1, 0.5, 0.9):
            y, mask = simt_backend().dropout_forward(x, p, seed)
            want_y, want_mask = numpy_backend().dropout_forward(x, p, seed)
            assert mask.dtype == bool and y.dtype == dtype and mask.shape == y.shape == shape
            np.testing.assert_array_equal(mask, want_mask)
            np.testing.assert_array_equal(y, want_y)
            np.testing.assert_array_equal(simt_backend().dropout_backward(grad_y, mask, p),
                                          numpy_backend().dropout_backward(grad_y, mask, p))


def test_kernel_keeps_exactly_at_the_threshold(schedule):
    """p equal to an element's u keeps it; the next double above p drops it."""
    seed = 1234567
    k0 = 6457827717110365317 >> 40  # element 0's top 24 bits
    x = np.ones(3)
    assert simt_backend().dropout_forward(x, k0 / 2**24, seed)[1][0]
    assert not simt_backend().dropout_forward(x, np.nextafter(k0 / 2**24, 1.0), seed)[1][0]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's inf * 0
def test_special_values_match_reference(schedule):
    x = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 1e308, -2.5] * 5)
    y, mask = simt_backend().dropout_forward(x, 0.5, 77)
    want_y, want_mask = numpy_backend().dropout_forward(x, 0.5, 77)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(y, want_y)  # a dropped inf is NaN in both, as in PyTorch


@pytest.mark.parametrize("shape", [(0,), (), (2, 0)], ids=str)
def test_empty_and_zero_dim(schedule, shape):
    x = np.full(shape, 3.0)
    y, mask = simt_backend().dropout_forward(x, 0.5, 5)
    want_y, want_mask = numpy_backend().dropout_forward(x, 0.5, 5)
    assert y.shape == mask.shape == shape
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(simt_backend().dropout_backward(x, mask, 0.5),
                                  numpy_backend().dropout_backward(x, mask, 0.5))


def test_non_contiguous_input(schedule):
    x = np.arange(48.0).reshape(6, 8)[:, ::3]
    y, mask = simt_backend().dropout_forward(x, 0.3, 8)
    np.testing.assert_array_equal(mask, keep_mask(x.shape, 0.3, 8))
    np.testing.assert_array_equal(y, numpy_backend().dropout_forward(x, 0.3, 8)[0])


def test_argument_errors():
    simt = simt_backend()
    with pytest.raises(TypeError, match="float32 or float64"):
        simt.dropout_forward(np.zeros(4, dtype=np.int32), 0.5, 1)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        simt.dropout_forward(np.zeros(4), 1.0, 1)
    with pytest.raises(TypeError, match="mask must be a bool array"):
        simt.dropout_backward(np.zeros(4), np.ones(4, dtype=np.uint8), 0.5)
    with pytest.raises(ValueError, match="mask shape"):
        simt.dropout_backward(np.zeros(4), np.ones(5, dtype=bool), 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_autograd_on_simt_matches_numpy(schedule, dtype):
    x = np.random.default_rng(6).standard_normal((7, 9)).astype(dtype)
    grad = np.random.default_rng(7).standard_normal(x.shape).astype(dtype)
    results = {}
    for backend in ("numpy", "simt"):
        with backends.use(backend):
            pyconv.manual_seed(3)
            t = pyconv.tensor(x, requires_grad=True)
            y = F.dropout(t, p=0.3)
            y.backward(pyconv.tensor(grad))
            results[backend] = (y.detach().numpy(), t.grad.numpy())
    for got, want in zip(results["simt"], results["numpy"]):
        np.testing.assert_array_equal(got, want)
    suffix = "f64" if dtype == np.float64 else "f32"
    launched = simt_backend().device.launches
    assert launched[f"dropout_forward_{suffix}"] and launched[f"dropout_backward_{suffix}"]


def test_grid_stride_loop_covers_more_elements_than_threads(schedule, monkeypatch):
    # one multiprocessor caps the grid at 8 blocks of 256 threads: each thread handles several
    # elements, and the mask must still be the reference's
    monkeypatch.setattr(simt_backend().device, "multiprocessors", 1)
    x = np.linspace(-3.0, 3.0, 5000, dtype=np.float32)
    y, mask = simt_backend().dropout_forward(x, 0.4, 31)
    want_y, want_mask = numpy_backend().dropout_forward(x, 0.4, 31)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(simt_backend().dropout_backward(x, mask, 0.4),
                                  numpy_backend().dropout_backward(x, mask, 0.4))
