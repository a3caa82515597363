"""The Keras weight layout, by hand, and the PyTorch conversions (no torch needed)."""
import numpy as np
import pytest

import npLSTM as nl
from npLSTM import interop


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_keras_layout_on_hand_built_arrays():
    """Keras's LSTM weights are kernel (D, 4H), recurrent_kernel (H, 4H) and
    bias (4H,), columns in gate order i, f, c, o. Arrays built by hand in
    that layout, two units, give the output worked out by hand."""
    H = 2
    kernel = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]])      # D = 1
    recurrent = np.arange(16).reshape(2, 8) / 20.0 - 0.4
    bias = np.array([0.0, 0.1, 1.0, 1.0, -0.1, 0.2, 0.05, -0.05])        # forget slice ~1
    dense_kernel, dense_bias = np.array([[1.0], [-2.0]]), np.array([0.5])
    model = nl.Sequential([nl.LSTM(H, input_shape=(2, 1)), nl.Dense(1)], seed=0)
    model.set_weights([kernel, recurrent, bias, dense_kernel, dense_bias])

    x = np.array([0.5, -1.0])
    h, c = np.zeros(H), np.zeros(H)
    for t in range(2):
        z = x[t] * kernel[0] + h @ recurrent + bias
        i, f, g, o = sig(z[0:2]), sig(z[2:4]), np.tanh(z[4:6]), sig(z[6:8])
        c = f * c + i * g
        h = o * np.tanh(c)
    expected = h @ dense_kernel + dense_bias
    np.testing.assert_allclose(model.predict(x.reshape(1, 2, 1)), [expected], rtol=1e-14)
    assert [w.shape for w in model.get_weights()] == [(1, 8), (2, 8), (8,), (2, 1), (1,)]


def test_lstm_arrays_round_trip_through_pytorch_layout():
    rng = np.random.default_rng(0)
    W, U, b = rng.normal(size=(3, 16)), rng.normal(size=(4, 16)), rng.normal(size=16)
    w_ih, w_hh, b_ih, b_hh = interop.lstm_to_torch(W, U, b)
    assert (w_ih.shape, w_hh.shape) == ((16, 3), (16, 4))
    np.testing.assert_array_equal(b_ih + b_hh, b)
    back = interop.lstm_from_torch(w_ih, w_hh, b_ih, b_hh)
    for a, b_ in zip(back, (W, U, b)):
        np.testing.assert_array_equal(a, b_)
        assert a.flags.c_contiguous


def test_two_pytorch_biases_add_up():
    w_ih, w_hh = np.zeros((8, 1)), np.zeros((8, 2))
    bias = interop.lstm_from_torch(w_ih, w_hh, np.full(8, 0.25), np.full(8, 0.5))[2]
    np.testing.assert_array_equal(bias, np.full(8, 0.75))


def test_dense_arrays_round_trip():
    kernel, bias = np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0])
    weight, b = interop.dense_to_torch(kernel, bias)
    assert weight.shape == (2, 3)
    for a, b_ in zip(interop.dense_from_torch(weight, b), (kernel, bias)):
        np.testing.assert_array_equal(a, b_)


def test_copy_to_torch_names_a_mismatch():
    torch = pytest.importorskip("torch")
    layers = [nl.LSTM(4, return_sequences=True, input_shape=(2, 3)), nl.LSTM(4)]
    nl.Sequential(layers, seed=0)
    with pytest.raises(ValueError, match="num_layers=2"):
        interop.copy_to_torch(layers, torch.nn.LSTM(3, 4, batch_first=True))
    with pytest.raises(ValueError, match="batch_first"):
        interop.copy_to_torch(layers, torch.nn.LSTM(3, 4, num_layers=2))
    with pytest.raises(ValueError, match="weight_ih_l0"):
        interop.copy_to_torch(layers, torch.nn.LSTM(5, 4, num_layers=2, batch_first=True).double())
    with pytest.raises(TypeError, match="nn.LSTM"):
        interop.copy_to_torch([nl.RepeatVector(2)], torch.nn.Linear(2, 2))
