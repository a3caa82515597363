"""The compiled executor (npLSTM.executor) held equal to the layer-by-layer
steps over drawn models: every topology (the encoder-decoder included),
head and loss, masks, stateful layers, both optimizers with Keras's
clipping, sample weights, shuffled batches, both precisions.
Then its gradients against finite differences, the models and sizes it
takes, and a diverging step."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import npLSTM as nl
from npLSTM import executor
from npLSTM.gradcheck import compare
from strategies import configs

TOLERANCE = {"float64": 1e-10, "float32": 2e-4}

OPTIMIZERS = {
    "adam": lambda: nl.Adam(0.05),
    "adam, pytorch's epsilon": lambda: nl.Adam(0.05, epsilon_form="pytorch"),
    "sgd": lambda: nl.SGD(0.1),
    "sgd, momentum": lambda: nl.SGD(0.05, momentum=0.5),
    "sgd, nesterov": lambda: nl.SGD(0.05, momentum=0.9, nesterov=True),
    "adam, clipnorm": lambda: nl.Adam(0.05, clipnorm=0.05),
    "adam, global_clipnorm": lambda: nl.Adam(0.05, global_clipnorm=0.05),
    "sgd, clipvalue": lambda: nl.SGD(0.1, clipvalue=0.01),
}


def assert_close(ours, theirs, dtype, what):
    rtol = TOLERANCE[dtype]
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=rtol,
                               atol=rtol * max(np.abs(theirs).max(initial=0.0), 1e-3),
                               err_msg=what)


def assert_same_training(compiled, layered, dtype):
    for k, (a, b) in enumerate(zip(compiled.get_weights(), layered.get_weights())):
        assert_close(a, b, dtype, f"weights[{k}]")
    assert compiled.optimizer.iterations == layered.optimizer.iterations
    for name in compiled.optimizer.slot_names:
        assert_close(compiled.optimizer.slots[name][0], layered.optimizer.slots[name][0], dtype,
                     name)
    for a, b in zip(compiled.states, layered.states):
        assert (a is None) == (b is None)
        if a is not None:
            assert_close(a[0], b[0], dtype, "h")
            assert_close(a[1], b[1], dtype, "c")


def models(config, dtype, optimizer):
    """The model of config twice, taking the compiled executor and layer by layer."""
    pair = []
    for choice in ("compiled", "layers"):
        model = config.build(dtype, executor=choice)
        model.compile(config.loss, OPTIMIZERS[optimizer](), metrics=["accuracy"])
        pair.append(model)
    return pair


@settings(max_examples=60, deadline=None)
@given(config=st.booleans().flatmap(lambda masking: configs(max_batch=3, max_time=4,
                                                            masking=masking)),
       batches=st.integers(1, 3), optimizer=st.sampled_from(sorted(OPTIMIZERS)),
       weights=st.sampled_from([None, "sample", "step"]), shuffle=st.booleans(),
       dtype=st.sampled_from(["float64", "float32"]))
def test_compiled_training_equals_layer_by_layer(config, batches, optimizer, weights, shuffle,
                                                 dtype):
    B = config.batch
    N = B * batches
    many = dataclasses.replace(config, batch=N)
    X, y = many.data(dtype)
    sample_weight = None if weights is None else many.sample_weight(per_step=weights == "step")
    compiled, layered = models(config, dtype, optimizer)
    histories = [m.fit(X, y, epochs=2, batch_size=B, shuffle=shuffle and not config.stateful,
                       verbose=0, sample_weight=sample_weight) for m in (compiled, layered)]
    assert isinstance(compiled._steps.compiled, executor.CompiledExecutor)
    assert layered._steps.compiled is None
    assert_close(histories[0].history["loss"], histories[1].history["loss"], dtype, "loss")
    if dtype == "float64" and config.loss != "mse":      # float32 may tip a near tie
        assert histories[0].history["accuracy"] == histories[1].history["accuracy"]
    assert_same_training(compiled, layered, dtype)
    results = [m.train_on_batch(X[:B], y[:B], return_outputs=True) for m in (compiled, layered)]
    assert_close(results[0][0], results[1][0], dtype, "train_on_batch loss")
    assert_close(results[0][1], results[1][1], dtype, "train_on_batch outputs")
    assert results[0][1].shape == results[1][1].shape and results[0][1].dtype == dtype
    assert_same_training(compiled, layered, dtype)


@settings(max_examples=25, deadline=None)
@given(config=st.booleans().flatmap(lambda masking: configs(max_batch=3, max_time=4,
                                                            max_units=5, masking=masking)))
def test_the_compiled_gradients_match_finite_differences(config):
    """The gradient the compiled step applies, at the weights before it,
    against central differences of the loss (npLSTM.gradcheck), from the
    same recurrent state."""
    X, y = config.data()
    model = config.build(executor="compiled")
    before, states = model.parameters.flat.copy(), model.states
    model.train_on_batch(X, y)
    steps = model._steps.compiled
    model.parameters.flat[...] = before

    def loss():
        model.states = states
        return model.evaluate(X, y, batch_size=config.batch)

    rng = np.random.default_rng(config.seed)
    for k, (param, (start, stop)) in enumerate(zip(model.parameters.views,
                                                   model.parameters.segments)):
        grad = steps.grads[start:stop].reshape(param.shape).copy()
        check = compare(f"weights[{k}]", loss, param, grad, step=5e-3, floor=1e-5,
                        max_entries=20, rng=rng)
        assert check.worst < 1e-6, check


class Doubled(nl.Activation):
    """A layer of the user's own: the program does not know it."""


