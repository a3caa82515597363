"""Every backpropagated gradient against central finite differences, float64."""
import numpy as np
import pytest
from hypothesis import given, settings

from npLSTM import gradcheck as gc
from npLSTM.kernels import reference, routes

from strategies import ROUTES, Config, configs, take_route

TOLERANCE = 1e-7


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@settings(max_examples=40, deadline=None)
@given(config=configs())
def test_every_gradient_matches_finite_differences(backend, config):
    model = config.build(backend=backend)
    X, y = config.data()
    report = gc.gradcheck(model, X, y, max_entries=40, seed=config.seed)
    assert report.passed(TOLERANCE), f"{config}\n{report}"
    names = [c.name for c in report.checks]
    assert "inputs" in names
    assert config.stateful == ("layer 0 LSTM h0" in names)


@pytest.mark.parametrize("head,loss", [("sigmoid", "binary_crossentropy"),
                                       ("softmax", "categorical_crossentropy"),
                                       ("linear", "mse")])
def test_every_entry_of_an_encoder_decoder(head, loss):
    """No sampling: all entries of every array of a stacked encoder-decoder."""
    config = Config(batch=3, timesteps=6, features=4, units=(5, 4), topology="encoder-decoder",
                    head=head, loss=loss, outputs=3, repeat=2, stateful=True, seed=7)
    report = gc.gradcheck(config.build(), *config.data())
    assert all(c.checked == c.size for c in report.checks)
    assert report.passed(TOLERANCE), str(report)


@pytest.mark.parametrize("route", ROUTES)
def test_the_large_path_matches_finite_differences(route, monkeypatch):
    """Two stacked LSTMs on the large path (BLAS per step from Python, or
    called by each thread for its rows: strategies.ROUTES), stateful:
    sampled entries of every gradient."""
    plan = take_route(monkeypatch, route)
    config = Config(batch=3, timesteps=3, features=3, units=(routes.SMALL_UNITS + 2,) * 2,
                    topology="many-to-many", head="softmax", loss="categorical_crossentropy",
                    outputs=3, repeat=1, stateful=True, seed=11)
    assert not routes.compiled_loop(config.batch, config.units[0])
    report = gc.gradcheck(config.build(plan=plan), *config.data(), max_entries=30, seed=1)
    assert report.passed(TOLERANCE), str(report)


def test_checks_leave_weights_and_state_as_they_were():
    config = Config(batch=2, timesteps=3, features=2, units=(3,), topology="many-to-one",
                    head="sigmoid", loss="binary_crossentropy", outputs=2, repeat=1,
                    stateful=True, seed=3)
    model = config.build()
    weights, states = model.get_weights(), model.layers[0].get_states()
    gc.gradcheck(model, *config.data())
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(states, model.layers[0].get_states()):
        np.testing.assert_array_equal(before, after)


def test_a_wrong_gradient_is_caught(monkeypatch):
    """The check can fail: drop the forget-gate path from the backward pass."""
    config = Config(batch=2, timesteps=4, features=3, units=(4,), topology="many-to-one",
                    head="softmax", loss="categorical_crossentropy", outputs=3, repeat=1,
                    stateful=False, seed=5)
    original = reference.lstm_backward

    def broken(dhs, dh_T, dc_T, cache, W, U, with_dX=True, route=None):
        X, h0, c0, gates, cs, hs, mask = cache
        H = h0.shape[1]
        gates = gates.copy()
        gates[:, :, H:2 * H] = 0.0          # as if dc did not flow through f
        return original(dhs, dh_T, dc_T, (X, h0, c0, gates, cs, hs, mask), W, U, with_dX)

    monkeypatch.setattr(reference, "lstm_backward", broken)
    report = gc.gradcheck(config.build(backend="numpy"), *config.data())
    assert not report.passed(TOLERANCE)


def test_sampling_is_seeded_and_bounded():
    config = Config(batch=2, timesteps=3, features=6, units=(8,), topology="many-to-one",
                    head="linear", loss="mse", outputs=2, repeat=1, stateful=False, seed=1)
    model = config.build()
    first = gc.gradcheck(model, *config.data(), max_entries=10, seed=4)
    again = gc.gradcheck(model, *config.data(), max_entries=10, seed=4)
    kernel = first.checks[0]
    assert (kernel.checked, kernel.size) == (10, 6 * 32)
    assert [c.worst_index for c in first.checks] == [c.worst_index for c in again.checks]
    assert "worst relative error" in str(first)


def test_float32_models_are_refused():
    config = Config(batch=1, timesteps=2, features=2, units=(2,), topology="many-to-one",
                    head="linear", loss="mse", outputs=1, repeat=1, stateful=False, seed=0)
    with pytest.raises(ValueError, match="float64"):
        gc.gradcheck(config.build("float32"), *config.data("float32"))


def test_the_sixth_order_stencil_is_exact_on_a_sextic():
    """The stencil is exact for polynomials up to degree 6; the two-point
    form would be off by ~s^2 here."""
    x = np.array([0.7])
    value = gc.numerical_derivative(lambda: float(x[0] ** 6 - 3 * x[0] ** 5), x, (0,), 1e-2)
    assert value == pytest.approx(6 * 0.7 ** 5 - 15 * 0.7 ** 4, rel=1e-12)
    assert x[0] == 0.7
