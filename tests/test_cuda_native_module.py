"""pyconv._cuda: kernels/*.cu compiled ahead of time by nvcc, its build helper and setup.py.

No GPU is needed: the module links the CUDA runtime statically, so it imports without a driver,
checks launch arguments before CUDA sees them, and turns CUDA's "no driver / no device" into a
RuntimeError. Tests that build need nvcc: they skip without it, and fail instead under
PYCONV_REQUIRE_CUDA_TOOLS=1 (CI), where a missing or failed pyconv._cuda build also fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from cuda_tools import require_nvcc
from simt_support import require_simt

from pyconv._sources import kernels_dir

REPO = Path(__file__).resolve().parents[1]
REQUIRED = os.environ.get("PYCONV_REQUIRE_CUDA_TOOLS") == "1"


def _load_build_native():
    spec = importlib.util.spec_from_file_location("pyconv_build_native", REPO / "csrc" / "cuda" / "build_native.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_native = _load_build_native()


# ----- the build helper, without compiling ------------------------------------------------------


def test_arch_lists_become_gencode_flags():
    default = build_native.parse_archs(None)
    assert default == [("75", False), ("80", False), ("86", False), ("90", True)]
    assert build_native.gencode_flags(default) == [
        "-gencode=arch=compute_75,code=sm_75", "-gencode=arch=compute_80,code=sm_80",
        "-gencode=arch=compute_86,code=sm_86", "-gencode=arch=compute_90,code=[sm_90,compute_90]",
    ]
    assert build_native.parse_archs("8.6; sm_90 compute_100,120+PTX") == [
        ("86", False), ("90", False), ("100", True), ("120", True)]
    assert build_native.arch_summary(default) == "sm_75 sm_80 sm_86 sm_90 compute_90"
    with pytest.raises(build_native.BuildError, match="PYCONV_CUDA_ARCHS: cannot read architecture 'native'"):
        build_native.parse_archs("80,native")


def test_entry_points_are_the_extern_c_global_functions():
    source = """
    // extern "C" __global__ void commented_out(float* y) {}
    /* extern "C" __global__ void also_commented(float* y) {} */
    template <typename T> __device__ void body(T* y) {}
    extern "C" __global__ void plain_f32(float* y) { body(y); }
    extern "C" __global__ void __launch_bounds__(256) bounds_first(float* y) {}
    extern "C" __global__ __launch_bounds__(128, 2) void bounds_before_void(double* y) {}
    __global__ void not_extern_c(float* y) {}
    extern "C" __device__ void not_global(float* y) {}
    """
    assert build_native.entry_points(source) == ["plain_f32", "bounds_first", "bounds_before_void"]


def test_nvcc_is_looked_up_in_cuda_home_cuda_path_then_path(tmp_path):
    for name in ("home", "path", "onpath"):
        nvcc = tmp_path / name / "bin" / "nvcc"
        nvcc.parent.mkdir(parents=True)
        nvcc.write_text("#!/bin/sh\n")
        nvcc.chmod(0o755)
    on_path = str(tmp_path / "onpath" / "bin")
    find = build_native.find_nvcc
    assert find({"CUDA_HOME": str(tmp_path / "home"), "CUDA_PATH": str(tmp_path / "path"), "PATH": on_path}) \
        == str(tmp_path / "home" / "bin" / "nvcc")
    assert find({"CUDA_PATH": str(tmp_path / "path"), "PATH": on_path}) == str(tmp_path / "path" / "bin" / "nvcc")
    assert find({"CUDA_HOME": str(tmp_path / "missing"), "PATH": on_path}) == str(tmp_path / "onpath" / "bin" / "nvcc")
    assert find({"PATH": str(tmp_path)}) is None


def test_an_entry_point_defined_in_two_files_is_a_build_error(tmp_path):
    (tmp_path / "a.cu").write_text('extern "C" __global__ void twice(float* y) {}\n')
    (tmp_path / "b.cu").write_text('extern "C" __global__ void twice(float* y) {}\n')
    with pytest.raises(build_native.BuildError, match="kernel twice is defined in both a.cu and b.cu"):
        build_native.discover(tmp_path, ["g++"])


# ----- a module built from test kernels -------------------------------------------------------

DEMO_KERNELS = r"""
#include "compat.cuh"

template <typename T>
__device__ void scale_body(T* __restrict__ y, const T* __restrict__ x, T a, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) { y[i] = a * x[i]; }
}

