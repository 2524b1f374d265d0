"""``pyconv train``'s training function, run in-process: the default configuration learns the
bundled digits, runs are reproducible per seed, and SGD works too."""

import io
import re

import numpy as np
import pytest

from pyconv import training
from pyconv.metrics import accuracy


def test_default_configuration_reaches_95_percent():
    progress, log = io.StringIO(), io.StringIO()
    result = training.train_digits(progress_stream=progress, log=log)
    assert result.test_accuracy >= 0.95, [h["test_accuracy"] for h in result.history]
    assert result.test_total == 359
    assert result.test_correct == round(result.test_accuracy * 359)
    assert len(result.history) == training.DEFAULT_EPOCHS
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert result.images_per_second > 0
    # the returned model is the trained one: re-evaluating it gives the reported accuracy
    images, labels = training.all_samples(training.digits_split(0, 0.2)[1])
    assert accuracy(training.predict(result.model, images), labels) == result.test_accuracy
    assert len(re.findall(r"^epoch \d+/\d+: test accuracy", log.getvalue(), re.M)) == training.DEFAULT_EPOCHS
    assert len(progress.getvalue().splitlines()) == training.DEFAULT_EPOCHS  # not a TTY: a line per epoch


def test_training_is_reproducible_for_a_seed():
    first = training.train_digits(epochs=1, seed=5, quiet=True)
    second = training.train_digits(epochs=1, seed=5, quiet=True)
    assert first.history[0]["train_loss"] == second.history[0]["train_loss"]
    assert first.test_accuracy == second.test_accuracy
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_sgd_with_momentum_learns():
    result = training.train_digits(epochs=2, optimizer="sgd", seed=1, quiet=True)
    assert result.test_accuracy >= 0.8, [h["test_accuracy"] for h in result.history]


def test_unknown_optimizer_and_backend_are_usage_errors():
    with pytest.raises(training.UsageError, match="unknown optimizer 'rmsprop'"):
        training.train_digits(epochs=1, optimizer="rmsprop", quiet=True)
    with pytest.raises(training.UsageError, match="unknown backend 'nope'"):
        training.train_digits(epochs=1, backend="nope", quiet=True)
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        training.train_digits(epochs=0, quiet=True)


def test_digits_split_standardises_with_the_training_statistics():
    from pyconv.data import load_digits_split

    train, test = training.digits_split(3, 0.2)
    (raw_train, _), (raw_test, test_labels) = load_digits_split(seed=3)
    images = training.all_samples(train)[0].astype(np.float64)
    assert abs(images.mean()) < 1e-5 and images.std() == pytest.approx(1, rel=1e-5)
    mean, std = raw_train.mean(dtype=np.float64), raw_train.std(dtype=np.float64)
    np.testing.assert_allclose(training.all_samples(test)[0], (raw_test - mean) / std,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(training.all_samples(test)[1], test_labels)


def _torch_twin(name, torch):
    """The same network written with torch.nn (features / classifier Sequentials)."""
    tnn = torch.nn

    def block(cin, cout, pad):
        return [tnn.Conv2d(cin, cout, 3, padding=pad), tnn.ReLU(), tnn.MaxPool2d(2)]

    class Twin(tnn.Module):
        def __init__(self, features, classifier):
            super().__init__()
            self.features, self.classifier = tnn.Sequential(*features), tnn.Sequential(*classifier)

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))

    if name == "LeNetDigits":
        return Twin([tnn.Conv2d(1, 16, 3, padding=1), tnn.ReLU(), *block(16, 32, 1)],
                    [tnn.Linear(512, 64), tnn.ReLU(), tnn.Linear(64, 10)]), (1, 8, 8)
    if name == "LeNetMNIST":
        return Twin([*block(1, 32, 0), *block(32, 64, 0)],
                    [tnn.Linear(1600, 128), tnn.ReLU(), tnn.Linear(128, 10)]), (1, 28, 28)
    return Twin([*block(3, 32, 1), *block(32, 64, 1), *block(64, 128, 1)],
                [tnn.Linear(2048, 256), tnn.ReLU(), tnn.Linear(256, 10)]), (3, 32, 32)


@pytest.mark.parametrize("name", ["LeNetDigits", "LeNetMNIST", "CifarConvNet"])
def test_models_match_their_torch_twins(name):
    from torch_compare import require_torch

    import pyconv
    from pyconv import models

    torch = require_torch()
    twin, image_shape = _torch_twin(name, torch)
    model = getattr(models, name)()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert ours == theirs
    model.load_state_dict(twin.state_dict())
    x = np.random.default_rng(0).standard_normal((2, *image_shape)).astype(np.float32)
    out = model(pyconv.tensor(x))
    assert out.shape == (2, 10) and out.dtype == np.float32
    with torch.no_grad():
        expected = twin(torch.tensor(x)).numpy()
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-4, atol=1e-5)
