"""Layers: each owns its parameters and state and calls npLSTM.kernels for the math."""
from .base import Layer
from .dense import Dense
from .lstm import LSTM
from .wrappers import RepeatVector, TimeDistributed

__all__ = ["Layer", "Dense", "LSTM", "RepeatVector", "TimeDistributed"]
