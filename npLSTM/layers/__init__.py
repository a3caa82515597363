"""Layers: each owns its parameters and state and calls npLSTM.kernels for the math."""
from .base import Layer
from .dense import Activation, Dense
from .lstm import LSTM
from .masking import Masking
from .wrappers import RepeatVector, Reshape, TimeDistributed

LAYERS = {cls.__name__: cls for cls in (Activation, Dense, LSTM, Masking, RepeatVector, Reshape,
                                        TimeDistributed)}


def from_config(entry):
    """A layer from {"class": name, "config": constructor arguments}."""
    if not isinstance(entry, dict) or entry.get("class") not in LAYERS:
        raise ValueError(f"unknown layer entry {entry!r}; known classes: {sorted(LAYERS)}")
    config = dict(entry.get("config", {}))
    if entry["class"] == "TimeDistributed":
        config["layer"] = from_config(config.get("layer"))
    for key in ("input_shape", "batch_input_shape", "target_shape"):
        if key in config:
            config[key] = tuple(config[key])
    return LAYERS[entry["class"]](**config)


__all__ = ["Layer", "Activation", "Dense", "LSTM", "Masking", "RepeatVector", "Reshape",
           "TimeDistributed", "LAYERS", "from_config"]
