"""Dense: a = act(x W + b) over the last axis; Activation: a = act(z) alone."""
import numpy as np

from ..kernels.reference import ACTIVATIONS
from ..checks import positive_int
from .base import Layer, glorot_uniform


def activation_name(activation):
    """A known activation's name ("linear" for None), or a clear error."""
    activation = "linear" if activation is None else activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
    return activation


class Dense(Layer):
    """Fully connected layer, a = act(x W + b), on the last axis of any input.

    units       K, the number of outputs
    activation  one of "linear" (also None), "sigmoid", "tanh", "softmax"

    kernel W (F, K) Glorot-uniform, bias b (K,) zeros, as Keras does. The
    pre-activation z = x W + b of the last call is kept in `logits`, so that
    a loss can be fused with its natural activation (see npLSTM.losses).
    """

    param_names = ("kernel", "bias")

    def __init__(self, units, activation="linear", input_shape=None, batch_input_shape=None):
        super().__init__(input_shape=input_shape, batch_input_shape=batch_input_shape)
        self.units = positive_int(units, "Dense units")
        self.activation = activation_name(activation)

    def get_config(self):
        return {"units": self.units, "activation": self.activation, **super().get_config()}

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError("Dense needs samples with at least one axis of features")
        return tuple(input_shape[:-1]) + (self.units,)

    def build(self, input_shape, rng, dtype, kernels):
        output_shape = super().build(input_shape, rng, dtype, kernels)
        self.params = [glorot_uniform(rng, (input_shape[-1], self.units), dtype),
                       np.zeros(self.units, dtype=dtype)]
        return output_shape

    def forward(self, x, mask=None):
        self._x = x
        self._route = self.plan.route(len(x) if x.ndim > 1 else 1)
        self.logits = self.kernels.dense_forward(x, *self.params, route=self._route)
        self._a = self.kernels.activation_forward(self.activation, self.logits)
        return self._a

    def backward(self, da, input_grad=True):
        return self.backward_logits(self.kernels.activation_backward(self.activation, self._a, da),
                                    input_grad)

    def backward_logits(self, dz, input_grad=True):
        """Backward from the gradient on the logits z (a loss fused with the activation)."""
        dX, dW, db = self.kernels.dense_backward(dz, self._x, self.params[0], input_grad,
                                                 self._route)
        self.grads = [dW, db]
        return dX


class Activation(Layer):
    """a = act(z) over the last axis, with no weights.

    The head of outputs that are reshaped before their activation, e.g.
    Dense(n * K) -> Reshape((n, K)) -> Activation("softmax"): a softmax over
    each of the n groups of K. A loss fuses with it as with a Dense head;
    its logits are its input.
    """

    def __init__(self, activation, input_shape=None, batch_input_shape=None):
        super().__init__(input_shape=input_shape, batch_input_shape=batch_input_shape)
        self.activation = activation_name(activation)

    def get_config(self):
        return {"activation": self.activation, **super().get_config()}

    def forward(self, x, mask=None):
        self.logits = x
        self._a = self.kernels.activation_forward(self.activation, x)
        return self._a

    def backward(self, da, input_grad=True):
        return self.kernels.activation_backward(self.activation, self._a, da)

    def backward_logits(self, dz, input_grad=True):
        return dz
