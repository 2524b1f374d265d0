"""The autotuning hook: pick among a kernel's compiled variants per shape by timing each once on
the device, and cache the winner.

Off by default: the heuristics choose (:func:`~pyconv.backends.cuda_glue.conv.choose_tile` for
convolution tiles, the float4 weight path whenever it is allowed, ``_tile_rows`` for GEMM rows).
``pyconv.cuda.set_autotune(True)`` or ``PYCONV_CUDA_AUTOTUNE=1`` turns it on. Then the first call
of an op with a new key (op, shapes, dtype, strides...) launches every candidate configuration
``repeats`` times after one warm-up launch, timed by the device (CUDA events on a GPU, the wall
clock under the emulator), keeps the one with the lowest median, and finally runs the winner, so
the result is the winner's whether or not the key was cached. Choices are cached in memory and
in a JSON file per device model (``~/.cache/pyconv/autotune/<device>.json``; the directory from
``PYCONV_AUTOTUNE_DIR``), rewritten atomically after each new choice, so later processes skip
the timing. A cache file that cannot be read is ignored with a warning.

Every candidate must compute the same result and overwrite its outputs completely (GEMMs that
accumulate into ``out`` are tuned on a scratch copy): the glue passes a ``launch(config)``
closure that allocates or overwrites its outputs and returns them.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import warnings
from pathlib import Path

__all__ = ["Autotuner", "cache_dir", "choose", "enabled_from_environment"]

ENV_SWITCH = "PYCONV_CUDA_AUTOTUNE"
ENV_DIR = "PYCONV_AUTOTUNE_DIR"


def enabled_from_environment() -> bool:
    return os.environ.get(ENV_SWITCH, "0").strip().lower() in ("1", "true", "yes", "on")


def cache_dir() -> Path:
    root = os.environ.get(ENV_DIR)
    return Path(root) if root else Path.home() / ".cache" / "pyconv" / "autotune"


def _plain(value):
    item = getattr(value, "item", None)  # NumPy scalars (the glue's i32/i64 kernel arguments)
    if item is None:
        raise TypeError(f"autotune keys hold numbers, strings, bools and tuples, not {type(value)}")
    return item()


def _encode(config):
    """``config`` as it comes back from the JSON file (tuples -> lists, NumPy ints -> int)."""
    return json.loads(json.dumps(config, default=_plain))


class Autotuner:
    """Choices of one device: ``key -> config``, backed by ``path`` (None: memory only).

    ``timer(fn) -> seconds`` times one call of ``fn`` on the device.
    """

    def __init__(self, timer, path: Path | None = None, repeats: int = 3):
        if repeats < 1:
            raise ValueError(f"Autotuner: repeats must be >= 1, got {repeats}")
        self.timer = timer
        self.path = path
        self.repeats = repeats
        self.choices: dict[str, object] = {}
        # key -> {config as JSON text: median seconds}, for reports of this process's tuning
        self.timings: dict[str, dict[str, float]] = {}
        if path is not None and path.exists():
            try:
                loaded = json.loads(path.read_text())
                if not isinstance(loaded, dict):
                    raise ValueError("not a JSON object")
                self.choices.update(loaded)
            except (OSError, ValueError) as exc:
                warnings.warn(f"pyconv autotune: ignoring the unreadable cache {path} ({exc})",
                              RuntimeWarning, stacklevel=2)

    def run(self, op: str, key, candidates, launch):
        """``launch(config)`` with the cached or newly measured best of ``candidates``."""
        name = f"{op}|{json.dumps(_encode(key), separators=(',', ':'))}"
        encoded = [_encode(c) for c in candidates]
        chosen = self.choices.get(name)
        if chosen not in encoded:  # not tuned yet, or a variant this build no longer has
            medians = {}
            for config in candidates:
                launch(config)  # warm-up: module load, caches
                times = [self.timer(lambda c=config: launch(c)) for _ in range(self.repeats)]
                medians[json.dumps(_encode(config))] = statistics.median(times)
            best = min(range(len(candidates)), key=lambda i: medians[json.dumps(encoded[i])])
            chosen = encoded[best]
            self.choices[name] = chosen
            self.timings[name] = medians
            self._save()
        return launch(candidates[encoded.index(chosen)])

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(self.choices, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError as exc:
            warnings.warn(f"pyconv autotune: cannot write {self.path} ({exc}); choices are kept "
                          "for this process only", RuntimeWarning, stacklevel=3)


def cache_file(device_label: str) -> Path:
    """The cache file of a device model, e.g. ``NVIDIA A100-SXM4-40GB sm_80``."""
    return cache_dir() / (re.sub(r"[^A-Za-z0-9_.-]+", "_", device_label).strip("_") + ".json")


def choose(dev, op: str, key, candidates, default, launch):
    """``launch(default)`` unless ``dev`` autotunes and there is more than one candidate."""
    tuner = getattr(dev, "autotuner", None)
    if tuner is None or len(candidates) < 2:
        return launch(default)
    return tuner.run(op, key, candidates, launch)
