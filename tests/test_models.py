"""pyconv.models: the registry, every model's shapes and gradients, its torch twin (same
state_dict keys and shapes, same outputs on the same weights) and a short training run."""

import json

import numpy as np
import pytest

import pyconv
import pyconv.nn.functional as F
from pyconv import models
from pyconv.models import CifarConvNet, LeNetDigits, LeNetMNIST

NAMES = ["lenet_digits", "lenet", "keras_cnn", "cifar_convnet", "mnist_cnn", "rnn_classifier",
         "conv_autoencoder", "resnet_mini"]

# a second input size each model must handle (and its expected output size)
OTHER_SIZES = {"lenet_digits": (12, 10), "lenet": (32, 32), "keras_cnn": (32, 32),
               "cifar_convnet": (28, 28), "mnist_cnn": (32, 32), "rnn_classifier": (8, 8),
               "conv_autoencoder": (32, 32), "resnet_mini": (8, 8)}

# model name -> (option overrides) for the extra configurations checked against torch
VARIANTS = [
    ("rnn_classifier", {"cell": "gru", "bidirectional": True, "hidden_size": 16}),
    ("rnn_classifier", {"cell": "rnn", "num_layers": 2, "hidden_size": 8}),
    ("resnet_mini", {"widths": [8, 8]}),
    ("conv_autoencoder", {"input_size": (9, 7), "in_channels": 3}),
    ("keras_cnn", {"dropout": 0.25, "padding": "valid"}),
]


def _input(model, batch=2, seed=0, rows=None):
    c, h, w = model.config["in_channels"], *model.config["input_size"]
    rng = np.random.default_rng(seed)
    return rng.random((batch, c, rows or h, w), dtype=np.float32)


def _state_shapes(state_dict):
    return {k: tuple(v.shape) for k, v in state_dict.items()}


@pytest.fixture(autouse=True)
def one_thread():
    # on a machine shared by several test runs, two threads per run wait on each other: one
    # thread made the training runs below 5-8x faster
    threads = pyconv.get_num_threads()
    pyconv.set_num_threads(1)
    yield
    pyconv.set_num_threads(threads)


# ----- registry ----------------------------------------------------------------------------


def test_available_lists_every_model_and_specs_describe_them():
    assert models.available() == NAMES
    for name in NAMES:
        s = models.spec(name)
        assert s.name == name and s.description
        assert len(s.input_size) == 2 and all(v > 0 for v in s.input_size)
        assert s.task == ("reconstruction" if name == "conv_autoencoder" else "classification")
        assert s.loss == ("mse" if s.task == "reconstruction" else "cross_entropy")
        assert (s.num_classes is None) == (s.task == "reconstruction")
    assert models.spec("lenet_digits").input_size == (8, 8)
    assert models.spec("lenet").input_size == (28, 28)
    assert models.spec("cifar_convnet").input_size == (32, 32)
    assert models.spec("cifar_convnet").in_channels == 3
    assert dict(models.spec("rnn_classifier").options) == {
        "cell": "lstm", "hidden_size": 128, "num_layers": 1, "bidirectional": False}


@pytest.mark.parametrize("name", NAMES)
def test_create_config_round_trip_through_json(name):
    size = OTHER_SIZES[name]
    model = models.create(name, in_channels=2, num_classes=3, input_size=size)
    config = json.loads(json.dumps(model.config))
    assert config == model.config and config["name"] == name
    assert config["in_channels"] == 2 and config["input_size"] == list(size)
    assert config["num_classes"] == (None if name == "conv_autoencoder" else 3)
    again = models.create(**config)
    assert type(again) is type(model) and again.config == model.config
    assert _state_shapes(again.state_dict()) == _state_shapes(model.state_dict())


def test_create_defaults_come_from_the_spec_and_classes_carry_config():
    assert models.create("lenet").config == {
        "name": "lenet", "in_channels": 1, "num_classes": 10, "input_size": [28, 28]}
    assert LeNetDigits().config == models.create("lenet_digits").config
    assert models.create("lenet", input_size=20).config["input_size"] == [20, 20]
    # the benchmarks' three-block model is unchanged
    shapes = _state_shapes(CifarConvNet().state_dict())
    assert shapes["features.6.weight"] == (128, 64, 3, 3)
    assert shapes["classifier.0.weight"] == (256, 2048)
    assert _state_shapes(LeNetMNIST().state_dict())["classifier.0.weight"] == (128, 1600)


