"""Build script: the optional native extensions and the packaged device sources.

Everything else is pure Python (metadata lives in pyproject.toml).

- ``pyconv._C``: the C++ kernels (csrc/bindings.cpp + csrc/cpu/*.cpp). When no C++ compiler (or
  no pybind11) is available, it is skipped with a warning and pyconv installs as a pure-NumPy
  package.
- ``pyconv._cuda``: kernels/*.cu compiled ahead of time by nvcc (csrc/cuda/build_native.py) for
  the architectures in $PYCONV_CUDA_ARCHS (default sm_75, sm_80, sm_86, sm_90 + compute_90 PTX).
  Built only when nvcc is found ($CUDA_HOME/bin, $CUDA_PATH/bin, PATH) and $PYCONV_BUILD_CUDA is
  not 0; skipped with a warning otherwise.
- ``pyconv/_device/``: copies of kernels/ and csrc/simt/, which the SIMT emulator and CuPy compile
  at run time from an installed pyconv (see pyconv/_sources.py).

A failing native build never fails the install.
"""

import glob
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent

NATIVE_SKIPPED_MESSAGE = (
    "\n*** pyconv: the native extension pyconv._C was NOT built ({reason}).\n"
    "*** pyconv will run on its NumPy reference backend only. Install a C++17 compiler\n"
    "*** (e.g. g++) and reinstall to get the native backend.\n"
)

CUDA_SKIPPED_MESSAGE = (
    "\n*** pyconv: the CUDA extension pyconv._cuda was NOT built ({reason}).\n"
    "*** On a GPU, the cuda backend still runs through CuPy, which compiles the kernels at run\n"
    "*** time (NVRTC). To build pyconv._cuda, install the CUDA toolkit (nvcc on PATH or\n"
    "*** CUDA_HOME set) and reinstall.\n"
)


def _warn_skip(reason):
    sys.stderr.write(NATIVE_SKIPPED_MESSAGE.format(reason=reason))


def _warn_cuda_skip(reason):
    sys.stderr.write(CUDA_SKIPPED_MESSAGE.format(reason=reason))


def _load_build_native():
    """csrc/cuda/build_native.py (a build helper, not part of the installed package), or None
    when the source tree lacks it."""
    path = ROOT / "csrc" / "cuda" / "build_native.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("pyconv_build_native", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_native = _load_build_native()


def _compiler_accepts(compiler, flag):
    """Whether the compiler accepts ``flag`` (compiles a trivial file with it)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.cpp")
        with open(src, "w") as f:
            f.write("int main() { return 0; }\n")
        try:
            compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
        except Exception:  # noqa: BLE001 - any failure means "not supported"
            return False
    return True


class OptionalBuildExt(build_ext):
    """build_ext that picks flags the compiler supports and never fails the install."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler, broken toolchain, ...
            _warn_skip(f"{type(exc).__name__}: {exc}")

    def build_extension(self, ext):
        if ext.name == "pyconv._cuda":
            self.build_cuda_extension(ext)
            return
        try:
            flags = ["-O3", "-g0", "-std=c++17", "-fvisibility=hidden"]
            # the host's vector ISA: PYCONV_MARCH=native (default) or e.g. x86-64-v3, or "" for none
            march = os.environ.get("PYCONV_MARCH", "native")
            if march and _compiler_accepts(self.compiler, f"-march={march}"):
                flags.append(f"-march={march}")
            link = []
            if _compiler_accepts(self.compiler, "-fopenmp"):
                flags.append("-fopenmp")
                link.append("-fopenmp")
            ext.extra_compile_args = flags
            ext.extra_link_args = link
            ext.define_macros = [("PYCONV_BUILD_FLAGS", '"' + " ".join(flags) + '"')]
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            _warn_skip(f"{type(exc).__name__}: {exc}")

    def build_cuda_extension(self, ext):
        try:
            build_native.build(
                kernels_dir=ROOT / "kernels",
                work_dir=Path(self.build_temp) / "pyconv_cuda",
                output=self.get_ext_fullpath(ext.name),
                log=lambda message: print(f"pyconv._cuda: {message}", flush=True),
            )
        except Exception as exc:  # noqa: BLE001 - no toolkit, broken toolkit, compile error, ...
            _warn_cuda_skip(f"{type(exc).__name__}: {exc}")


class BuildPyWithDeviceSources(build_py):
    """build_py that also copies the device sources into ``pyconv/_device/``."""

    # (directory of the checkout, file patterns, directory under pyconv/_device/)
    DEVICE_SOURCES = (
        ("kernels", ("*.cu", "*.cuh", "*.json"), "kernels"),
        ("csrc/simt", ("*",), "simt"),
    )

    def run(self):
        super().run()
        # an editable install runs from the checkout, where pyconv/_sources.py finds the originals
        if not getattr(self, "editable_mode", False):
            self.copy_device_sources()

    def _device_dir(self):
        return Path(self.build_lib) / "pyconv" / "_device"

    def device_source_files(self):
        """(source, destination) for every device source file the build directory gets."""
        pairs = []
        for directory, patterns, dest in self.DEVICE_SOURCES:
            for pattern in patterns:
                for path in sorted((ROOT / directory).glob(pattern)):
                    if path.is_file():
                        pairs.append((path, self._device_dir() / dest / path.name))
        return pairs

    def copy_device_sources(self):
        shutil.rmtree(self._device_dir(), ignore_errors=True)  # no stale copy of a removed file
        for src, dst in self.device_source_files():
            self.mkpath(str(dst.parent))
            self.copy_file(str(src), str(dst), preserve_mode=False)

    def get_outputs(self, include_bytecode=1):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return outputs + [str(dst) for _, dst in self.device_source_files()]


def native_extensions():
    try:
        from pybind11.setup_helpers import ParallelCompile, Pybind11Extension
    except ImportError as exc:
        _warn_skip(f"pybind11 is not importable: {exc}")
        return []
    # compile the ~30 kernel files on every core ($PYCONV_BUILD_JOBS overrides; 0 = all cores):
    # a serial build takes 5 minutes on a 2-core machine
    ParallelCompile("PYCONV_BUILD_JOBS", default=0).install()
    # the binding module plus every C++ kernel file of the cpu backend
    sources = ["csrc/bindings.cpp", *sorted(glob.glob("csrc/cpu/*.cpp"))]
    # a header edit rebuilds every source (ccache turns the untouched ones into cache hits)
    headers = sorted(glob.glob("csrc/*.h") + glob.glob("csrc/cpu/*.h"))
    return [Pybind11Extension("pyconv._C", sources, depends=headers, cxx_std=17)]


def cuda_extensions():
    if os.environ.get("PYCONV_BUILD_CUDA", "1") == "0":
        _warn_cuda_skip("PYCONV_BUILD_CUDA=0")
        return []
    if build_native is None:
        _warn_cuda_skip("csrc/cuda/build_native.py is missing from this source tree")
        return []
    if build_native.find_nvcc() is None:
        _warn_cuda_skip("nvcc was not found in $CUDA_HOME/bin, $CUDA_PATH/bin or PATH")
        return []
    # optional: when the build is skipped, setuptools must not look for the missing file
    return [Extension("pyconv._cuda", ["csrc/cuda/module.cpp"], optional=True)]


setup(
    ext_modules=native_extensions() + cuda_extensions(),
    cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPyWithDeviceSources},
)