extern "C" __global__ void scale_f32(float* __restrict__ y, const float* __restrict__ x, float a, long long n) {
    scale_body(y, x, a, n);
}
extern "C" __global__ void __launch_bounds__(256) scale_f64(double* y, const double* x, const double a, long long n) {
    scale_body(y, x, a, n);
}
extern "C" __global__ void copy_vec4(float4* y, const float4* x, long long n4) {
    PYCONV_GRID_STRIDE_LOOP(i, n4) { y[i] = x[i]; }
}
// entry points made by a macro count too (the file is preprocessed before the search)
#define PYCONV_TEST_FILL(NAME, T) \
    extern "C" __global__ void NAME(T* y, T v, int n) { if ((int)threadIdx.x < n) y[threadIdx.x] = v; }
PYCONV_TEST_FILL(fill_i32, int)
PYCONV_TEST_FILL(fill_u64, unsigned long long)
extern "C" __global__ void every_kind(unsigned char* mask, const long long* index, bool flag, unsigned u,
                                      short s, signed char c, unsigned short us, double2* pairs) {}
"""

DEMO_DESCRIPTORS = {
    "scale_f32": "p:f32,cp:f32,s:f32,s:i64",
    "scale_f64": "p:f64,cp:f64,s:f64,s:i64",
    "copy_vec4": "p:f32x4,cp:f32x4,s:i64",
    "fill_i32": "p:i32,s:i32,s:i32",
    "fill_u64": "p:u64,s:u64,s:i32",
    "every_kind": "p:u8,cp:i64,s:b8,s:u32,s:i16,s:i8,s:u16,p:f64x2",
}


def _import_file(path: Path, name: str = "_cuda"):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo kernels built into a module of their own (sm_80 only, to keep it quick)."""
    root = tmp_path_factory.mktemp("demo_cuda")
    (root / "kernels").mkdir()
    (root / "kernels" / "compat.cuh").write_bytes((kernels_dir() / "compat.cuh").read_bytes())
    (root / "kernels" / "demo.cu").write_text(DEMO_KERNELS)
    output = root / "out" / ("_cuda" + sysconfig.get_config_var("EXT_SUFFIX"))
    build_native.build(root / "kernels", root / "work", output, archs="80", log=lambda message: None)
    return _import_file(output)


class DeviceArray:
    """Just enough of a device array for the argument checks (no memory behind the pointer)."""

    def __init__(self, typestr, shape=(8,), strides=None, readonly=False, pointer=0):
        self.__cuda_array_interface__ = {
            "typestr": typestr, "shape": shape, "strides": strides, "data": (pointer, readonly), "version": 3,
        }


@require_nvcc()
def test_descriptors_come_from_the_kernel_types(demo):
    assert demo.entries() == DEMO_DESCRIPTORS
    assert demo.build_info()["archs"] == "sm_80"


@require_nvcc()
@pytest.mark.parametrize("args, error, message", [
    ((DeviceArray("<f4"), DeviceArray("<f4")), TypeError, r"scale_f32 takes 4 arguments \(p:f32,cp:f32,s:f32,s:i64\), got 2"),
    ((DeviceArray("<f8"), DeviceArray("<f4"), np.float32(2), np.int64(8)), TypeError,
     r"argument 0 \(float\*\): expected an array of f32 elements, got typestr '<f8'"),
    ((np.zeros(8, np.float32), DeviceArray("<f4"), np.float32(2), np.int64(8)), TypeError,
     r"argument 0 \(float\*\): expected a device array .*got ndarray"),
    ((DeviceArray("<f4"), DeviceArray("<f4"), 2.0, np.int64(8)), TypeError,
     r"argument 2 \(float\): expected a NumPy scalar numpy.float32\(...\), got float"),
    ((DeviceArray("<f4"), DeviceArray("<f4"), np.float32(2), np.int32(8)), TypeError,
     r"argument 3 \(long long\): expected a NumPy scalar numpy.int64\(...\), got dtype '<i4'"),
    ((DeviceArray("<f4", readonly=True), DeviceArray("<f4"), np.float32(2), np.int64(8)), ValueError,
     r"argument 0 \(float\*\): the kernel writes this array but it is read-only"),
    ((DeviceArray("<f4"), DeviceArray("<f4", shape=(4, 2), strides=(4, 16)), np.float32(2), np.int64(8)), ValueError,
     r"argument 1 \(const float\*\): the array is not C-contiguous"),
])
def test_launch_checks_the_arguments_against_the_descriptor(demo, args, error, message):
    with pytest.raises(error, match=message):
        demo.launch("scale_f32", (1, 1, 1), (32, 1, 1), args)


