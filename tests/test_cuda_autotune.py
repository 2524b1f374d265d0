"""The autotuning hook of the CUDA launch glue (pyconv/backends/cuda_glue/autotune.py).

On the emulator, with a stand-in timer that reports a chosen cost per kernel entry: every
candidate variant is launched, the cheapest is kept, later calls launch only it, the choice
survives in the cache file, results equal the NumPy reference whatever is chosen, and a GEMM
that accumulates into ``out`` is tuned on a copy. The GPU test runs the real timer (skipped
without a GPU).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from simt_support import require_simt

from pyconv.backends import numpy_ref
from pyconv.backends.cuda_glue import autotune, conv, linear

pytestmark = require_simt()


@pytest.fixture
def device():
    from pyconv.backends.simt import SimtDevice

    return SimtDevice()


def cost_timer(dev, costs):
    """A timer reporting, for one call, the summed cost of the entries it launched (entries
    whose name contains a key of ``costs``; 1.0 otherwise)."""

    def timer(fn):
        before = dev.launches.copy()
        fn()
        ran = dev.launches - before
        return sum(next((c for k, c in costs.items() if k in entry), 1.0) * n
                   for entry, n in ran.items())

    return timer


def conv_inputs(rng):
    x = rng.standard_normal((2, 4, 9, 7)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    return x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1


@pytest.mark.parametrize("fastest", ["conv2d_forward_t64", "conv2d_forward_wvec_t32",
                                     "conv2d_forward_t32", "conv2d_forward_wvec_t64"])
def test_the_fastest_forward_variant_is_chosen_and_then_reused(device, fastest):
    x, w, b, stride, padding, dilation, groups = conv_inputs(np.random.default_rng(0))
    device.set_autotune(True, timer=cost_timer(device, {fastest + "_": 0.1}), cache=False)
    want = numpy_ref.conv2d_forward(x, w, b, stride, padding, dilation, groups)

    y = conv.conv2d_forward(device, x, w, b, stride, padding, dilation, groups)
    variants = {e for e in device.launches if e.startswith("conv2d_forward")}
    assert variants == {f"conv2d_forward{v}_t{t}_f32" for v in ("", "_wvec") for t in (32, 64)}
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)

    device.launches.clear()
    y = conv.conv2d_forward(device, x, w, b, stride, padding, dilation, groups)
    assert dict(device.launches) == {fastest + "_f32": 1}
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op, tile", [("backward_input", 64), ("backward_weight", 32),
                                      ("backward_input", 32), ("backward_weight", 64)])
def test_backward_variants_are_tuned_and_give_the_reference(device, op, tile):
    x, w, _, stride, padding, dilation, groups = conv_inputs(np.random.default_rng(1))
    gy = np.random.default_rng(2).standard_normal((2, 6, 9, 7)).astype(np.float32)
    device.set_autotune(True, timer=cost_timer(device, {f"conv2d_{op}_t{tile}_": 0.1}),
                        cache=False)
    if op == "backward_input":
        run = lambda: conv.conv2d_backward_input(device, gy, w, x.shape, stride, padding, dilation, groups)
        want = numpy_ref.conv2d_backward_input(gy, w, x.shape, stride, padding, dilation, groups)
    else:
        run = lambda: conv.conv2d_backward_weight(device, gy, x, w.shape, stride, padding, dilation, groups)
        want = numpy_ref.conv2d_backward_weight(gy, x, w.shape, stride, padding, dilation, groups)
    np.testing.assert_allclose(run(), want, rtol=1e-4, atol=1e-4)
    device.launches.clear()
    np.testing.assert_allclose(run(), want, rtol=1e-4, atol=1e-4)
    assert device.launches[f"conv2d_{op}_t{tile}_f32"] == 1
    assert device.launches[f"conv2d_{op}_t{96 - tile}_f32"] == 0


def test_choices_persist_in_the_cache_file_and_are_not_timed_again(device, tmp_path, monkeypatch):
    monkeypatch.setenv(autotune.ENV_DIR, str(tmp_path))
    x, w, b, *geometry = conv_inputs(np.random.default_rng(3))
    device.set_autotune(True, timer=cost_timer(device, {"conv2d_forward_t64_": 0.1}))
    conv.conv2d_forward(device, x, w, b, *geometry)
    [path] = tmp_path.iterdir()
    assert path.name == "simt.json"
    saved = json.loads(path.read_text())
    assert list(saved.values()) == [[64, False]]

    def never(fn):
        raise AssertionError("a cached choice was timed again")

    fresh = type(device)()
    fresh.set_autotune(True, timer=never)
    conv.conv2d_forward(fresh, x, w, b, *geometry)
    assert dict(fresh.launches) == {"conv2d_forward_t64_f32": 1}


def test_an_unreadable_cache_file_is_ignored_with_a_warning(device, tmp_path, monkeypatch):
    monkeypatch.setenv(autotune.ENV_DIR, str(tmp_path))
    (tmp_path / "simt.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match="ignoring the unreadable cache"):
        device.set_autotune(True, timer=cost_timer(device, {}))
    x, w, b, *geometry = conv_inputs(np.random.default_rng(4))
    np.testing.assert_allclose(conv.conv2d_forward(device, x, w, b, *geometry),
                               numpy_ref.conv2d_forward(x, w, b, *geometry), rtol=1e-5, atol=1e-5)
    assert json.loads((tmp_path / "simt.json").read_text())  # rewritten with the new choice


def test_a_gemm_accumulating_into_out_is_tuned_on_a_copy(device):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((40, 12)).astype(np.float32), rng.standard_normal((12, 20)).astype(np.float32)
    out = rng.standard_normal((40, 20)).astype(np.float32)
    want = a.astype(np.float64) @ b + 0.5 * out
    device.set_autotune(True, timer=cost_timer(device, {"m32_": 0.1}), cache=False)
    got = linear.gemm(device, a, b, out=out, beta=0.5)
    assert got is out
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert {e for e in device.launches if e.startswith("gemm")} == {"gemm_vec4_f32",
                                                                    "gemm_vec4_m32_f32"}


def test_without_autotuning_the_heuristics_choose(device):
    x, w, b, *geometry = conv_inputs(np.random.default_rng(6))
    conv.conv2d_forward(device, x, w, b, *geometry)
    assert dict(device.launches) == {"conv2d_forward_wvec_t32_f32": 1}


def test_repeats_must_be_positive():
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        autotune.Autotuner(timer=None, repeats=0)


def test_the_environment_switch(monkeypatch):
    for text, on in (("1", True), ("true", True), ("0", False), ("", False), ("off", False)):
        monkeypatch.setenv(autotune.ENV_SWITCH, text)
        assert autotune.enabled_from_environment() is on


def _gpu_reason():
    from pyconv.backends import cuda as cuda_backend

    return cuda_backend.unavailable_reason()


@pytest.mark.skipif(_gpu_reason() is not None, reason=f"needs a CUDA GPU: {_gpu_reason()}")
def test_autotuning_on_the_gpu_times_with_events_and_matches_the_reference(tmp_path, monkeypatch):
    import cupy

    import pyconv
    from pyconv.backends import cuda as cuda_backend

    monkeypatch.setenv(autotune.ENV_DIR, str(tmp_path))
    pyconv.cuda.set_autotune(True)
    try:
        x, w, b, *geometry = conv_inputs(np.random.default_rng(7))
        y = conv.conv2d_forward(cuda_backend.device, cupy.asarray(x), cupy.asarray(w),
                                cupy.asarray(b), *geometry)
        np.testing.assert_allclose(cupy.asnumpy(y), numpy_ref.conv2d_forward(x, w, b, *geometry),
                                   rtol=1e-4, atol=1e-4)
        [timings] = cuda_backend.device.autotuner.timings.values()
        assert len(timings) == 4 and all(t > 0 for t in timings.values())
        assert list(tmp_path.glob("*sm_*.json"))
    finally:
        pyconv.cuda.set_autotune(False)
