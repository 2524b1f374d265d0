"""Compiling a kernel source with g++ against the emulator header, cached by content hash.

A module is one shared library: the kernel source (``#include``d by a generated translation unit,
with ``simt.h`` force-included) plus the registry of its ``extern "C" __global__`` entry points and
of any ``name_expressions``. The library lands in ``$PYCONV_CACHE_DIR/simt`` (default
``~/.cache/pyconv/simt``) under a hash of everything that goes into it, written atomically so that
concurrent processes never load a half-written file.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

from .._sources import kernels_dir, simt_include_dir
from .errors import SimtCompileError, SimtError

# Hidden visibility and no STB_GNU_UNIQUE: every module keeps its own runtime state (worker pool,
# current fiber, template static __shared__ arrays) even though all modules share one process.
BASE_FLAGS = ("-std=c++20", "-O2", "-fPIC", "-pthread", "-fvisibility=hidden", "-fno-gnu-unique", "-DPYCONV_SIMT")
ABI_VERSION = 1


def compiler() -> str:
    return os.environ.get("CXX", "g++")


@functools.lru_cache(maxsize=None)
def compiler_version(cxx: str) -> str:
    try:
        done = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SimtError(f"the SIMT emulator needs a C++20 compiler: running {cxx!r} failed ({exc})") from None
    return done.stdout


def cache_dir() -> Path:
    root = os.environ.get("PYCONV_CACHE_DIR")
    path = Path(root) / "simt" if root else Path.home() / ".cache" / "pyconv" / "simt"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


_QUOTE_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)


def _quote_includes(path: Path, search: list[Path], seen: dict[Path, str]) -> None:
    """Texts of ``path`` and of every ``#include "..."`` it reaches (they all feed the hash)."""
    text = path.read_text()
    seen[path] = text
    for name in _QUOTE_INCLUDE.findall(text):
        for folder in (path.parent, *search):
            candidate = (folder / name).resolve()
            if candidate.is_file():
                if candidate not in seen:
                    _quote_includes(candidate, search, seen)
                break


@dataclasses.dataclass(frozen=True)
class EntrySource:
    """What the source says about an entry point beyond its C++ type."""

    name: str
    launch_bounds: int | None
    param_names: tuple[str, ...]


# a parenthesised group with up to three levels of nesting: __launch_bounds__((64) * 4)
_PARENS = r"\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)"
_QUALIFIERS = rf"((?:__\w+__\s*(?:{_PARENS})?\s*)*)"
_ENTRY = re.compile(rf'extern\s*"C"\s+{_QUALIFIERS}void\s+{_QUALIFIERS}(\w+)\s*\(([^)]*)\)')
_LAUNCH_BOUNDS = re.compile(rf"__launch_bounds__\s*({_PARENS})")
_CONSTANT_EXPRESSION = re.compile(r"[\d\s()+*/-]+")


def _launch_bounds_value(arguments: str) -> int | None:
    """maxThreadsPerBlock of ``(expr[, minBlocks])`` when expr is integer arithmetic, else None
    (a named constant: not checked)."""
    depth, first = 0, ""
    for ch in arguments[1:-1]:
        if ch == "," and depth == 0:
            break
        depth += (ch == "(") - (ch == ")")
        first += ch
    if not _CONSTANT_EXPRESSION.fullmatch(first):
        return None
    try:
        return int(eval(first.replace("/", "//"), {"__builtins__": {}}))  # digits and operators only
    except (SyntaxError, ZeroDivisionError, ValueError):
        return None


def find_entries(preprocessed: str) -> list[EntrySource]:
    """The ``extern "C" __global__`` functions of preprocessed kernel source."""
    entries = {}
    for match in _ENTRY.finditer(preprocessed):
        qualifiers = match.group(1) + " " + match.group(2)
        if "__global__" not in qualifiers:
            continue
        bounds = _LAUNCH_BOUNDS.search(qualifiers)
        launch_bounds = _launch_bounds_value(bounds.group(1)) if bounds else None
        names = []
        for param in match.group(4).split(","):
            words = re.findall(r"\w+", param)
            if words and words != ["void"]:
                names.append(words[-1])
        entries[match.group(3)] = EntrySource(match.group(3), launch_bounds, tuple(names))
    return list(entries.values())


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.DOTALL)


