"""The math as plain functions on arrays: `reference` is readable NumPy."""
from . import reference

__all__ = ["reference"]
