"""The simt backend as a whole: which contract kernels run emulated CUDA code, and that nothing
else silently falls back to the reference."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv import backends
from pyconv.backends import contract, cuda_glue
from simt_support import require_simt

pytestmark = require_simt()


@pytest.fixture(scope="module")
def simt():
    return backends.get("simt")


def test_every_glued_kernel_is_emulated_and_only_the_rest_run_on_the_reference(simt):
    glued = set(cuda_glue.glue_functions())
    assert glued, "no CUDA kernel family is wired into the glue"
    for name in contract.KERNELS:
        assert getattr(simt, name).runs_on_reference == (name not in glued), name
    assert set(simt.REFERENCE_KERNELS) == set(contract.KERNELS) - glued


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


def _digits_training_losses(backend, steps):
    """Losses of ``steps`` Adam steps of LeNetDigits (dropout and batch norm free) on the
    bundled digits, all on ``backend``."""
    from pyconv import optim
    from pyconv.data import load_digits
    from pyconv.models import LeNetDigits

    images, labels = load_digits()
    pyconv.manual_seed(0)
    model = LeNetDigits()
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
