"""Run the CUDA tools on kernel sources: nvcc, NVRTC (through ctypes) and cuobjdump.

This is the one place that knows how to find and invoke these tools and how to read what they
print. Everything works without a GPU: compiling to a cubin and disassembling it need no driver.

- :func:`compile_nvcc` and :class:`Nvrtc` compile one ``.cu`` file for one architecture to a
  cubin, with ptxas' ``-v -warn-spills -Werror``, and return a :class:`CompileResult` holding the
  log, the cubin and the per-entry-point resources parsed from ptxas' report.
- :func:`compile_all` runs many (file, arch, compiler) jobs concurrently.
- :func:`sass_listing` disassembles a cubin into ``{function: [instruction, ...]}``.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import functools
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .._sources import kernels_dir

__all__ = [
    "ARCHS", "COMPILERS", "CUPY_NVRTC_OPTIONS", "PTXAS_FLAGS", "SASS_ARCH",
    "CompileResult", "KernelResources", "Nvrtc", "ToolMissing",
    "available_compilers", "compile_all", "compile_nvcc", "find_cuobjdump", "find_nvcc",
    "kernel_sources", "load_nvrtc", "nvcc_version", "parse_ptxas_report", "sass_listing",
]

# Explicit list (never -arch=native: without a GPU it silently falls back). CUDA 13 supports
# sm_75 and newer; sm_90 reserves 1 KB of shared memory, so resources are per architecture.
ARCHS = ("sm_75", "sm_80", "sm_86", "sm_90")
SASS_ARCH = "sm_80"
COMPILERS = ("nvcc", "nvrtc")
# -v prints the resource report; -warn-spills + -Werror turn any register spill into an error.
PTXAS_FLAGS = ("-v", "-warn-spills", "-Werror")
# What CuPy 14's RawModule adds to the user's options (cupy._core.core
# .assemble_cupy_compiler_options and cupy/cuda/compiler.py): its default C++ standard,
# flush-to-zero, and functions defaulting to __device__. It also adds -I for CuPy's and the
# toolkit's headers; kernels include only our own headers in kernels/ (compat.cuh,
# row_reduce.cuh), so those are left out here, which makes any CUDA or host #include fail the gate.
CUPY_NVRTC_OPTIONS = ("--std=c++17", "-ftz=true", "--device-as-default-execution-space")

_INSTALL_HINTS = {
    "nvcc": "install the CUDA 13 toolkit, put its bin/ on PATH or set NVCC=/path/to/nvcc",
    "nvrtc": "pip install 'nvidia-cuda-nvrtc==13.0.*'",
    "cuobjdump": "pip install 'nvidia-cuda-cuobjdump==13.5.*'",
    "nvdisasm": "pip install 'nvidia-cuda-nvdisasm==13.5.*' (cuobjdump -sass runs nvdisasm)",
}


class ToolMissing(RuntimeError):
    """A CUDA tool is not installed; the message names it and how to install it."""

    def __init__(self, tool: str, detail: str):
        super().__init__(f"{tool} not found: {detail}; {_INSTALL_HINTS[tool]}")
        self.tool = tool


@dataclass(frozen=True)
class KernelResources:
    """What ptxas reports for one entry point on one architecture (bytes unless said)."""

    name: str
    arch: str
    registers: int = 0          # per thread
    barriers: int = 0
    shared_bytes: int = 0       # static __shared__ only; dynamic shared memory is the launch's
    stack_frame: int = 0
    spill_stores: int = 0
    spill_loads: int = 0
    cmem_bytes: int = 0         # constant bank 0: kernel parameters (sm_90 does not report it)


@dataclass
class CompileResult:
    """One compilation of one source file for one architecture by one compiler."""

    source: Path
    arch: str
    compiler: str
    command: tuple[str, ...]
    returncode: int
    log: str
    cubin: bytes | None = None
    kernels: dict[str, KernelResources] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.cubin is not None

    def warnings(self) -> list[str]:
        """Compiler warnings about the source (ptxas warnings are errors under -Werror)."""
        return [line.strip() for line in self.log.splitlines() if _WARNING.search(line)]

    def problems(self) -> list[str]:
        """Everything that fails the gate: errors, warnings, spills. Empty when it passes."""
        found = []
        if not self.ok:
            errors = [line.strip() for line in self.log.splitlines() if _ERROR.search(line)]
            found.append(f"compilation failed (exit {self.returncode}): "
                         + ("; ".join(errors) or "see the log"))
        found += [f"warning: {w}" for w in self.warnings()]
        for k in self.kernels.values():
            if k.spill_stores or k.spill_loads:
                found.append(f"{k.name} spills registers: {k.spill_stores} bytes spill stores, "
                             f"{k.spill_loads} bytes spill loads")
        return found

    def describe(self) -> str:
        """The command and the full log, for assertion messages."""
        title = f"{self.compiler} {self.source.name} {self.arch}"
        return f"{title}\n$ {' '.join(self.command)}\n{self.log}"


# "file.cu(3): warning #177-D: ...", "nvcc warning : ...", "ptxas warning : ..."
_WARNING = re.compile(r"\bwarning( #\d+-D)?\s*:", re.IGNORECASE)
_ERROR = re.compile(r"\berror\b", re.IGNORECASE)


# ---------------------------------------------------------------- ptxas report
_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\w+)'")
_PROPERTIES = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_BARRIERS = re.compile(r"used (\d+) barriers")
_SMEM = re.compile(r"(\d+) bytes smem")
_CMEM0 = re.compile(r"(\d+) bytes cmem\[0\]")


def parse_ptxas_report(log: str) -> dict[str, KernelResources]:
    """Entry point -> resources, from ptxas ``-v`` output as nvcc or NVRTC's log prints it.

    The report of an entry point is three lines: "Compiling entry function 'f' for 'sm_80'",
    "Function properties for f" followed by the stack/spill line, and "Used N registers, ...".
    Non-inlined device functions get a properties block too; those are not entry points and are
    skipped.
    """
    fields: dict[str, dict] = {}
    arch_of: dict[str, str] = {}
    entry = properties_of = None
    for line in log.splitlines():
        if m := _ENTRY.search(line):
            entry = m.group(1)
            arch_of[entry] = m.group(2)
            fields.setdefault(entry, {})
        elif m := _PROPERTIES.search(line):
            properties_of = m.group(1)
        elif (m := _FRAME.search(line)) and properties_of in fields:
            fields[properties_of].update(
                stack_frame=int(m.group(1)), spill_stores=int(m.group(2)),
                spill_loads=int(m.group(3)))
        elif (m := _USED.search(line)) and entry is not None:
            report = fields[entry]
            report["registers"] = int(m.group(1))
            for key, pattern in (("barriers", _BARRIERS), ("shared_bytes", _SMEM),
                                 ("cmem_bytes", _CMEM0)):
                if found := pattern.search(line):
                    report[key] = int(found.group(1))
    return {name: KernelResources(name=name, arch=arch_of[name], **values)
            for name, values in fields.items()}


# ---------------------------------------------------------------- nvcc
def find_nvcc() -> Path:
    """nvcc from $NVCC, PATH, $CUDA_HOME / $CUDA_PATH, or /usr/local/cuda; ToolMissing otherwise."""
    if os.environ.get("NVCC"):
        path = Path(os.environ["NVCC"])
        if path.is_file():
            return path
        raise ToolMissing("nvcc", f"NVCC={path} is not a file")
    if found := shutil.which("nvcc"):
        return Path(found)
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    for root in filter(None, roots):
        if (path := Path(root) / "bin" / "nvcc").is_file():
            return path
    raise ToolMissing("nvcc", "not on PATH, and no bin/nvcc under $CUDA_HOME, $CUDA_PATH or "
                              "/usr/local/cuda")


@functools.cache
def nvcc_version(nvcc: Path | None = None) -> str:
    """The full nvcc version, e.g. ``"13.0.88"``."""
    out = subprocess.run([str(nvcc or find_nvcc()), "--version"], capture_output=True,
                         text=True, check=True).stdout
    m = re.search(r"release [\d.]+, V([\d.]+)", out)
    if m is None:
        raise RuntimeError(f"cannot read nvcc's version from: {out!r}")
    return m.group(1)


def compile_nvcc(source: Path, arch: str, include_dirs=None, nvcc: Path | None = None,
                 ptxas_flags=PTXAS_FLAGS) -> CompileResult:
    """``nvcc -cubin -arch=<arch> -Xptxas -v,-warn-spills,-Werror -I<kernels> <source>``."""
    source = Path(source)
    includes = [f"-I{d}" for d in (include_dirs or [kernels_dir()])]
    with tempfile.TemporaryDirectory(prefix="pyconv-nvcc-") as tmp:
        cubin_path = Path(tmp) / f"{source.stem}.{arch}.cubin"
        command = (str(nvcc or find_nvcc()), "-cubin", f"-arch={arch}",
                   "-Xptxas", ",".join(ptxas_flags), *includes, str(source), "-o", str(cubin_path))
        done = subprocess.run(command, capture_output=True, text=True)
        cubin = cubin_path.read_bytes() if done.returncode == 0 and cubin_path.is_file() else None
    log = done.stdout + done.stderr
    return CompileResult(source, arch, "nvcc", command, done.returncode, log, cubin,
                         parse_ptxas_report(log))


# ---------------------------------------------------------------- NVRTC
def _nvidia_wheel_roots() -> list[Path]:
    """The directories of the ``nvidia`` namespace package (the CUDA wheels install there)."""
    try:
        import nvidia
    except ImportError:
        return []
    return [Path(p) for p in getattr(nvidia, "__path__", [])]


def _pathfinder():
    """NVIDIA's ``cuda.pathfinder`` (it knows wheels, conda and CUDA_HOME), or None."""
    try:
        from cuda import pathfinder
    except ImportError:
        return None
    return pathfinder


