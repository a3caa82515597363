"""The compiled training of an LSTM under a Dense head (npLSTM.compiled_batches)
held equal to the layer-by-layer steps, over drawn shapes and options; the
models it serves and those it leaves alone; and a diverging step."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import npLSTM as nl
from npLSTM import compiled_batches
from npLSTM.gradcheck import compare
from npLSTM.kernels import routes

TOLERANCE = {"float64": 1e-12, "float32": 1e-4}


def build(layers_args, head, dtype="float64", optimizer=None, backend="numba"):
    """An LSTM under a Dense head with its cross-entropy, seed 0."""
    lstm_kwargs, K = layers_args
    dense = nl.Dense(K, activation=head)
    layers = [nl.LSTM(**lstm_kwargs),
              nl.TimeDistributed(dense) if lstm_kwargs.get("return_sequences") else dense]
    model = nl.Sequential(layers, seed=0, dtype=dtype, backend=backend)
    model.compile(loss="binary_crossentropy" if head == "sigmoid" else "categorical_crossentropy",
                  optimizer=optimizer or nl.Adam(0.05), metrics=["accuracy"])
    return model


def data(rng, N, T, D, K, every_step, head, dtype):
    X = rng.normal(size=(N, T, D))
    X[X < -0.5] = 0.0                                   # zeros: the kernels skip them
    y = rng.random(size=(N, T, K) if every_step else (N, K))
    if head == "softmax":
        y /= y.sum(axis=-1, keepdims=True)
    return X.astype(dtype), y.astype(dtype)


def assert_close(ours, theirs, dtype, what):
    rtol = TOLERANCE[dtype]
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * max(np.abs(theirs).max(), 1e-3),
                               err_msg=what)


def assert_same_training(compiled, layered, dtype):
    for k, (a, b) in enumerate(zip(compiled.get_weights(), layered.get_weights())):
        assert_close(a, b, dtype, f"weights[{k}]")
    assert compiled.optimizer.iterations == layered.optimizer.iterations
    for name in ("m", "v"):
        assert_close(compiled.optimizer.slots[name][0], layered.optimizer.slots[name][0], dtype, name)
    a, b = compiled.layers[0].states, layered.layers[0].states
    assert (a is None) == (b is None)
    if a is not None:
        assert_close(a[0], b[0], dtype, "h")
        assert_close(a[1], b[1], dtype, "c")


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 4), batches=st.integers(1, 3), T=st.integers(1, 5), D=st.integers(1, 6),
       H=st.integers(1, 8), K=st.integers(1, 5), every_step=st.booleans(),
       stateful=st.booleans(), head=st.sampled_from(["sigmoid", "softmax"]),
       weights=st.sampled_from([None, "sample", "step"]), shuffle=st.booleans(),
       epsilon_form=st.sampled_from(["keras", "pytorch"]),
       dtype=st.sampled_from(["float64", "float32"]), seed=st.integers(0, 2**16))
def test_compiled_training_equals_layer_by_layer(B, batches, T, D, H, K, every_step, stateful,
                                                 head, weights, shuffle, epsilon_form, dtype,
                                                 seed):
    rng = np.random.default_rng(seed)
    N = B * batches if stateful else B * batches - (batches > 1)   # a last partial batch
    X, y = data(rng, N, T, D, K, every_step, head, dtype)
    sample_weight = {None: None, "sample": rng.random(N),
                     "step": rng.random((N, T)) if every_step else rng.random(N)}[weights]
    lstm = dict(units=H, return_sequences=every_step, stateful=stateful,
                **({"batch_input_shape": (B, T, D)} if stateful else {"input_shape": (T, D)}))
    models = [build((lstm, K), head, dtype, nl.Adam(0.05, epsilon_form=epsilon_form))
              for _ in range(2)]
    compiled, layered = models
    layered._steps.compiled = False                      # the layer-by-layer steps
    histories = [m.fit(X, y, epochs=2, batch_size=B, shuffle=shuffle and not stateful,
                       verbose=0, sample_weight=sample_weight) for m in models]
    assert isinstance(compiled._steps.compiled, compiled_batches.CompiledBatches)
    assert_close(histories[0].history["loss"], histories[1].history["loss"], dtype, "loss")
    assert histories[0].history["accuracy"] == histories[1].history["accuracy"]
    assert_same_training(compiled, layered, dtype)
    results = [m.train_on_batch(X[:B], y[:B], return_outputs=True) for m in models]
    assert_close(results[0][0], results[1][0], dtype, "train_on_batch loss")
    assert_close(results[0][1], results[1][1], dtype, "train_on_batch outputs")
    assert results[0][1].shape == results[1][1].shape and results[0][1].dtype == dtype
    assert_same_training(compiled, layered, dtype)


LSTM_20 = dict(units=20, input_shape=(3, 5))


@pytest.mark.parametrize("why, make", [
    ("SGD", lambda: build((LSTM_20, 5), "sigmoid", optimizer=nl.SGD(0.1))),
    ("clipping", lambda: build((LSTM_20, 5), "sigmoid", optimizer=nl.Adam(clipnorm=1.0))),
    ("the numpy backend", lambda: build((LSTM_20, 5), "sigmoid", backend="numpy")),
    ("MSE", lambda: compiled(nl.Sequential([nl.LSTM(**LSTM_20), nl.Dense(5)]), "mse")),
    ("a Masking layer", lambda: compiled(nl.Sequential(
        [nl.Masking(0.0, input_shape=(3, 5)), nl.LSTM(20), nl.Dense(5, activation="sigmoid")]))),
    ("two LSTMs", lambda: compiled(nl.Sequential(
        [nl.LSTM(20, return_sequences=True, input_shape=(3, 5)), nl.LSTM(20),
         nl.Dense(5, activation="sigmoid")]))),
])
def test_other_models_go_layer_by_layer(why, make):
    model = make()
    model.fit(np.zeros((2, 3, 5)), np.zeros((2, 5)), batch_size=2, verbose=0)
    assert model._steps.compiled is False, why


def compiled(model, loss="binary_crossentropy"):
    model.compile(loss=loss, optimizer="adam")
    return model


def test_sizes_beyond_the_measured_bound_go_layer_by_layer(monkeypatch):
    model = build((LSTM_20, 5), "sigmoid")
    X = np.zeros((4, 3, 5))
    model.fit(X, np.zeros((4, 5)), batch_size=2, verbose=0)
    steps = model._steps.compiled
    assert steps.takes(X, 2) and not steps.takes(X, 64)         # 64 x 20 units: BLAS per step
    work = 2 * 3 * (5 + 20 + 1) * 80
    monkeypatch.setattr(routes, "COMPILED_BATCHES_WORK", work - 1)
    assert not steps.takes(X, 2)
    monkeypatch.setattr(routes, "loop_threads", 2)             # the compiled steps stay serial
    monkeypatch.setattr(routes, "COMPILED_BATCHES_WORK", work)
    assert steps.takes(X, 2)


def stateful_model():
    return build((dict(units=4, stateful=True, batch_input_shape=(2, 3, 5)), 5), "sigmoid")


def test_a_diverging_step_changes_nothing():
    """A weight that went NaN: the first step is not applied, and the error
    says so, on both paths alike."""
    X, y = data(np.random.default_rng(0), 4, 3, 5, 5, False, "sigmoid", "float64")
    for compiled in (True, False):
        model = stateful_model()
        model.train_on_batch(X[:2], y[:2])
        if not compiled:
            model._steps.compiled = False
        model.parameters.flat[3] = np.nan
        before = (model.parameters.flat.copy(), model.layers[0].states,
                  [a.copy() for a in model.optimizer.slots["m"]])
        with pytest.raises(nl.TrainingDiverged, match="training diverged at step 2: the loss "
                                                      "is nan or a gradient is not finite"):
            model.fit(X, y, batch_size=2, shuffle=False, verbose=0)
        np.testing.assert_array_equal(model.parameters.flat, before[0])
        assert model.layers[0].states is before[1] and model.optimizer.iterations == 1
        np.testing.assert_array_equal(model.optimizer.slots["m"][0], before[2][0])


def test_the_steps_before_a_diverging_batch_are_applied():
    """The compiled batches stop at the first batch whose loss is not finite
    (a NaN input, which the model's own checks would refuse): the first
    batch's step is applied, as one step of its own would be, with its state."""
    X, y = data(np.random.default_rng(0), 6, 3, 5, 5, False, "sigmoid", "float64")
    X[3, 1, 2] = np.nan                                 # in the second batch
    model, reference = stateful_model(), stateful_model()
    model.train_on_batch(X[:2], y[:2])                  # builds the compiled path
    reference.train_on_batch(X[:2], y[:2])
    losses, mean_loss, _, applied = model._steps.compiled.run(X, y, batch_size=2)
    assert applied == 1 and len(losses) == 2 and np.isnan(losses[1])
    assert mean_loss == losses[0] * 2 / 6               # of the applied batch, over all samples
    reference.train_on_batch(X[:2], y[:2])
    assert_same_training(model, reference, "float64")


@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 3), T=st.integers(1, 4), D=st.integers(1, 4), H=st.integers(1, 5),
       K=st.integers(1, 4), every_step=st.booleans(), head=st.sampled_from(["sigmoid", "softmax"]),
       seed=st.integers(0, 2**16))
def test_the_compiled_gradients_match_finite_differences(B, T, D, H, K, every_step, head, seed):
    """The gradient the compiled step applies, at the weights before it,
    against sixth-order central differences of the loss (npLSTM.gradcheck)."""
    rng = np.random.default_rng(seed)
    X, y = data(rng, B, T, D, K, every_step, head, "float64")
    model = build((dict(units=H, return_sequences=every_step, input_shape=(T, D)), K), head)
    model.compile(model.loss, nl.Adam(0.05))            # no metrics: evaluate gives the loss
    before = model.parameters.flat.copy()
    model.train_on_batch(X, y)
    assert isinstance(model._steps.compiled, compiled_batches.CompiledBatches)
    model.parameters.flat[...] = before
    loss = lambda: model.evaluate(X, y, batch_size=B)     # noqa: E731
    for k, (param, grad) in enumerate(zip(model.parameters.views, model._steps.compiled.grad_views)):
        check = compare(f"weights[{k}]", loss, param, grad.copy(), step=5e-3, floor=1e-5,
                        max_entries=30, rng=rng)
        assert check.worst < 1e-7, check
