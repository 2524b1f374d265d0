"""The training run behind ``pyconv train``: any model of :mod:`pyconv.models` on any dataset of
:mod:`pyconv.data`, with validation, a learning-rate schedule, augmentation, checkpoints and
``--resume``.

:func:`fit` returns a :class:`RunResult`. Classification models minimise cross-entropy and
report accuracy; reconstruction models (the autoencoder) minimise the mean squared error between
their output and the clean image, from a noisy input when ``noise > 0`` (a denoising
autoencoder), and report that error.

Reproducibility: the model's initial weights, each epoch's batch order, augmentation and noise
come from pyconv's global generator (seeded by ``seed``). Each epoch draws one seed from it for
its loader and augmentation, so the background prefetch thread never touches the global
generator; the generator's state is saved in every checkpoint, so a resumed run continues
exactly as the uninterrupted one would have.
"""

from __future__ import annotations

import inspect
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .training import (
    DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_VAL_FRACTION, EVAL_BATCH_SIZE, Progress,
    UsageError,
    backend_context,
)

__all__ = ["RunResult", "evaluate_outputs", "fit", "model_outputs"]

SCHEDULES = ("cosine", "step", "none", "constant")  # constant: the old name of none
STEP_GAMMA = 0.1
VAL_NOISE_SEED = 12345  # fixed noise on the validation/test inputs of a denoising autoencoder


@dataclass
class RunResult:
    """What :func:`fit` returns. ``test`` holds ``accuracy``/``correct``/``total`` for a
    classifier, ``mse`` for a reconstruction model."""

    model: object
    task: str
    test: dict
    history: list = field(default_factory=list)  # one dict per epoch, all epochs of the run
    images_per_second: float = 0.0
    train_seconds: float = 0.0
    epochs_run: int = 0
    prepared: object = None


# ----- inference ----------------------------------------------------------------------------


def model_outputs(model, images: np.ndarray, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """The model's outputs for images (N, C, H, W) float32, in eval mode without a graph:
    logits (N, K) for a classifier, images (N, C, H, W) for an autoencoder."""
    import pyconv

    was_training = model.training
    model.eval()
    outs = []
    with pyconv.no_grad():
        for start in range(0, images.shape[0], batch_size):
            batch = np.ascontiguousarray(images[start:start + batch_size])
            outs.append(np.asarray(model(pyconv.from_numpy(batch))))
    model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits in float64."""
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def noisy(images: np.ndarray, std: float, rng) -> np.ndarray:
    """images + std * N(0, 1), clipped to [0, 1] (the denoising autoencoder's input)."""
    if std <= 0:
        return images
    out = images + np.float32(std) * rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def evaluate_outputs(task: str, outputs: np.ndarray, labels_or_targets: np.ndarray) -> dict:
    """Scores of :func:`model_outputs`: loss and accuracy (classification) or mse."""
    if task == "reconstruction":
        diff = outputs.astype(np.float64) - labels_or_targets
        return {"mse": float(np.mean(diff * diff))}
    probs = softmax(outputs)
    labels = labels_or_targets
    n = len(labels)
    loss = float(-np.mean(np.log(np.maximum(probs[np.arange(n), labels], 1e-300))))
    correct = int(np.count_nonzero(outputs.argmax(axis=1) == labels))
    return {"loss": loss, "accuracy": correct / n if n else 0.0, "correct": correct, "total": n}


def _score(model, task, prepared, images, labels, noise, seed):
    x = images
    if task == "reconstruction":
        x = noisy(images, noise, np.random.default_rng(seed + VAL_NOISE_SEED))
        return evaluate_outputs(task, model_outputs(model, prepared.normalize(x)), images)
    return evaluate_outputs(task, model_outputs(model, prepared.normalize(x)), labels)


# ----- pieces of a run ------------------------------------------------------------------------


def _make_optimizer(name: str, params, lr: float, momentum: float):
    from . import optim

    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum)
    return optim.Adam(params, lr=lr)


def _make_schedule(name: str, opt, epochs: int, steps_per_epoch: int):
    """(scheduler or None, steps per scheduler step): cosine decays to 0 over every batch of the
    run; step multiplies the lr by STEP_GAMMA after each third of the epochs."""
    from . import optim

    if name == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch), "batch"
    if name == "step":
        return optim.lr_scheduler.StepLR(opt, step_size=max(1, math.ceil(epochs / 3)),
                                         gamma=STEP_GAMMA), "epoch"
    return None, None


def _loader(images, labels, batch_size, seed, augment):
    """A shuffled DataLoader over the training arrays owning its own generator (``seed``), and
    the augmentation still to apply per batch (None when the loader applies it)."""
    from .data import DataLoader, TensorDataset

    kwargs, transform = {}, None
    if augment:
        from .data import transforms

        transform = transforms.from_spec(augment, seed=seed + 1)
    parameters = inspect.signature(DataLoader).parameters
    if transform is not None and "transform" in parameters:
        kwargs["transform"], transform = transform, None
    if "prefetch" in parameters:
        kwargs["prefetch"] = 2
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True,
                        seed=seed, **kwargs)
    return loader, transform


