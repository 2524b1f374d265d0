"""The SIMT emulator on its own test kernels (tests/simt_kernels/*.cu), checked against NumPy.

Positive tests run in order and under a seeded random schedule (the ``schedule`` fixture); the
negative tests run deliberately broken kernels that must fail loudly and quickly, or give a wrong
result under the random schedule.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import pyconv.simt as simt
from simt_support import require_simt, schedule  # noqa: F401 - schedule is a fixture

pytestmark = require_simt()

KERNELS = Path(__file__).parent / "simt_kernels"
FULL = 0xFFFFFFFF


def module(name: str, **kwargs) -> simt.RawModule:
    return simt.RawModule(path=str(KERNELS / name), **kwargs)


@pytest.fixture(scope="module")
def basics():
    return module("basics.cu", name_expressions=["fill<float>", "fill<double>"])


@pytest.fixture(scope="module")
def warp_ops():
    return module("warp_ops.cu")


@pytest.fixture(scope="module")
def broken():
    return module("broken.cu")


def broken_line(marker: str) -> int:
    """Line number in broken.cu of the first line containing ``marker``."""
    for number, line in enumerate((KERNELS / "broken.cu").read_text().splitlines(), start=1):
        if marker in line:
            return number
    raise AssertionError(f"{marker!r} not in broken.cu")


# --- geometry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("grid, block", [
    ((3,), (40,)), ((2, 3), (8, 4)), ((2, 1, 3), (4, 2, 3)), (5, 7),
])
def test_builtin_indices(basics, schedule, grid, block):
    g = (grid if isinstance(grid, tuple) else (grid,)) + (1,) * 3
    b = (block if isinstance(block, tuple) else (block,)) + (1,) * 3
    g, b = g[:3], b[:3]
    threads, blocks = int(np.prod(b)), int(np.prod(g))
    out = np.zeros((blocks, threads, 12), np.uint32)
    basics.get_function("write_indices")(grid, block, (out,))
    bz, by, bx = np.meshgrid(range(g[2]), range(g[1]), range(g[0]), indexing="ij")
    tz, ty, tx = np.meshgrid(range(b[2]), range(b[1]), range(b[0]), indexing="ij")
    block_ids = np.stack([bx.ravel(), by.ravel(), bz.ravel()], axis=1)
    thread_ids = np.stack([tx.ravel(), ty.ravel(), tz.ravel()], axis=1)
    np.testing.assert_array_equal(out[:, :, 0:3], np.broadcast_to(thread_ids, (blocks, threads, 3)))
    np.testing.assert_array_equal(out[:, :, 3:6], np.broadcast_to(block_ids[:, None, :], (blocks, threads, 3)))
    np.testing.assert_array_equal(out[:, :, 6:9], np.broadcast_to(b, (blocks, threads, 3)))
    np.testing.assert_array_equal(out[:, :, 9:12], np.broadcast_to(g, (blocks, threads, 3)))


# --- barriers and shared memory ----------------------------------------------------------------


@pytest.mark.parametrize("kind, seed", [("inorder", 0), ("reverse", 0), ("random", 1), ("random", 2), ("random", 3)])
def test_shared_memory_tree_reduction_needs_and_gets_its_barriers(basics, kind, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(1000)
    sums = np.zeros(4)
    with simt.schedule(kind, seed=seed):
        basics.get_function("block_sum_f64")((4,), (256,), (sums, x, np.int32(x.size)))
    expected = np.add.reduceat(np.concatenate([x, np.zeros(24)]), [0, 256, 512, 768])
    np.testing.assert_allclose(sums, expected, rtol=1e-12)


def test_barrier_count_and_or(basics, schedule):
    x = np.array([1, -1] * 32 + [1] * 64 + [-1] * 64, np.float32)  # blocks: mixed, all positive, none
    out = np.zeros(9, np.int32)
    basics.get_function("barrier_votes")((3,), (64,), (out, x))
    np.testing.assert_array_equal(out, [32, 0, 1, 64, 1, 1, 0, 0, 0])


def test_static_shared_2d_tile_transpose(basics, schedule):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((45, 70)).astype(np.float32)
    out = np.zeros((70, 45), np.float32)
    basics.get_function("transpose_f32")((3, 2), (32, 8), (out, a, np.int32(45), np.int32(70)))
    np.testing.assert_array_equal(out, a.T)


def test_dynamic_shared_memory(basics, schedule):
    x = np.arange(3 * 48, dtype=np.float32)
    y = np.zeros_like(x)
    basics.get_function("reverse_blocks_f32")((3,), (48,), (y, x), shared_mem=48 * 4)
    np.testing.assert_array_equal(y, x.reshape(3, 48)[:, ::-1].ravel())


def test_dynamic_shared_memory_is_poisoned_with_nan_at_every_block(basics, schedule):
    y = np.zeros(4 * 16)
    basics.get_function("read_unwritten_smem_f64")((4,), (16,), (y,), shared_mem=16 * 8)
    assert np.isnan(y).all()


# --- warp operations ---------------------------------------------------------------------------


def shuffle_model(x: np.ndarray, op: int, arg: int, width: int) -> np.ndarray:
    """CUDA's shuffle semantics: segments of ``width`` lanes; out-of-segment sources keep their value."""
    out = np.empty_like(x)
    for t in range(x.size):
        warp, lane = divmod(t, 32)
        start = lane & ~(width - 1)
        end = start + width - 1
        b = arg & 31
        if op == 0:
            src = start | (arg & (width - 1))
        elif op == 1:
            src = lane - b if lane - b >= start else lane
        elif op == 2:
            src = lane + b if lane + b <= end else lane
        else:
            src = lane ^ b if (lane ^ b) <= end else lane
        out[t] = x[warp * 32 + src]
    return out


