"""Weights between npLSTM, Keras and PyTorch.

Keras and npLSTM share one layout, so `model.get_weights()` can be given to
a Keras model's `set_weights()` as it is, and the other way round:

    LSTM   kernel W (D, 4H), recurrent_kernel U (H, 4H), bias b (4H,)
           columns in gate order i, f, c, o: W[:, :H] feeds the input gate,
           W[:, H:2H] the forget gate, W[:, 2H:3H] the candidate, W[:, 3H:] the output gate
    Dense  kernel (in, out), bias (out,)

PyTorch uses the same gate order (i, f, g, o) with transposed matrices and
two biases that are added together:

    nn.LSTM    weight_ih_l{k} (4H, D) = W^T    weight_hh_l{k} (4H, H) = U^T
               bias_ih_l{k} + bias_hh_l{k} = b
    nn.Linear  weight (out, in) = kernel^T     bias = bias

The array functions need no PyTorch; the module functions import it when
called (pip install "npLSTM[parity]").
"""
import numpy as np

from .layers import LSTM, Dense, TimeDistributed


def lstm_to_torch(kernel, recurrent_kernel, bias):
    """npLSTM/Keras LSTM arrays -> PyTorch's (weight_ih, weight_hh, bias_ih, bias_hh).
    The whole bias goes to bias_ih; bias_hh is zero."""
    return (np.ascontiguousarray(kernel.T), np.ascontiguousarray(recurrent_kernel.T),
            bias.copy(), np.zeros_like(bias))


def lstm_from_torch(weight_ih, weight_hh, bias_ih, bias_hh):
    """PyTorch's LSTM arrays -> npLSTM/Keras [kernel, recurrent_kernel, bias]."""
    return [np.ascontiguousarray(weight_ih.T), np.ascontiguousarray(weight_hh.T),
            bias_ih + bias_hh]


def dense_to_torch(kernel, bias):
    """npLSTM/Keras Dense arrays -> nn.Linear's (weight, bias)."""
    return np.ascontiguousarray(kernel.T), bias.copy()


def dense_from_torch(weight, bias):
    """nn.Linear's (weight, bias) -> npLSTM/Keras [kernel, bias]."""
    return [np.ascontiguousarray(weight.T), bias.copy()]


def _torch_lstm_names(layer_index):
    return [f"{kind}_l{layer_index}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _inner(layer):
    return layer.layer if isinstance(layer, TimeDistributed) else layer


def copy_to_torch(layers, module):
    """Copy npLSTM layers into a PyTorch module, in place.

    layers  a list of LSTM layers for an nn.LSTM with as many num_layers
            (layer k -> weight_ih_l{k}, ...), or one Dense (or TimeDistributed
            Dense) for an nn.Linear
    """
    import torch

    with torch.no_grad():
        for name, array in _pairs(layers, module):
            param = getattr(module, name)
            if tuple(param.shape) != array.shape:
                raise ValueError(f"{name}: PyTorch has shape {tuple(param.shape)}, "
                                 f"npLSTM gives {array.shape}")
            param.copy_(torch.from_numpy(array))


def copy_from_torch(module, layers):
    """Copy a PyTorch module's weights into npLSTM layers (see copy_to_torch)."""
    layers = _as_list(layers)
    arrays = {name: getattr(module, name).detach().cpu().numpy()
              for name, _ in _pairs(layers, module)}
    if isinstance(layers[0], LSTM):
        for k, layer in enumerate(layers):
            _assign(layer, lstm_from_torch(*(arrays[n] for n in _torch_lstm_names(k))))
    else:
        _assign(_inner(layers[0]), dense_from_torch(arrays["weight"], arrays["bias"]))


def _as_list(layers):
    return list(layers) if isinstance(layers, (list, tuple)) else [layers]


def _pairs(layers, module):
    """(PyTorch parameter name, array in PyTorch's layout) for the layers."""
    layers = _as_list(layers)
    if all(isinstance(layer, LSTM) for layer in layers):
        if getattr(module, "num_layers", None) != len(layers):
            raise ValueError(f"{len(layers)} npLSTM LSTM layers need an nn.LSTM with "
                             f"num_layers={len(layers)}, got {type(module).__name__}")
        if getattr(module, "batch_first", False) is not True:
            raise ValueError("the nn.LSTM must have batch_first=True, as npLSTM's (B, T, D)")
        return [(name, array) for k, layer in enumerate(layers)
                for name, array in zip(_torch_lstm_names(k), lstm_to_torch(*layer.params))]
    if len(layers) == 1 and isinstance(_inner(layers[0]), Dense):
        return list(zip(("weight", "bias"), dense_to_torch(*_inner(layers[0]).params)))
    raise TypeError("copy LSTM layers to an nn.LSTM, or one Dense to an nn.Linear; got "
                    + ", ".join(type(layer).__name__ for layer in layers))


def _assign(layer, arrays):
    for param, array in zip(layer.params, arrays):
        if param.shape != array.shape:
            raise ValueError(f"{type(layer).__name__} weight has shape {param.shape}, "
                             f"PyTorch gives {array.shape}")
        param[...] = array
