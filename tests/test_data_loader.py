"""DataLoader: batching, drop_last, seeded shuffling, the batch transform, and the background
prefetch thread (same batches as without it, bounded, errors re-raised, no leaked thread)."""

import threading
import time
import traceback

import numpy as np
import pytest

import pyconv
from pyconv.data import DataLoader, Dataset, TensorDataset, load_digits


def _dataset(n=10):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return TensorDataset(x, np.arange(n))


def _loader_threads():
    return [t for t in threading.enumerate() if t.name == "pyconv-DataLoader"]


@pytest.fixture(autouse=True)
def no_leaked_threads():
    yield
    deadline = time.monotonic() + 2
    while _loader_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _loader_threads() == []


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("n,batch,drop_last", [(10, 3, False), (10, 3, True), (10, 5, True),
                                               (10, 5, False), (7, 10, False), (1, 1, False)])
def test_batches_in_order(n, batch, drop_last, prefetch):
    ds = _dataset(n)
    loader = DataLoader(ds, batch_size=batch, drop_last=drop_last, prefetch=prefetch)
    batches = list(loader)
    assert len(batches) == len(loader)
    sizes = [b[1].shape[0] for b in batches]
    full, rest = divmod(n, batch)
    assert sizes == [batch] * full + ([] if drop_last or rest == 0 else [rest])
    labels = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(labels, np.arange(len(labels)))
    for xb, yb in batches:
        assert isinstance(xb, pyconv.Tensor) and xb.dtype == np.float32
        np.testing.assert_array_equal(xb.numpy(), ds.arrays[0][yb.numpy()])


def test_takes_a_tuple_of_arrays_as_a_tensor_dataset():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    y = np.arange(5)
    batches = list(DataLoader((x, pyconv.tensor(y)), batch_size=2))
    assert [b[0].shape for b in batches] == [(2, 2), (2, 2), (1, 2)]
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y)
    with pytest.raises(ValueError, match="tensor 1 has 4 samples"):
        DataLoader((x, y[:4]))


def test_drop_last_with_fewer_samples_than_a_batch_yields_nothing():
    loader = DataLoader(_dataset(4), batch_size=5, drop_last=True)
    assert len(loader) == 0 and list(loader) == []


def _epoch_labels(loader):
    return np.concatenate([yb.numpy() for _, yb in loader])


def test_shuffle_with_seed_is_a_reproducible_permutation_per_pass():
    ds = _dataset(50)
    a = DataLoader(ds, batch_size=8, shuffle=True, seed=11)
    b = DataLoader(ds, batch_size=8, shuffle=True, seed=11, prefetch=0)
    first, second = _epoch_labels(a), _epoch_labels(a)
    for order in (first, second):
        np.testing.assert_array_equal(np.sort(order), np.arange(50))
    assert not np.array_equal(first, np.arange(50))
    assert not np.array_equal(first, second)  # a new order every pass
    np.testing.assert_array_equal(_epoch_labels(b), first)
    np.testing.assert_array_equal(_epoch_labels(b), second)
    c = DataLoader(ds, batch_size=8, shuffle=True, seed=12)
    assert not np.array_equal(_epoch_labels(c), first)


def test_shuffle_without_seed_follows_manual_seed():
    ds = _dataset(40)
    loader = DataLoader(ds, batch_size=16, shuffle=True)
    pyconv.manual_seed(5)
    first = _epoch_labels(loader)
    pyconv.manual_seed(5)
    again = _epoch_labels(loader)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(np.sort(first), np.arange(40))
    shuffled_drop = _epoch_labels(DataLoader(ds, batch_size=16, shuffle=True, drop_last=True))
    assert shuffled_drop.size == 32 and np.unique(shuffled_drop).size == 32


class _CountingDataset(TensorDataset):
    def __init__(self, *arrays, fail_at=None):
        super().__init__(*arrays)
        self.item_calls = 0
        self.batch_calls = 0
        self.threads = set()
        self.fail_at = fail_at

    def __getitem__(self, index):
        self.item_calls += 1
        return super().__getitem__(index)

    def get_batch(self, indices):
        self.batch_calls += 1
        self.threads.add(threading.get_ident())
        if self.batch_calls == self.fail_at:
            raise KeyError(f"broken sample in batch {self.batch_calls}")
        return super().get_batch(indices)