SHUFFLE_CASES = [
    (op, arg, width)
    for width in (32, 16, 8)
    for op, args in ((0, (0, 5, 37)), (1, (1, 3)), (2, (1, 6)), (3, (1, 4, 16)))
    for arg in args
]


@pytest.mark.parametrize("op, arg, width", SHUFFLE_CASES)
def test_shuffles_match_cuda_semantics(warp_ops, schedule, op, arg, width):
    rng = np.random.default_rng(op * 100 + arg + width)
    x = rng.integers(-1000, 1000, 64).astype(np.int32)
    y = np.zeros_like(x)
    warp_ops.get_function("shuffle_i32")((1,), (64,), (y, x, np.int32(op), np.int32(arg), np.int32(width)))
    np.testing.assert_array_equal(y, shuffle_model(x, op, arg, width))


@pytest.mark.parametrize("entry, dtype", [("shuffle_f64", np.float64), ("shuffle_u64", np.uint64)])
def test_shuffles_carry_64_bit_values(warp_ops, schedule, entry, dtype):
    x = (np.arange(32) * 1.5 + 2.0**40).astype(dtype)
    y = np.zeros_like(x)
    for op, arg in ((0, 7), (2, 3), (3, 5)):
        warp_ops.get_function(entry)((1,), (32,), (y, x, np.int32(op), np.int32(arg), np.int32(32)))
        np.testing.assert_array_equal(y, shuffle_model(x, op, arg, 32))


def test_partial_last_warp_with_a_mask_of_its_existing_lanes(warp_ops, schedule):
    rng = np.random.default_rng(1)
    x = rng.integers(-5, 6, 40).astype(np.int32)
    sums = np.zeros(2, np.int32)
    ballots = np.zeros(2, np.uint32)
    warp_ops.get_function("partial_warp_sum")((1,), (40,), (sums, ballots, x))
    np.testing.assert_array_equal(sums, [x[:32].sum(), x[32:].sum()])
    bits = (x > 0).astype(np.uint64) << np.arange(40).astype(np.uint64) % 32
    np.testing.assert_array_equal(ballots, [int(bits[:32].sum()), int(bits[32:].sum())])