def _nvrtc_library() -> ctypes.CDLL:
    pathfinder = _pathfinder()
    if pathfinder is not None:
        try:
            loaded = pathfinder.load_nvidia_dynamic_lib("nvrtc")
        except Exception:  # its not-found errors differ between versions; fall back below
            loaded = None
        if loaded is not None and loaded.abs_path:
            return ctypes.CDLL(loaded.abs_path)
    # Newest wheel layout first: nvidia/cu13/lib, then CUDA 12's nvidia/cuda_nvrtc/lib.
    candidates = [lib for root in _nvidia_wheel_roots()
                  for lib in sorted(root.glob("*/lib/libnvrtc.so.*"), reverse=True)]
    if not candidates:
        raise ToolMissing("nvrtc", "no libnvrtc.so in the nvidia wheels and cuda.pathfinder "
                                   "found none")
    library = candidates[0]
    # libnvrtc dlopens its builtins library by soname at compile time; the wheel has no RPATH
    # for it, so load it first, globally.
    for builtins in sorted(library.parent.glob("libnvrtc-builtins.so.*")):
        ctypes.CDLL(str(builtins), mode=ctypes.RTLD_GLOBAL)
    return ctypes.CDLL(str(library))


class Nvrtc:
    """NVRTC through plain ctypes, compiling like CuPy's RawModule does."""

    def __init__(self, lib: ctypes.CDLL):
        self._lib = lib
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        # NVRTC's thread-safety guarantees vary between releases: compile one program at a time
        # (nvcc jobs run in parallel with it).
        self._lock = threading.Lock()

    @functools.cached_property
    def version(self) -> str:
        """``"major.minor"`` of the loaded library, e.g. ``"13.0"``."""
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check(self._lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)))
        return f"{major.value}.{minor.value}"

    def _check(self, result: int) -> None:
        if result != 0:
            raise RuntimeError(f"NVRTC: {self._lib.nvrtcGetErrorString(result).decode()}")

    def _get(self, prog, size_fn, data_fn) -> bytes:
        size = ctypes.c_size_t()
        self._check(size_fn(prog, ctypes.byref(size)))
        buffer = ctypes.create_string_buffer(size.value)
        self._check(data_fn(prog, buffer))
        return buffer.raw[:size.value]

    @staticmethod
    def options(arch: str, include_dirs, ptxas_flags=PTXAS_FLAGS) -> list[str]:
        # NVRTC passes one ptxas flag per --ptxas-options (a comma list is not split)
        return [*CUPY_NVRTC_OPTIONS, f"-arch={arch}", *(f"-I{d}" for d in include_dirs),
                *(f"--ptxas-options={flag}" for flag in ptxas_flags)]

    def compile(self, source: Path, arch: str, include_dirs=None,
                ptxas_flags=PTXAS_FLAGS) -> CompileResult:
        """Compile ``source`` to a cubin for ``arch``; the log holds ptxas' report."""
        source = Path(source)
        options = self.options(arch, include_dirs or [kernels_dir()], ptxas_flags)
        lib = self._lib
        with self._lock:
            prog = ctypes.c_void_p()
            self._check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.read_bytes(),
                                               source.name.encode(), 0, None, None))
            try:
                encoded = [o.encode() for o in options]
                result = lib.nvrtcCompileProgram(prog, len(encoded),
                                                 (ctypes.c_char_p * len(encoded))(*encoded))
                log = self._get(prog, lib.nvrtcGetProgramLogSize, lib.nvrtcGetProgramLog)
                log = log.replace(b"\0", b"").decode(errors="replace")
                cubin = (self._get(prog, lib.nvrtcGetCUBINSize, lib.nvrtcGetCUBIN)
                         if result == 0 else None)
            finally:
                lib.nvrtcDestroyProgram(ctypes.byref(prog))
        command = ("nvrtcCompileProgram", source.name, *options)
        if result != 0:
            log += f"\n{lib.nvrtcGetErrorString(result).decode()}"
        return CompileResult(source, arch, "nvrtc", command, result, log, cubin,
                             parse_ptxas_report(log))


