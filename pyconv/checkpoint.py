"""Checkpoints: a model's weights with the config that rebuilds it, optionally the optimizer
state, the epoch and anything JSON-able (``extra``), in one file.

``pyconv.save(model, "m.safetensors")`` / ``pyconv.load("m.safetensors") -> model``. The format
follows the path's extension:

- ``.safetensors``: the safetensors layout (an 8-byte little-endian header length, a JSON header
  mapping each tensor name to ``{"dtype", "shape", "data_offsets"}``, then the raw little-endian
  bytes), written here with NumPy alone. ``__metadata__`` (a str -> str map, as the format
  requires) holds ``"pyconv"`` = the JSON of the config, epoch, optimizer hyperparameters and
  extra. Model tensors keep their PyTorch state_dict names, so the file loads into the
  equivalent ``torch.nn`` model too.
- ``.npz``: the same tensors, plus the same JSON as a uint8 array named ``__pyconv__``.

Optimizer tensors are stored under ``_optimizer.state.<param index>.<key>``.

Saving is atomic: the bytes go to a temporary file in the destination's directory, which is
flushed, fsynced and then renamed over the destination (``os.replace``), so a save that dies
half way leaves the previous checkpoint untouched.
"""

from __future__ import annotations

import io
import json
import os
import tempfile

import numpy as np

__all__ = ["CheckpointError", "load", "load_checkpoint", "read_tensors", "save", "write_tensors"]

FORMAT_VERSION = 1
META_KEY = "pyconv"          # the key in safetensors' __metadata__
NPZ_META = "__pyconv__"      # the uint8 JSON array in .npz files
OPT_PREFIX = "_optimizer.state."
_CHUNK = 1 << 16
# Test-only hook (tests/test_checkpoint.py): exit the process after writing this many bytes of
# the temporary file, to show that an interrupted save leaves the previous file intact.
_CRASH_ENV = "PYCONV_TEST_CRASH_SAVE_AFTER_BYTES"

_ST_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U64": np.uint64, "U32": np.uint32, "U16": np.uint16,
    "U8": np.uint8, "BOOL": np.bool_,
}
_ST_NAMES = {np.dtype(v): k for k, v in _ST_DTYPES.items()}


class CheckpointError(ValueError):
    """A file that is not a readable pyconv checkpoint (corrupt, truncated or foreign)."""


def _format_of(path) -> str:
    path = os.fspath(path)
    lower = path.lower()
    if lower.endswith(".safetensors"):
        return "safetensors"
    if lower.endswith(".npz"):
        return "npz"
    raise ValueError(f"checkpoint path must end in .safetensors or .npz, got {path!r}")


# ----- raw tensor files ---------------------------------------------------------------------


