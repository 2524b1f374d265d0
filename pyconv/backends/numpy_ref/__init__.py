"""The NumPy reference backend: the oracle every other backend is tested against.

Vectorised NumPy, float32 and float64, one file per op family. Clarity and exactness come
before speed, but nothing loops in Python over batch items or pixels (loops over kernel taps
are fine).
"""

from .activation import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .softmax import *  # noqa: F401,F403

name = "numpy"
device = "cpu"
