"""Sequential: Keras semantics of training, state, weights and errors."""
import numpy as np
import pytest

import npLSTM as nl


def memory_model(seed=0, dtype="float64", batch=1, timesteps=1):
    model = nl.Sequential([
        nl.LSTM(20, stateful=True, batch_input_shape=(batch, timesteps, 5)),
        nl.Dense(5, activation="sigmoid"),
    ], seed=seed, dtype=dtype)
    model.compile(loss="binary_crossentropy", optimizer=nl.Adam())
    return model


def memory_data():
    """Sequence A of the memory task, as (x_t -> x_{t+1}) pairs."""
    eye = np.eye(5)
    return eye[[3, 0, 1, 2]][:, None, :], eye[[0, 1, 2, 3]]


def sequence_model(seed, timesteps, batch=2, dtype="float64"):
    return nl.Sequential([nl.LSTM(4, return_sequences=True, stateful=True,
                                  batch_input_shape=(batch, timesteps, 3))],
                         seed=seed, dtype=dtype)


# Initialisation -----------------------------------------------------------------------


def test_keras_default_initialisers():
    lstm = memory_model().layers[0]
    W, U, b = lstm.params
    H = 20
    assert W.shape == (5, 80) and U.shape == (20, 80) and b.shape == (80,)
    assert np.abs(W).max() <= np.sqrt(6 / (5 + 80))
    np.testing.assert_allclose(U @ U.T, np.eye(H), atol=1e-12)   # orthonormal rows
    np.testing.assert_array_equal(b[H:2 * H], 1.0)                 # unit forget bias
    np.testing.assert_array_equal(np.delete(b, np.s_[H:2 * H]), 0.0)


def test_get_weights_is_keras_order():
    model = nl.Sequential([nl.LSTM(3, input_shape=(2, 4)), nl.Dense(2)], seed=0)
    assert [w.shape for w in model.get_weights()] == [(4, 12), (3, 12), (12,), (3, 2), (2,)]


def test_build_from_the_first_data_when_no_shape_is_given():
    model = nl.Sequential([nl.LSTM(3), nl.Dense(2)], seed=0)
    assert model.get_weights() == []
    model.compile("mse")
    out = model.predict(np.zeros((4, 6, 5)))
    assert out.shape == (4, 2)
    assert [w.shape for w in model.get_weights()][0] == (5, 12)


# Stateful semantics ---------------------------------------------------------------------


def test_a_stateful_run_split_over_two_calls_equals_one_call():
    """Equal to rounding: the input projection x W is one matmul per call,
    and BLAS sums a (2, 3, 3) and a (2, 6, 3) product in other orders."""
    X = np.random.default_rng(0).normal(size=(2, 6, 3))
    whole = sequence_model(seed=1, timesteps=6).predict(X)
    split = sequence_model(seed=1, timesteps=3)
    first, second = split.predict(X[:, :3]), split.predict(X[:, 3:])
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole,
                               rtol=1e-14, atol=1e-15)


def test_row_j_of_the_next_batch_continues_row_j():
    """Batches [a0, b0], [a1, b1] of one step each = sequences [a0 a1], [b0 b1]."""
    X = np.random.default_rng(1).normal(size=(2, 2, 3))          # 2 sequences, 2 steps
    whole = sequence_model(seed=2, timesteps=2).predict(X)
    steps = sequence_model(seed=2, timesteps=1).predict(
        X.transpose(1, 0, 2).reshape(4, 1, 3), batch_size=2)      # a0 b0 a1 b1
    np.testing.assert_allclose(steps.reshape(2, 2, 4).transpose(1, 0, 2), whole,
                               rtol=1e-14, atol=1e-15)


def test_predict_twice_after_reset_states_is_the_same():
    model = memory_model()
    X, _ = memory_data()
    first = model.predict(X)
    moved_on = model.predict(X)
    model.reset_states()
    again = model.predict(X)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, moved_on)      # the state did carry over


