"""minigen's exceptions.

Every error a user can trigger with bad input is one of these. Each subclasses
the matching builtin (ValueError, TypeError, IndexError, RuntimeError) so code
that catches the builtin keeps working, and each message names the shapes,
dtypes, dims or devices involved.
"""


class MinigenError(Exception):
    """Base class of every minigen exception."""


class ShapeError(MinigenError, ValueError):
    """Shapes that do not fit together (both shapes are named in the message)."""


class DTypeError(MinigenError, TypeError):
    """A dtype that the operation does not accept (e.g. a float index)."""


class DimError(MinigenError, IndexError):
    """A dimension index out of range for the tensor's number of dimensions."""


class IndexOutOfRangeError(MinigenError, IndexError):
    """An index (in indexing, gather, embedding, ...) outside the valid range."""


class DeviceError(MinigenError, RuntimeError):
    """Tensors on different devices in one op, or a device that is not available."""


class InvalidArgumentError(MinigenError, ValueError):
    """An argument value that the operation does not accept."""


class AutogradError(MinigenError, RuntimeError):
    """Misuse of autograd: backward twice through a freed graph, backward on a
    non-scalar without ``gradient``, a tensor that does not require grad, ..."""


class InplaceError(AutogradError):
    """A tensor saved for backward was modified in place afterwards."""


class AnomalyError(AutogradError):
    """Raised in anomaly mode when an op's forward or backward produced NaN/Inf."""


class CheckpointError(MinigenError, ValueError):
    """A checkpoint file that is truncated, corrupted or does not match the model."""
