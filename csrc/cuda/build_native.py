"""Build ``pyconv._cuda``: kernels/*.cu compiled ahead of time by nvcc, launched by name.

Steps (``build()``):

1. For every ``kernels/<family>.cu``, find its ``extern "C" __global__`` entry points and generate
   a translation unit that includes the kernel file and a registry table of those entries
   (csrc/cuda/registry.h). One unit per family, because two families may define device helpers
   with the same name; the units are compiled by nvcc concurrently.
2. Compile csrc/cuda/module.cpp (the pybind11 module: ``entries()``, ``device_count()``,
   ``launch()``) with the host C++ compiler.
3. Link everything with the static CUDA runtime, so that the module imports without a GPU or
   driver.

Objects are cached in the work directory under a hash of their inputs and command line, so an
unchanged tree rebuilds in about a second. setup.py calls this; tests call it on small kernel
directories of their own. Linux and GCC/Clang only.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sysconfig
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent

# sm_75 is the oldest architecture CUDA 13 supports; compute_90 PTX lets newer GPUs JIT the code.
DEFAULT_ARCHS = "75,80,86,90+PTX"
ARCHS_ENV = "PYCONV_CUDA_ARCHS"

# __launch_bounds__'s arguments may nest parentheses up to three levels: ((64) * 4)
_PARENS = r"\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)"
_ENTRY = re.compile(
    rf'extern\s+"C"\s+__global__\s+(?:__launch_bounds__\s*{_PARENS}\s*)?void\s+'
    rf"(?:__launch_bounds__\s*{_PARENS}\s*)?([A-Za-z_]\w*)\s*\("
)
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_ARCH = re.compile(r"^(?:sm_|compute_)?(\d+)(?:\.(\d))?(\+PTX)?$", re.I)


class BuildError(RuntimeError):
    """A step of the build failed; the message carries the tool's output."""