def test_stateless_layers_start_from_zero_every_call():
    model = nl.Sequential([nl.LSTM(4, input_shape=(3, 2))], seed=0)
    X = np.ones((1, 3, 2))
    np.testing.assert_array_equal(model.predict(X), model.predict(X))


def test_loss_and_grads_changes_nothing():
    model = memory_model()
    X, y = memory_data()
    model.predict(X[:2])                      # carry a non-zero state
    weights, state = model.get_weights(), model.layers[0].get_states()
    loss, grads = model.loss_and_grads(X[2:3], y[2:3])
    assert [g.shape for g in grads] == [w.shape for w in weights]
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(state, model.layers[0].get_states()):
        np.testing.assert_array_equal(before, after)
    # ... and it is the loss a training step then starts from.
    assert model.train_on_batch(X[2:3], y[2:3]) == loss


def test_the_gradient_stops_at_the_batch_boundary():
    """A stateful step's gradients are those of one step from the carried
    state, as if that state were a given input (truncated BPTT)."""
    model = memory_model()
    X, y = memory_data()
    model.predict(X[:1])
    carried = model.layers[0].get_states()
    loss, grads = model.loss_and_grads(X[1:2], y[1:2])
    fresh = memory_model()
    fresh.layers[0].reset_states(carried)
    fresh_loss, fresh_grads = fresh.loss_and_grads(X[1:2], y[1:2])
    assert loss == fresh_loss
    for a, b in zip(grads, fresh_grads):
        np.testing.assert_array_equal(a, b)


# Training ----------------------------------------------------------------------------------


def test_fit_makes_one_update_per_batch_and_records_history():
    model = memory_model()
    X, y = memory_data()
    history = model.fit(X, y, epochs=3, batch_size=1, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 12
    assert history.epoch == [0, 1, 2]
    assert len(history.history["loss"]) == len(history.history["accuracy"]) == 3
    assert all(0 <= a <= 1 for a in history.history["accuracy"])


def test_fit_learns_the_memory_sequence():
    model = memory_model()
    X, y = memory_data()
    for _ in range(150):
        model.fit(X, y, epochs=1, batch_size=1, shuffle=False, verbose=0)
        model.reset_states()
    np.testing.assert_array_equal(model.predict_classes(X), [0, 1, 2, 3])


def test_fit_verbose_prints_one_line_per_epoch(capsys):
    model = memory_model()
    model.fit(*memory_data(), epochs=2, batch_size=1, shuffle=False, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Epoch 1/2 - loss: ") and "accuracy: " in lines[0]
    assert len(lines) == 2


def test_the_same_seed_gives_bit_identical_runs():
    def run(seed):
        model = nl.Sequential([nl.LSTM(6, input_shape=(3, 4)), nl.Dense(3, activation="softmax")],
                              seed=seed)
        model.compile("categorical_crossentropy", "adam")
        rng = np.random.default_rng(5)
        X, y = rng.normal(size=(10, 3, 4)), np.eye(3)[rng.integers(0, 3, 10)]
        history = model.fit(X, y, epochs=4, batch_size=3, shuffle=True, verbose=0)
        return model.get_weights(), history.history["loss"], model.predict(X)

    (w1, l1, p1), (w2, l2, p2), (w3, _, _) = run(7), run(7), run(8)
    assert l1 == l2
    np.testing.assert_array_equal(p1, p2)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(w1[0], w3[0])


def test_train_on_batch_returns_the_loss_before_the_update():
    model = memory_model()
    X, y = memory_data()
    before = model.get_weights()
    loss = model.loss_and_grads(X[:1], y[:1])[0]
    # (the compiled executor, npLSTM.executor: equal to rounding)
    assert model.train_on_batch(X[:1], y[:1]) == pytest.approx(loss, rel=1e-14)
    assert not np.array_equal(before[0], model.get_weights()[0])


def test_train_on_batch_can_return_the_outputs_before_the_update():
    model = nl.Sequential([nl.LSTM(3, input_shape=(4, 2)), nl.Dense(1)], seed=0)
    model.compile("mse", "adam")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 4, 2)), rng.normal(size=(5, 1))
    expected = model.predict(X)
    loss, outputs = model.train_on_batch(X, y, return_outputs=True)
    np.testing.assert_array_equal(outputs, expected)
    assert loss == pytest.approx(np.mean((expected - y) ** 2), rel=1e-14)
    assert not np.array_equal(model.predict(X), expected)        # the update happened


