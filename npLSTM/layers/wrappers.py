"""Layers that reshape: TimeDistributed, RepeatVector, Reshape."""
import numpy as np

from ..checks import positive_int, shape_tuple
from .base import Layer


class TimeDistributed(Layer):
    """Apply `layer` to every timestep: (B, T, ...) -> (B, T, layer output).

    The same weights serve every step, so their gradients are summed over
    time. Implemented by folding time into the batch, (B*T, ...), and back.
    """

    def __init__(self, layer, input_shape=None, batch_input_shape=None):
        super().__init__(input_shape=input_shape, batch_input_shape=batch_input_shape)
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed wraps a layer, got {type(layer).__name__}")
        if layer.stateful:
            raise ValueError("TimeDistributed cannot wrap a stateful layer")
        self.layer = layer
        self.param_names = layer.param_names

    def set_plan(self, plan):
        super().set_plan(plan)
        self.layer.set_plan(plan)

    def get_config(self):
        return {"layer": {"class": type(self.layer).__name__, "config": self.layer.get_config()},
                **super().get_config()}

    @property
    def activation(self):
        return getattr(self.layer, "activation", None)

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(
                "TimeDistributed needs samples of shape (timesteps, ...), "
                f"got per-sample shape {tuple(input_shape)}")
        return (input_shape[0],) + tuple(self.layer.compute_output_shape(input_shape[1:]))

    def build(self, input_shape, rng, dtype, kernels):
        output_shape = super().build(input_shape, rng, dtype, kernels)
        self.layer.build(input_shape[1:], rng, dtype, kernels)
        self.params = self.layer.params
        return output_shape

    def _fold(self, x):
        return x.reshape((-1,) + x.shape[2:])

    def _unfold(self, y):
        return y.reshape(self._bt + y.shape[1:])

    def forward(self, x, mask=None):
        self._bt = x.shape[:2]
        return self._unfold(self.layer.forward(self._fold(x)))

    @property
    def logits(self):
        return self._unfold(self.layer.logits)

    def backward(self, dy, input_grad=True):
        return self._inner_backward(self.layer.backward, dy, input_grad)

    def backward_logits(self, dz, input_grad=True):
        return self._inner_backward(self.layer.backward_logits, dz, input_grad)

    def _inner_backward(self, backward, d, input_grad):
        dx = backward(self._fold(d), input_grad)
        self.grads = self.layer.grads
        return None if dx is None else self._unfold(dx)


class RepeatVector(Layer):
    """(B, F) -> (B, n, F): the same vector at each of n timesteps.

    The bridge of an encoder-decoder: the encoder's last output feeds every
    decoder step. Backward, the n gradients add up: dx = sum over time of dy.
    """

    def __init__(self, n, input_shape=None, batch_input_shape=None):
        super().__init__(input_shape=input_shape, batch_input_shape=batch_input_shape)
        self.n = positive_int(n, "RepeatVector n")

    def get_config(self):
        return {"n": self.n, **super().get_config()}

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(
                f"RepeatVector needs samples of shape (features,), got {tuple(input_shape)}")
        return (self.n, input_shape[0])

    def forward(self, x, mask=None):
        return np.repeat(x[:, None, :], self.n, axis=1)

    def output_mask(self, mask):
        return None

    def backward(self, dy, input_grad=True):
        return dy.sum(axis=1)


class Reshape(Layer):
    """(B, ...) -> (B, *target_shape): the same entries in the same order, as
    Keras's Reshape. E.g. Dense(n * K) -> Reshape((n, K)): n outputs of K
    from one vector (the many-to-one echo). Backward reshapes back.
    """

    def __init__(self, target_shape, input_shape=None, batch_input_shape=None):
        super().__init__(input_shape=input_shape, batch_input_shape=batch_input_shape)
        self.target_shape = shape_tuple(target_shape, "target_shape")
        if not self.target_shape:
            raise ValueError("target_shape needs at least one axis, got ()")

    def get_config(self):
        return {"target_shape": list(self.target_shape), **super().get_config()}

    def compute_output_shape(self, input_shape):
        if int(np.prod(input_shape)) != int(np.prod(self.target_shape)):
            raise ValueError(f"Reshape cannot turn samples of shape {tuple(input_shape)} "
                             f"({int(np.prod(input_shape))} entries) into {self.target_shape} "
                             f"({int(np.prod(self.target_shape))} entries)")
        return self.target_shape

    def forward(self, x, mask=None):
        self._shape = x.shape
        return x.reshape((len(x),) + self.target_shape)

    def output_mask(self, mask):
        return None

    def backward(self, dy, input_grad=True):
        return dy.reshape(self._shape)
