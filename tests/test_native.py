"""The native extension pyconv._C: built by setup.py, optional, never required."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import pyconv

REPO = Path(__file__).resolve().parents[1]


def test_build_info_reports_the_build():
    info = pyconv.build_info()
    if not info["native"]:
        if os.environ.get("PYCONV_REQUIRE_NATIVE") == "1":
            pytest.fail(f"pyconv._C is required (PYCONV_REQUIRE_NATIVE=1): {info['reason']}")
        pytest.skip(f"pyconv._C is not built here: {info['reason']}")
    assert info["isa"] in {"avx512", "avx2", "sse2", "neon", "portable"}
    assert "-O3" in info["flags"]
    assert info["pointer_bits"] == 64


def test_set_num_threads_round_trips_and_validates():
    before = pyconv.get_num_threads()
    try:
        pyconv.set_num_threads(1)
        assert pyconv.get_num_threads() == 1
    finally:
        pyconv.set_num_threads(before)
    with pytest.raises(ValueError, match="positive int, got 0"):
        pyconv.set_num_threads(0)


@pytest.mark.skipif(shutil.which("pip") is None and not (Path(sys.executable).parent / "pip").exists(),
                    reason="pip is not available")
def test_install_without_a_compiler_degrades_to_pure_numpy(tmp_path):
    """With a compiler that always fails, the wheel still builds (without _C) and says why."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns("build", "*.egg-info", ".git", "__pycache__", "*.so", ".venv*"))
    env = dict(os.environ, CC="/bin/false", CXX="/bin/false")
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path / "wheels"), str(src)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "pyconv._C was NOT built" in out.stdout + out.stderr
    (wheel,) = (tmp_path / "wheels").glob("pyconv-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pyconv/tensor.py" in names
    assert not [n for n in names if n.endswith(".so")]
