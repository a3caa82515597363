"""Optimizer steps against values worked out independently (40-digit decimals)."""
import numpy as np
import pytest

import npLSTM as nl
from npLSTM import optimizers


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_three_steps_by_hand(dtype):
    # p = 1; gradients 0.5, -0.25, 2; Keras defaults. Worked out with
    # decimal.Decimal at 40 digits from the formulas in Adam's docstring.
    expected = [0.9990000063245153205897392768, 0.9987336707920792168075161966,
                0.9980630241660109367653470092]
    p = np.ones(1, dtype=dtype)
    adam = nl.Adam()
    for g, want in zip([0.5, -0.25, 2.0], expected):
        adam.step([p], [np.array([g], dtype=dtype)])
        assert p.dtype == dtype
        assert p[0] == pytest.approx(want, rel=1e-15 if dtype == np.float64 else 1e-7)
    assert adam.iterations == 3


def test_adam_defaults_are_keras_defaults():
    adam = nl.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)


@pytest.mark.parametrize("nesterov,want", [(False, 0.93), (True, 0.912)])
def test_sgd_momentum_by_hand(nesterov, want):
    p = np.ones(1)
    sgd = nl.SGD(learning_rate=0.1, momentum=0.9, nesterov=nesterov)
    for g in (0.5, -0.25):
        sgd.step([p], [np.array([g])])
    assert p[0] == pytest.approx(want, rel=1e-15)


def test_plain_sgd_is_p_minus_lr_g():
    p = np.array([1.0, -2.0])
    nl.SGD(learning_rate=0.5).step([p], [np.array([0.2, 0.4])])
    np.testing.assert_array_equal(p, [0.9, -2.2])


@pytest.mark.parametrize("kwargs,match", [
    ({"learning_rate": 0}, "learning_rate"), ({"learning_rate": float("nan")}, "learning_rate"),
    ({"beta_1": 1.0}, "beta_1"), ({"beta_2": -0.1}, "beta_2"), ({"epsilon": -1e-7}, "epsilon"),
    ({"learning_rate": "fast"}, "learning_rate"),
])
def test_bad_adam_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nl.Adam(**kwargs)


def test_optimizers_by_name():
    assert isinstance(optimizers.get("adam"), nl.Adam)
    assert isinstance(optimizers.get("SGD"), nl.SGD)
    adam = nl.Adam(learning_rate=0.01)
    assert optimizers.get(adam) is adam
    with pytest.raises(ValueError, match="rmsprop.*known.*adam"):
        optimizers.get("rmsprop")


def test_clipnorm_clips_each_weight_of_a_flat_vector():
    sgd = nl.SGD(learning_rate=1.0, clipnorm=1.0)
    p = np.zeros(5)
    g = np.array([3.0, 4.0, 0.3, 0.4, 0.0])          # weights [0:2] (norm 5) and [2:5] (0.5)
    sgd.step([p], [g], [[(0, 2), (2, 5)]])
    np.testing.assert_allclose(p, [-0.6, -0.8, -0.3, -0.4, 0.0])
    np.testing.assert_array_equal(g, [3.0, 4.0, 0.3, 0.4, 0.0])      # not changed in place


def test_global_clipnorm_and_clipvalue():
    p = np.zeros(4)
    nl.SGD(learning_rate=1.0, global_clipnorm=1.0).step([p[:2], p[2:]],
                                                        [np.array([3.0, 0.0]), np.array([4.0, 0.0])])
    np.testing.assert_allclose(p, [-0.6, 0.0, -0.8, 0.0])
    q = np.zeros(3)
    nl.SGD(learning_rate=1.0, clipvalue=0.5).step([q], [np.array([2.0, -3.0, 0.1])])
    np.testing.assert_allclose(q, [-0.5, 0.5, -0.1])


def test_one_clipping_at_a_time():
    with pytest.raises(ValueError, match="at most one"):
        nl.Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="clipnorm"):
        nl.Adam(clipnorm=-1.0)
