"""Masking and per-step loss weights: the semantics, finite differences, and
PyTorch running only the steps that count."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import npLSTM as nl
from npLSTM import gradcheck as gc
from npLSTM.kernels import reference

from strategies import configs

TOLERANCE = 1e-7


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@settings(max_examples=30, deadline=None)
@given(config=configs(masking=True), weighting=st.sampled_from([None, "sample", "step"]))
def test_masked_and_weighted_gradients_match_finite_differences(backend, config, weighting):
    model = config.build(backend=backend)
    X, y = config.data()
    weights = None if weighting is None else config.sample_weight(weighting == "step")
    report = gc.gradcheck(model, X, y, sample_weight=weights, max_entries=40, seed=config.seed)
    assert report.passed(TOLERANCE), f"{config}\n{report}"
    # masked steps: the loss does not depend on their input at all
    dX = model.backprop(X, y, sample_weight=weights).inputs
    np.testing.assert_array_equal(dX[~np.any(X != 0, axis=-1)], 0.0)


def masked_model(return_sequences=True, stateful=False, backend="numba"):
    model = nl.Sequential([nl.Masking(-1.0, batch_input_shape=(3, 6, 2)),
                           nl.LSTM(4, return_sequences=return_sequences, stateful=stateful)],
                          seed=3, backend=backend)
    model.compile(loss="mse")
    return model


def padded_inputs():
    X = np.random.default_rng(0).normal(size=(3, 6, 2))
    X[0, 4:] = -1.0          # padded at the end
    X[1, :2] = -1.0          # padded at the start
    X[2, 1::2] = -1.0        # every other step
    return X, np.all(X == -1.0, axis=-1)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_masked_step_carries_state_and_output_through(backend):
    X, masked = padded_inputs()
    hs = masked_model(backend=backend).predict(X)
    for b, t in zip(*np.nonzero(masked)):
        previous = hs[b, t - 1] if t > 0 else np.zeros(4)
        np.testing.assert_array_equal(hs[b, t], previous)
    # the last output is the state after the last step that counts
    last = masked_model(return_sequences=False, backend=backend).predict(X)
    np.testing.assert_array_equal(last, hs[:, -1])
    np.testing.assert_array_equal(last[0], hs[0, 3])


def test_masked_steps_change_nothing_whatever_their_other_inputs():
    """Skipping a step is the same as leaving it out: the unmasked steps
    of a padded row give the outputs of the row without the padding."""
    X, masked = padded_inputs()
    model = masked_model()
    hs = model.predict(X)
    bare = nl.Sequential([nl.LSTM(4, return_sequences=True, input_shape=(None, 2))], seed=0)
    bare.set_weights(model.get_weights())
    for b in range(3):
        kept = X[b][~masked[b]][None]
        np.testing.assert_allclose(hs[b][~masked[b]], bare.predict(kept)[0], rtol=1e-14,
                                   atol=1e-15)


def test_a_stateful_masked_row_keeps_its_state_across_a_fully_masked_batch():
    model = masked_model(return_sequences=False, stateful=True)
    X, _ = padded_inputs()
    model.predict(X)
    before = model.layers[1].get_states()
    model.predict(np.full((3, 6, 2), -1.0))
    for a, b in zip(before, model.layers[1].get_states()):
        np.testing.assert_array_equal(a, b)


def test_masked_steps_add_nothing_to_the_loss_or_the_accuracy():
    X, masked = padded_inputs()
    model = nl.Sequential([nl.Masking(-1.0, input_shape=(6, 2)),
                           nl.LSTM(4, return_sequences=True),
                           nl.TimeDistributed(nl.Dense(3, activation="softmax"))], seed=1)
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    y = np.eye(3)[np.random.default_rng(1).integers(3, size=(3, 6))]
    loss, accuracy = model.evaluate(X, y)
    probabilities = model.predict(X)
    rows = -np.sum(y * np.log(probabilities), axis=-1)
    assert loss == pytest.approx(rows[~masked].mean(), rel=1e-12)
    hits = probabilities.argmax(-1) == y.argmax(-1)
    assert accuracy == hits[~masked].mean()
    # whatever the targets of masked steps are
    y[masked] = np.eye(3)[0]
    assert model.evaluate(X, y)[0] == pytest.approx(loss, rel=1e-12)


def test_sample_weights_weigh_each_row_as_keras_does():
    """Keras: sum(w l) / rows without a mask, sum(w l) / unmasked rows with one."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(4, 5, 3)), rng.uniform(size=(4, 5, 2))
    model = nl.Sequential([nl.LSTM(3, return_sequences=True, input_shape=(5, 3)),
                           nl.TimeDistributed(nl.Dense(2, activation="sigmoid"))], seed=0)
    model.compile(loss="binary_crossentropy")
    a = model.predict(X)
    rows = -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a), axis=-1)     # (4, 5)
    per_step = rng.uniform(size=(4, 5))
    per_sample = np.array([1.0, 0.0, 2.0, 0.5])
    assert model.evaluate(X, y, sample_weight=per_step) == pytest.approx(
        np.sum(per_step * rows) / 20, rel=1e-12)
    assert model.evaluate(X, y, sample_weight=per_sample) == pytest.approx(
        np.sum(per_sample[:, None] * rows) / 20, rel=1e-12)
    # a weight of 0 removes a sample from the gradient
    _, with_zero = model.loss_and_grads(X, y, sample_weight=per_sample)
    X2, y2 = X.copy(), y.copy()
    X2[1], y2[1] = rng.normal(size=(5, 3)), rng.uniform(size=(5, 2))
    _, changed = model.loss_and_grads(X2, y2, sample_weight=per_sample)
    for g1, g2 in zip(with_zero, changed):
        np.testing.assert_allclose(g1, g2, rtol=1e-13, atol=1e-16)