@require_nvcc()
def test_launch_checks_vector_alignment_and_accepts_what_the_kernel_allows(demo):
    aligned, misaligned = DeviceArray("<f4", pointer=256), DeviceArray("<f4", pointer=260)
    with pytest.raises(ValueError, match=r"argument 1 \(const float4\*\): the data pointer is not 16-byte aligned"):
        demo.launch("copy_vec4", (1, 1, 1), (32, 1, 1), (aligned, misaligned, np.int64(2)))
    with pytest.raises(KeyError, match="pyconv._cuda has no kernel nope"):
        demo.launch("nope", (1, 1, 1), (1, 1, 1), ())
    with pytest.raises(ValueError, match="block dimensions must be in"):
        demo.launch("scale_f32", (1, 1, 1), (0, 1, 1), ())
    if demo.device_count() > 0:
        return  # the launches below would run (on null pointers) on a GPU
    accepted = [
        ("scale_f32", (DeviceArray("<f4"), DeviceArray("<f4", readonly=True), np.float32(2), np.int64(0))),
        # size-1 and empty dimensions do not make an array non-contiguous
        ("scale_f64", (DeviceArray("<f8", shape=(8, 1), strides=(8, 999)), DeviceArray("<f8", shape=(0, 3), strides=(7, 5)),
                       np.float64(1), np.int64(0))),
        ("copy_vec4", (aligned, aligned, np.int64(0))),
        ("every_kind", (DeviceArray("|b1"), DeviceArray("<i8"), np.bool_(True), np.uint32(1), np.int16(1),
                        np.int8(1), np.uint16(1), DeviceArray("<f8", pointer=512))),
    ]
    for name, args in accepted:
        with pytest.raises(RuntimeError, match=rf"pyconv._cuda: launching {name}: cudaError(InsufficientDriver|NoDevice)"):
            demo.launch(name, (1, 1, 1), (32, 1, 1), args)


@require_nvcc()
def test_a_kernel_parameter_the_launcher_cannot_pass_fails_the_build(tmp_path):
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "bad.cu").write_text(
        'struct Pair { float a, b; };\nextern "C" __global__ void takes_a_struct(Pair p, float* y) {}\n')
    with pytest.raises(build_native.BuildError, match="a kernel parameter has a type the launcher cannot pass"):
        build_native.build(tmp_path / "k", tmp_path / "work", tmp_path / "out.so", archs="80", log=lambda m: None)


# ----- the pyconv._cuda that setup.py built --------------------------------------------------


@pytest.fixture(scope="module")
def native():
    try:
        from pyconv import _cuda
    except ImportError as exc:
        reason = (f"pyconv._cuda is not built ({exc}); setup.py builds it when nvcc is found "
                  f"(in a checkout: python setup.py build_ext --inplace)")
        if REQUIRED:
            pytest.fail(f"PYCONV_REQUIRE_CUDA_TOOLS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return _cuda


def _emulator_descriptors() -> dict[str, str]:
    import pyconv.simt

    table = {}
    for path in sorted(kernels_dir().glob("*.cu")):
        module = pyconv.simt.RawModule(path=str(path))
        for name in module.entry_names:
            table[name] = ",".join(f"{kind}:{code}" for kind, code in module.get_function(name).params)
    return table


@require_simt()
def test_native_module_has_every_kernel_entry_point_with_the_emulators_descriptor(native):
    assert native.entries() == _emulator_descriptors(), (
        "pyconv._cuda differs from kernels/*.cu as the SIMT emulator sees them; if a kernel changed "
        "since the build, rebuild: python setup.py build_ext --inplace")


def test_native_module_imports_without_a_driver_and_reports_its_build(native):
    info = native.build_info()
    # built for an explicit list (PYCONV_CUDA_ARCHS at build time, default 75,80,86,90+PTX)
    targets = info["archs"].split()
    assert targets and all(t.startswith(("sm_", "compute_")) for t in targets), info
    assert info["nvcc"].startswith("V") and info["runtime_version"] >= 12000
    count = native.device_count()
    assert isinstance(count, int) and count >= 0


def fake_arguments(descriptor: str) -> list:
    """Arguments that pass the launcher's checks for a kernel with this descriptor."""
    dtypes = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "u32": np.uint32,
              "u64": np.uint64, "u8": np.uint8, "i8": np.int8, "b8": np.bool_, "i16": np.int16, "u16": np.uint16}
    args = []
    for param in descriptor.split(","):
        kind, code = param.split(":")
        dtype = dtypes[code.split("x")[0]]
        args.append(dtype(0) if kind == "s" else DeviceArray(np.dtype(dtype).str, pointer=256))
    return args


def test_native_launch_without_a_gpu_raises_cudas_error(native):
    if native.device_count() > 0:
        pytest.skip("needs a machine without a CUDA GPU (launching with fake pointers would run)")
    name, descriptor = sorted(native.entries().items())[0]
    with pytest.raises(RuntimeError, match=r"cudaError(InsufficientDriver|NoDevice): "):
        native.launch(name, (1, 1, 1), (32, 1, 1), fake_arguments(descriptor))
    assert native.device_count() == 0  # a failed launch leaves the module usable