def _safetensors_bytes(tensors: dict, metadata: dict) -> bytes:
    header = {}
    chunks = []
    offset = 0
    for name, array in tensors.items():
        array = np.require(array, requirements="C")  # not ascontiguousarray: it makes 0-d 1-d
        if array.dtype not in _ST_NAMES:
            raise TypeError(f"write_tensors: tensor {name!r} has dtype {array.dtype}, which "
                            f"safetensors cannot store (expected one of {sorted(_ST_DTYPES)})")
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _ST_NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes with spaces
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def _npz_bytes(tensors: dict, metadata: dict) -> bytes:
    arrays = {name: np.require(a, requirements="C") for name, a in tensors.items()}
    if metadata:
        arrays[NPZ_META] = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _atomic_write(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    crash_after = os.environ.get(_CRASH_ENV)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a save should not
        with os.fdopen(fd, "wb") as f:
            for start in range(0, len(data), _CHUNK):
                f.write(data[start:start + _CHUNK])
                if crash_after is not None and start + _CHUNK >= int(crash_after):
                    f.flush()
                    os._exit(17)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable (not possible on every platform)
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_tensors(path, tensors: dict, metadata: dict | None = None) -> None:
    """Write ``{name: array}`` to ``path`` (.safetensors or .npz) atomically.

    ``metadata``: str -> str map (safetensors' ``__metadata__``; a JSON array in .npz)."""
    kind = _format_of(path)
    tensors = {name: np.asarray(a) for name, a in tensors.items()}
    metadata = dict(metadata or {})
    data = (_safetensors_bytes if kind == "safetensors" else _npz_bytes)(tensors, metadata)
    _atomic_write(os.fspath(path), data)


def _read_safetensors(path: str) -> tuple:
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise CheckpointError(f"{path}: not a safetensors file ({len(raw)} bytes, too short "
                              f"for the 8-byte header length)")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise CheckpointError(f"{path}: not a safetensors file or truncated (header length {n} "
                              f"but only {len(raw) - 8} bytes follow)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(raw)[8 + n:]
    tensors = {}
    for name, info in header.items():
        try:
            dtype = np.dtype(_ST_DTYPES[info["dtype"]]).newbyteorder("<")
            shape = tuple(int(s) for s in info["shape"])
            start, stop = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: corrupt safetensors entry {name!r}: {info!r}") from None
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if not 0 <= start <= stop <= len(body) or stop - start != expected:
            raise CheckpointError(
                f"{path}: tensor {name!r} {info['dtype']}{list(shape)} needs {expected} bytes at "
                f"[{start}, {stop}) but the data section has {len(body)} bytes (truncated or "
                f"corrupt file)")
        array = np.frombuffer(body[start:stop], dtype=dtype).reshape(shape)
        # the canonical native dtype object: native kernels compare dtypes by identity
        tensors[name] = array.astype(_ST_DTYPES[info["dtype"]])
    return tensors, metadata


def _read_npz(path: str) -> tuple:
    import zipfile

    try:
        loaded = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable .npz file ({exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path}: not an .npz archive (a single .npy array)")
    try:
        with loaded as f:
            arrays = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: corrupt .npz archive ({exc})") from None
    metadata = {}
    if NPZ_META in arrays:
        try:
            metadata = json.loads(arrays.pop(NPZ_META).tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: corrupt {NPZ_META} entry ({exc})") from None
    return arrays, metadata


def read_tensors(path) -> tuple:
    """``(tensors, metadata)`` of a .safetensors or .npz file: ``{name: ndarray}`` and the
    str -> str metadata map. Raises FileNotFoundError or :class:`CheckpointError`."""
    path = os.fspath(path)
    kind = _format_of(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    return _read_safetensors(path) if kind == "safetensors" else _read_npz(path)


# ----- checkpoints ----------------------------------------------------------------------------


def _optimizer_parts(optimizer) -> tuple:
    """Optimizer state_dict split into arrays (for the tensor section) and JSON."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if hasattr(value, "shape"):
                tensors[f"{OPT_PREFIX}{index}.{key}"] = np.asarray(value)
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in state["param_groups"]]
    return tensors, {"class": type(optimizer).__name__, "param_groups": groups,
                     "scalars": scalars}


def _optimizer_state(info: dict, tensors: dict) -> dict:
    """Rebuild an optimizer state_dict from :func:`_optimizer_parts`'s output."""
    state = {}
    for index, entry in info.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entry)
    for name, array in tensors.items():
        index, key = name[len(OPT_PREFIX):].split(".", 1)
        state.setdefault(int(index), {})[key] = array
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()}
              for g in info["param_groups"]]
    return {"state": state, "param_groups": groups}


def save(model, path, *, optimizer=None, epoch: int | None = None, extra: dict | None = None):
    """Write ``model`` (its ``state_dict`` and ``model.config``) to ``path`` atomically.

    path: ``*.safetensors`` or ``*.npz``. optimizer: also store its state (``load_checkpoint``
    returns it). epoch: the number of finished epochs. extra: any JSON-able dict (history,
    RNG states, dataset options...). ``model.config`` must be the JSON-able dict that
    ``pyconv.models.create(**config)`` rebuilds the model from."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise TypeError(f"save: model must have a .config dict (models from "
                        f"pyconv.models.create have one), got {type(model).__name__} without one")
    tensors = {name: np.asarray(t) for name, t in model.state_dict().items()}
    info = {"format": "pyconv.checkpoint", "version": FORMAT_VERSION, "config": config,
            "epoch": epoch, "extra": extra or {}}
    if optimizer is not None:
        opt_tensors, info["optimizer"] = _optimizer_parts(optimizer)
        tensors.update(opt_tensors)
    try:
        text = json.dumps(info)
    except TypeError as exc:
        raise TypeError(f"save: config and extra must be JSON-able ({exc})") from None
    write_tensors(path, tensors, {META_KEY: text})


def _info(path: str, metadata: dict) -> dict:
    text = metadata.get(META_KEY)
    if text is None:
        raise CheckpointError(
            f"{path}: not a pyconv checkpoint (no {META_KEY!r} metadata with the model config); "
            f"read its tensors with pyconv.checkpoint.read_tensors and load them into a model "
            f"with model.load_state_dict")
    try:
        info = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupt pyconv metadata ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != "pyconv.checkpoint":
        raise CheckpointError(f"{path}: not a pyconv checkpoint (metadata {str(text)[:80]!r})")
    if info.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {info['version']} is newer "
                              f"than this pyconv reads ({FORMAT_VERSION}); upgrade pyconv")
    return info


def load_checkpoint(path) -> tuple:
    """``(model, state)`` from a file written by :func:`save`.

    model: rebuilt with ``pyconv.models.create(**config)`` and loaded with the saved weights.
    state: ``{"config", "epoch", "extra", "optimizer"}`` where optimizer is the optimizer's
    state_dict (for ``optimizer.load_state_dict``) or None, plus ``"optimizer_class"``."""
    from . import models

    path = os.fspath(path)
    tensors, metadata = read_tensors(path)
    info = _info(path, metadata)
    config = dict(info["config"])
    try:
        model = models.create(**config)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model from its config {config}: "
                              f"{exc}") from None
    weights = {k: v for k, v in tensors.items() if not k.startswith(OPT_PREFIX)}
    try:
        model.load_state_dict(weights)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit model {config.get('name')!r}: "
                              f"{exc}") from None
    opt_info = info.get("optimizer")
    optimizer = None
    if opt_info is not None:
        optimizer = _optimizer_state(
            opt_info, {k: v for k, v in tensors.items() if k.startswith(OPT_PREFIX)})
    state = {"config": config, "epoch": info.get("epoch"), "extra": info.get("extra") or {},
             "optimizer": optimizer,
             "optimizer_class": opt_info.get("class") if opt_info else None}
    return model, state


def load(path):
    """The model saved at ``path`` by :func:`save` (rebuilt from its config, weights loaded)."""
    return load_checkpoint(path)[0]