def test_ballot_all_any(warp_ops, schedule):
    x = np.concatenate([np.where(np.arange(32) % 3 == 0, 1, -1), np.ones(32), -np.ones(32)]).astype(np.int32)
    out = np.zeros((96, 6), np.uint32)
    warp_ops.get_function("votes")((1,), (96,), (out, x))
    for w in range(3):
        pred = x[32 * w:32 * w + 32] > 0
        ballot = sum(1 << i for i in range(32) if pred[i])
        even = sum(1 << i for i in range(0, 32, 2) if pred[i])
        rows = out[32 * w:32 * w + 32]
        np.testing.assert_array_equal(rows[:, 0], ballot)
        np.testing.assert_array_equal(rows[:, 1], int(pred.all()))
        np.testing.assert_array_equal(rows[:, 2], int(pred.any()))
        np.testing.assert_array_equal(rows[0::2, 3], even)
        np.testing.assert_array_equal(rows[0::2, 4], int(pred[0::2].all()))
        np.testing.assert_array_equal(rows[0::2, 5], int(pred[0::2].any()))


def test_warp_reductions_and_match(warp_ops, schedule):
    x = np.random.default_rng(2).integers(-3, 4, 64).astype(np.int32)
    out = np.zeros((64, 4), np.int32)
    warp_ops.get_function("warp_reductions")((1,), (64,), (out, x))
    for w in range(2):
        v = x[32 * w:32 * w + 32]
        rows = out[32 * w:32 * w + 32]
        np.testing.assert_array_equal(rows[:, 0], v.sum())
        np.testing.assert_array_equal(rows[:, 1], v.min())
        np.testing.assert_array_equal(rows[:, 2], v.max())
        same = [sum(1 << j for j in range(32) if v[j] == v[i]) for i in range(32)]
        np.testing.assert_array_equal(rows[:, 3].view(np.uint32), same)


# --- atomics, vectors, sizes -------------------------------------------------------------------


@pytest.fixture
def two_workers():
    before = simt.get_workers()
    simt.set_workers(2)
    yield
    simt.set_workers(before)


def test_atomics_from_concurrent_workers(two_workers, schedule):
    mod = module("atomics.cu")
    x = np.random.default_rng(3).random(5000).astype(np.float32)
    counter, maximum = np.zeros(1, np.int32), np.zeros(1, np.int32)
    total, total64, big = np.zeros(1, np.float32), np.zeros(1), np.zeros(1, np.uint64)
    mod.get_function("count_and_sum")((16,), (64,), (counter, total, total64, maximum, big, x, np.int64(x.size)))
    assert counter[0] == x.size
    assert total[0] == pytest.approx(x.sum(dtype=np.float64), rel=1e-4)
    assert total64[0] == pytest.approx(x.sum(dtype=np.float64), rel=1e-12)
    assert maximum[0] == int((x * np.float32(1000)).astype(np.int32).max())
    assert int(big[0]) == x.size << 33
    cas = np.zeros(1, np.uint32)
    mod.get_function("cas_increment")((32,), (32,), (cas, np.int32(5)))
    assert cas[0] == 32 * 32 * 5


def test_float4_loads_and_stores(basics, schedule):
    x = np.arange(4 * 100, dtype=np.float32)
    y = np.zeros_like(x)
    basics.get_function("double_float4")((2,), (32,), (y, x, np.int64(100)))
    np.testing.assert_array_equal(y, 2 * x)


def test_float2_pointer_parameters_take_float32_arrays(basics, schedule):
    x = np.arange(2 * 50, dtype=np.float32)
    y = np.zeros_like(x)
    basics.get_function("swap_float2")((2,), (32,), (y, x, np.int32(50)))
    np.testing.assert_array_equal(y.reshape(50, 2), x.reshape(50, 2)[:, ::-1])
    with pytest.raises(ValueError, match="8-byte aligned"):
        basics.get_function("swap_float2")((2,), (32,), (y, x[1:-1], np.int32(49)))


