"""Checkpoints (pyconv.checkpoint): round trips in both formats, the safetensors layout checked
byte by byte and against the ``safetensors`` package, optimizer state that continues training
identically, atomic saves (a save killed half way leaves the old file intact) and clear errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv import checkpoint, models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _model(name="lenet_digits", **kwargs):
    pyconv.manual_seed(1)
    return models.create(name, **kwargs)


def _outputs(model, shape):
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    model.eval()
    with pyconv.no_grad():
        return np.asarray(model(pyconv.from_numpy(x)))


@pytest.mark.parametrize("ext", ["safetensors", "npz"])
@pytest.mark.parametrize("name,kwargs,shape", [
    ("lenet_digits", {}, (3, 1, 8, 8)),
    ("resnet_mini", {"input_size": (12, 12), "widths": [4, 8, 8]}, (2, 1, 12, 12)),
    ("rnn_classifier", {"input_size": (6, 6), "cell": "gru", "hidden_size": 8}, (2, 1, 6, 6)),
])
def test_round_trip_rebuilds_the_model_with_identical_outputs(tmp_path, ext, name, kwargs, shape):
    model = _model(name, **kwargs)
    if name == "resnet_mini":  # move the batch-norm running statistics off their defaults
        model.train()
        model(pyconv.from_numpy(np.random.default_rng(3).random(shape, dtype=np.float32) * 4))
    path = tmp_path / f"m.{ext}"
    pyconv.save(model, path)
    loaded = pyconv.load(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    for (key, a), (key2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert key == key2
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=key)
    np.testing.assert_array_equal(_outputs(model, shape), _outputs(loaded, shape))


def test_safetensors_layout_follows_the_format(tmp_path):
    model = _model()
    path = tmp_path / "m.safetensors"
    pyconv.save(model, path, epoch=4, extra={"note": "x"})
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0 and 8 + n <= len(raw)
    header = json.loads(raw[8:8 + n])
    info = json.loads(header.pop("__metadata__")["pyconv"])
    assert info["config"] == model.config and info["epoch"] == 4 and info["extra"] == {"note": "x"}
    state = model.state_dict()
    assert set(header) == set(state)
    ends = sorted(tuple(h["data_offsets"]) for h in header.values())
    assert ends[0][0] == 0 and ends[-1][1] == len(raw) - 8 - n
    assert all(a[1] == b[0] for a, b in zip(ends, ends[1:]))  # contiguous, no holes
    for key, entry in header.items():
        expected = np.asarray(state[key])
        assert entry["dtype"] == "F32" and entry["shape"] == list(expected.shape)
        start, stop = entry["data_offsets"]
        data = np.frombuffer(raw[8 + n + start:8 + n + stop], dtype="<f4").reshape(expected.shape)
        np.testing.assert_array_equal(data, expected)


def test_the_safetensors_package_reads_ours_and_we_read_its(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    safe_open = pytest.importorskip("safetensors").safe_open
    model = _model()
    ours = tmp_path / "ours.safetensors"
    pyconv.save(model, ours)
    loaded = st.load_file(str(ours))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded[key], np.asarray(value))
    with safe_open(str(ours), framework="numpy") as f:
        assert json.loads(f.metadata()["pyconv"])["config"] == model.config

    arrays = {"a": np.arange(6, dtype=np.int64).reshape(2, 3),
              "b": np.linspace(0, 1, 5, dtype=np.float64), "c": np.ones((2, 2), np.float16)}
    theirs = tmp_path / "theirs.safetensors"
    st.save_file(arrays, str(theirs), metadata={"k": "v"})
    tensors, metadata = checkpoint.read_tensors(theirs)
    assert metadata == {"k": "v"} and set(tensors) == set(arrays)
    for key, value in arrays.items():
        assert tensors[key].dtype == value.dtype
        np.testing.assert_array_equal(tensors[key], value)
    with pytest.raises(checkpoint.CheckpointError, match="not a pyconv checkpoint"):
        pyconv.load(theirs)


def _train_step(model, opt, seed):
    rng = np.random.default_rng(seed)
    x = pyconv.from_numpy(rng.random((8, 1, 8, 8), dtype=np.float32))
    y = pyconv.from_numpy(rng.integers(0, 10, 8).astype(np.int64))
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


@pytest.mark.parametrize("ext", ["safetensors", "npz"])
@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_optimizer_state_continues_training_identically(tmp_path, ext, kind):
    def make(model):
        if kind == "adam":
            return pyconv.optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.99))
        return pyconv.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)

    model = _model()
    opt = make(model)
    for step in range(3):
        _train_step(model, opt, step)
    path = tmp_path / f"m.{ext}"
    pyconv.save(model, path, optimizer=opt, epoch=3)
    resumed, state = checkpoint.load_checkpoint(path)
    assert state["epoch"] == 3 and state["optimizer_class"] == type(opt).__name__
    resumed_opt = make(resumed)
    resumed_opt.load_state_dict(state["optimizer"])
    for step in (3, 4):
        _train_step(model, opt, step)
        _train_step(resumed, resumed_opt, step)
    for (key, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=key)


_SAVE_SCRIPT = """
import sys, pyconv
from pyconv import models
pyconv.manual_seed(int(sys.argv[2]))
pyconv.save(models.create("keras_cnn"), sys.argv[1])
"""


@pytest.mark.parametrize("ext", ["safetensors", "npz"])
def test_a_save_killed_half_way_leaves_the_old_checkpoint_intact(tmp_path, ext):
    path = tmp_path / f"m.{ext}"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", _SAVE_SCRIPT, str(path), "1"], env=env, check=True,
                   timeout=120)
    before = path.read_bytes()
    assert len(before) > 4 * checkpoint._CHUNK  # written in several chunks: cut in the middle
    env[checkpoint._CRASH_ENV] = str(len(before) // 2)
    proc = subprocess.run([sys.executable, "-c", _SAVE_SCRIPT, str(path), "2"], env=env,
                          timeout=120, capture_output=True)
    assert proc.returncode == 17, proc.stderr  # the hook's exit: the save really was cut short
    leftovers = [p for p in tmp_path.iterdir() if p.name != path.name]
    assert leftovers and all(0 < p.stat().st_size < len(before) for p in leftovers)
    assert path.read_bytes() == before
    pyconv.manual_seed(1)
    expected = models.create("keras_cnn")
    loaded = pyconv.load(path)
    for (key, a), (_, b) in zip(expected.state_dict().items(), loaded.state_dict().items()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=key)


def test_errors_name_the_problem(tmp_path):
    model = _model()
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        pyconv.load(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match=r"must end in \.safetensors or \.npz, got"):
        pyconv.save(model, tmp_path / "m.pt")
    with pytest.raises(TypeError, match="must have a .config dict"):
        pyconv.save(pyconv.nn.Linear(2, 2), tmp_path / "m.npz")


def _truncated(tmp_path):
    good = tmp_path / "good.safetensors"
    pyconv.save(_model(), good)
    return good.read_bytes()[:-100]


@pytest.mark.parametrize("name,content,message", [
    ("truncated.safetensors", _truncated, "truncated"),
    ("short.safetensors", lambda _: b"\x01\x02", "too short"),
    ("garbage.safetensors", lambda _: (16).to_bytes(8, "little") + b"{not json at all",
     "corrupt safetensors header"),
    ("bad.npz", lambda _: b"this is not a zip archive", "not a readable .npz"),
])
def test_corrupt_files_are_checkpoint_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content(tmp_path))
    with pytest.raises(checkpoint.CheckpointError, match=message):
        pyconv.load(path)


def test_a_foreign_npz_is_not_a_checkpoint(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.zeros(3))
    with pytest.raises(checkpoint.CheckpointError, match="not a pyconv checkpoint"):
        pyconv.load(plain)
