"""Random shapes, dtypes and values thrown at the public API: each call
either works or raises ValueError / TypeError, and a refused call leaves
weights, optimizer state and recurrent state exactly as they were."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import npLSTM as nl

DTYPES = ["float64", "float32", "int64", "int8", "bool", "complex128", "U3", "object"]
SPECIAL = [np.nan, np.inf, -np.inf, 1e300, -5.0, 2.0]


def model():
    m = nl.Sequential([nl.LSTM(3, stateful=True, batch_input_shape=(2, 4, 3)),
                       nl.Dense(2, activation="sigmoid")], seed=0)
    m.compile("binary_crossentropy", "adam", metrics=["accuracy"])
    m.train_on_batch(np.ones((2, 4, 3)), np.zeros((2, 2)))      # moments and state non-zero
    return m


@st.composite
def arrays(draw):
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=4)))
    dtype = draw(st.sampled_from(DTYPES))
    values = np.random.default_rng(draw(st.integers(0, 100))).uniform(0, 1, size=shape)
    if draw(st.booleans()) and values.size:
        values.flat[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from(SPECIAL))
    with np.errstate(invalid="ignore", over="ignore"):     # NaN -> int is part of the test
        return values.astype(dtype)


def snapshot(m):
    return (m.get_weights(), [s.copy() for s in m.optimizer.slots["m"]], m.optimizer.iterations,
            m.layers[0].get_states())


def assert_unchanged(before, after):
    for a, b in zip(before[0] + before[1], after[0] + after[1]):
        np.testing.assert_array_equal(a, b)
    assert before[2] == after[2]
    for a, b in zip(before[3], after[3]):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=150, deadline=None)
@given(X=arrays(), y=arrays(), call=st.sampled_from(["fit", "train_on_batch", "evaluate",
                                                      "predict", "loss_and_grads"]))
def test_bad_input_is_refused_before_anything_changes(X, y, call):
    m = model()
    before = snapshot(m)
    args = {"fit": (X, y), "train_on_batch": (X, y), "evaluate": (X, y), "predict": (X,),
            "loss_and_grads": (X, y)}[call]
    kwargs = {"verbose": 0} if call == "fit" else {}
    try:
        getattr(m, call)(*args, **kwargs)
    except (ValueError, TypeError) as error:
        assert str(error)                     # a message, not a bare exception
        assert_unchanged(before, snapshot(m))


@settings(max_examples=60, deadline=None)
@given(units=st.one_of(st.integers(-3, 0), st.floats(0.5, 3.5), st.text(max_size=2), st.none()))
def test_bad_layer_sizes_are_named(units):
    for make in (nl.LSTM, nl.Dense, nl.RepeatVector):
        with pytest.raises(ValueError, match="positive integer"):
            make(units)


def test_valid_input_passes():
    m = model()
    X, y = np.zeros((4, 4, 3)), np.zeros((4, 2))
    m.fit(X, y, epochs=1, batch_size=2, verbose=0)
    assert m.predict(X).shape == (4, 2)
    assert len(m.evaluate(X, y)) == 2