def test_scalars_of_every_width_including_64_bit_sizes(basics):
    out, real = np.zeros(4, np.int64), np.zeros(2)
    n, u = 2**40 + 3, 2**63 + 5
    basics.get_function("echo_scalars")(1, 1, (out, real, np.int64(n), np.uint64(u), np.int32(-7),
                                              np.uint32(2**32 - 1), np.float32(0.25), np.float64(1e300)))
    assert out.tolist() == [n, u - 2**64, -7, 2**32 - 1]
    assert real.tolist() == [0.25, 1e300]


def test_name_expressions_register_template_kernels(basics, schedule):
    for dtype, suffix in ((np.float32, "float"), (np.float64, "double")):
        y = np.zeros(70, dtype)
        basics.get_function(f"fill<{suffix}>")((3,), (32,), (y, dtype(2.5), np.int32(70)))
        assert (y == 2.5).all()


# --- launch limits and argument checks ---------------------------------------------------------


def test_launch_limits(basics):
    y = np.zeros(2048, np.int32)
    ten = basics.get_function("ten_barriers")
    ten((1,), (1024,), (y,))
    with pytest.raises(simt.SimtError, match="block.x = 1025 exceeds the device limit 1024"):
        ten((1,), (1025,), (y,))
    with pytest.raises(simt.SimtError, match="1056 threads exceeds the device limit of 1024"):
        ten((1,), (33, 32), (y,))
    with pytest.raises(simt.SimtError, match="block.z = 65 exceeds"):
        ten((1,), (1, 1, 65), (y,))
    with pytest.raises(simt.SimtError, match="grid.y = 65536 exceeds"):
        ten((1, 65536), (1,), (y,))
    with pytest.raises(ValueError, match="positive"):
        ten((0,), (32,), (y,))
    with pytest.raises(TypeError, match="tuple of 1 to 3 ints"):
        ten((1, 1, 1, 1), (32,), (y,))


def test_dynamic_shared_memory_limit_and_opt_in(basics):
    x = np.zeros(32, np.float32)
    y = np.zeros_like(x)
    fn = module("basics.cu").get_function("reverse_blocks_f32")  # a fresh Function: default limit
    fn((1,), (32,), (y, x), shared_mem=49152)
    with pytest.raises(simt.SimtError, match="49153 bytes of dynamic shared memory exceed the limit of 49152"):
        fn((1,), (32,), (y, x), shared_mem=49153)
    fn.max_dynamic_shared_size_bytes = 100_000
    fn((1,), (32,), (y, x), shared_mem=100_000)
    with pytest.raises(simt.SimtError, match="outside"):
        fn.max_dynamic_shared_size_bytes = 227 * 1024 + 1


def test_launch_bounds_are_enforced(basics):
    sums, x = np.zeros(1), np.zeros(512)
    with pytest.raises(simt.SimtError, match=r"__launch_bounds__\(256\)"):
        basics.get_function("block_sum_f64")((1,), (512,), (sums, x, np.int32(512)))