def test_registry_errors_list_the_valid_choices():
    with pytest.raises(ValueError, match=r"unknown model 'vgg'; available models: lenet_digits, "
                                         r"lenet, keras_cnn, .*resnet_mini"):
        models.create("vgg")
    with pytest.raises(ValueError, match=r"unknown model"):
        models.spec("LeNet")
    with pytest.raises(ValueError, match=r"model 'lenet' has no option 'dropout'; its options "
                                         r"are: none"):
        models.create("lenet", dropout=0.1)
    with pytest.raises(ValueError, match=r"has no option 'layers'; its options are: cell='lstm', "
                                         r"hidden_size=128, num_layers=1, bidirectional=False"):
        models.create("rnn_classifier", layers=2)
    with pytest.raises(ValueError,
                       match=r"cell must be one of 'rnn', 'lstm', 'gru', got 'transformer'"):
        models.create("rnn_classifier", cell="transformer")
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\), got 1.5"):
        models.create("keras_cnn", dropout=1.5)
    with pytest.raises(ValueError, match=r"padding must be 'same' or 'valid', got 1"):
        models.create("keras_cnn", padding=1)
    with pytest.raises(ValueError, match=r"widths must be a list of 1 to 4 positive ints"):
        models.create("resnet_mini", widths=[16, 0])
    with pytest.raises(ValueError, match=r"num_classes must be >= 1, got 0"):
        models.create("lenet", num_classes=0)
    with pytest.raises(TypeError, match=r"in_channels must be an int, got 1.0"):
        models.create("lenet", in_channels=1.0)
    with pytest.raises(ValueError, match=r"input_size must be \(H, W\) or an int, got \[28\]"):
        models.create("lenet", input_size=[28])


@pytest.mark.parametrize("name,options,smallest", [
    ("lenet", {}, 10), ("keras_cnn", {}, 8), ("keras_cnn", {"padding": "valid"}, 22),
    ("mnist_cnn", {}, 18), ("cifar_convnet", {}, 4), ("lenet_digits", {}, 2),
])
def test_too_small_inputs_name_the_smallest_size_that_works(name, options, smallest):
    models.create(name, input_size=smallest, **options)
    with pytest.raises(ValueError, match=rf"input_size \({smallest - 1}, {smallest - 1}\) is too "
                                         rf"small: .*; use at least {smallest}x{smallest}"):
        models.create(name, input_size=smallest - 1, **options)


def test_forward_rejects_inputs_of_another_size():
    with pytest.raises(ValueError, match=r"expected input \(N, 1, 28, 28\) \(in_channels, "
                                         r"\*input_size\), got \(2, 1, 32, 32\)"):
        models.create("lenet")(pyconv.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"expected input \(N, 1, H, 28\)"):
        models.create("rnn_classifier")(pyconv.zeros(2, 1, 28, 27))


# ----- shapes and gradients ----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("other_size", [False, True])
def test_forward_shape_and_finite_gradients(name, other_size):
    pyconv.manual_seed(0)
    size = OTHER_SIZES[name] if other_size else None
    channels = 3 if other_size else None
    model = models.create(name, in_channels=channels, num_classes=7 if other_size else None,
                          input_size=size)
    x = _input(model, batch=3)
    out = model(pyconv.tensor(x))
    if name == "conv_autoencoder":
        assert out.shape == x.shape
        values = out.detach().numpy()
        assert values.min() >= 0 and values.max() <= 1
        loss = F.mse_loss(out, pyconv.tensor(x))
    else:
        assert out.shape == (3, 7 if other_size else 10)
        loss = F.cross_entropy(out, pyconv.tensor(np.array([0, 1, 2])))
    assert out.dtype == np.float32
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        grad = p.grad.numpy()
        assert grad.shape == p.shape and np.isfinite(grad).all(), pname
        assert np.abs(grad).sum() > 0, pname


def test_rnn_classifier_takes_any_number_of_rows():
    model = models.create("rnn_classifier", input_size=(8, 8), hidden_size=4)
    assert model(pyconv.tensor(_input(model, rows=5))).shape == (2, 10)


# ----- torch twins -------------------------------------------------------------------------