def test_evaluate_weighs_batches_by_size_and_reports_accuracy():
    model = nl.Sequential([nl.Dense(2, activation="softmax", input_shape=(3,))], seed=0)
    model.compile("categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 3)), np.eye(2)[rng.integers(0, 2, 5)]
    loss, accuracy = model.evaluate(X, y, batch_size=2)
    whole = model.loss_and_grads(X, y)[0]
    assert loss == pytest.approx(whole, rel=1e-14)
    assert accuracy == np.mean(model.predict_classes(X) == y.argmax(1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_entry_point_keeps_the_model_dtype(dtype):
    model = memory_model(dtype=dtype)
    X, y = memory_data()
    model.fit(X, y, epochs=1, batch_size=1, shuffle=False, verbose=0)
    loss, grads = model.loss_and_grads(X[:1], y[:1])
    assert {w.dtype for w in model.get_weights() + grads} == {np.dtype(dtype)}
    assert model.predict(X).dtype == dtype
    assert model.layers[0].get_states()[0].dtype == dtype
    assert np.isfinite(model.evaluate(X, y))


def test_float32_follows_float64_closely():
    X, y = memory_data()
    runs = []
    for dtype in ("float32", "float64"):
        model = memory_model(dtype=dtype)
        model.fit(X, y, epochs=5, batch_size=1, shuffle=False, verbose=0)
        runs.append(model.predict(X).astype(np.float64))
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-4)


def test_a_diverging_step_is_refused_and_nothing_changes():
    model = nl.Sequential([nl.LSTM(3, stateful=True, batch_input_shape=(1, 2, 2)), nl.Dense(1)],
                          seed=0)
    model.compile("mse")
    X = np.ones((1, 2, 2))
    model.train_on_batch(X, np.zeros((1, 1)))
    model.predict(X)
    weights, state = model.get_weights(), model.layers[0].get_states()
    moments = [m.copy() for m in model.optimizer.slots["m"]]
    with pytest.raises(nl.TrainingDiverged, match="step 2.*last good step"):
        model.train_on_batch(X, np.full((1, 1), 1e200))    # (a - y)^2 overflows
    assert model.optimizer.iterations == 1
    for before, after in zip(weights + moments, model.get_weights() + model.optimizer.slots["m"]):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(state, model.layers[0].get_states()):
        np.testing.assert_array_equal(before, after)


def test_encoder_decoder_shapes():
    model = nl.Sequential([
        nl.LSTM(8, batch_input_shape=(3, 5, 10)),
        nl.RepeatVector(2),
        nl.LSTM(8, return_sequences=True),
        nl.TimeDistributed(nl.Dense(10, activation="softmax")),
    ], seed=0)
    model.compile("categorical_crossentropy")
    assert model.output_shape == (2, 10)
    out = model.predict(np.zeros((6, 5, 10)), batch_size=3)
    assert out.shape == (6, 2, 10)
    np.testing.assert_allclose(out.sum(-1), 1.0)


# Errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("build,match", [
    (lambda: nl.Sequential([nl.LSTM(2, stateful=True, input_shape=(1, 3))]), "fixed batch size"),
    (lambda: nl.Sequential([]), "at least one layer"),
    (lambda: nl.Sequential([nl.Dense(2)], dtype="float16"), "float32.*float16"),
    (lambda: nl.Sequential(["LSTM"]), "npLSTM layers"),
    (lambda: nl.LSTM(0), "LSTM units"),
    (lambda: nl.Dense(3, activation="relu"), "relu.*known"),
    (lambda: nl.RepeatVector(-1), "RepeatVector n"),
    (lambda: nl.LSTM(2, input_shape=(3, 2), batch_input_shape=(1, 4, 2)), "contradicts"),
    (lambda: nl.Sequential([nl.LSTM(2, input_shape=(3,))]), "timesteps, features"),
])
def test_bad_models_are_named(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_compile_checks_the_head_and_names():
    model = nl.Sequential([nl.LSTM(2, input_shape=(1, 3)), nl.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match="binary_crossentropy.*sigmoid"):
        model.compile("binary_crossentropy")
    with pytest.raises(ValueError, match="hinge.*known"):
        model.compile("hinge")
    with pytest.raises(ValueError, match="metrics"):
        model.compile("categorical_crossentropy", metrics=["auc"])
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.zeros((1, 1, 3)), np.zeros((1, 3)))


@pytest.mark.parametrize("X,y,kwargs,match", [
    (np.zeros((4, 2, 5)), np.zeros((4, 5)), {}, r"X must have shape \('batch', 1, 5\)"),
    (np.zeros((4, 1, 5)), np.zeros((3, 5)), {}, r"y must have shape \(4, 5\)"),
    (np.zeros((4, 1, 5)), np.zeros((4, 5)), {"batch_size": 2}, "fixed batch size of 1"),
    (np.full((4, 1, 5), np.nan), np.zeros((4, 5)), {}, "X contains NaN"),
    (np.zeros((4, 1, 5), complex), np.zeros((4, 5)), {}, "real numbers.*complex"),
    (np.array([["a"]]), np.zeros((4, 5)), {}, "real numbers"),
    (np.zeros((4, 1, 5)), np.zeros((4, 5)), {"epochs": 0}, "epochs"),
    (np.zeros((4, 1, 5)), np.full((4, 5), 2.0), {}, r"targets in \[0, 1\].*from 2 to 2"),
])
def test_bad_training_data_is_named_and_changes_nothing(X, y, kwargs, match):
    model = memory_model()
    weights = model.get_weights()
    with pytest.raises((ValueError, TypeError), match=match):
        model.fit(X, y, verbose=0, **kwargs)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert model.layers[0].get_states() is None


def test_a_last_partial_batch_is_refused_for_a_fixed_batch_size():
    model = memory_model(batch=2)
    with pytest.raises(ValueError, match="3 samples do not split into whole batches of 2"):
        model.predict(np.zeros((3, 1, 5)))


def test_set_weights_checks_count_and_shapes():
    model = memory_model()
    weights = model.get_weights()
    with pytest.raises(ValueError, match="expected 5 weight arrays, got 4"):
        model.set_weights(weights[:4])
    with pytest.raises(ValueError, match=r"weights\[1\] must have shape \(20, 80\)"):
        model.set_weights(weights[:1] + [weights[1].T] + weights[2:])
    doubled = [2 * w for w in weights]
    model.set_weights(doubled)
    for a, b in zip(doubled, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_reset_states_to_given_values_is_checked():
    lstm = memory_model().layers[0]
    with pytest.raises(ValueError, match=r"state h must have shape \(1, 20\)"):
        lstm.reset_states((np.zeros((2, 20)), np.zeros((1, 20))))
    with pytest.raises(ValueError, match="pair"):
        lstm.reset_states((np.zeros((1, 20)),))
    with pytest.raises(ValueError, match="stateless"):
        nl.LSTM(2).reset_states((np.zeros((1, 2)), np.zeros((1, 2))))


def test_categorical_targets_must_be_distributions():
    model = nl.Sequential([nl.Dense(3, activation="softmax", input_shape=(2,))], seed=0)
    model.compile("categorical_crossentropy")
    X = np.zeros((2, 2))
    with pytest.raises(ValueError, match="distributions.*sums from 2 to 2"):
        model.train_on_batch(X, np.ones((2, 3)) * 2 / 3)
    with pytest.raises(ValueError, match="distributions"):
        model.evaluate(X, np.array([[1.5, -0.5, 0.0], [1.0, 0.0, 0.0]]))
    model.train_on_batch(X, np.array([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]]))    # soft labels are fine


def test_reshape_and_activation_make_a_grouped_softmax_head():
    model = nl.Sequential([nl.LSTM(4, input_shape=(3, 2)), nl.Dense(6), nl.Reshape((2, 3)),
                           nl.Activation("softmax")], seed=0)
    model.compile(loss="categorical_crossentropy")
    out = model.predict(np.random.default_rng(0).normal(size=(5, 3, 2)))
    assert out.shape == (5, 2, 3)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-14)   # a softmax per group