def _check_augment(augment):
    if not augment:
        return
    from .data import transforms

    try:
        transforms.from_spec(augment, seed=0)
    except (KeyError, ValueError, TypeError) as exc:
        raise UsageError(f"--augment: {str(exc).strip(chr(39))}") from None


def _rng_state():
    from . import random

    return random.generator().bit_generator.state


def _set_rng_state(state) -> None:
    from . import random

    random.generator().bit_generator.state = state


# ----- the run --------------------------------------------------------------------------------


def _options(model, dataset, data_dir, augment, epochs, batch_size, lr, optimizer, momentum,
             schedule, val_fraction, test_fraction, seed, noise, model_options, input_size):
    if optimizer not in DEFAULT_LR:
        raise UsageError(f"unknown optimizer {optimizer!r}: expected one of {sorted(DEFAULT_LR)}")
    if schedule not in SCHEDULES:
        raise UsageError(f"unknown schedule {schedule!r}: expected one of {list(SCHEDULES[:3])}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise UsageError(f"epochs must be a positive int, got {epochs!r}")
    if not 0 <= val_fraction < 1:
        raise UsageError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    return {"model": model, "dataset": dataset, "data_dir": data_dir, "augment": augment,
            "epochs": epochs, "batch_size": batch_size,
            "lr": DEFAULT_LR[optimizer] if lr is None else lr, "optimizer": optimizer,
            "momentum": momentum, "schedule": "none" if schedule == "constant" else schedule,
            "val_fraction": val_fraction, "test_fraction": test_fraction, "seed": seed,
            "noise": noise, "model_options": dict(model_options or {}),
            "input_size": None if input_size is None else [int(v) for v in input_size]}


def _epoch_line(task: str, epoch: int, epochs: int, record: dict) -> str:
    head = f"epoch {epoch}/{epochs}: "
    if task == "reconstruction":
        text = f"train mse {record['train_loss']:.5f}"
        if "val_mse" in record:
            text += f", val mse {record['val_mse']:.5f}"
        return head + text
    text = f"train loss {record['train_loss']:.4f}"
    if "val_accuracy" in record:
        text += (f", val loss {record['val_loss']:.4f}, "
                 f"val accuracy {100 * record['val_accuracy']:.2f}%")
    return head + text


def fit(model: str = "lenet_digits", dataset: str = "digits", *, data_dir=None, augment=None,
        epochs: int = DEFAULT_EPOCHS, batch_size: int = DEFAULT_BATCH_SIZE, lr=None,
        optimizer: str = "adam", momentum: float = 0.9, schedule: str = "cosine",
        val_fraction: float = DEFAULT_VAL_FRACTION, test_fraction: float = 0.2, seed: int = 0,
        noise: float = 0.0, model_options=None, input_size=None, backend=None, checkpoint=None,
        resume: bool = False, progress_stream=None, log=None, quiet: bool = False) -> RunResult:
    """Train ``model`` on ``dataset`` and score it on the test split.

    Images are fitted to the model's input (:mod:`pyconv.training_data`), standardised with the
    training images' mean and std (not for reconstruction), and ``augment`` (a
    ``transforms.from_spec`` string) is applied to every training batch. ``val_fraction`` of the
    training split is held out and scored after every epoch. ``input_size`` (H, W) overrides
    the model's default input size (``model_options`` its other options). ``checkpoint``
    (.safetensors or .npz) is written atomically after every epoch; with ``resume`` the run
    continues from it (its saved options win, except ``epochs``: the total to reach). Per-epoch
    lines go to ``log`` (default stdout), the progress bar to ``progress_stream`` (stderr).
    """
    import pyconv
    import pyconv.functional as F
    from . import checkpoint as ckpt
    from . import models
    from .training_data import prepare

    log = sys.stdout if log is None else log
    say = (lambda text: None) if quiet else (lambda text: print(text, file=log, flush=True))
    selected_backend = backend_context(backend)
    state = None
    if resume:
        if checkpoint is None:
            raise UsageError("--resume needs --checkpoint PATH")
        try:
            net, state = ckpt.load_checkpoint(checkpoint)
        except (FileNotFoundError, ckpt.CheckpointError) as exc:
            raise UsageError(f"--resume: {exc}") from None
        if "run" not in state["extra"]:
            raise UsageError(f"--resume: {checkpoint} holds no training run (it was not "
                             f"written by 'pyconv train --checkpoint')")
        run = dict(state["extra"]["run"], epochs=epochs)
    else:
        run = _options(model, dataset, data_dir, augment, epochs, batch_size, lr, optimizer,
                       momentum, schedule, val_fraction, test_fraction, seed, noise,
                       model_options, input_size)
    _check_augment(run["augment"])
    task = model_input_task(run["model"])
    prepared = prepare(run["model"], run["dataset"], run["data_dir"], run["seed"],
                       run["test_fraction"], run["val_fraction"],
                       normalize=task != "reconstruction", input_size=run.get("input_size"))
    prepared.info["noise"] = run["noise"]
    if state is None:
        pyconv.manual_seed(run["seed"])
        try:
            net = models.create(run["model"], in_channels=prepared.info["channels"],
                                num_classes=len(prepared.classes),
                                input_size=tuple(prepared.info["input_size"]),
                                **run["model_options"])
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--model {run['model']}: {exc}") from None
    steps = math.ceil(len(prepared.train_labels) / run["batch_size"])
    opt = _make_optimizer(run["optimizer"], net.parameters(), run["lr"], run["momentum"])
    scheduler, per = _make_schedule(run["schedule"], opt, run["epochs"], steps)
    history, start_epoch = [], 1
    if state is not None:
        if state["optimizer"] is not None:
            opt.load_state_dict(state["optimizer"])
        extra = state["extra"]
        if scheduler is not None and extra.get("scheduler"):
            scheduler.load_state_dict(extra["scheduler"])
            if run["schedule"] == "cosine":  # decay over the new total from the lr reached
                scheduler.T_max = run["epochs"] * steps
        history = list(extra.get("history", []))
        start_epoch = int(state["epoch"] or 0) + 1
        _set_rng_state(extra["rng"])
        if start_epoch > run["epochs"]:
            say(f"checkpoint {checkpoint} already has {start_epoch - 1} epochs "
                f"(--epochs {run['epochs']}): nothing to train")
    bar = Progress(sys.stderr if progress_stream is None else progress_stream, steps,
                   run["epochs"], enabled=not quiet)

    train_seconds, images_seen = 0.0, 0
    with selected_backend:
        for epoch in range(start_epoch, run["epochs"] + 1):
            record, seconds, seen = _train_epoch(net, task, prepared, run, opt, scheduler, per,
                                                 bar, epoch, F)
            train_seconds += seconds
            images_seen += seen
            if prepared.val_images is not None:
                scores = _score(net, task, prepared, prepared.val_images, prepared.val_labels,
                                run["noise"], run["seed"])
                record.update({"val_" + k: v for k, v in scores.items()
                               if k in ("loss", "accuracy", "mse")})
            history.append(record)
            say(_epoch_line(task, epoch, run["epochs"], record))
            if checkpoint is not None:
                extra = {"run": run, "data": dict(prepared.info, mean=prepared.mean,
                                                  std=prepared.std, classes=prepared.classes),
                         "history": history, "rng": _rng_state(),
                         "scheduler": scheduler.state_dict() if scheduler is not None else None}
                ckpt.save(net, checkpoint, optimizer=opt, epoch=epoch, extra=extra)
        test = _score(net, task, prepared, prepared.test_images, prepared.test_labels,
                      run["noise"], run["seed"])
    return RunResult(net, task, test, history,
                     images_seen / train_seconds if train_seconds > 0 else float("inf"),
                     train_seconds, max(0, run["epochs"] - start_epoch + 1), prepared)


def model_input_task(name: str) -> str:
    from . import models

    try:
        return models.spec(name).task
    except (KeyError, ValueError) as exc:
        raise UsageError(f"--model: {str(exc).strip(chr(39))}") from None


def _train_epoch(net, task, prepared, run, opt, scheduler, per, bar, epoch, F):
    """One pass over the training arrays; returns (history record, seconds, images seen)."""
    import pyconv
    from . import random

    epoch_seed = int(random.generator().integers(0, 2**31 - 1))
    noise_rng = np.random.default_rng(epoch_seed + 2)
    loader, augment = _loader(prepared.train_images, prepared.train_labels, run["batch_size"],
                              epoch_seed, run["augment"])
    net.train()
    lr = opt.param_groups[0]["lr"]  # the rate at the start of the epoch
    loss_sum, correct, seen, done = 0.0, 0, 0, 0
    start = time.perf_counter()
    for images, labels in loader:
        clean = np.asarray(images, dtype=np.float32)
        if augment is not None:
            clean = np.asarray(augment(clean), dtype=np.float32)
        if task == "reconstruction":
            x = pyconv.from_numpy(prepared.normalize(noisy(clean, run["noise"], noise_rng)))
        else:
            x = pyconv.from_numpy(prepared.normalize(clean))
        opt.zero_grad()
        out = net(x)
        if task == "reconstruction":
            loss = F.mse_loss(out, pyconv.from_numpy(np.ascontiguousarray(clean)))
        else:
            loss = F.cross_entropy(out, labels)
            correct += int(np.count_nonzero(np.asarray(out.detach()).argmax(axis=1)
                                            == np.asarray(labels)))
        loss.backward()
        opt.step()
        if per == "batch":
            scheduler.step()
        n = clean.shape[0]
        loss_sum += float(loss.item()) * n
        seen += n
        done += 1
        accuracy = None if task == "reconstruction" else correct / seen
        bar.update(epoch, done, loss_sum / seen, accuracy, time.perf_counter() - start)
    if per == "epoch":
        scheduler.step()
    seconds = time.perf_counter() - start
    bar.end_epoch(epoch, loss_sum / seen, None if task == "reconstruction" else correct / seen,
                  seconds)
    record = {"epoch": epoch, "train_loss": loss_sum / seen, "seconds": seconds,
              "lr": lr}
    if task != "reconstruction":
        record["train_accuracy"] = correct / seen
    return record, seconds, seen
