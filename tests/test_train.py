"""``pyconv train``'s training run, in-process: the default configuration learns the bundled
digits, runs are reproducible per seed, SGD works too, data are fitted to each model, the
denoising autoencoder's error falls, and the schedules set the learning rate."""

import io
import re

import numpy as np
import pytest

from pyconv import training
from pyconv.metrics import accuracy


def test_default_configuration_reaches_97_percent():
    progress, log = io.StringIO(), io.StringIO()
    result = training.train_digits(progress_stream=progress, log=log)
    assert result.test_accuracy >= 0.97, [h["val_accuracy"] for h in result.history]
    assert result.test_total == 359
    assert result.test_correct == round(result.test_accuracy * 359)
    assert len(result.history) == training.DEFAULT_EPOCHS
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert result.images_per_second > 0
    # the returned model is the trained one: re-evaluating it gives the reported accuracy
    prepared = result.prepared
    preds = training.predict(result.model, prepared.normalize(prepared.test_images))
    assert accuracy(preds, prepared.test_labels) == result.test_accuracy
    lines = re.findall(r"^epoch \d+/\d+: train loss .* val accuracy", log.getvalue(), re.M)
    assert len(lines) == training.DEFAULT_EPOCHS
    # not a TTY: one progress line per epoch
    assert len(progress.getvalue().splitlines()) == training.DEFAULT_EPOCHS


def test_training_is_reproducible_for_a_seed():
    small = dict(epochs=1, seed=5, quiet=True, test_fraction=0.5, val_fraction=0.5)
    first = training.train_digits(**small)
    second = training.train_digits(**small)
    assert first.history[0]["train_loss"] == second.history[0]["train_loss"]
    assert first.test_accuracy == second.test_accuracy
    pairs = zip(first.model.state_dict().items(), second.model.state_dict().items())
    for (name, a), (_, b) in pairs:
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


# ----- the general training run (pyconv.training_loop, pyconv.training_data) ------------------


def test_prepare_fits_digits_to_a_three_channel_32x32_model():
    from pyconv.data import load_dataset, transforms
    from pyconv.training_data import prepare

    prepared = prepare("cifar_convnet", "digits", seed=1, val_fraction=0.25)
    raw = load_dataset("digits", "train", seed=1)
    n_val = len(prepared.val_labels)
    assert prepared.train_images.shape == (len(raw.labels) - n_val, 3, 32, 32)
    assert prepared.val_images.shape == (n_val, 3, 32, 32)
    assert prepared.test_images.shape[1:] == (3, 32, 32)
    # the grey channel is repeated; the pixels are the Resize transform's
    np.testing.assert_array_equal(prepared.train_images[:, 0], prepared.train_images[:, 2])
    resized = np.asarray(transforms.Resize((32, 32))(raw.images))
    together = np.concatenate([prepared.train_images[:, :1], prepared.val_images[:, :1]])
    assert sorted(map(bytes, together)) == sorted(map(bytes, resized.astype(np.float32)))
    # the validation split is stratified: each class keeps about a quarter of its images
    counts = np.bincount(prepared.val_labels, minlength=10)
    totals = np.bincount(raw.labels, minlength=10)
    assert np.all(np.abs(counts - 0.25 * totals) <= 1)
    # normalisation statistics come from the training side only
    assert prepared.mean == pytest.approx(float(prepared.train_images.mean(dtype=np.float64)))


def _run(**kwargs):
    from pyconv.training_loop import fit

    return fit(quiet=True, **kwargs)


def test_denoising_autoencoder_reconstruction_error_falls():
    result = _run(model="conv_autoencoder", dataset="digits", input_size=(8, 8), epochs=3,
                  noise=0.2, lr=5e-3, batch_size=32, seed=0)
    assert result.task == "reconstruction"
    val = [h["val_mse"] for h in result.history]
    assert val[-1] < 0.8 * val[0], val
    train = [h["train_loss"] for h in result.history]
    assert train[-1] < train[0], train
    # the reported test error is the MSE of the reconstructions of noisy test inputs
    from pyconv.training_loop import VAL_NOISE_SEED, model_outputs, noisy

    clean = result.prepared.test_images
    x = noisy(clean, 0.2, np.random.default_rng(0 + VAL_NOISE_SEED))
    out = model_outputs(result.model, x).astype(np.float64)
    assert result.test["mse"] == pytest.approx(np.mean((out - clean) ** 2), rel=1e-9)


def test_step_schedule_divides_the_lr_by_ten_each_third():
    result = _run(epochs=3, schedule="step", lr=1e-3, test_fraction=0.5, val_fraction=0.5,
                  batch_size=128)
    lrs = [h["lr"] for h in result.history]
    assert lrs == pytest.approx([1e-3, 1e-4, 1e-5])  # the rate each epoch trained with


def test_run_options_are_checked():
    from pyconv.training_loop import fit

    with pytest.raises(training.UsageError, match="unknown schedule 'linear'"):
        fit(schedule="linear", quiet=True)
    with pytest.raises(training.UsageError, match="val_fraction must be in"):
        fit(val_fraction=1.0, quiet=True)
    with pytest.raises(training.UsageError, match="unknown model 'nope'"):
        fit(model="nope", quiet=True)
