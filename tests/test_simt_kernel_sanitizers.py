"""The sanitizer job of the model kernels: conv2d.cu, gemm.cu and rnn.cu on tiny shapes under
AddressSanitizer + UBSan alignment and under ThreadSanitizer (one TSan fiber per CUDA thread).

Each run builds the kernels with ``PYCONV_SIMT_OPTIONS`` set to the sanitizer flags, runs every
kernel variant the launch glue can pick (tests/simt_sanitizer_cases.py) against the NumPy
reference in a subprocess with the sanitizer runtime preloaded, and must finish cleanly: no
out-of-bounds global or shared access, no misaligned float4 load, no race between emulated
threads (a missing ``__syncthreads`` around a double-buffered tile shows up here even when the
in-order schedule happens to compute the right numbers). tests/test_simt_sanitizers.py shows
that each sanitizer does catch the bug class it is here for.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simt_support import require_simt
from test_simt_sanitizers import SANITIZERS, runtime_library

pytestmark = require_simt()

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).with_name("simt_sanitizer_cases.py")
GROUPS = ("conv", "conv64", "gemm", "rnn")

JOBS = {
    "address+alignment": ("libasan.so",
                          ["-g", "-fsanitize=address,alignment", "-fno-sanitize-recover=alignment",
                           "-fno-omit-frame-pointer"],
                          SANITIZERS["address"][2]),
    "thread": ("libtsan.so", ["-g", *SANITIZERS["thread"][1]], SANITIZERS["thread"][2]),
}


@pytest.mark.parametrize("job", sorted(JOBS))
def test_model_kernels_are_clean_under_sanitizers(job):
    library, flags, options = JOBS[job]
    env = dict(os.environ, **options,
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               PYCONV_SIMT_OPTIONS=" ".join(flags), PYCONV_SIMT_SCHEDULE="random:7",
               LD_PRELOAD=runtime_library(library))
    done = subprocess.run([sys.executable, str(CASES), *GROUPS], capture_output=True, text=True,
                          env=env, timeout=900)
    report = done.stdout[-2000:] + done.stderr[-6000:]
    assert done.returncode == 0, report
    assert "Sanitizer" not in done.stderr and "runtime error" not in done.stderr, report
    ran = done.stdout.count("\nok ") + done.stdout.startswith("ok ")
    assert ran == 60, f"expected 60 kernel cases, {ran} ran:\n{report}"