def test_the_native_launcher_passes_the_glue_call_to_pyconv_cuda(native, monkeypatch):
    """NativeDevice without a GPU: CuPy's stream and device are faked, the launch reaches CUDA."""
    from pyconv.backends import cuda_launchers

    if native.device_count() > 0:
        pytest.skip("needs a machine without a CUDA GPU (launching with fake pointers would run)")
    fake_cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(
        get_current_stream=lambda: types.SimpleNamespace(ptr=0),
        runtime=types.SimpleNamespace(getDevice=lambda: 0)))

    def without_gpu(self):
        cuda_launchers.cuda_glue.Device.__init__(self)
        self.xp, self.multiprocessors = fake_cupy, 4

    monkeypatch.setattr(cuda_launchers._GpuDevice, "__init__", without_gpu)
    device = cuda_launchers.make_device("native")
    name, descriptor = sorted(native.entries().items())[0]
    launch = device.function("some_family", name)
    with pytest.raises(RuntimeError, match=rf"launching {name}: cudaError(InsufficientDriver|NoDevice)"):
        launch(2, (64,), fake_arguments(descriptor))  # CuPy's int / short-tuple grid and block forms
    assert device.launches[name] == 1
    with pytest.raises(ValueError, match="grid must be an int or a tuple of 1 to 3 ints"):
        launch((1, 1, 1, 1), 32, fake_arguments(descriptor))
    with pytest.raises(LookupError, match=r"pyconv._cuda has no kernel not_built \(kernels/pool.cu\).*rebuild"):
        device.function("pool", "not_built")


# ----- setup.py: packaging ---------------------------------------------------------------------


def _expected_device_sources() -> dict[str, bytes]:
    """Relative path under pyconv/_device -> content, for what setup.py must package."""
    files = {}
    for pattern in ("*.cu", "*.cuh", "*.json"):
        for path in (REPO / "kernels").glob(pattern):
            files[f"kernels/{path.name}"] = path.read_bytes()
    for path in (REPO / "csrc" / "simt").glob("*"):
        if path.is_file():
            files[f"simt/{path.name}"] = path.read_bytes()
    return files


def _clean_copy(tmp_path) -> Path:
    """The checkout without build products (no build/ directory, egg-info or extension)."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", ".git", "__pycache__", "*.so", ".venv*", ".pytest_cache", ".benchmarks"))
    return src


def test_build_py_packages_the_device_sources_where_pyconv_looks_for_them(tmp_path):
    lib = tmp_path / "lib"
    done = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
                          cwd=_clean_copy(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    device = lib / "pyconv" / "_device"
    packaged = {str(p.relative_to(device)): p.read_bytes() for p in device.rglob("*") if p.is_file()}
    expected = _expected_device_sources()
    assert "kernels/compat.cuh" in expected and "simt/simt.h" in expected
    assert packaged == expected
    # the installed copy is what pyconv finds first
    probe = "from pyconv import _sources as s; print(s.kernels_dir()); print(s.simt_include_dir())"
    found = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(lib)), timeout=120)
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [str(device / "kernels"), str(device / "simt")]


def test_wheel_without_toolchains_carries_the_device_sources_and_says_what_it_skipped(tmp_path):
    """No nvcc on PATH and a failing C++ compiler: the wheel still builds, pure Python plus the
    device sources, and the log says why each extension is missing."""
    src = _clean_copy(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH")}
    env.update(CC="/bin/false", CXX="/bin/false", PATH="/usr/bin:/bin")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "wheels"), str(src)],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert "pyconv._cuda was NOT built (nvcc was not found" in log
    (wheel,) = (tmp_path / "wheels").glob("pyconv-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"pyconv/_device/{name}" for name in _expected_device_sources()} <= names
    assert not [n for n in names if n.endswith(".so")]



LAUNCH_BOUNDS_SOURCE = """
extern "C" __global__ void __launch_bounds__(((64) * 4), 2) gemm_f32(float* c, int n) {}
extern "C" __global__ void __launch_bounds__(256) pool_f32(float* y) {}
extern "C" __global__ void plain_f64(double* y, long long n) {}
extern "C" __global__ void __launch_bounds__(NAMED) named_f32(float* y) {}
"""


def test_entry_points_are_found_behind_nested_launch_bounds():
    assert build_native.entry_points(LAUNCH_BOUNDS_SOURCE) == [
        "gemm_f32", "pool_f32", "plain_f64", "named_f32"]


def test_the_emulator_reads_the_same_entry_points_and_evaluates_their_launch_bounds():
    from pyconv.simt.build import find_entries

    found = {e.name: (e.launch_bounds, e.param_names) for e in find_entries(LAUNCH_BOUNDS_SOURCE)}
    assert found == {"gemm_f32": (256, ("c", "n")), "pool_f32": (256, ("y",)),
                     "plain_f64": (None, ("y", "n")), "named_f32": (None, ("y",))}
