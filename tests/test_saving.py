"""save / load_model: complete, safe, atomic, and exact to resume from."""
import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import npLSTM as nl
from npLSTM import saving


def encoder_decoder():
    model = nl.Sequential([
        nl.LSTM(6, stateful=True, batch_input_shape=(2, 3, 4)),
        nl.RepeatVector(2),
        nl.LSTM(5, return_sequences=True, stateful=True),
        nl.TimeDistributed(nl.Dense(3, activation="softmax")),
    ], seed=3)
    model.compile("categorical_crossentropy", nl.Adam(learning_rate=0.01), metrics=["accuracy"])
    return model


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(4, 3, 4)), np.eye(3)[rng.integers(0, 3, (4, 2))]


def test_round_trip_keeps_everything(tmp_path):
    model = encoder_decoder()
    X, y = data()
    model.fit(X, y, epochs=2, batch_size=2, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = nl.load_model(tmp_path / "m.npz")
    assert [type(layer).__name__ for layer in loaded.layers] == \
        ["LSTM", "RepeatVector", "LSTM", "TimeDistributed"]
    assert (loaded.dtype, loaded.backend, loaded.loss.name) == (model.dtype, "numba",
                                                                 "categorical_crossentropy")
    assert loaded.optimizer.iterations == 4 and loaded.optimizer.learning_rate == 0.01
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    for k in (0, 2):
        for a, b in zip(model.layers[k].get_states(), loaded.layers[k].get_states()):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(X, batch_size=2), loaded.predict(X, batch_size=2))


def test_resumed_training_is_bit_identical(tmp_path):
    X, y = data()
    straight = encoder_decoder()
    straight.fit(X, y, epochs=6, batch_size=2, verbose=0)
    interrupted = encoder_decoder()
    interrupted.fit(X, y, epochs=3, batch_size=2, verbose=0)
    interrupted.save(tmp_path / "m.npz")
    resumed = nl.load_model(tmp_path / "m.npz")
    resumed.fit(X, y, epochs=3, batch_size=2, verbose=0)       # shuffles with the saved stream
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_crash_mid_save_leaves_the_last_good_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    model = encoder_decoder()
    model.save(path)
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt("power cut")
    monkeypatch.setattr(saving.np, "savez", crash)
    model.fit(*data(), epochs=1, batch_size=2, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]           # no temporary file left behind
    monkeypatch.undo()
    nl.load_model(path)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_saved_file_gets_the_mode_the_umask_gives_every_new_file(tmp_path, umask):
    before = os.umask(umask)
    try:
        encoder_decoder().save(tmp_path / "m.npz")
    finally:
        os.umask(before)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b"not a model"), "not an .npz"),
    (lambda p: p.write_bytes(b""), "not an .npz"),
    (lambda p: np.savez(p, config=np.array([{"evil": 1}], dtype=object)), "pickled"),
    (lambda p: np.savez(p, weights=np.zeros(3)), "not an npLSTM model"),
    (lambda p: np.savez(p, config=np.array("{not json")), "not valid JSON"),
    (lambda p: np.savez(p, config=np.array(json.dumps({"format": "npLSTM model", "version": 9}))),
     "format version 9"),
])
def test_foreign_and_broken_files_are_refused_clearly(tmp_path, make, message):
    path = tmp_path / "x.npz"
    make(path)
    with pytest.raises(ValueError, match=message):
        nl.load_model(path)


def rewrite(path, change):
    with np.load(path, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    change(arrays)
    np.savez(path, **arrays)


@pytest.mark.parametrize("change,message", [
    (lambda a: a.update(weight_1=np.zeros((2, 2))), r"weight 1 should be float64 \(6, 24\)"),
    (lambda a: a.pop("weight_4"), "weight 4 is missing"),
    (lambda a: a.update(weight_0=np.full_like(a["weight_0"], np.nan)), "weight 0 contains NaN"),
    (lambda a: a.update(optimizer_m=a["optimizer_m"][:5]), "optimizer slot 0"),
    (lambda a: a.update(config=np.array(a["config"].item().replace('"layers"', '"strata"'))),
     "incomplete or malformed"),
])
def test_a_tampered_file_is_refused_clearly(tmp_path, change, message):
    path = tmp_path / "m.npz"
    model = encoder_decoder()
    model.fit(*data(), epochs=1, batch_size=2, verbose=0)
    model.save(path)
    rewrite(path, change)
    with pytest.raises(ValueError, match=message):
        nl.load_model(path)


def test_truncated_files_are_refused(tmp_path):
    path = tmp_path / "m.npz"
    encoder_decoder().save(path)
    whole = path.read_bytes()
    for cut in (10, len(whole) // 3, len(whole) - 30):
        path.write_bytes(whole[:cut])
        with pytest.raises(ValueError, match="npLSTM model"):
            nl.load_model(path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000), st.booleans())
def test_random_bytes_never_get_past_a_clear_error(tmp_path, blob, zip_header):
    path = tmp_path / "random.npz"
    path.write_bytes((b"PK\x03\x04" if zip_header else b"") + blob)
    with pytest.raises(ValueError):
        nl.load_model(path)


def test_an_unbuilt_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        nl.Sequential([nl.LSTM(2)]).save(tmp_path / "m.npz")
