"""Optimizers and learning-rate schedulers with torch.optim's names, defaults and state_dict
format. ``step()`` calls the current backend's update kernels (``sgd_step``, ``adam_step``)."""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "lr_scheduler"]
