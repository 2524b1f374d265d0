"""The portable build of pyconv._C: compiled without -march (PYCONV_MARCH=""), so every
`#ifdef PYCONV_CPU_AVX2` in csrc/cpu takes its scalar branch (the scalar micro-kernel, the scalar
Winograd transforms, pooling, softmax, activations, ...), which the default -march=native build
never compiles. The cpu backend's kernel tests (tests/test_cpu_*.py) then run against that build
in a child pytest: same cases, same NumPy float64 reference, 1 and 2 threads.

The build takes about 3 minutes on 2 cores; it is done once for this module."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# the only skips allowed in the child run: kernels that exist in AVX2 only
ALLOWED_SKIP = "AVX2-only"


def _require_native(reason):
    if os.environ.get("PYCONV_REQUIRE_NATIVE") == "1":
        pytest.fail(f"the portable pyconv._C build is required (PYCONV_REQUIRE_NATIVE=1): {reason}")
    pytest.skip(f"the portable pyconv._C build cannot run here: {reason}")


@pytest.fixture(scope="module")
def portable_package(tmp_path_factory):
    """A copy of the pyconv package whose _C is the portable build."""
    if not (REPO / "setup.py").is_file():
        _require_native(f"no setup.py in {REPO} (not a source checkout)")
    try:
        import pybind11  # noqa: F401
    except ImportError as exc:
        _require_native(f"pybind11 is not importable: {exc}")
    root = tmp_path_factory.mktemp("portable")
    env = dict(os.environ, PYCONV_MARCH="", PYCONV_BUILD_CUDA="0")
    done = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--build-lib", str(root / "lib"), "--build-temp", str(root / "tmp")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )
    log = done.stdout + done.stderr
    built = sorted((root / "lib" / "pyconv").glob("_C.*"))
    if done.returncode != 0 or "pyconv._C was NOT built" in log or not built:
        errors = "\n".join(line for line in log.splitlines() if "error" in line.lower())
        pytest.fail(f"the portable build failed (exit {done.returncode}):\n{errors[-4000:] or log[-4000:]}")
    package = root / "pkg" / "pyconv"
    shutil.copytree(REPO / "pyconv", package, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    shutil.copy2(built[0], package / built[0].name)
    return package.parent


def _child_env(package_root):
    env = dict(os.environ, PYTHONPATH=str(package_root), PYCONV_REQUIRE_NATIVE="1")
    env.pop("PYCONV_BACKEND", None)
    return env


def test_the_portable_build_is_what_the_child_imports(portable_package):
    code = ("import json, pyconv; info = pyconv.build_info(); info['file'] = pyconv._native._C.__file__; "
            "print(json.dumps(info))")
    done = subprocess.run([sys.executable, "-c", code], cwd=portable_package, env=_child_env(portable_package),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info["native"] is True
    assert Path(info["file"]).resolve().is_relative_to(Path(portable_package).resolve())
    assert "-march" not in info["flags"]
    assert info["isa"] not in ("avx2", "avx512"), info


def test_the_cpu_kernel_tests_pass_on_the_portable_build(portable_package):
    files = sorted(str(p) for p in TESTS.glob("test_cpu_*.py") if p.name != Path(__file__).name)
    assert len(files) >= 10, files
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *files],
        cwd=portable_package, env=_child_env(portable_package), capture_output=True, text=True, timeout=1800,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert all(ALLOWED_SKIP in line for line in skips), "\n".join(skips)
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) > 1000, out[-2000:]