def test_indexes_array_backed_datasets_once_per_batch():
    ds = _CountingDataset(np.zeros((20, 3), np.float32), np.arange(20))
    assert len(list(DataLoader(ds, batch_size=6, shuffle=True, seed=0))) == 4
    assert ds.batch_calls == 4 and ds.item_calls == 0


class _SampleDataset(Dataset):
    """Not array-backed: samples are made one at a time."""

    def __init__(self, n, tuples=True):
        self.n, self.tuples = n, tuples

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = np.full((2, 2), i, dtype=np.float64)
        return (x, i) if self.tuples else x


def test_stacks_samples_of_other_datasets():
    xb, yb = next(iter(DataLoader(_SampleDataset(5), batch_size=3)))
    assert xb.shape == (3, 2, 2) and xb.dtype == np.float64
    assert yb.dtype == np.int64
    np.testing.assert_array_equal(yb.numpy(), [0, 1, 2])
    np.testing.assert_array_equal(xb.numpy()[:, 0, 0], [0, 1, 2])
    single = list(DataLoader(_SampleDataset(5, tuples=False), batch_size=2, transform=lambda a: -a))
    assert [b.shape for b in single] == [(2, 2, 2), (2, 2, 2), (1, 2, 2)]
    np.testing.assert_array_equal(single[2].numpy(), -np.full((1, 2, 2), 4.0))


def test_argument_errors():
    ds = _dataset(4)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        DataLoader(ds, batch_size=2.0)
    with pytest.raises(TypeError, match="seed must be an int or None"):
        DataLoader(ds, seed=1.5)
    with pytest.raises(TypeError, match="dataset must define __len__ and __getitem__"):
        DataLoader(object())
    with pytest.raises(TypeError, match="transform must be callable, got int"):
        DataLoader(ds, transform=3)
    with pytest.raises(ValueError, match="prefetch must be >= 0, got -1"):
        DataLoader(ds, prefetch=-1)
    with pytest.raises(TypeError, match="prefetch must be an int"):
        DataLoader(ds, prefetch=None)


# ----- transform --------------------------------------------------------------------------


def test_transform_gets_the_first_fields_numpy_batch():
    images, labels = load_digits()
    seen = []

    def transform(batch):
        seen.append((type(batch), batch.shape, batch.dtype))
        return batch[:, :, ::-1, :] * 2  # an exact flip and scale

    loader = DataLoader(TensorDataset(images[:10], labels[:10]), batch_size=4, transform=transform)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in loader])
    assert seen[0] == (np.ndarray, (4, 1, 8, 8), np.float32) and len(seen) == 3
    np.testing.assert_array_equal(np.concatenate(xs), images[:10, :, ::-1, :] * 2)
    np.testing.assert_array_equal(np.concatenate(ys), labels[:10])  # labels untouched


class _SeededNoise:
    """A random transform with its own generator, as pyconv.data.transforms' seeded ones."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch):
        return batch + self.rng.standard_normal(batch.shape).astype(batch.dtype)


def _global_noise(batch):
    """A random transform drawing from pyconv's global generator (seed=None transforms)."""
    return batch + pyconv.random.generator().standard_normal(batch.shape).astype(batch.dtype)


def _run(loader, interleave):
    out = []
    for xb, yb in loader:
        if interleave:  # the training loop draws too (dropout, initialisation)
            pyconv.randn(3)
        out.append((xb.numpy().copy(), yb.numpy().copy()))
    return out


