"""Neural-network building blocks (``minigen.nn``), PyTorch's names and semantics.

- :class:`Module`, :class:`Parameter` and the containers (``Sequential``, ``ModuleList``, ``ModuleDict``...);
- layers: linear, convolution, pooling, normalisation, dropout, embedding, activations,
  recurrent (``RNN``/``LSTM``/``GRU`` and their cells), attention and Transformer blocks,
  positional encodings;
- :mod:`minigen.nn.functional` (every op as a function), :mod:`minigen.nn.init`
  (initialisers), :mod:`minigen.nn.utils` (gradient clipping, parameter vectors).
"""
from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import utils  # noqa: F401
from . import parallel  # noqa: F401  (DistributedDataParallel, SyncBatchNorm)
from .parameter import Parameter, Buffer  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import __dict__ as _mods_dict

__all__ = ["functional", "init", "utils", "Parameter", "Buffer"] + [
    k for k, v in _mods_dict.items() if isinstance(v, type) and not k.startswith("_")]
del _mods_dict
