"""The same model in PyTorch, from the same weights: the oracle of test_parity.

Each npLSTM layer becomes its PyTorch counterpart (nn.LSTM, nn.Linear,
unsqueeze-expand for RepeatVector); the loss is written with PyTorch's own
functions; autograd gives the gradients.
"""
import numpy as np
import torch
import torch.nn.functional as F

import npLSTM as nl
from npLSTM.interop import copy_from_torch, copy_to_torch

ACTIVATIONS = {"linear": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
               "softmax": lambda z: torch.softmax(z, dim=-1)}


def torch_row_losses(name, logits, outputs, y):
    """The loss of each output row, reduced over its last axis as Keras does."""
    if name == "binary_crossentropy":
        return F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(dim=-1)
    if name == "categorical_crossentropy":
        return -(y * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    return ((outputs - y) ** 2).mean(dim=-1)


def torch_loss(name, logits, outputs, y):
    return torch_row_losses(name, logits, outputs, y).mean()


class Mirror:
    """PyTorch modules holding a copy of an npLSTM model's weights."""

    def __init__(self, model):
        self.model = model
        dtype = torch.float64 if model.dtype == np.float64 else torch.float32
        self.modules = []
        for layer in model.layers:
            if isinstance(layer, nl.LSTM):
                D = layer.params[0].shape[0]
                module = torch.nn.LSTM(D, layer.units, batch_first=True).to(dtype)
                copy_to_torch([layer], module)
            elif isinstance(layer, (nl.Dense, nl.TimeDistributed)):
                W = layer.params[0]
                module = torch.nn.Linear(*W.shape).to(dtype)
                copy_to_torch(layer, module)
            else:
                module = None
            self.modules.append(module)

    def parameters(self):
        """In npLSTM's get_weights() order (bias_hh left out: it adds to bias_ih)."""
        params = []
        for module in self.modules:
            if isinstance(module, torch.nn.LSTM):
                params += [module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0]
            elif module is not None:
                params += [module.weight, module.bias]
        return params

    def forward(self, X, states=None):
        """Outputs, logits of the head, the final (h, c) of each LSTM.
        states: {layer index: (h0, c0) tensors} for LSTMs not starting at zero."""
        x, logits, finals = X, None, {}
        for k, (layer, module) in enumerate(zip(self.model.layers, self.modules)):
            if isinstance(layer, nl.LSTM):
                initial = None
                if states and k in states:
                    h0, c0 = states[k]
                    initial = (h0.unsqueeze(0), c0.unsqueeze(0))
                out, (h, c) = module(x, initial)
                finals[k] = (h[0], c[0])
                x = out if layer.return_sequences else out[:, -1]
            elif isinstance(layer, nl.RepeatVector):
                x = x.unsqueeze(1).expand(-1, layer.n, -1)
            elif isinstance(layer, nl.Masking):
                continue        # PyTorch has no mask: the caller leaves masked steps out
            elif isinstance(layer, nl.Reshape):
                x = x.reshape((len(x),) + layer.target_shape)
            elif isinstance(layer, nl.Activation):
                logits, x = x, ACTIVATIONS[layer.activation](x)
            else:
                logits = module(x)
                x = ACTIVATIONS[layer.activation](logits)
        return x, logits, finals

    def loss(self, X, y, states=None):
        outputs, logits, finals = self.forward(X, states)
        return torch_loss(self.model.loss.name, logits, outputs, y), finals

    def gradients(self):
        """Parameter gradients in get_weights() order, as NumPy arrays."""
        grads = []
        for module in self.modules:
            if isinstance(module, torch.nn.LSTM):
                grads += [module.weight_ih_l0.grad.T, module.weight_hh_l0.grad.T,
                          module.bias_ih_l0.grad]
            elif module is not None:
                grads += [module.weight.grad.T, module.bias.grad]
        return [g.detach().numpy() for g in grads]

    def copy_back(self):
        """Write the PyTorch weights into the npLSTM model (after torch training)."""
        for layer, module in zip(self.model.layers, self.modules):
            if module is not None:
                copy_from_torch(module, [layer] if isinstance(layer, nl.LSTM) else layer)
