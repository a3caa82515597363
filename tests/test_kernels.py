"""The reference kernels on numbers worked out by hand, and at the extremes."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from npLSTM.kernels import reference as K


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_one_lstm_step_by_hand():
    """One unit, one input, one step: every gate written out as scalars."""
    x, h0, c0 = 0.5, -0.2, 0.3
    w = np.array([[0.1, 0.2, 0.3, 0.4]])        # i f c o
    u = np.array([[-0.5, 0.6, -0.7, 0.8]])
    b = np.array([0.01, 1.0, -0.02, 0.03])
    zi, zf, zc, zo = x * w[0] + h0 * u[0] + b
    c = sig(zf) * c0 + sig(zi) * np.tanh(zc)
    h = sig(zo) * np.tanh(c)
    hs, h_T, c_T, _ = K.lstm_forward(np.full((1, 1, 1), x), np.full((1, 1), h0),
                                     np.full((1, 1), c0), w, u, b)
    assert hs[0, 0, 0] == pytest.approx(h, rel=1e-15)
    assert h_T[0, 0] == pytest.approx(h, rel=1e-15)
    assert c_T[0, 0] == pytest.approx(c, rel=1e-15)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 4), st.integers(1, 5),
       st.integers(0, 1000))
def test_forward_is_one_step_at_a_time(B, T, D, H, seed):
    """Running T steps at once equals T calls of one step, state handed over.

    Equal to rounding, not to the bit: BLAS picks other kernels (gemv, gemm)
    for other shapes, which sum x W in another order. The states are sums of
    terms of order 1, so a state near 0 (cancellation) differs by a few ulp
    of 1, not of itself: hence atol 1e-15 beside rtol."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, T, D))
    W, U, b = rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H)
    h = c = np.zeros((B, H))
    hs_all, h_T, c_T, _ = K.lstm_forward(X, h, c, W, U, b)
    for t in range(T):
        hs, h, c, _ = K.lstm_forward(X[:, t:t + 1], h, c, W, U, b)
        np.testing.assert_allclose(hs[:, 0], hs_all[:, t], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(h, h_T, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(c, c_T, rtol=1e-14, atol=1e-15)


def test_last_only_gradient_equals_gradient_on_the_last_step():
    """dhs=None with dh_T is the same as a dhs that is zero but at the last step."""
    rng = np.random.default_rng(0)
    B, T, D, H = 2, 4, 3, 5
    X = rng.normal(size=(B, T, D))
    W, U, b = rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H)
    zeros = np.zeros((B, H))
    _, _, _, cache = K.lstm_forward(X, zeros, zeros, W, U, b)
    dh = rng.normal(size=(B, H))
    dhs = np.zeros((B, T, H))
    dhs[:, -1] = dh
    for a, b_ in zip(K.lstm_backward(None, dh, zeros, cache, W, U),
                     K.lstm_backward(dhs, zeros, zeros, cache, W, U)):
        np.testing.assert_allclose(a, b_, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_keep_the_dtype(dtype):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2, 3, 4)).astype(dtype)
    W, U, b = (rng.normal(size=s).astype(dtype) for s in [(4, 8), (2, 8), (8,)])
    z = np.zeros((2, 2), dtype=dtype)
    hs, h, c, cache = K.lstm_forward(X, z, z, W, U, b)
    grads = K.lstm_backward(hs, z, z, cache, W, U)
    assert {a.dtype for a in (hs, h, c, *grads)} == {np.dtype(dtype)}
    logits = rng.normal(size=(3, 4)).astype(dtype)
    for loss in (K.binary_crossentropy_with_logits, K.categorical_crossentropy_with_logits,
                 K.mean_squared_error):
        assert loss(logits, np.full_like(logits, 0.25))[1].dtype == dtype


def test_activations_at_extreme_logits():
    z = np.array([[-1000.0, 0.0, 1000.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        np.testing.assert_array_equal(K.sigmoid(z), [[0.0, 0.5, 1.0]])
        np.testing.assert_allclose(K.softmax(z), [[0.0, 0.0, 1.0]])
        assert K.sigmoid(np.array([-30.0]))[0] == pytest.approx(np.exp(-30) / (1 + np.exp(-30)),
                                                                rel=1e-15)


def test_cross_entropies_are_finite_and_right_at_extreme_logits():
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        # A confident wrong answer costs |z|; a confident right one costs ~0.
        loss, grad = K.binary_crossentropy_with_logits(np.array([[1000.0, -1000.0]]),
                                                       np.array([[0.0, 0.0]]))
        assert loss == pytest.approx(500.0)
        np.testing.assert_allclose(grad, [[0.5, 0.0]])
        loss, grad = K.categorical_crossentropy_with_logits(
            np.array([[1000.0, -1000.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
        assert loss == pytest.approx(2000.0)
        np.testing.assert_allclose(grad, [[1.0, -1.0, 0.0]])


def test_losses_by_hand():
    a = np.array([[0.2, 0.8], [0.5, 0.1]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    loss, grad = K.mean_squared_error(a, y)
    assert loss == pytest.approx((0.04 + 0.04 + 0.25 + 0.01) / 4)
    np.testing.assert_allclose(grad, 2 * (a - y) / 4)
    z = np.log(a / (1 - a))                       # logits whose sigmoid is a
    loss, grad = K.binary_crossentropy_with_logits(z, y)
    expected = -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))
    assert loss == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(grad, (a - y) / 4, rtol=1e-13)
    p = np.array([[0.7, 0.2, 0.1]])
    loss, grad = K.categorical_crossentropy_with_logits(np.log(p), np.array([[0.0, 1.0, 0.0]]))
    assert loss == pytest.approx(-np.log(0.2), rel=1e-13)
    np.testing.assert_allclose(grad, [[0.7, -0.8, 0.1]], rtol=1e-13)


@pytest.mark.parametrize("name", sorted(K.ACTIVATIONS))
def test_activation_backward_is_the_derivative(name):
    rng = np.random.default_rng(2)
    z, da = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    dz = K.activation_backward(name, K.activation_forward(name, z), da)
    step = 1e-6
    for index in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[index] = step
        numeric = np.sum(da * (K.activation_forward(name, z + e)
                               - K.activation_forward(name, z - e))) / (2 * step)
        assert dz[index] == pytest.approx(numeric, rel=1e-7, abs=1e-9)


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="relu.*known"):
        K.activation_backward("relu", np.zeros(1), np.zeros(1))