def test_fit_with_sample_weights_trains_on_the_weighted_loss():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(4, 5, 3)), rng.normal(size=(4, 5, 1))
    weights = rng.uniform(size=(4, 5))

    def model():
        m = nl.Sequential([nl.LSTM(3, return_sequences=True, input_shape=(5, 3)),
                           nl.TimeDistributed(nl.Dense(1))], seed=0)
        m.compile(loss="mse", optimizer=nl.SGD(0.1))
        return m
    fitted, stepped = model(), model()
    fitted.fit(X, y, epochs=1, batch_size=4, shuffle=False, verbose=0, sample_weight=weights)
    _, grads = stepped.loss_and_grads(X, y, sample_weight=weights)
    for w, before, g in zip(fitted.get_weights(), model().get_weights(), grads):
        np.testing.assert_allclose(w, before - 0.1 * g, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("weights,message", [
    (np.ones(3), r"sample_weight must have shape \(4,\) \(one weight per sample\) or \(4, 5\)"),
    (-np.ones(4), "sample_weight must not be negative, got -1"),
    (np.full((4, 5), np.nan), "sample_weight contains NaN or infinity"),
    (np.array(["a"] * 4), "sample_weight must hold real numbers"),
])
def test_bad_sample_weights_are_named_before_anything_changes(weights, message):
    model = nl.Sequential([nl.LSTM(3, return_sequences=True, input_shape=(5, 3)),
                           nl.TimeDistributed(nl.Dense(1))], seed=0)
    model.compile(loss="mse")
    before = model.get_weights()
    X, y = np.zeros((4, 5, 3)), np.zeros((4, 5, 1))
    for call in (lambda: model.fit(X, y, verbose=0, sample_weight=weights),
                 lambda: model.train_on_batch(X, y, sample_weight=weights),
                 lambda: model.evaluate(X, y, sample_weight=weights)):
        with pytest.raises((ValueError, TypeError), match=message):
            call()
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_masking_needs_a_finite_mask_value_and_sequences():
    with pytest.raises(ValueError, match="mask_value must be a finite number, got nan"):
        nl.Masking(float("nan"))
    with pytest.raises(ValueError,
                       match=r"Masking expects samples of shape \(timesteps, features\)"):
        nl.Sequential([nl.Masking(input_shape=(3,))])


def test_a_masked_model_saves_and_loads(tmp_path):
    model = masked_model()
    X, _ = padded_inputs()
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(nl.load_model(tmp_path / "m.npz").predict(X), model.predict(X))


def test_reference_mask_equals_leaving_the_rows_steps_out():
    """The kernel alone, with a non-zero initial state."""
    rng = np.random.default_rng(4)
    B, T, D, H = 2, 5, 3, 4
    X, h0, c0 = rng.normal(size=(B, T, D)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    W, U, b = rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H)
    mask = np.array([[True, False, True, True, False], [False, False, True, False, True]])
    _, h, c, _ = reference.lstm_forward(X, h0, c0, W, U, b, mask=mask)
    for row in range(B):
        kept = X[row:row + 1, mask[row]]
        _, h_row, c_row, _ = reference.lstm_forward(kept, h0[row:row + 1], c0[row:row + 1], W, U, b)
        np.testing.assert_allclose(h[row], h_row[0], rtol=1e-14)
        np.testing.assert_allclose(c[row], c_row[0], rtol=1e-14)
