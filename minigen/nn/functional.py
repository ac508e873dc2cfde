"""``minigen.nn.functional``: every op as a function, PyTorch names and semantics."""
from .._exports import *  # noqa: F401,F403
from .._exports import __all__  # noqa: F401
