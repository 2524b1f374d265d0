"""The simt backend as a whole: which contract kernels run emulated CUDA code, and that nothing
else silently falls back to the reference."""

import numpy as np

import pyconv
import pyconv.functional as F
from pyconv import backends
from pyconv.backends import contract, cuda_glue
from simt_support import require_simt, simt  # noqa: F401 - simt is a fixture

pytestmark = require_simt()


def test_every_glued_kernel_is_emulated_and_only_the_rest_run_on_the_reference(simt):
    glued = set(cuda_glue.glue_functions())
    assert glued, "no CUDA kernel family is wired into the glue"
    for name in contract.KERNELS:
        assert getattr(simt, name).runs_on_reference == (name not in glued), name
    assert set(simt.REFERENCE_KERNELS) == set(contract.KERNELS) - glued


def test_every_contract_kernel_has_cuda_code(simt):
    assert simt.REFERENCE_KERNELS == ()


def test_glue_functions_take_the_device_then_the_contract_parameters():
    import inspect

    for name, glue in cuda_glue.glue_functions().items():
        params = list(inspect.signature(glue).parameters)
        want = list(inspect.signature(getattr(contract, name)).parameters)
        assert params == ["dev", *want], f"cuda_glue {name}{tuple(params)} != (dev, {want})"


def test_ops_on_the_simt_backend_launch_emulated_kernels(simt):
    """A small CNN-style forward/backward: every glued kernel it touches is launched."""
    rng = np.random.default_rng(0)
    x = pyconv.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    target = pyconv.tensor(np.array([1, 0]))
    before = simt.device.launches.copy()
    with backends.use("simt"):
        h = F.max_pool2d(F.relu(x), 2)
        loss = F.cross_entropy(h.flatten(1)[:, :5], target)
    loss.backward()
    launched = simt.device.launches - before
    for kernel in ("max_pool2d_forward", "max_pool2d_backward", "relu_forward", "relu_backward",
                   "cross_entropy_forward", "cross_entropy_backward"):
        assert any(entry.startswith(kernel) for entry in launched), f"{kernel} did not launch"


class _RowLSTMClassifier(pyconv.nn.Module):
    """Reads an (N, 1, 8, 8) digit row by row: 2-layer LSTM (8 -> 16), last state -> 10 logits."""

    def __init__(self):
        super().__init__()
        self.lstm = pyconv.nn.LSTM(8, 16, num_layers=2, batch_first=True)
        self.head = pyconv.nn.Linear(16, 10)

    def forward(self, x):
        out, _ = self.lstm(x.reshape(x.shape[0], 8, 8))
        return self.head(out[:, -1])


def _digits_training_losses(backend, steps, model_class=None):
    """Losses of ``steps`` Adam steps of ``model_class`` (LeNetDigits: dropout and batch norm
    free) on the bundled digits, all on ``backend``."""
    from pyconv import optim
    from pyconv.data import load_digits
    from pyconv.models import LeNetDigits

    images, labels = load_digits()
    pyconv.manual_seed(0)
    model = (model_class or LeNetDigits)()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    losses = []
    with backends.use(backend):
        for _ in range(steps):
            batch = rng.choice(len(images), 32, replace=False)
            x = pyconv.tensor(images[batch])
            loss = F.cross_entropy(model(x), pyconv.tensor(labels[batch]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses


def test_twenty_training_steps_on_simt_match_the_numpy_backend(simt):
    before = simt.device.launches.copy()
    emulated = _digits_training_losses("simt", 20)
    reference = _digits_training_losses("numpy", 20)
    np.testing.assert_allclose(emulated, reference, rtol=1e-4)
    launched = simt.device.launches - before
    for kernel in ("relu_forward", "max_pool2d_forward", "cross_entropy_forward", "adam_step"):
        assert any(entry.startswith(kernel) for entry in launched), f"{kernel} did not launch"


def test_twenty_steps_of_a_two_layer_lstm_classifier_on_simt_match_the_numpy_backend(simt):
    before = simt.device.launches.copy()
    emulated = _digits_training_losses("simt", 20, _RowLSTMClassifier)
    reference = _digits_training_losses("numpy", 20, _RowLSTMClassifier)
    np.testing.assert_allclose(emulated, reference, rtol=1e-4)
    launched = simt.device.launches - before
    for kernel in ("gemm", "lstm_cell_forward", "lstm_cell_backward", "cross_entropy_forward",
                   "adam_step"):
        assert any(entry.startswith(kernel) for entry in launched), f"{kernel} did not launch"
