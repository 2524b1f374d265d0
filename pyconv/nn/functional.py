"""``pyconv.nn.functional`` is :mod:`pyconv.functional` (PyTorch spells it ``torch.nn.functional``)."""

from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
