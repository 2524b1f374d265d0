"""Skip/require marks for tests that run the CUDA tools (nvcc, NVRTC, cuobjdump + nvdisasm).

On a user's machine a missing tool skips the test with a reason naming the tool ("nvcc not
found: ..."); CI sets PYCONV_REQUIRE_CUDA_TOOLS=1, which turns that skip into a failure: without
a GPU, the compile gates are how CI knows the kernels build.
"""

from __future__ import annotations

import os

import pytest

from pyconv.devtools import cuda_compile

# tool -> a probe that raises cuda_compile.ToolMissing when the tool is not installed
PROBES = {
    "nvcc": cuda_compile.find_nvcc,
    "nvrtc": cuda_compile.load_nvrtc,
    "cuobjdump": cuda_compile.find_cuobjdump,
}


def tool_missing_reason(tool: str) -> str | None:
    """Why ``tool`` cannot run here, or None when it can."""
    try:
        PROBES[tool]()
    except cuda_compile.ToolMissing as missing:
        return str(missing)
    return None


def _require(tool: str):
    reason = tool_missing_reason(tool)
    if reason and os.environ.get("PYCONV_REQUIRE_CUDA_TOOLS") == "1":
        pytest.fail(f"PYCONV_REQUIRE_CUDA_TOOLS=1 but {reason}", pytrace=False)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def require_nvcc():
    """A mark: skip without nvcc (fail under PYCONV_REQUIRE_CUDA_TOOLS=1)."""
    return _require("nvcc")


def require_nvrtc():
    """A mark: skip without libnvrtc (fail under PYCONV_REQUIRE_CUDA_TOOLS=1)."""
    return _require("nvrtc")


def require_cuobjdump():
    """A mark: skip without cuobjdump and nvdisasm (fail under PYCONV_REQUIRE_CUDA_TOOLS=1)."""
    return _require("cuobjdump")


def require_compiler(compiler: str):
    """The mark of one of cuda_compile.COMPILERS, for tests parametrized over compilers."""
    return {"nvcc": require_nvcc, "nvrtc": require_nvrtc}[compiler]()