def test_reshape_and_activation_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"Reshape cannot turn samples of shape \(6,\) "
                                         r"\(6 entries\) into \(4, 2\) \(8 entries\)"):
        nl.Sequential([nl.Dense(6, input_shape=(3,)), nl.Reshape((4, 2))])
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        nl.Activation("relu6")
    with pytest.raises(ValueError, match="target_shape needs at least one axis"):
        nl.Reshape(())


@pytest.mark.parametrize("executor", ["compiled", "layers"])
def test_warm_up_compiles_a_step_and_changes_nothing(executor):
    model = memory_model(batch=2)
    model.executor = executor
    X, y = memory_data()
    model.train_on_batch(X[:2], y[:2])
    before = (model.get_weights(), model.layers[0].states, model.optimizer.iterations,
              [a.copy() for a in model.optimizer.slots["v"]])
    model.warm_up(X[2:4], y[2:4])
    for a, b in zip(model.get_weights(), before[0]):
        np.testing.assert_array_equal(a, b)
    assert model.layers[0].states is before[1] and model.optimizer.iterations == before[2]
    np.testing.assert_array_equal(model.optimizer.slots["v"][0], before[3][0])
    fresh = memory_model(batch=2)
    fresh.warm_up(X[:2], y[:2])             # before any step: no slots yet, no state
    assert fresh.optimizer.slots is None and fresh.layers[0].states is None
    assert fresh.optimizer.iterations == 0