@pytest.mark.parametrize("kind", ["seeded", "global"])
@pytest.mark.parametrize("seed", [3, None])
def test_prefetch_gives_the_same_batches_as_building_in_the_loop(kind, seed):
    def make_transform():
        return _SeededNoise(4) if kind == "seeded" else _global_noise

    ds = _dataset(37)
    results = []
    for prefetch in (0, 1, 3):
        pyconv.manual_seed(9)
        loader = DataLoader(ds, batch_size=5, shuffle=True, seed=seed,
                            transform=make_transform(), prefetch=prefetch)
        results.append(_run(loader, interleave=True) + _run(loader, interleave=True))
    for other in results[1:]:
        assert len(other) == len(results[0]) == 16
        for (xa, ya), (xb, yb) in zip(results[0], other):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)
    pyconv.manual_seed(10)
    changed = _run(DataLoader(ds, batch_size=5, shuffle=True, seed=seed,
                              transform=make_transform()), interleave=True)
    if kind == "global":  # manual_seed reproduces the draws, so another seed changes them
        assert not np.array_equal(changed[0][0], results[0][0][0])


# ----- the background thread --------------------------------------------------------------


def test_batches_are_built_in_a_background_thread_ahead_of_the_loop():
    ds = _CountingDataset(np.zeros((40, 2), np.float32), np.arange(40))
    it = iter(DataLoader(ds, batch_size=2, prefetch=2))
    next(it)
    deadline = time.monotonic() + 5
    while ds.batch_calls < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    # one consumed, two queued, one built and waiting for room: the queue is bounded
    assert ds.batch_calls == 4
    assert threading.get_ident() not in ds.threads
    del it
    serial = _CountingDataset(np.zeros((4, 2), np.float32), np.arange(4))
    list(DataLoader(serial, batch_size=2, prefetch=0))
    assert serial.threads == {threading.get_ident()}


@pytest.mark.parametrize("how", ["break", "drop", "close"])
def test_leaving_early_stops_the_thread(how):
    ds = _CountingDataset(np.zeros((200, 2), np.float32), np.arange(200))
    loader = DataLoader(ds, batch_size=2, prefetch=2)
    if how == "break":
        for k, _ in enumerate(loader):
            if k == 3:
                break
    else:
        it = iter(loader)
        next(it)
        assert len(_loader_threads()) == 1
        if how == "close":
            it.close()
        del it
    assert _loader_threads() == []  # stopped and joined, not merely asked to stop
    calls = ds.batch_calls
    time.sleep(0.1)
    assert ds.batch_calls == calls < 100


def test_errors_are_reraised_in_the_loop_with_their_traceback():
    ds = _CountingDataset(np.zeros((20, 2), np.float32), np.arange(20), fail_at=3)
    got = []
    with pytest.raises(KeyError, match="broken sample in batch 3") as info:
        for xb, _ in DataLoader(ds, batch_size=2, prefetch=2):
            got.append(xb)
    assert len(got) == 2  # the batches before the failure arrive first
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "get_batch" in frames  # where it was raised, in the worker thread
    assert threading.get_ident() not in ds.threads


def test_a_failing_transform_is_reraised_too():
    def transform(batch):
        raise ValueError("transform broke")

    with pytest.raises(ValueError, match="transform broke"):
        list(DataLoader(_dataset(6), batch_size=2, transform=transform))


def test_where_a_transform_runs():
    # with per-thread generators in pyconv.random the transform runs ahead in the worker; without
    # them it runs in the loop's thread, which keeps the global generator's draws in order
    threads = set()

    def transform(batch):
        threads.add(threading.get_ident())
        return batch

    list(DataLoader(_dataset(6), batch_size=2, transform=transform, prefetch=2))
    in_worker = hasattr(pyconv.random, "thread_generator")
    assert (threading.get_ident() in threads) != in_worker and len(threads) == 1


def test_augmentation_from_spec_is_the_same_with_prefetch():
    from pyconv.data.transforms import from_spec

    images, labels = load_digits()
    ds = TensorDataset(images[:40], labels[:40])
    runs = []
    for prefetch in (0, 2):
        pyconv.manual_seed(1)
        loader = DataLoader(ds, batch_size=8, shuffle=True, prefetch=prefetch,
                            transform=from_spec("flip,rotate=15,shift=0.1,noise=0.1"))
        runs.append([xb for xb, _ in _run(loader, interleave=True)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
