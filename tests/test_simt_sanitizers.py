"""Sanitizer builds of the emulator (RawModule(options=("-fsanitize=...",))).

AddressSanitizer catches a dynamic-shared-memory overrun by one element, UBSan a misaligned float4
load, ThreadSanitizer (one TSan fiber per CUDA thread) a missing barrier and a warp-synchronous race,
while staying silent on correct barrier, __syncwarp and shuffle kernels. Each case runs in a
subprocess, with the sanitizer runtime preloaded into Python, so that a sanitizer abort cannot kill
pytest. The sanitized modules are cached like any other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simt_support import require_simt

pytestmark = require_simt()

ROOT = Path(__file__).resolve().parent.parent
KERNELS = Path(__file__).parent / "simt_kernels"

# Builds the module with the given g++ options, then launches each (entry, arguments) in turn.
RUNNER = r"""
import sys
import numpy as np
import pyconv.simt as simt

path, options, launches = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
module = simt.RawModule(path=path, options=options)
x = np.arange(1, 129, dtype=np.float32)
for launch in launches:
    entry, blocks, threads, extra = launch.split(":")
    y = np.zeros(int(blocks) * int(threads), np.float32)
    args = (y, x) + ((np.int32(extra),) if extra else ())
    module.get_function(entry)((int(blocks),), (int(threads),), args, shared_mem=int(threads) * 4)
    print("launched", entry, flush=True)
"""

SANITIZERS = {
    "address": ("libasan.so", ["-fsanitize=address", "-fno-omit-frame-pointer"],
                {"ASAN_OPTIONS": "detect_leaks=0:detect_stack_use_after_return=0"}),
    "alignment": (None, ["-fsanitize=alignment", "-fno-sanitize-recover=alignment"], {}),
    "thread": ("libtsan.so", ["-fsanitize=thread"], {"TSAN_OPTIONS": "halt_on_error=1:exitcode=66"}),
}


def runtime_library(name: str) -> str:
    compiler = os.environ.get("CXX", "g++")
    found = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(found):
        reason = f"the SIMT emulator's sanitizer tests need {name} from {compiler}"
        if os.environ.get("PYCONV_REQUIRE_SIMT") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def run(kernel: str, sanitizer: str, *launches: str) -> subprocess.CompletedProcess:
    library, flags, options = SANITIZERS[sanitizer]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **options)
    if library:
        env["LD_PRELOAD"] = runtime_library(library)
    cmd = [sys.executable, "-c", RUNNER, str(KERNELS / kernel), " ".join(["-g", *flags]), *launches]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def line_of(kernel: str, marker: str) -> int:
    for number, line in enumerate((KERNELS / kernel).read_text().splitlines(), start=1):
        if marker in line:
            return number
    raise AssertionError(f"{marker!r} not in {kernel}")


def test_address_sanitizer_catches_a_dynamic_shared_memory_overrun():
    done = run("sanitize_asan.cu", "address", "copy_through_smem:2:32:0", "copy_through_smem:2:32:1")
    assert "launched copy_through_smem" in done.stdout, done.stderr  # the in-bounds launch is clean
    assert done.returncode != 0
    assert "AddressSanitizer: heap-buffer-overflow" in done.stderr, done.stderr
    assert "0 bytes to the right of 128-byte region" in done.stderr, done.stderr
    assert f"sanitize_asan.cu:{line_of('sanitize_asan.cu', 'OVERRUN')}" in done.stderr, done.stderr


def test_ubsan_catches_a_misaligned_float4_load():
    done = run("sanitize_ubsan.cu", "alignment", "sum_float4:1:8:0", "sum_float4:1:8:1")
    assert done.stdout.count("launched") == 1, done.stdout + done.stderr
    assert done.returncode != 0
    assert "misaligned address" in done.stderr and "requires 16 byte alignment" in done.stderr, done.stderr
    assert f"sanitize_ubsan.cu:{line_of('sanitize_ubsan.cu', 'MISALIGNED')}" in done.stderr, done.stderr


@pytest.mark.parametrize("entry, markers", [
    ("neighbour_without_barrier", ("RACE-WRITE", "RACE-READ")),
    ("legacy_warp_reduce", ("WARP-RACE",)),
])
def test_thread_sanitizer_reports_races_between_emulated_threads(entry, markers):
    done = run("sanitize_tsan.cu", "thread", f"{entry}:1:64:")
    assert done.returncode == 66, done.stdout + done.stderr
    assert "WARNING: ThreadSanitizer: data race" in done.stderr, done.stderr
    for marker in markers:
        assert f"sanitize_tsan.cu:{line_of('sanitize_tsan.cu', marker)}" in done.stderr, done.stderr


def test_thread_sanitizer_is_silent_on_correct_barrier_and_warp_kernels():
    done = run("sanitize_tsan.cu", "thread", "neighbour_with_barriers:2:64:", "warp_exchange:2:64:")
    assert done.returncode == 0, done.stderr
    assert "ThreadSanitizer" not in done.stderr, done.stderr
    assert done.stdout.count("launched") == 2