class Halved(nl.SGD):
    """An optimizer of the user's own."""


LSTM_20 = dict(units=20, input_shape=(3, 5))


def dense_model(executor_choice="auto", backend="numba", optimizer="adam", loss="mse", head=None):
    layers = [nl.LSTM(**LSTM_20), nl.Dense(5, activation="sigmoid")] + ([head] if head else [])
    model = nl.Sequential(layers, seed=0, backend=backend, executor=executor_choice)
    model.compile(loss=loss, optimizer=optimizer)
    return model


def test_models_of_other_parts_go_layer_by_layer():
    for model in (dense_model(backend="numpy"), dense_model(optimizer=Halved()),
                  dense_model(head=Doubled("linear"))):
        model.fit(np.zeros((2, 3, 5)), np.zeros((2, 5)), batch_size=2, verbose=0)
        assert model._steps.compiled in (None, False)


def test_the_compiled_executor_asked_for_says_what_it_cannot_run():
    with pytest.raises(ValueError, match="the compiled executor runs the numba backend's "
                                         "kernels; this model's backend is 'numpy'"):
        nl.Sequential([nl.LSTM(**LSTM_20)], backend="numpy", executor="compiled")
    with pytest.raises(ValueError, match="executor must be one of"):
        nl.Sequential([nl.LSTM(**LSTM_20)], executor="fused")
    own = "runs models of npLSTM's own layers trained by Adam or SGD; this one has "
    with pytest.raises(ValueError, match=own + "a layer Doubled"):       # when made
        dense_model("compiled", head=Doubled("linear"))
    model = dense_model("compiled")
    with pytest.raises(ValueError, match=own + "an optimizer Halved"):   # when compiled
        model.compile("mse", Halved())
    assert type(model.optimizer) is nl.Adam                # the model as it was
    layers = dense_model(head=Doubled("linear"), optimizer=Halved())
    with pytest.raises(ValueError, match=own + "a layer Doubled and an optimizer Halved"):
        layers.executor = "compiled"
    assert layers.executor == "auto"


def test_auto_takes_the_compiled_executor_by_size():
    model = dense_model(loss="binary_crossentropy")
    X = np.zeros((4, 3, 5))
    model.fit(X, np.zeros((4, 5)), batch_size=2, verbose=0)
    steps = model._steps.compiled
    assert steps.takes(X, 2) and not steps.takes(X, 64)        # 64 x 20 units: BLAS per step
    prog = steps.program(X.shape[1:])
    assert prog.lstms == [(1, 20)]                              # rows a sample, units
    assert prog.work_per_sample == 3 * (5 + 20 + 1) * 80 + 21 * 5   # the LSTM's and the head's
    forced = dense_model("compiled", loss="binary_crossentropy")
    assert forced._steps.compiled_executor(X, 64) is not None  # at any size when asked


def stateful_model():
    model = nl.Sequential([nl.LSTM(4, stateful=True, batch_input_shape=(2, 3, 5)),
                           nl.Dense(5, activation="sigmoid")], seed=0, executor="compiled")
    model.compile("binary_crossentropy", nl.Adam(0.05))
    return model


def stateful_data(N=4):
    rng = np.random.default_rng(0)
    return rng.normal(size=(N, 3, 5)), rng.random(size=(N, 5))


def test_a_diverging_step_changes_nothing():
    """A weight that went NaN: the first step is not applied, and the error
    says so, on both executors alike."""
    X, y = stateful_data()
    for choice in ("compiled", "layers"):
        model = stateful_model()
        model.train_on_batch(X[:2], y[:2])
        model.executor = choice
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
    X, y = stateful_data(6)
    X[3, 1, 2] = np.nan                                 # in the second batch
    model, reference = stateful_model(), stateful_model()
    model.train_on_batch(X[:2], y[:2])                  # makes the executor
    reference.train_on_batch(X[:2], y[:2])
    losses, mean_loss, _, _, applied = model._steps.compiled.run(X, y, batch_size=2)
    assert applied == 1 and len(losses) == 2 and np.isnan(losses[1])
    assert mean_loss == losses[0] * 2 / 6               # of the applied batch, over all samples
    reference.train_on_batch(X[:2], y[:2])
    assert_same_training(model, reference, "float64")