def find_nvcc(environ=os.environ) -> str | None:
    """nvcc from $CUDA_HOME/bin, $CUDA_PATH/bin, then PATH; None when there is none."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        root = environ.get(var)
        if root and os.access(Path(root) / "bin" / "nvcc", os.X_OK):
            return str(Path(root) / "bin" / "nvcc")
    return shutil.which("nvcc", path=environ.get("PATH"))


def parse_archs(spec: str | None) -> list[tuple[str, bool]]:
    """``"75,80,86,90+PTX"`` -> [("75", False), ..., ("90", True)] (True = also embed PTX).

    Items may be separated by commas, semicolons or spaces and spelled ``75``, ``7.5``,
    ``sm_75`` or ``compute_90`` (PTX only is not offered: a cubin is always built too).
    """
    spec = spec if spec and spec.strip() else DEFAULT_ARCHS
    archs = []
    for item in re.split(r"[,;\s]+", spec.strip()):
        m = _ARCH.match(item)
        if not m:
            raise BuildError(f"{ARCHS_ENV}: cannot read architecture {item!r} (expected e.g. 80, 8.6, "
                             f"sm_90 or 90+PTX)")
        archs.append((m.group(1) + (m.group(2) or ""), bool(m.group(3)) or item.lower().startswith("compute_")))
    return archs


def gencode_flags(archs) -> list[str]:
    flags = []
    for cc, ptx in archs:
        code = f"[sm_{cc},compute_{cc}]" if ptx else f"sm_{cc}"
        flags.append(f"-gencode=arch=compute_{cc},code={code}")
    return flags


def arch_summary(archs) -> str:
    return " ".join(f"sm_{cc}" + (f" compute_{cc}" if ptx else "") for cc, ptx in archs)


def entry_points(source: str) -> list[str]:
    """The ``extern "C" __global__`` kernels of a .cu source, in order of appearance."""
    return _ENTRY.findall(_COMMENT.sub(" ", source))


def _run(cmd, what: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise BuildError(f"{what}: cannot run {cmd[0]}: {exc}") from None
    if out.returncode != 0:
        raise BuildError(f"{what} failed ({shlex.join(map(str, cmd))}):\n{out.stdout}{out.stderr}")
    return out.stdout + out.stderr


def cuda_toolkit(nvcc: str) -> dict:
    """Include and library directories and the version of the toolkit that ``nvcc`` belongs to.

    Asked from nvcc itself (``--dryrun``), because nvcc may be a wrapper script outside its
    toolkit (e.g. /usr/local/bin/nvcc).
    """
    dry = _run([nvcc, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull], "nvcc --dryrun")
    includes, libraries = [], []
    for line in dry.splitlines():
        if line.startswith("#$ INCLUDES="):
            includes += [a[2:] for a in shlex.split(line[len("#$ INCLUDES="):]) if a.startswith("-I")]
        elif line.startswith("#$ LIBRARIES="):
            libraries += [a[2:] for a in shlex.split(line[len("#$ LIBRARIES="):])
                          if a.startswith("-L") and not a.rstrip("/").endswith("stubs")]
    version = _run([nvcc, "--version"], "nvcc --version")
    m = re.search(r"release [\d.]+, (V[\d.]+)", version)
    return {
        "include_dirs": [str(Path(p).resolve()) for p in includes],
        "library_dirs": [str(Path(p).resolve()) for p in libraries],
        "version": m.group(1) if m else "unknown",
    }


def _family_unit(family: str, source_name: str, entries: list[str]) -> str:
    table = "\n".join(f"    PYCONV_CUDA_ENTRY({e})," for e in entries)
    return (
        f"// Generated by csrc/cuda/build_native.py from {source_name}: do not edit.\n"
        f'#include "{source_name}"\n'
        f'#include "registry.h"\n\n'
        f"namespace {{\nconst pyconv_cuda::Entry pyconv_cuda_entries[] = {{\n{table}\n}};\n}}\n\n"
        f'extern "C" pyconv_cuda::Table pyconv_cuda_table_{family}() {{\n'
        f'    return pyconv_cuda::Table{{"{family}", pyconv_cuda_entries, {len(entries)}}};\n}}\n'
    )


def _tables_unit(families: list[str], archs: str, nvcc_version: str) -> str:
    declarations = "".join(f'extern "C" pyconv_cuda::Table pyconv_cuda_table_{f}();\n' for f in families)
    calls = "".join(f"pyconv_cuda_table_{f}(), " for f in families)
    return (
        "// Generated by csrc/cuda/build_native.py: do not edit.\n"
        '#include "registry.h"\n\n'
        f"{declarations}\n"
        "const pyconv_cuda::Table* pyconv_cuda::tables() {\n"
        f"    static const Table all[] = {{{calls}Table{{nullptr, nullptr, 0}}}};\n"
        "    return all;\n}\n\n"
        f'const char* pyconv_cuda::built_archs() {{ return "{archs}"; }}\n'
        f'const char* pyconv_cuda::nvcc_version() {{ return "{nvcc_version}"; }}\n'
    )


def _write_if_changed(path: Path, text: str) -> Path:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def _preprocessed(path: Path, cxx: list[str]) -> str:
    """The kernel file after the C preprocessor (entry points made by macros count), or its text
    when the preprocessor fails (nvcc then reports the error)."""
    try:
        done = subprocess.run([*cxx, "-E", "-P", "-x", "c++", f"-I{path.parent}", str(path)],
                              capture_output=True, text=True)
    except OSError:
        return path.read_text()
    return done.stdout if done.returncode == 0 else path.read_text()


def discover(kernels_dir: Path, cxx: list[str]) -> dict[str, list[str]]:
    """family -> entry points for every kernels_dir/*.cu that has any; BuildError on duplicates."""
    families, owner = {}, {}
    for path in sorted(kernels_dir.glob("*.cu")):
        if not re.fullmatch(r"[A-Za-z_]\w*", path.stem):
            raise BuildError(f"{path.name}: kernel file names must be C identifiers")
        entries = entry_points(_preprocessed(path, cxx))
        for e in entries:
            if e in owner:
                raise BuildError(f"kernel {e} is defined in both {owner[e]} and {path.name}")
            owner[e] = path.name
        if entries:
            families[path.stem] = entries
    return families


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _cached(work: Path, stem: str, key: str, make, log, message) -> Path:
    """``work/<stem>-<key>.o``, made by ``make(tmp_path)`` unless it exists (written atomically)."""
    obj = work / f"{stem}-{key}.o"
    if not obj.exists():
        log(message)
        tmp = obj.with_suffix(f".tmp{os.getpid()}.o")
        make(tmp)
        os.replace(tmp, obj)
        for old in work.glob(f"{stem}-*.o"):
            if old != obj:
                old.unlink(missing_ok=True)
    return obj


def _host_compiler(environ) -> list[str]:
    return shlex.split(environ.get("CXX", "") or "g++")


def build(kernels_dir, work_dir, output, archs=None, nvcc=None, environ=os.environ, log=print) -> Path:
    """Compile and link ``pyconv._cuda`` from ``kernels_dir`` into the file ``output``.

    ``archs``: an architecture list as :func:`parse_archs` reads it (default: $PYCONV_CUDA_ARCHS,
    else :data:`DEFAULT_ARCHS`). Raises BuildError with the failing tool's output.
    """
    import pybind11

    kernels_dir, work, output = Path(kernels_dir).resolve(), Path(work_dir).resolve(), Path(output)
    lock, log_line = threading.Lock(), log

    def log(message):  # called from the compiling threads
        with lock:
            log_line(message)

    nvcc = nvcc or find_nvcc(environ)
    if nvcc is None:
        raise BuildError("nvcc was not found (looked in $CUDA_HOME/bin, $CUDA_PATH/bin and PATH)")
    archs = parse_archs(archs if archs is not None else environ.get(ARCHS_ENV))
    toolkit = cuda_toolkit(nvcc)
    cxx = _host_compiler(environ)
    work.mkdir(parents=True, exist_ok=True)

    families = discover(kernels_dir, cxx)
    headers = b"".join(p.read_bytes() for p in sorted(kernels_dir.glob("*.cuh")))
    registry_h = (HERE / "registry.h").read_bytes()
    cpus = os.cpu_count() or 1
    workers = max(1, min(len(families), cpus))
    nvcc_cmd = [nvcc, "-c", "-O3", "-std=c++17", f"--threads={max(1, cpus // workers)}",
                "-Xcompiler=-fPIC,-fvisibility=hidden", f"-I{kernels_dir}", f"-I{HERE}",
                *gencode_flags(archs)]
    if environ.get("CXX"):
        nvcc_cmd.append(f"-ccbin={cxx[0]}")

    def compile_family(family):
        source = kernels_dir / f"{family}.cu"
        text = _family_unit(family, source.name, families[family])
        unit = _write_if_changed(work / f"pyconv_cuda_{family}.cu", text)
        key = _digest(text, source.read_bytes(), headers, registry_h, *nvcc_cmd)
        return _cached(work, f"pyconv_cuda_{family}", key,
                       lambda tmp: _run([*nvcc_cmd, str(unit), "-o", str(tmp)], f"nvcc {source.name}"),
                       log, f"nvcc: {source.name} ({len(families[family])} kernels) for {arch_summary(archs)}")

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        objects = list(pool.map(compile_family, sorted(families)))

    host_cmd = [*cxx, "-c", "-O2", "-std=c++17", "-fPIC", "-fvisibility=hidden", f"-I{HERE}"]
    text = _tables_unit(sorted(families), arch_summary(archs), toolkit["version"])
    unit = _write_if_changed(work / "pyconv_cuda_tables.cpp", text)
    objects.append(_cached(work, "pyconv_cuda_tables", _digest(text, registry_h, *host_cmd),
                           lambda tmp: _run([*host_cmd, str(unit), "-o", str(tmp)], "compiling the registry"),
                           log, f"{cxx[0]}: the registry of {len(families)} kernel files"))

    # module.cpp does not depend on the kernels: its object survives kernel edits
    module_cpp = HERE / "module.cpp"
    includes = (sysconfig.get_paths()["include"], pybind11.get_include(), *toolkit["include_dirs"])
    module_cmd = [*host_cmd, *(f"-I{d}" for d in includes), str(module_cpp)]
    objects.append(_cached(work, "pyconv_cuda_module", _digest(module_cpp.read_bytes(), registry_h, *module_cmd),
                           lambda tmp: _run([*module_cmd, "-o", str(tmp)], "compiling module.cpp"),
                           log, f"{cxx[0]}: csrc/cuda/module.cpp"))

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = output.with_name(output.name + f".tmp{os.getpid()}")
    # -Wl,--exclude-libs: the static runtime's symbols stay private to this module
    _run([*cxx, "-shared", "-o", str(tmp_out), *map(str, objects),
          *(f"-L{d}" for d in toolkit["library_dirs"]), "-Wl,--exclude-libs,ALL",
          "-lcudart_static", "-ldl", "-lrt", "-lpthread"], "linking pyconv._cuda")
    os.replace(tmp_out, output)
    log(f"built {output} ({sum(map(len, families.values()))} kernels from {len(families)} files)")
    return output
