"""``pyconv bench``: the harness logic (interleaving, statistics, targets, case selection, the
report) with fake clocks, and the command itself through a subprocess on quick shapes, with and
without PyTorch and pyconv._C."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from pyconv.benchmarks import cases, harness, suite

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FakeClock:
    """A clock that only moves when a timed function advances it."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def taking(self, seconds, log=None, name=None):
        def fn():
            if log is not None:
                log.append(name)
            self.now += seconds
        return fn


# ----- harness --------------------------------------------------------------------------------


def test_interleave_runs_round_robin_after_warmup():
    clock, log = FakeClock(), []
    stats = harness.interleave({"a": clock.taking(2.0, log, "a"), "b": clock.taking(1.0, log, "b")},
                               repeats=3, warmup=2, clock=clock)
    assert log == ["a", "b"] * 5
    assert (stats["a"].median, stats["a"].samples, stats["b"].median) == (2.0, 3, 1.0)


def test_interleave_budget_adds_rounds_for_cheap_cases_only():
    clock = FakeClock()
    cheap = harness.interleave({"a": clock.taking(0.01)}, repeats=2, warmup=0, clock=clock,
                               budget=1.0, max_repeats=50)
    assert cheap["a"].samples == 50
    costly = harness.interleave({"a": clock.taking(3.0)}, repeats=2, warmup=0, clock=clock,
                                budget=1.0)
    assert costly["a"].samples == 2


def test_stats_median_min_max():
    s = harness.Stats.of([0.003, 0.001, 0.010, 0.002])
    assert (s.median, s.min, s.max, s.samples) == (0.0025, 0.001, 0.010, 4)
    assert s.as_dict()["median_ms"] == pytest.approx(2.5)


def test_threads_context_sets_and_restores_pyconv_and_torch():
    import pyconv

    torch = harness.import_torch()
    pyconv.set_num_threads(2)
    before = torch.get_num_threads() if torch else None
    with harness.threads(1, torch):
        assert pyconv.get_num_threads() == 1
        if torch:
            assert torch.get_num_threads() == 1
    assert pyconv.get_num_threads() == 2
    if torch:
        assert torch.get_num_threads() == before


def test_machine_limits_are_positive_or_none():
    assert harness.bandwidth_gbs(1, mib=1, repeats=1) > 0
    assert harness.bandwidth_gbs(2, mib=1, repeats=1) > 0
    peak = harness.fma_peak_gflops(1, seconds=0.01)
    assert peak is None or peak > 0


def test_native_stream_bandwidth_checks_its_arguments():
    from pyconv import _native

    if _native._C is None:
        pytest.skip("pyconv._C is not built")
    for threads in (1, 2):
        gbs = _native._C.stream_bandwidth_gbs(threads, 1, 1)
        assert math.isfinite(gbs) and gbs > 0
    with pytest.raises(ValueError, match="mib must be in"):
        _native._C.stream_bandwidth_gbs(1, 0, 1)
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        _native._C.stream_bandwidth_gbs(1, 1, 0)


# ----- cases ----------------------------------------------------------------------------------


def test_conv_flops_formula():
    # 2*N*K*(C/G)*R*S*P*Q; P = Q = 28 with padding 1
    assert cases.conv_flops(32, 128, 28, 28, 128, 3, 3, 1, 1, 1) == 2 * 32 * 128 * 128 * 9 * 28 * 28
    assert cases.conv_flops(32, 64, 56, 56, 64, 3, 3, 1, 1, 64) == 2 * 32 * 64 * 1 * 9 * 56 * 56
    assert cases.conv_flops(1, 1, 5, 5, 1, 3, 3, 2, 0, 1) == 2 * 9 * 2 * 2


def test_every_performance_md_row_has_a_case_and_targets_follow_the_issue():
    full = cases.all_cases()
    labels = [c.label() for c in full]
    assert len(full) == 2 * len(cases.CONV_SHAPES) + 2 + 4 + 1 + 3 + 2
    assert len(set(labels)) == len(labels)
    by_name = {c.label(): c for c in full}
    deep = by_name["conv fwd deep 3x3 (32,128,28,28,128,3,3,1,1)"]
    assert [t.max_ratio for t in deep.targets] == [1.0, 0.1]
    assert by_name["conv bwd depthwise (32,64,56,56,64,3,3,1,1 g=64)"].targets[0].max_ratio == 0.5
    assert by_name["max_pool2d 2x2 fwd (64, 32, 26, 26)"].targets[0].max_ratio == 0.2
    assert by_name["max_pool2d 2x2 bwd (64, 32, 26, 26)"].targets == ()
    assert by_name["cross_entropy fwd+bwd (4096, 1000)"].targets[0].max_ratio == 0.7
    train = by_name["train step CifarConvNet (Adam) (N=64, 3x32x32)"]
    assert train.targets[0].max_ratio == pytest.approx(1 / 1.5) and train.work == 64
    assert all(c.targets[-1] == cases.NUMPY_10X for c in full if c.group == "conv")


