"""npLSTM: a from-scratch LSTM engine on NumPy arrays.

    import npLSTM as nl
    model = nl.Sequential([nl.LSTM(20, stateful=True, batch_input_shape=(1, 1, 5)),
                           nl.Dense(5, activation="sigmoid")], seed=0)
    model.compile(loss="binary_crossentropy", optimizer=nl.Adam())
"""
from .layers import (LSTM, Activation, Dense, Layer, Masking, RepeatVector, Reshape,
                     TimeDistributed)
from .losses import Loss
from .model import Sequential, load_model
from .optimizers import SGD, Adam, Optimizer
from .plan import Plan
from .results import Backprop, History, TrainingDiverged
from .threads import blas_threads, loop_threads, set_blas_threads, set_loop_threads

__version__ = "0.1.0"

__all__ = [
    "LSTM", "Activation", "Dense", "Layer", "Masking", "RepeatVector", "Reshape",
    "TimeDistributed", "Loss",
    "Backprop", "History", "Sequential", "TrainingDiverged", "SGD", "Adam", "Optimizer",
    "Plan", "load_model", "blas_threads", "set_blas_threads", "loop_threads", "set_loop_threads",
]
