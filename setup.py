"""Build script: the optional native extension ``pyconv._C``.

Everything else is pure Python (metadata lives in pyproject.toml). When no C++ compiler (or no
pybind11) is available, the extension is skipped with a warning and pyconv installs as a
pure-NumPy package; a failing native build never fails the install.
"""

import os
import sys
import tempfile

from setuptools import setup
from setuptools.command.build_ext import build_ext

NATIVE_SKIPPED_MESSAGE = (
    "\n*** pyconv: the native extension pyconv._C was NOT built ({reason}).\n"
    "*** pyconv will run on its NumPy reference backend only. Install a C++17 compiler\n"
    "*** (e.g. g++) and reinstall to get the native backend.\n"
)


def _warn_skip(reason):
    sys.stderr.write(NATIVE_SKIPPED_MESSAGE.format(reason=reason))


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


def native_extensions():
    try:
        from pybind11.setup_helpers import Pybind11Extension
    except ImportError as exc:
        _warn_skip(f"pybind11 is not importable: {exc}")
        return []
    return [Pybind11Extension("pyconv._C", ["csrc/bindings.cpp"], cxx_std=17)]


setup(ext_modules=native_extensions(), cmdclass={"build_ext": OptionalBuildExt})