def preprocess(source: Path, include_dirs: list[Path], options: tuple[str, ...]) -> str:
    """The source after the preprocessor, without the emulator header (CUDA qualifiers survive)."""
    defines = [o for o in options if o.startswith(("-D", "-U", "-I"))]
    cmd = [compiler(), "-E", "-P", "-x", "c++", "-DPYCONV_SIMT", *defines,
           *(f"-I{d}" for d in include_dirs), str(source)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:  # let the real compile report the error; a regex fallback meanwhile
        return _strip_comments(source.read_text())
    return done.stdout


def _translation_unit(source: Path, names: list[str]) -> str:
    lines = [
        "// Generated by pyconv.simt.build: the kernel source plus its entry-point registry.",
        f'#include "{source}"',
        '#include "simt_module.h"',
        "static const ::simt::detail::Entry pyconv_simt_entries[] = {",
    ]
    for name in names:
        lines.append(f"    ::simt::detail::make_entry({_c_string(name)}, &{name}),")
    lines += ["    {}};", "SIMT_DEFINE_MODULE(pyconv_simt_entries)", ""]
    return "\n".join(lines)


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclasses.dataclass
class Library:
    """A loaded module: ctypes handle, entry names in registry order, their descriptors."""

    path: Path
    handle: ctypes.CDLL
    names: list[str]
    signatures: list[list[tuple[str, str]]]  # per entry: (kind, type code) per parameter
    sources: dict[str, EntrySource]


_loaded: dict[Path, Library] = {}
_lock = threading.Lock()


def _open(path: Path, sources: dict[str, EntrySource]) -> Library:
    handle = ctypes.CDLL(str(path))
    handle.pyconv_simt_entry_name.restype = ctypes.c_char_p
    handle.pyconv_simt_entry_signature.restype = ctypes.c_char_p
    handle.pyconv_simt_last_error.restype = ctypes.c_char_p
    handle.pyconv_simt_launch.restype = ctypes.c_int
    handle.pyconv_simt_launch.argtypes = [
        ctypes.c_int, ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint), ctypes.c_ulonglong,
        ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_ulonglong, ctypes.c_int,
    ]
    if handle.pyconv_simt_abi_version() != ABI_VERSION:
        raise SimtError(f"{path}: emulator ABI version mismatch; delete the cache directory {path.parent}")
    names, signatures = [], []
    for i in range(handle.pyconv_simt_entry_count()):
        names.append(handle.pyconv_simt_entry_name(i).decode())
        text = handle.pyconv_simt_entry_signature(i).decode()
        signatures.append([tuple(part.split(":", 1)) for part in text.split(",")] if text else [])
    return Library(path, handle, names, signatures, sources)