def test_quick_shapes_keep_the_kind_of_layer():
    for full, quick in zip(cases.CONV_SHAPES, map(cases.quick_conv_shape, cases.CONV_SHAPES)):
        n, c, h, w, k, r, s, stride, pad, groups, label = quick
        assert (r, s, stride, pad, label) == full[5:9] + (full[10],)
        assert (groups == c == k) == (label == "depthwise")
        assert c == min(full[1], 16)


def test_select_by_group_or_name_part():
    full = cases.all_cases()
    assert {c.group for c in cases.select(full, "pool,loss")} == {"pool", "loss"}
    assert [c.name for c in cases.select(full, "LSTM")] == [
        "LSTMCell fwd+bwd", "nn.LSTM 50 steps fwd+bwd"]
    assert cases.select(full, None) == full
    with pytest.raises(ValueError, match="nope"):
        cases.select(full, "conv,nope")


def test_pyconv_and_torch_training_steps_compute_the_same_loss():
    torch = pytest.importorskip("torch")
    for model in ("LeNetMNIST", "CifarConvNet"):
        ours = cases.make_train_step(model, 4, "numpy")
        theirs = cases.make_torch_train_step(model, 4, torch)
        for _ in range(2):  # the second step checks that Adam updated both alike
            assert ours() == pytest.approx(theirs(), rel=1e-4)


@pytest.mark.parametrize("case", cases.all_cases(quick=True), ids=lambda c: c.label())
def test_every_quick_case_runs_on_both_sides(case):
    case.make("numpy")()
    torch = harness.import_torch()
    if torch is not None:
        case.make_torch(torch)()


# ----- rows, targets and the report -----------------------------------------------------------


def _fake_case(ours_seconds, clock, targets, fail=False):
    def make(backend):
        if fail:
            raise RuntimeError("kernel exploded")
        return clock.taking(ours_seconds)

    return cases.Case("conv", "fake conv", "(1,2)", make, lambda torch: clock.taking(1.0),
                      ("conv2d_forward",), 10.0, "GFLOP/s", targets=targets)


def _rows(case, clock, monkeypatch):
    monkeypatch.setitem(harness.CLOCKS, "fake", clock)
    settings = {"repeats": 3, "warmup": 1, "clock": "fake", "budget": 0.0}
    limits = {"threads": 1, "peak_gflops": 20.0, "bandwidth_gbs": None}
    return suite.run_case(case, "numpy", ["torch", "numpy"], object(), settings, limits)


def test_row_ratio_rate_peak_and_target(monkeypatch):
    clock = FakeClock()
    targets = (cases.Target("torch", 1.0, "<= 1.0x torch"),)
    torch_row, numpy_row = _rows(_fake_case(2.0, clock, targets), clock, monkeypatch)
    assert torch_row["against"] == "torch" and torch_row["ratio"] == pytest.approx(2.0)
    assert torch_row["rate"] == pytest.approx(5.0) and torch_row["other_rate"] == pytest.approx(10)
    assert torch_row["fraction_of_peak"] == pytest.approx(0.25)
    assert (torch_row["target"], torch_row["met"]) == ("<= 1.0x torch", False)
    # the numpy comparison runs pyconv's own maker on the numpy backend (2 s here): no target
    assert numpy_row["ratio"] == pytest.approx(1.0) and numpy_row["met"] is None
    assert torch_row["reference_kernels"] == ["conv2d_forward"]
    line = suite.format_row(torch_row)
    assert "| 2.00 |" in line and "NOT met" in line and "25%" in line
    assert suite.summarize([torch_row, numpy_row])[0] == "targets: 0 of 1 met"

    clock = FakeClock()
    fast = _rows(_fake_case(0.5, clock, targets), clock, monkeypatch)[0]
    assert fast["met"] is True and "| met |" in suite.format_row(fast)


def test_a_failing_kernel_gives_an_error_row_not_a_crash(monkeypatch):
    clock = FakeClock()
    rows = _rows(_fake_case(1.0, clock, (), fail=True), clock, monkeypatch)
    assert len(rows) == 2 and "kernel exploded" in rows[0]["error"]
    assert "error: RuntimeError: kernel exploded" in suite.format_row(rows[0])


def test_native_column_marks_reference_kernels():
    row = {"backend": "cpu", "kernels": ["a", "b"], "reference_kernels": []}
    assert suite._native(row) == "yes"
    assert suite._native(dict(row, reference_kernels=["a"])) == "part (1/2 ref)"
    assert suite._native(dict(row, reference_kernels=["a", "b"])) == "ref"