@functools.cache
def load_nvrtc() -> Nvrtc:
    """The process-wide :class:`Nvrtc`; ToolMissing when no libnvrtc can be found."""
    try:
        return Nvrtc(_nvrtc_library())
    except OSError as e:
        raise ToolMissing("nvrtc", f"loading libnvrtc failed ({e})") from e


# ---------------------------------------------------------------- many files at once
def kernel_sources() -> list[Path]:
    """Every ``kernels/*.cu``, sorted."""
    return sorted(kernels_dir().glob("*.cu"))


def available_compilers() -> tuple[str, ...]:
    """The compilers of :data:`COMPILERS` that are installed here."""
    found = []
    for name, probe in (("nvcc", find_nvcc), ("nvrtc", load_nvrtc)):
        try:
            probe()
        except ToolMissing:
            continue
        found.append(name)
    return tuple(found)


def compile_all(sources, archs=ARCHS, compilers=COMPILERS, include_dirs=None,
                workers: int = 4) -> dict[tuple[Path, str, str], CompileResult]:
    """``(source, arch, compiler) -> CompileResult`` for every combination.

    nvcc jobs run as ``workers`` concurrent processes; NVRTC jobs run one after another in one
    more thread at the same time.
    """
    jobs = [(Path(s), arch, c) for s in sources for arch in archs for c in compilers]
    nvcc_jobs = [job for job in jobs if job[2] == "nvcc"]
    nvrtc_jobs = [job for job in jobs if job[2] == "nvrtc"]
    results = {}

    def run_nvrtc():
        nvrtc = load_nvrtc()
        return {job: nvrtc.compile(job[0], job[1], include_dirs) for job in nvrtc_jobs}

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers) + 1) as pool:
        nvrtc_future = pool.submit(run_nvrtc) if nvrtc_jobs else None
        nvcc_futures = {job: pool.submit(compile_nvcc, job[0], job[1], include_dirs)
                        for job in nvcc_jobs}
        for job, future in nvcc_futures.items():
            results[job] = future.result()
        if nvrtc_future is not None:
            results.update(nvrtc_future.result())
    return {job: results[job] for job in jobs}