def build(source: Path | None = None, code: str | None = None, options=(), name_expressions=None) -> Library:
    """Compile (or fetch from the cache) and load the module for a kernel file or code string."""
    options = tuple(str(o) for o in options)
    name_expressions = tuple(name_expressions or ())
    cxx = compiler()
    cache = cache_dir()
    if code is not None:
        source = cache / (hashlib.sha256(code.encode()).hexdigest()[:32] + ".cu")
        if not source.is_file():
            _write_atomically(source, code.encode())
    source = Path(source).resolve()
    if not source.is_file():
        raise FileNotFoundError(f"kernel source {source} does not exist")
    include_dirs = [source.parent, kernels_dir()]
    texts: dict[Path, str] = {}
    _quote_includes(source, include_dirs, texts)
    runtime = _runtime_sources()

    digest = hashlib.sha256()
    for part in (str(ABI_VERSION), cxx, compiler_version(cxx), " ".join(BASE_FLAGS), "\0".join(options),
                 "\0".join(name_expressions), str(source)):
        digest.update(part.encode() + b"\0")
    for path in sorted(texts):
        digest.update(str(path).encode() + b"\0" + texts[path].encode() + b"\0")
    for path in runtime:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    key = digest.hexdigest()[:40]
    so_path = cache / f"{key}.so"

    with _lock:
        if so_path in _loaded:
            return _loaded[so_path]
        facts_path = so_path.with_suffix(".json")
        if facts_path.is_file():
            found = [EntrySource(e["name"], e["launch_bounds"], tuple(e["param_names"]))
                     for e in json.loads(facts_path.read_text())]
        else:
            found = find_entries(preprocess(source, include_dirs, options))
            _write_atomically(facts_path, json.dumps([dataclasses.asdict(e) for e in found]).encode())
        if so_path.is_file():
            os.utime(so_path)  # recently used: kept by _prune
        else:
            names = [e.name for e in found] + [n for n in name_expressions if n not in {e.name for e in found}]
            _compile(source, so_path, include_dirs, options, names, _runtime_object(options))
            _prune(cache)
        library = _loaded[so_path] = _open(so_path, {e.name: e for e in found})
        return library


MAX_CACHED_MODULES = 400


def _prune(cache: Path) -> None:
    """Drop the least recently used modules beyond MAX_CACHED_MODULES (every kernel edit adds one)."""
    def last_used(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    modules = sorted(cache.glob("*.so"), key=last_used)
    for old in modules[:-MAX_CACHED_MODULES]:
        for path in (old, old.with_suffix(".cpp"), old.with_suffix(".json")):
            try:
                path.unlink()
            except OSError:  # already gone (another process pruned it)
                pass


def _runtime_sources() -> list[Path]:
    folder = simt_include_dir()
    return sorted([*folder.glob("*.h"), *folder.glob("*.cpp")])


def _run_compiler(cmd: list[str], what: str, output: Path) -> None:
    """Run g++ writing to a temporary file, then move it to ``output`` atomically."""
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=output.name + ".", suffix=".tmp")
    os.close(fd)
    done = subprocess.run([*cmd, "-o", tmp], capture_output=True, text=True)
    if done.returncode != 0:
        os.unlink(tmp)
        raise SimtCompileError(
            f"g++ could not compile {what} for the SIMT emulator (exit {done.returncode}):\n"
            f"{done.stderr}\ncommand: {' '.join(cmd)}",
            done.stderr,
        )
    os.replace(tmp, output)


def _runtime_object(options: tuple[str, ...]) -> Path:
    """The emulator runtime compiled with these flags (sanitizers must match the kernels'), cached."""
    cxx = compiler()
    digest = hashlib.sha256()
    for part in (cxx, compiler_version(cxx), " ".join(BASE_FLAGS), "\0".join(options)):
        digest.update(part.encode() + b"\0")
    for path in _runtime_sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    obj = cache_dir() / f"runtime-{digest.hexdigest()[:40]}.o"
    if not obj.is_file():
        source = simt_include_dir() / "simt_runtime.cpp"
        _run_compiler([cxx, *BASE_FLAGS, f"-I{simt_include_dir()}", *options, "-c", str(source)], str(source), obj)
    return obj


def _compile(source: Path, so_path: Path, include_dirs: list[Path], options: tuple[str, ...], names: list[str],
             runtime: Path) -> None:
    unit = so_path.with_suffix(".cpp")
    _write_atomically(unit, _translation_unit(source, names).encode())
    cmd = [compiler(), *BASE_FLAGS, "-shared", "-include", str(simt_include_dir() / "simt.h"),
           f"-I{simt_include_dir()}", *(f"-I{d}" for d in include_dirs), *options, "-x", "c++", str(unit),
           "-x", "none", str(runtime)]
    _run_compiler(cmd, str(source), so_path)