@pytest.mark.parametrize("activation,loss", [("softmax", "categorical_crossentropy"),
                                             ("tanh", "mse")])
def test_time_distributed_activation_heads_train_and_their_gradients_check(activation, loss):
    """An Activation head wrapped in TimeDistributed: fused with its loss
    (softmax) or not (tanh), its backward takes the Layer contract's input_grad."""
    from npLSTM import gradcheck
    model = nl.Sequential([nl.LSTM(4, return_sequences=True, input_shape=(3, 2)),
                           nl.TimeDistributed(nl.Dense(3)),
                           nl.TimeDistributed(nl.Activation(activation))], seed=0)
    model.compile(loss=loss, optimizer="adam")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 3, 2))
    y = np.eye(3)[rng.integers(0, 3, (5, 3))]
    history = model.fit(X, y, epochs=3, batch_size=5, verbose=0)
    assert len(history.history["loss"]) == 3
    assert gradcheck.gradcheck(model, X, y).passed(1e-7)


def test_every_layer_keeps_the_layer_contract():
    """forward(x, mask=None) and backward(dy, input_grad=True), as Layer declares."""
    import inspect
    from npLSTM.layers import LAYERS
    for cls in LAYERS.values():
        forward = inspect.signature(cls.forward).parameters
        backward = inspect.signature(cls.backward).parameters
        assert list(forward)[2:] == ["mask"] and forward["mask"].default is None, cls
        assert list(backward)[2:] == ["input_grad"] and backward["input_grad"].default is True, cls
