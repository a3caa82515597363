"""A model's plan (npLSTM.Plan): made with the model, refused when
nonsense, followed by every layer (those TimeDistributed wraps too), kept
in the model file, and each loop shape it can ask for gives the
reference's training."""
import numpy as np
import pytest

import npLSTM as nl
from npLSTM.kernels import routes


def model(**plan):
    layers = [nl.LSTM(6, return_sequences=True, input_shape=(4, 3)),
              nl.TimeDistributed(nl.Dense(2, activation="softmax"))]
    built = nl.Sequential(layers, seed=0, **plan)
    built.compile("categorical_crossentropy", "adam")
    return built


def test_every_layer_follows_the_models_plan():
    built = model(executor="layers", loop_threads=1)
    assert built.plan == nl.Plan(executor="layers", loop_threads=1)
    assert all(layer.plan is built.plan for layer in built.layers + [built.layers[1].layer])
    built.plan = nl.Plan(lstm_loop="steps")
    assert built.layers[1].layer.plan is built.plan and built.executor == "auto"
    built.executor = "compiled"
    assert built.plan == nl.Plan(executor="compiled", lstm_loop="steps")


@pytest.mark.parametrize("plan, message", [
    (dict(executor="fused"), "executor must be one of"),
    (dict(lstm_loop="blocks"), "lstm_loop must be one of"),
    (dict(loop_threads=0), "the number of loop threads must be a positive integer, got 0"),
    (dict(thread_work="a"), "thread_work must be an integer of at least 1, got 'a'"),
    (dict(one_thread_work=-5), "one_thread_work must be an integer of at least 0, got -5"),
])
def test_a_nonsense_plan_is_refused(plan, message):
    with pytest.raises(ValueError, match=message):
        nl.Plan(**plan)


def test_a_model_takes_only_a_plan():
    built = model()
    with pytest.raises(TypeError, match="a model's plan is an npLSTM.Plan, got str"):
        built.plan = "compiled"
    assert built.plan == nl.Plan()


def test_the_plan_is_kept_in_the_model_file(tmp_path):
    built = model(executor="layers", loop_threads=1)
    built.plan = nl.Plan("layers", 1, lstm_loop="steps", thread_work=7)
    built.save(tmp_path / "m.npz")
    assert nl.load_model(tmp_path / "m.npz").plan == built.plan


def test_the_route_of_a_batch_is_the_plans():
    plan = nl.Plan(lstm_loop="steps", loop_threads=1)
    assert not plan.route(2, 4).whole_loop and nl.Plan(lstm_loop="whole").route(500, 500).whole_loop
    assert nl.Plan().route(2, 4).whole_loop == routes.compiled_loop(2, 4)
    assert plan.route(2, 4).threads == 1


@pytest.mark.parametrize("lstm_loop", ["whole", "steps"])
def test_each_loop_shape_trains_as_the_reference(lstm_loop):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 4, 3))
    y = rng.dirichlet(np.ones(2), size=(3, 4))
    results = []
    for backend in ("numba", "numpy"):
        built = nl.Sequential([nl.LSTM(6, return_sequences=True, input_shape=(4, 3)),
                               nl.TimeDistributed(nl.Dense(2, activation="softmax"))],
                              seed=0, backend=backend, executor="layers")
        built.plan = nl.Plan(executor="layers", lstm_loop=lstm_loop)
        built.compile("categorical_crossentropy", "adam")
        results.append(([built.train_on_batch(X, y) for _ in range(3)], built.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    for ours, theirs in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-13)