# ---------------------------------------------------------------- SASS
def _find_binary_utility(name: str) -> Path:
    pathfinder = _pathfinder()
    if pathfinder is not None:
        try:
            if found := pathfinder.find_nvidia_binary_utility(name):
                return Path(found)
        except Exception:  # an unknown utility name in an older pathfinder: search below
            pass
    for root in _nvidia_wheel_roots():
        for candidate in sorted(root.glob(f"*/bin/{name}"), reverse=True):
            return candidate
    if found := shutil.which(name):
        return Path(found)
    raise ToolMissing(name, "not in the nvidia wheels, nor found by cuda.pathfinder, nor on PATH")


def find_cuobjdump() -> tuple[Path, Path]:
    """``(cuobjdump, nvdisasm)``: ``cuobjdump -sass`` runs nvdisasm, so both are needed."""
    return _find_binary_utility("cuobjdump"), _find_binary_utility("nvdisasm")


_FUNCTION = re.compile(r"^\s*Function : (\S+)")
_INSTRUCTION = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(.+?)\s*;")
_PREDICATE = re.compile(r"^@!?U?P[T\d]+\s+")


def sass_listing(cubin: bytes) -> dict[str, list[str]]:
    """Function name -> its SASS instructions (``"LDG.E.128 R4, [R4.64]"``, no predicate)."""
    cuobjdump, nvdisasm = find_cuobjdump()
    env = dict(os.environ, PATH=f"{nvdisasm.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    with tempfile.TemporaryDirectory(prefix="pyconv-sass-") as tmp:
        path = Path(tmp) / "kernel.cubin"
        path.write_bytes(cubin)
        done = subprocess.run([str(cuobjdump), "-sass", str(path)], capture_output=True,
                              text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"cuobjdump -sass failed: {done.stdout}{done.stderr}")
    listing: dict[str, list[str]] = {}
    current = None
    for line in done.stdout.splitlines():
        if m := _FUNCTION.match(line):
            current = listing.setdefault(m.group(1), [])
        elif current is not None and (m := _INSTRUCTION.search(line)):
            current.append(_PREDICATE.sub("", m.group(1)))
    return listing
