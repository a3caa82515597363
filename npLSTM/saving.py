"""Save a model to one .npz file and load it back, safely.

The file holds plain arrays only (no pickled objects, so loading never runs
code):
    config            the model as JSON: layers, dtype, backend, input shape,
                      loss, optimizer and its step count, the generator state
    weight_K          every parameter, in get_weights() order
    optimizer_SLOT    the optimizer's moments (flat, as the model keeps them)
    state_K_h/_c      the recurrent state of stateful layer K, when not zero

A model loaded from it continues exactly where the saved one stood: the
same seed stream, the same moments, the same state, so training resumed
from a file is bit-identical to training that never stopped.
"""
import dataclasses
import json
import os
import uuid
import zipfile

import numpy as np

from . import optimizers

FORMAT = "npLSTM model"
VERSION = 1


def save_model(model, path):
    """Write model to path atomically: a crash mid-save leaves any earlier
    file at path as it was."""
    if not model.built:
        raise ValueError("the model is not built yet (give the first layer an input shape, "
                         "or call it on data) and has no weights to save")
    arrays = {f"weight_{k}": w for k, w in enumerate(model.get_weights())}
    optimizer = None
    if model.optimizer is not None:
        opt = model.optimizer
        optimizer = {"class": type(opt).__name__, "config": opt.get_config(),
                     "iterations": opt.iterations}
        for name, slots in (opt.slots or {}).items():
            arrays[f"optimizer_{name}"] = slots[0]
    for k, layer in enumerate(model.layers):
        states = layer.get_states()
        if states is not None:
            arrays[f"state_{k}_h"], arrays[f"state_{k}_c"] = states
    config = {
        "format": FORMAT, "version": VERSION,
        "dtype": model.dtype.name, "backend": model.backend, "plan": dataclasses.asdict(model.plan),
        "input_shape": list(model.input_shape),
        "layers": [{"class": type(layer).__name__, "config": layer.get_config()}
                   for layer in model.layers],
        "loss": model.loss.name if model.loss else None,
        "metrics": list(model.metrics),
        "optimizer": optimizer,
        "rng": model.rng.bit_generator.state,
    }
    arrays["config"] = np.array(json.dumps(config))
    directory = os.path.dirname(os.path.abspath(path))
    # A new file of our own beside the target, made with the usual mode so
    # that the umask applies (tempfile.mkstemp would make it 0600).
    temporary = os.path.join(directory, f".npLSTM-{uuid.uuid4().hex}.npz")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def read(path):
    """(config, arrays) of the model file at path: its config checked to be
    an npLSTM model's of this format version; ValueError otherwise.
    npLSTM.load_model builds the model and calls restore."""
    arrays = _read(path)
    return _config(arrays, path), arrays


def restore(model, config, arrays, path):
    """Give a model made from the file's config (unbuilt or built alike) the
    file's input shape, weights, compilation, optimizer state, recurrent
    state and random stream. Raises ValueError naming what is missing or
    does not fit."""
    try:
        if not model.built:
            model.build([None] + list(config["input_shape"]))
        weights = [arrays.get(f"weight_{k}") for k in range(len(model.get_weights()))]
        _check_arrays(weights, model.get_weights(), "weight", path)
        model.set_weights(weights)
        if config["loss"] is not None:
            opt = config["optimizer"]
            optimizer = optimizers.OPTIMIZERS[opt["class"].lower()](**opt["config"])
            model.compile(config["loss"], optimizer, metrics=config["metrics"] or None)
            optimizer.iterations = int(opt["iterations"])
            slots = [arrays.get(f"optimizer_{name}") for name in optimizer.slot_names]
            if optimizer.iterations:
                _check_arrays(slots, [model.parameters.flat] * len(slots), "optimizer slot",
                              path)
                optimizer.slots = {name: [s.copy()] for name, s in
                                   zip(optimizer.slot_names, slots)}
        for k, layer in enumerate(model.layers):
            if f"state_{k}_h" in arrays:
                layer.reset_states((arrays[f"state_{k}_h"], arrays[f"state_{k}_c"]))
        model.rng.bit_generator.state = config["rng"]
    except (KeyError, TypeError, AttributeError) as error:
        raise malformed(path, error) from None


def malformed(path, error):
    return ValueError(f"{path} is not a valid npLSTM model file: its config is "
                      f"incomplete or malformed ({type(error).__name__}: {error})")


def _read(path):
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":     # every .npz is a zip archive
            raise ValueError(f"{path} is not an npLSTM model file: it is not an .npz "
                             "(zip) archive")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[name] for name in f.files}
    except FileNotFoundError:
        raise
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError(f"{path} holds pickled Python objects; npLSTM refuses to load "
                             "them, as unpickling can run arbitrary code") from None
        raise ValueError(f"{path} is not a readable npLSTM model file: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"{path} is not a readable npLSTM model file (truncated or "
                         f"corrupted?): {type(error).__name__}: {error}") from None


def _config(arrays, path):
    if "config" not in arrays or arrays["config"].dtype.kind != "U" or arrays["config"].ndim:
        raise ValueError(f"{path} is an .npz file but not an npLSTM model (no config)")
    try:
        config = json.loads(str(arrays["config"]))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the model config is not valid JSON ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path} is an .npz file but not an npLSTM model")
    if config.get("version") != VERSION:
        raise ValueError(f"{path} is an npLSTM model of format version "
                         f"{config.get('version')}; this npLSTM reads version {VERSION}")
    return config


def _check_arrays(found, expected, what, path):
    for k, (got, want) in enumerate(zip(found, expected)):
        if got is None:
            raise ValueError(f"{path}: {what} {k} is missing")
        if got.shape != want.shape or got.dtype != want.dtype:
            raise ValueError(f"{path}: {what} {k} should be {want.dtype} {want.shape}, "
                             f"got {got.dtype} {got.shape}")
        if not np.all(np.isfinite(got)):
            raise ValueError(f"{path}: {what} {k} contains NaN or infinity")