def test_reference_kernels_of_the_cpu_backend():
    from pyconv import backends

    if suite.cpu_unavailable_reason():
        pytest.skip("cpu backend not available")
    cpu = backends.get("cpu")
    case = cases.conv_case(cases.CONV_SHAPES[0], "fwd")
    expected = [k for k in case.kernels if cpu.__dict__[k].runs_on_reference]
    assert suite.reference_kernels(case, "cpu") == expected
    assert suite.reference_kernels(case, "numpy") == list(case.kernels)


# ----- the command ----------------------------------------------------------------------------


def _env():
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _bench(*args, prelude="", timeout=240):
    env = _env()
    code = (prelude + "import sys; from pyconv.cli import main; "
            f"sys.exit(main(['bench', *{list(args)!r}]))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


def test_pyconv_bench_quick_prints_the_table_and_writes_json(tmp_path):
    path = str(tmp_path / "run.json")
    done = _bench("--quick", "--case", "pool", "--threads", "1,2", "--json", path)
    assert done.returncode == 0, done.stderr
    assert suite.HEADER in done.stdout and "FMA peak" in done.stdout
    assert "malloc: freed blocks below 32 MiB stay resident" in done.stdout  # the default
    with open(path) as f:
        run = json.load(f)
    assert {r["case"] for r in run["rows"]} == {"max_pool2d 2x2 fwd", "max_pool2d 2x2 bwd"}
    assert [lim["threads"] for lim in run["limits"]] == [1, 2]
    assert len(run["rows"]) == 2 * 2 * len(run["against"])
    for row in run["rows"]:
        assert row["pyconv"]["min_ms"] <= row["pyconv"]["median_ms"] <= row["pyconv"]["max_ms"]
        assert row["ratio"] == pytest.approx(row["pyconv"]["median_ms"] / row["other"]["median_ms"])
        assert f"| {row['ratio']:.2f} |" in done.stdout


def test_malloc_default_leaves_malloc_alone_and_says_so():
    done = _bench("--quick", "--case", "max_pool2d 2x2 fwd", "--threads", "1", "--malloc",
                  "default")
    assert done.returncode == 0, done.stderr
    assert "malloc: left at its defaults" in done.stdout


def test_resident_malloc_keeps_a_freed_large_block_for_the_next_allocation():
    # run in a child: mallopt changes the whole process
    code = ("import numpy as np; from pyconv.benchmarks.resident_malloc import "
            "keep_freed_memory_resident as k; print(k()); a = np.ones(1 << 20); p = "
            "a.ctypes.data; del a; b = np.empty(1 << 20); print(b.ctypes.data == p)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env(), cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    note, reused = done.stdout.split("\n")[:2]
    assert note.startswith("malloc: freed blocks below 32 MiB stay resident") and reused == "True"


def test_pyconv_bench_runs_without_torch_and_without_the_extension():
    block = "import sys; sys.modules['torch'] = None; sys.modules['pyconv._C'] = None; "
    done = _bench("--quick", "--case", "max_pool2d 2x2 fwd", "--threads", "1", prelude=block)
    assert done.returncode == 0, done.stderr
    assert "backend numpy vs numpy" in done.stdout
    assert "FMA peak n/a" in done.stdout
    assert "| max_pool2d 2x2 fwd | (2, 4, 10, 10) | 1 | numpy |" in done.stdout


@pytest.mark.parametrize("args,message", [
    (["--case", "nope"], "selects no case"),
    (["--against", "jax"], "--against"),
    (["--backend", "nope"], "unknown backend 'nope'"),
    (["--threads", "0"], "--threads"),
    (["--threads", "x"], "--threads"),
])
def test_bad_bench_options_exit_2(args, message, capsys):
    from pyconv import cli

    assert cli.main(["bench", "--quick", *args]) == 2
    assert message in capsys.readouterr().err


def test_against_torch_without_torch_is_a_usage_error():
    block = "import sys; sys.modules['torch'] = None; "
    done = _bench("--quick", "--against", "torch", prelude=block)
    assert done.returncode == 2 and "PyTorch is not importable" in done.stderr


def test_lenet_script_keeps_its_own_options():
    from pyconv.benchmarks import lenet

    assert lenet.main(["--batch-size", "2", "--repeats", "1", "--warmup", "0"]) == 0
    assert np.isfinite(lenet.make_textbook_step(2)())


def test_array_at_offset_places_a_copy_and_rejects_bad_offsets():
    values = np.arange(24, dtype=np.float32).reshape(4, 6)
    for offset in (0, 4, 64, 4092):
        placed = harness.array_at_offset(values, offset)
        assert placed.ctypes.data % 4096 == offset and placed.flags.c_contiguous
        np.testing.assert_array_equal(placed, values)
    for bad in (-4, 4096, 6):
        with pytest.raises(ValueError, match="multiple of 4 in \\[0, 4096\\)"):
            harness.array_at_offset(values, bad)
