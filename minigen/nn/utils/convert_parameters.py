"""``torch.nn.utils.convert_parameters`` path: ``parameters_to_vector`` / ``vector_to_parameters``."""
from . import parameters_to_vector, vector_to_parameters  # noqa: F401

__all__ = ["parameters_to_vector", "vector_to_parameters"]