def _torch_twin(torch, config):
    """The same architecture written in torch, from a pyconv model's config."""
    nn = torch.nn
    name, c, k = config["name"], config["in_channels"], config["num_classes"]

    def block(i, o, pad):
        return [nn.Conv2d(i, o, 3, padding=pad), nn.ReLU(), nn.MaxPool2d(2)]

    def classifier(features, *layers):
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(*features)
                self.classifier = nn.Sequential(*layers)

            def forward(self, x):
                return self.classifier(self.features(x).flatten(1))
        return Net()

    h, w = config["input_size"]
    with torch.no_grad():
        probe = torch.zeros(1, c, h, w)
    if name == "lenet_digits":
        feats = [nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), *block(16, 32, 1)]
        n = nn.Sequential(*feats)(probe).numel()
        return classifier(feats, nn.Linear(n, 64), nn.ReLU(), nn.Linear(64, k))
    if name == "lenet":
        feats = [*block(c, 32, 0), *block(32, 64, 0)]
        n = nn.Sequential(*feats)(probe).numel()
        return classifier(feats, nn.Linear(n, 128), nn.ReLU(), nn.Linear(128, k))
    if name == "keras_cnn":
        pad = {"same": 1, "valid": 0}[config["padding"]]
        feats = [*block(c, 32, pad), *block(32, 64, pad), *block(64, 128, pad)]
        n = nn.Sequential(*feats)(probe).numel()
        return classifier(feats, nn.Linear(n, 512), nn.ReLU(), nn.Dropout(config["dropout"]),
                          nn.Linear(512, k))
    if name == "cifar_convnet":
        feats = [*block(c, 32, 1), *block(32, 64, 1)]
        n = nn.Sequential(*feats)(probe).numel()
        return classifier(feats, nn.Linear(n, 128), nn.ReLU(), nn.Linear(128, k))
    if name == "mnist_cnn":
        feats = [*block(c, 32, 0), *block(32, 64, 0), nn.Conv2d(64, 64, 3), nn.ReLU()]
        n = nn.Sequential(*feats)(probe).numel()
        return classifier(feats, nn.Linear(n, 64), nn.ReLU(), nn.Linear(64, k))
    if name == "rnn_classifier":
        return _TorchRNNClassifier(torch, config)
    if name == "conv_autoencoder":
        return _TorchAutoencoder(torch, config)
    if name == "resnet_mini":
        return _TorchResNet(torch, config)
    raise AssertionError(name)


def _TorchRNNClassifier(torch, config):
    nn = torch.nn
    cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[config["cell"]]
    d = 2 if config["bidirectional"] else 1

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = cell(config["in_channels"] * config["input_size"][1], config["hidden_size"],
                            config["num_layers"], bidirectional=config["bidirectional"])
            self.fc = nn.Linear(d * config["hidden_size"], config["num_classes"])

        def forward(self, x):
            n, c, h, w = x.shape
            out, state = self.rnn(x.permute(2, 0, 1, 3).reshape(h, n, c * w))
            h_n = state[0] if isinstance(state, tuple) else state
            if d == 1:
                assert torch.equal(h_n[-1], out[-1])  # the final state is the last step's output
            return self.fc(h_n[-d:].permute(1, 0, 2).reshape(n, -1))
    return Net()