def test_argument_checks_name_the_argument(basics):
    add = basics.get_function("add_one_f32")
    x = np.zeros(8, np.float32)
    y = np.zeros_like(x)
    with pytest.raises(TypeError, match=r"argument 1 \(const float\* x\): expected an array of dtype float32, got float64"):
        add((1,), (8,), (y, x.astype(np.float64), np.int64(8)))
    with pytest.raises(ValueError, match=r"argument 0 \(float\* y\): the array must be C-contiguous"):
        add((1,), (8,), (np.zeros(16, np.float32)[::2], x, np.int64(8)))
    with pytest.raises(TypeError, match=r"argument 2 \(long long n\): expected a numpy.int64 scalar .* got Python int"):
        add((1,), (8,), (y, x, 8))
    with pytest.raises(TypeError, match=r"argument 2 \(long long n\): expected a numpy.int64 scalar .* got numpy.int32"):
        add((1,), (8,), (y, x, np.int32(8)))
    with pytest.raises(TypeError, match="expected 3 arguments, got 2"):
        add((1,), (8,), (y, x))
    with pytest.raises(TypeError, match=r"argument 0 \(float\* y\): expected a C-contiguous numpy.ndarray, got list"):
        add((1,), (8,), ([0.0] * 8, x, np.int64(8)))
    frozen = np.zeros(8, np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        add((1,), (8,), (frozen, x, np.int64(8)))
    add((1,), (8,), (y, frozen, np.int64(8)))  # a const pointee accepts a read-only array
    assert (y == 1).all()


def test_unknown_entry_lists_the_available_ones(basics):
    with pytest.raises(KeyError, match="add_one_f32"):
        basics.get_function("no_such_kernel")


def test_compile_errors_carry_the_compiler_messages():
    with pytest.raises(simt.SimtCompileError, match="undeclared_name") as info:
        simt.RawModule(code='#include "compat.cuh"\nextern "C" __global__ void k(float* y) { y[0] = undeclared_name; }\n')
    assert "undeclared_name" in info.value.stderr


def test_a_failed_launch_leaves_the_emulator_usable(basics):
    x = np.array([1.0, -1.0, 2.0, 3.0], np.float32)
    with pytest.raises(simt.SimtError, match=r"basics.cu:\d+ in assert: .*device assertion `x\[threadIdx.x\] >= 0.0f` failed"):
        basics.get_function("check_non_negative")((2,), (4,), (x,))
    with pytest.raises(simt.SimtError, match=r"__trap\(\) called"):
        basics.get_function("trap_if_negative")((1,), (4,), (np.int32(-1),))
    basics.get_function("trap_if_negative")((1,), (4,), (np.int32(1),))
    y = np.zeros(4, np.float32)
    basics.get_function("add_one_f32")((1,), (4,), (y, x, np.int64(4)))
    np.testing.assert_array_equal(y, x + 1)


# --- schedules and the portable context switch ------------------------------------------------


def test_schedule_settings():
    before = simt.get_schedule()
    simt.set_schedule("reverse")
    try:
        assert simt.get_schedule() == ("reverse", 0)
    finally:
        simt.set_schedule(*before)
    with simt.schedule("random", seed=7):
        assert simt.get_schedule() == ("random", 7)
        with simt.schedule("reverse"):
            assert simt.get_schedule() == ("reverse", 0)
        assert simt.get_schedule() == ("random", 7)
    with pytest.raises(ValueError, match="unknown SIMT schedule"):
        with simt.schedule("sideways"):
            pass
    from pyconv.simt.settings import parse_schedule

    assert parse_schedule("random:3") == ("random", 3)
    assert parse_schedule("inorder") == ("inorder", 0)
    with pytest.raises(ValueError):
        parse_schedule("random:x")
    with pytest.raises(ValueError):
        simt.set_workers(0)


def test_ucontext_fallback_runs_barrier_kernels(schedule):
    mod = module("basics.cu", options=("-DSIMT_USE_UCONTEXT",))
    x = np.random.default_rng(4).standard_normal(512)
    sums = np.zeros(2)
    mod.get_function("block_sum_f64")((2,), (256,), (sums, x, np.int32(512)))
    np.testing.assert_allclose(sums, x.reshape(2, 256).sum(axis=1), rtol=1e-12)


# --- broken kernels: loud, quick failures ------------------------------------------------------


def test_divergent_barrier_reports_threads_and_lines(broken, schedule):
    start = time.perf_counter()
    with pytest.raises(simt.SimtError) as info:
        broken.get_function("divergent_barrier")((1,), (64,), (np.zeros(64, np.float32),))
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "SIMT deadlock" in message and "different __syncthreads() call sites" in message
    first, second = broken_line("BUG: only half the block"), broken_line("BUG: only half the block") + 2
    assert f"threads (0,0,0)..(15,0,0) [16 threads]: waiting at __syncthreads() at {KERNELS / 'broken.cu'}:{first}" in message
    assert f"threads (16,0,0)..(63,0,0) [48 threads]: waiting at __syncthreads() at {KERNELS / 'broken.cu'}:{second}" in message


def test_barrier_against_warp_op_deadlock_is_reported(broken, schedule):
    with pytest.raises(simt.SimtError) as info:
        broken.get_function("barrier_against_shuffle")((1,), (32,), (np.zeros(32, np.float32),))
    message = str(info.value)
    assert "SIMT deadlock: no thread of the block can proceed" in message
    assert f"thread (0,0,0): waiting at __syncthreads() at {KERNELS / 'broken.cu'}:{broken_line('BUG: lane 0 waits')}" in message
    assert "threads (1,0,0)..(31,0,0) [31 threads]: waiting at __shfl_sync(mask 0xffffffff)" in message


def run_missing_barrier(broken, kind, seed):
    x = np.arange(1, 65, dtype=np.float32)
    y = np.zeros_like(x)
    with simt.schedule(kind, seed=seed):
        broken.get_function("missing_barrier")((1,), (64,), (y, x), shared_mem=64 * 4)
    return np.array_equal(y, np.concatenate([[0.0], x[:-1]]))


def test_missing_barrier_is_wrong_under_the_random_schedule(broken):
    assert run_missing_barrier(broken, "inorder", 0), "in order, the lower neighbour has always run first"
    assert not all(run_missing_barrier(broken, "random", seed) for seed in range(1, 6))


def test_legacy_warp_synchronous_reduction_is_wrong_under_the_random_schedule(broken):
    x = np.random.default_rng(5).random(64 * 4).astype(np.float32)
    expected = x.reshape(4, 64).sum(axis=1)
    wrong = False
    for seed in range(1, 6):
        sums = np.zeros(4, np.float32)
        with simt.schedule("random", seed=seed):
            broken.get_function("legacy_warp_reduce")((4,), (64,), (sums, x))
        wrong |= not np.allclose(sums, expected, rtol=1e-5)
    assert wrong


@pytest.mark.parametrize("entry, block, pattern", [
    ("mask_names_missing_lanes", 40,
     r"thread \(3\d,0,0\): mask 0xffffffff names lanes that do not exist \(0xffffff00\): warp 1 of a 40-thread block"),
    ("shuffle_after_exit", 32, r"(exited without reaching this warp op|names lanes that have already exited)"),
    ("mismatched_warp_ops", 32, r"lanes of one mask group reached different warp ops"),
    ("caller_not_in_mask", 32, r"the calling lane (1[6-9]|[23]\d) is not in mask 0x0000ffff"),
    ("bad_shuffle_width", 32, r"width 12 is not a power of two in \[1, 32\]"),
])
def test_warp_op_misuse_raises(broken, schedule, entry, block, pattern):
    with pytest.raises(simt.SimtError, match=pattern) as info:
        broken.get_function(entry)((1,), (block,), (np.zeros(block, np.float32 if "mismatch" not in entry else np.uint32),))
    assert "broken.cu:" in str(info.value)


# --- speed ---------------------------------------------------------------------------------------


def test_speed_elementwise_and_barriers(basics):
    x = np.zeros(256 * 256, np.float32)
    y = np.zeros_like(x)
    add = basics.get_function("add_one_f32")
    add((256,), (256,), (y, x, np.int64(x.size)))  # warm-up: worker threads and stacks
    start = time.perf_counter()
    add((256,), (256,), (y, x, np.int64(x.size)))
    elementwise = time.perf_counter() - start
    out = np.zeros(1024, np.int32)
    start = time.perf_counter()
    basics.get_function("ten_barriers")((1,), (1024,), (out,))
    barriers = time.perf_counter() - start
    assert (y == 1).all() and (out == np.arange(1024)).all()
    assert elementwise < 1.0, f"256 x 256 elementwise took {elementwise:.3f} s"
    assert barriers < 1.0, f"1024 threads x 10 barriers took {barriers:.3f} s"
