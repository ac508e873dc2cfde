"""Neural-network building blocks (``minigen.nn``)."""
from . import functional  # noqa: F401