def _TorchAutoencoder(torch, config):
    nn = torch.nn
    c = config["in_channels"]
    h, w = config["input_size"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Conv2d(c, 16, 3, 2, 1), nn.ReLU(),
                                         nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
            self.decoder = nn.Sequential(nn.ConvTranspose2d(32, 16, 3, 2, 1), nn.ReLU(),
                                         nn.ConvTranspose2d(16, c, 3, 2, 1), nn.Sigmoid())

        def forward(self, x):
            # torch picks the output_padding from the requested sizes
            half = self.encoder[0](x).shape[-2:]
            z = self.encoder(x)
            y = self.decoder[1](self.decoder[0](z, output_size=half))
            return self.decoder[3](self.decoder[2](y, output_size=(h, w)))
    return Net()


def _TorchResNet(torch, config):
    nn = torch.nn
    widths = config["widths"]

    class Block(nn.Module):
        def __init__(self, i, o, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(o)
            self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(o)
            self.downsample = (nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False),
                                             nn.BatchNorm2d(o))
                               if stride != 1 or i != o else None)

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + (x if self.downsample is None else self.downsample(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(config["in_channels"], widths[0], 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.blocks = nn.Sequential(*[Block(widths[max(i - 1, 0)], wd, 1 if i == 0 else 2)
                                          for i, wd in enumerate(widths)])
            self.fc = nn.Linear(widths[-1], config["num_classes"])

        def forward(self, x):
            x = self.blocks(torch.relu(self.bn1(self.conv1(x))))
            return self.fc(x.mean((2, 3)))
    return Net()


CASES = [(name, {}) for name in NAMES] + VARIANTS
CASE_IDS = [f"{n}-{'-'.join(map(str, o.values())) or 'default'}" for n, o in CASES]


@pytest.mark.parametrize("name,overrides", CASES, ids=CASE_IDS)
def test_outputs_and_gradients_match_its_torch_twin(name, overrides):
    from torch_compare import require_torch

    torch = require_torch()
    torch.manual_seed(0)
    model = models.create(name, **overrides)
    twin = _torch_twin(torch, model.config)
    assert _state_shapes(model.state_dict()) == _state_shapes(twin.state_dict())
    if name == "resnet_mini":  # make the eval-mode batch norms do something
        with torch.no_grad():
            for module in twin.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.5, 0.5)
                    module.running_var.uniform_(0.5, 2.0)
                    module.weight.uniform_(0.5, 1.5)
    model.load_state_dict(twin.state_dict())
    model.eval()
    twin.eval()
    x = _input(model, batch=3, seed=1)
    expected = twin(torch.tensor(x))
    out = model(pyconv.tensor(x))
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    # and the gradients of every parameter, through a random weighting of the outputs
    weight = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    (expected * torch.tensor(weight)).sum().backward()
    (out * pyconv.tensor(weight)).sum().backward()
    theirs = dict(twin.named_parameters())
    for pname, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs[pname].grad.numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=pname)


# ----- a short training run ----------------------------------------------------------------


def _digits(count, size):
    """The first ``count`` bundled digits, upsampled (nearest) to at least ``size`` pixels."""
    from pyconv.data import load_digits

    images, labels = load_digits()
    images, labels = images[:count], labels[:count]
    factor = -(-size // 8)
    images = images.repeat(factor, axis=2).repeat(factor, axis=3)[:, :, :size, :size]
    return np.ascontiguousarray(images), labels


# model -> (input side, options, learning rate, epochs): the smallest input each model takes
# (digits upsampled) and small options keep a run well under a second on one thread
TRAIN = {
    "lenet_digits": (8, {}, 3e-3, 1),
    "lenet": (12, {}, 3e-3, 1),
    "keras_cnn": (8, {"dropout": 0.0}, 2e-3, 1),
    "cifar_convnet": (8, {}, 5e-3, 1),
    "mnist_cnn": (18, {}, 5e-3, 1),
    "rnn_classifier": (8, {"hidden_size": 32}, 1e-2, 1),
    "conv_autoencoder": (8, {}, 1e-2, 1),
    "resnet_mini": (8, {"widths": [8, 16]}, 1e-2, 2),
}


@pytest.mark.parametrize("name", NAMES)
def test_short_training_run_lowers_the_loss(name):
    """256 digits, batches of 8, Adam: the loss on those digits falls by at least 15%."""
    size, options, lr, epochs = TRAIN[name]
    pyconv.manual_seed(0)
    images, labels = _digits(256, size)
    model = models.create(name, in_channels=1, num_classes=10, input_size=size, **options)
    opt = pyconv.optim.Adam(model.parameters(), lr=lr)
    x_all, y_all = pyconv.tensor(images), pyconv.tensor(labels)

    def loss_of(x, y):
        out = model(x)
        return F.mse_loss(out, x) if name == "conv_autoencoder" else F.cross_entropy(out, y)

    model.eval()
    with pyconv.no_grad():
        before = float(loss_of(x_all, y_all).item())
    model.train()
    for _ in range(epochs):
        for i in range(0, len(labels), 8):
            x, y = pyconv.tensor(images[i:i + 8]), pyconv.tensor(labels[i:i + 8])
            opt.zero_grad()
            loss = loss_of(x, y)
            loss.backward()
            opt.step()
    model.eval()
    with pyconv.no_grad():
        after = float(loss_of(x_all, y_all).item())
    assert after < 0.85 * before, (before, after)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_reference_backend_gives_the_same_outputs(name):
    from pyconv import backends

    pyconv.manual_seed(0)
    model = models.create(name, input_size=OTHER_SIZES[name])
    model.eval()
    x = pyconv.tensor(_input(model, batch=2, seed=3))
    with pyconv.no_grad():
        out = model(x).numpy()
        with backends.use("numpy"):
            reference = model(x).numpy()
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-5)
