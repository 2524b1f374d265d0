"""The CUDA compile gates: every kernels/*.cu builds with nvcc and NVRTC for sm_75/80/86/90 without
warnings or register spills, stays within its register / shared-memory budget, and its sm_80
SASS keeps the claims of kernels/sass_checks.json. Small kernels of our own prove each gate
can fail. See docs/compile_gates.md.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
from pathlib import Path

import pytest

from cuda_tools import (
    PROBES, require_compiler, require_cuobjdump, require_nvcc, require_nvrtc, tool_missing_reason,
)
from pyconv.devtools import cuda_budgets, cuda_compile, sass_checks
from pyconv.devtools.cuda_compile import ARCHS, COMPILERS, SASS_ARCH, CompileResult, KernelResources

# Globbed at collection time: a kernel file added by anyone is gated without editing this file.
KERNEL_FILES = cuda_compile.kernel_sources()
FILES = [pytest.param(p, id=p.name) for p in KERNEL_FILES]
COMPILER_PARAMS = [pytest.param(c, marks=require_compiler(c), id=c) for c in COMPILERS]
WORKERS = max(2, min(4, os.cpu_count() or 1))


def _installed_compilers():
    return [c for c in COMPILERS if tool_missing_reason(c) is None]


@pytest.fixture(scope="session")
def kernel_builds():
    """(file, arch, compiler) -> CompileResult for every kernels/*.cu, built once per session."""
    return cuda_compile.compile_all(KERNEL_FILES, ARCHS, _installed_compilers(), workers=WORKERS)


def _sass_of(builds, keys):
    """(file, compiler) -> SASS listing of the SASS_ARCH cubin, for the builds that succeeded."""
    keys = [k for k in keys if builds[k].ok]
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        listings = pool.map(lambda k: cuda_compile.sass_listing(builds[k].cubin), keys)
        return {(k[0], k[2]): listing for k, listing in zip(keys, listings)}


@pytest.fixture(scope="session")
def kernel_sass(kernel_builds):
    return _sass_of(kernel_builds, [k for k in kernel_builds if k[1] == SASS_ARCH])


def _results_of(builds, path):
    return [r for (p, _, _), r in builds.items() if p == path]


def _entries(builds):
    return {name for r in builds.values() for name in r.kernels}


# ---------------------------------------------------------------- gates on kernels/*.cu
@pytest.mark.parametrize("compiler", COMPILER_PARAMS)
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("kernel_file", FILES)
def test_kernel_file_compiles_without_warnings_or_spills(kernel_file, arch, compiler,
                                                         kernel_builds):
    result = kernel_builds[(kernel_file, arch, compiler)]
    problems = result.problems()
    assert not problems, "\n".join(problems) + "\n\n" + result.describe()
    assert result.kernels, f"ptxas reported no entry point for {kernel_file.name}:\n{result.log}"


@require_nvcc()
def test_entry_point_names_are_unique_across_files(kernel_builds):
    defined = {}
    for (path, _, _), result in kernel_builds.items():
        for name in result.kernels:
            defined.setdefault(name, set()).add(path.name)
    clashes = {name: sorted(files) for name, files in defined.items() if len(files) > 1}
    assert not clashes, f"extern \"C\" entry points defined in several files: {clashes}"


@require_nvrtc()
@require_nvcc()
@pytest.mark.parametrize("kernel_file", FILES)
def test_kernels_stay_within_their_budgets(kernel_file, kernel_builds):
    table = cuda_budgets.load()
    mismatch = cuda_budgets.version_mismatch(table, cuda_budgets.compiler_versions())
    if mismatch:
        if os.environ.get("PYCONV_REQUIRE_CUDA_TOOLS") == "1":
            pytest.fail(f"PYCONV_REQUIRE_CUDA_TOOLS=1 but {mismatch}", pytrace=False)
        pytest.skip(f"{mismatch}: budgets are compiler-specific")
    problems = cuda_budgets.violations(_results_of(kernel_builds, kernel_file), table)
    assert not problems, "\n".join(problems)


@require_nvcc()
def test_budget_table_names_only_existing_kernels(kernel_builds):
    stale = cuda_budgets.stale_entries(cuda_budgets.load(), _entries(kernel_builds))
    assert not stale, (f"kernels/budgets.json budgets entry points no kernel defines: {stale}; "
                       f"run `{cuda_budgets.WRITE_COMMAND}`")


@require_cuobjdump()
@pytest.mark.parametrize("compiler", COMPILER_PARAMS)
@pytest.mark.parametrize("kernel_file", FILES)
def test_sass_keeps_the_claims_of_sass_checks(kernel_file, compiler, kernel_sass):
    listing = kernel_sass.get((kernel_file, compiler))
    if listing is None:
        pytest.fail(f"{kernel_file.name} did not compile for {SASS_ARCH} with {compiler}; "
                    "see test_kernel_file_compiles_without_warnings_or_spills")
    problems = sass_checks.violations(listing, sass_checks.load())
    assert not problems, "\n".join(problems)


@require_nvcc()
def test_every_sass_claim_names_an_existing_kernel(kernel_builds):
    unused = sass_checks.unused_patterns(sass_checks.load(), _entries(kernel_builds))
    assert not unused, f"kernels/sass_checks.json patterns that match no entry point: {unused}"


# ---------------------------------------------------------------- our own small kernels
GOOD = r"""
#include "compat.cuh"
template <typename T>
__device__ void scale_body(T* y, const T* x, T a, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) { y[i] = a * x[i]; }
}
extern "C" __global__ void scale_f32(float* y, const float* x, float a, long long n) {
    scale_body(y, x, a, n);
}
extern "C" __global__ void scale_f64(double* y, const double* x, double a, long long n) {
    scale_body(y, x, a, n);
}
extern "C" __global__ void __launch_bounds__(256) rowsum_f32(float* y, const float* x, int cols) {
    __shared__ float partial[8];
    float s = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += x[(long long)blockIdx.x * cols + c];
    for (int offset = 16; offset > 0; offset >>= 1)
        s += __shfl_down_sync(PYCONV_FULL_MASK, s, offset);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        float total = 0.f;
        for (int w = 0; w < 8; ++w) total += partial[w];
        y[blockIdx.x] = total;
    }
}
extern "C" __global__ void copy4_f32(float4* y, const float4* x, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) { y[i] = x[i]; }
}
// A dynamically indexed array lives in local memory: no spill, but LDL/STL in the SASS.
extern "C" __global__ void local_array_f32(float* y, const float* x, const int* idx, int n) {
    float window[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) window[i] = x[threadIdx.x * 64 + i];
    float s = 0.f;
    for (int i = 0; i < n; ++i) s += window[idx[i] & 63];
    y[threadIdx.x] = s;
}
"""

# 128 accumulators live across a loop cannot fit the 64 registers per thread that
# __launch_bounds__(1024) leaves, so ptxas must spill on every architecture.
SPILLS = r"""
#include "compat.cuh"
extern "C" __global__ void __launch_bounds__(1024) spills_f32(float* y, const float* x, int n) {
    float acc[128];
#pragma unroll
    for (int k = 0; k < 128; ++k) acc[k] = x[k];
    for (int i = 0; i < n; ++i) {
#pragma unroll
        for (int k = 0; k < 128; ++k) acc[k] = acc[k] * x[i + k] + acc[(k + 1) & 127];
    }
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < 128; ++k) s += acc[k];
    y[threadIdx.x] = s;
}
"""

# nvcc sees INFINITY through the host headers it force-includes; NVRTC has none.
USES_INFINITY = r"""
#include "compat.cuh"
extern "C" __global__ void fill_inf_f32(float* y, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) { y[i] = INFINITY; }
}
"""

WARNS = r"""
#include "compat.cuh"
extern "C" __global__ void unused_variable_f32(float* y) {
    int unused = 3;
    y[0] = 1.0f;
}
"""

TINY_SOURCES = {"good.cu": GOOD, "spills.cu": SPILLS, "infinity.cu": USES_INFINITY,
                "warns.cu": WARNS}
TINY_ARCHS = ("sm_80", "sm_90")


@pytest.fixture(scope="session")
def tiny_builds(tmp_path_factory):
    """name -> {(arch, compiler): CompileResult} for the small kernels above (good.cu for every
    architecture, the others for TINY_ARCHS)."""
    folder = tmp_path_factory.mktemp("tiny_kernels")
    paths = {}
    for name, text in TINY_SOURCES.items():
        paths[name] = folder / name
        paths[name].write_text(text)
    compilers = _installed_compilers()
    builds = cuda_compile.compile_all([paths["good.cu"]], ARCHS, compilers, workers=WORKERS)
    builds.update(cuda_compile.compile_all(
        [p for name, p in paths.items() if name != "good.cu"], TINY_ARCHS, compilers,
        workers=WORKERS))
    return {name: {(arch, c): r for (p, arch, c), r in builds.items() if p == path}
            for name, path in paths.items()}


@pytest.mark.parametrize("compiler", COMPILER_PARAMS)
def test_good_kernel_passes_and_its_resources_are_parsed(compiler, tiny_builds):
    for arch in TINY_ARCHS:
        result = tiny_builds["good.cu"][(arch, compiler)]
        assert result.ok and not result.problems(), result.describe()
        assert result.cubin.startswith(b"\x7fELF")
        kernels = result.kernels
        assert set(kernels) == {"scale_f32", "scale_f64", "rowsum_f32", "copy4_f32",
                                "local_array_f32"}
        assert all(k.arch == arch and 0 < k.registers <= 255 for k in kernels.values())
        assert kernels["rowsum_f32"].shared_bytes == 8 * 4
        assert kernels["rowsum_f32"].barriers == 1
        assert kernels["scale_f32"].shared_bytes == 0
        assert kernels["local_array_f32"].stack_frame == 64 * 4
        assert all(k.spill_stores == k.spill_loads == 0 for k in kernels.values())


@pytest.mark.parametrize("compiler", COMPILER_PARAMS)
def test_spilling_kernel_fails_the_gate(compiler, tiny_builds):
    for arch in TINY_ARCHS:
        result = tiny_builds["spills.cu"][(arch, compiler)]
        assert not result.ok
        assert any("Registers are spilled to local memory in function 'spills_f32'" in p
                   for p in result.problems()), result.describe()


@require_nvrtc()
def test_host_header_constant_fails_under_nvrtc(tiny_builds):
    result = tiny_builds["infinity.cu"][("sm_80", "nvrtc")]
    assert not result.ok
    assert any('identifier "INFINITY" is undefined' in p for p in result.problems()), \
        result.describe()


@require_nvcc()
def test_nvcc_alone_would_accept_the_host_header_constant(tiny_builds):
    # why the NVRTC gate exists: nvcc compiles what CuPy's RawModule then rejects at run time
    assert tiny_builds["infinity.cu"][("sm_80", "nvcc")].ok


@pytest.mark.parametrize("compiler", COMPILER_PARAMS)
def test_compiler_warning_fails_the_gate(compiler, tiny_builds):
    result = tiny_builds["warns.cu"][("sm_80", compiler)]
    assert result.ok
    assert any('variable "unused" was declared but never referenced' in p
               for p in result.problems()), result.describe()


@require_cuobjdump()
@pytest.mark.parametrize("compiler", COMPILER_PARAMS)
def test_sass_claims_find_missing_and_forbidden_instructions(compiler, tiny_builds):
    listing = cuda_compile.sass_listing(tiny_builds["good.cu"][(SASS_ARCH, compiler)].cubin)
    assert set(listing) >= {"scale_f32", "rowsum_f32", "copy4_f32", "local_array_f32"}
    table = {
        "*": {"forbid": ["LDL", "STL"]},
        "rowsum_*": {"require": ["SHFL"]},
        "copy4_*": {"require": ["LDG.E.128", "STG.E.128"]},
        "scale_f32": {"require": ["SHFL"]},  # a false claim: this kernel has no shuffle
    }
    problems = sass_checks.violations(listing, table)
    assert len(problems) == 3, problems
    assert problems[0].startswith("local_array_f32:") and "forbidden LDL" in problems[0]
    assert problems[1].startswith("local_array_f32:") and "forbidden STL" in problems[1]
    assert problems[2].startswith("scale_f32: no SHFL instruction")

    table["local_array_f32"] = {"allow": ["LDL", "STL"], "why": "the test's local array"}
    del table["scale_f32"]
    assert sass_checks.violations(listing, table) == []


# ---------------------------------------------------------------- the bookkeeping, without tools
NVCC_LOG = """\
ptxas info    : 0 bytes gmem
ptxas info    : Function properties for _Z6helperf
    16 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Compiling entry function 'pool_f32' for 'sm_80'
ptxas info    : Function properties for pool_f32
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 2048 bytes smem, 380 bytes cmem[0], 8 bytes cmem[2]
ptxas info    : Compile time = 3.1 ms
"""
NVRTC_LOG = """\
ptxas info    : Compiling entry function 'pool_f64' for 'sm_90'
ptxas info    : Function properties for pool_f64
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 26 registers, used 0 barriers
"""


def test_ptxas_report_is_parsed_from_nvcc_and_nvrtc_logs():
    assert cuda_compile.parse_ptxas_report(NVCC_LOG) == {"pool_f32": KernelResources(
        "pool_f32", "sm_80", registers=40, barriers=1, shared_bytes=2048, stack_frame=8,
        spill_stores=4, spill_loads=4, cmem_bytes=380)}
    assert cuda_compile.parse_ptxas_report(NVRTC_LOG) == {"pool_f64": KernelResources(
        "pool_f64", "sm_90", registers=26)}


def _result(compiler, *kernels):
    return CompileResult(Path("pool.cu"), kernels[0].arch, compiler, ("x",), 0, "", b"",
                         {k.name: k for k in kernels})


def test_budget_violations_name_growth_and_missing_budgets():
    table = {"measured_with": {"nvcc": "13.0.88"},
             "budgets": {"pool_f32": {"sm_80": {"registers": 32, "shared_bytes": 1024}},
                         "gone_f32": {"sm_80": {"registers": 8, "shared_bytes": 0}}}}
    fits = _result("nvcc", KernelResources("pool_f32", "sm_80", registers=32, shared_bytes=1024))
    assert cuda_budgets.violations([fits], table) == []

    grown = _result("nvrtc", KernelResources("pool_f32", "sm_80", registers=33, shared_bytes=2048),
                    KernelResources("new_f32", "sm_80", registers=10))
    problems = cuda_budgets.violations([grown], table)
    assert len(problems) == 3
    assert "pool_f32 on sm_80 (nvrtc): registers=33 exceeds its budget 32" in problems[0]
    assert "shared_bytes=2048 exceeds its budget 1024" in problems[1]
    assert "new_f32 (pool.cu) has no budget for sm_80" in problems[2]
    assert cuda_budgets.WRITE_COMMAND in problems[2]

    assert cuda_budgets.stale_entries(table, ["pool_f32"]) == ["gone_f32"]
    assert cuda_budgets.version_mismatch(table, {"nvcc": "13.0.48"}) is None
    assert "measured with nvcc 13.0.88" in cuda_budgets.version_mismatch(table, {"nvcc": "12.8.1"})


def test_budget_table_round_trips_with_the_maximum_over_compilers(tmp_path):
    results = [
        _result("nvcc", KernelResources("a_f32", "sm_80", registers=20, shared_bytes=64)),
        _result("nvrtc", KernelResources("a_f32", "sm_80", registers=22, shared_bytes=64)),
        _result("nvcc", KernelResources("a_f32", "sm_90", registers=18, shared_bytes=64)),
    ]
    measured = cuda_budgets.measure(results)
    assert measured == {"a_f32": {"sm_80": {"registers": 22, "shared_bytes": 64},
                                  "sm_90": {"registers": 18, "shared_bytes": 64}}}
    path = cuda_budgets.write(measured, {"nvcc": "13.0.88"}, tmp_path / "budgets.json")
    assert cuda_budgets.load(path) == {"measured_with": {"nvcc": "13.0.88"}, "budgets": measured}
    assert cuda_budgets.violations(results, cuda_budgets.load(path)) == []


def test_sass_table_rejects_unknown_rule_keys(tmp_path):
    path = tmp_path / "sass_checks.json"
    path.write_text(json.dumps({"pool_*": {"requires": ["SHFL"]}}))
    with pytest.raises(ValueError, match="'pool_\\*' has unknown keys \\['requires'\\]"):
        sass_checks.load(path)


def test_missing_tool_skips_with_its_name_or_fails_when_required(monkeypatch):
    def missing():
        raise cuda_compile.ToolMissing("nvcc", "not on PATH")

    monkeypatch.setitem(PROBES, "nvcc", missing)
    monkeypatch.delenv("PYCONV_REQUIRE_CUDA_TOOLS", raising=False)
    mark = require_nvcc()
    assert mark.args == (True,) and mark.kwargs["reason"].startswith("nvcc not found: not on PATH")

    monkeypatch.setenv("PYCONV_REQUIRE_CUDA_TOOLS", "1")
    expected = "PYCONV_REQUIRE_CUDA_TOOLS=1 but nvcc not found"
    with pytest.raises(pytest.fail.Exception, match=expected):
        require_nvcc()


# ---------------------------------------------------------------- the budgets command
@require_nvrtc()
@require_nvcc()
def test_budgets_command_writes_a_table_the_gate_then_accepts(tmp_path, monkeypatch, capsys,
                                                             tiny_builds):
    good = tiny_builds["good.cu"]
    source = next(iter(good.values())).source
    monkeypatch.setattr(cuda_compile, "kernel_sources", lambda: [source])

    def session_builds(sources, archs=ARCHS, compilers=COMPILERS):
        return {(source, arch, c): good[(arch, c)] for arch in archs for c in compilers}

    monkeypatch.setattr(cuda_compile, "compile_all", session_builds)  # instead of recompiling
    monkeypatch.setattr(cuda_budgets, "budgets_path", lambda: tmp_path / "budgets.json")

    assert cuda_budgets.main([]) == 1  # no table yet: every entry point lacks a budget
    assert "has no budget" in capsys.readouterr().err

    assert cuda_budgets.main(["--write"]) == 0
    table = cuda_budgets.load(tmp_path / "budgets.json")
    assert set(table["budgets"]) == {"scale_f32", "scale_f64", "rowsum_f32", "copy4_f32",
                                     "local_array_f32"}
    assert set(table["budgets"]["rowsum_f32"]) == set(ARCHS)
    assert table["budgets"]["rowsum_f32"]["sm_80"]["shared_bytes"] == 32

    capsys.readouterr()
    assert cuda_budgets.main([]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["entry", "point"]
    assert "rowsum_f32" in out and "NO BUDGET" not in out and "OVER" not in out
