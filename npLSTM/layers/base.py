"""What every layer shares: shapes, parameters, gradients and the call contract.

A layer is built once, when its input shape is known, then called as
forward(x, mask) -> y during a pass and backward(dy) -> dx right after it,
in reverse layer order. forward keeps what backward needs; backward stores
the parameter gradients in `grads`, in the same order as `params`. In
training the model's first layer with weights is called backward(dy,
input_grad=False): only its weights' gradients are needed, it may skip dx
and returns None (layers below it are not run back). The mask
(B, T) of bool, or None, says which timesteps count (npLSTM.layers.Masking);
output_mask(mask) is the mask of the layer's output. A head whose
activation a loss is fused with (Dense, Activation, TimeDistributed of
them) has `logits` and backward_logits(dz, input_grad=True), backward from
dL/d(logits); Sequential.compile accepts such a loss only on such a head.
"""
from abc import ABC, abstractmethod

import numpy as np

from ..checks import shape_tuple
from ..plan import DEFAULT as DEFAULT_PLAN


class Layer(ABC):
    """Base of all layers.

    input_shape        per-sample input shape, e.g. (timesteps, features);
                       only meaningful on a model's first layer
    batch_input_shape  the same with a fixed batch size in front, as stateful
                       layers need (Keras's convention)
    """

    def __init__(self, input_shape=None, batch_input_shape=None):
        batch_input_shape = shape_tuple(batch_input_shape, "batch_input_shape", allow_none=True)
        input_shape = shape_tuple(input_shape, "input_shape", allow_none=True)
        if batch_input_shape is not None:
            if input_shape is not None and tuple(input_shape) != batch_input_shape[1:]:
                raise ValueError(
                    f"input_shape {input_shape} contradicts batch_input_shape {batch_input_shape}")
            input_shape = batch_input_shape[1:]
        self.batch_size = batch_input_shape[0] if batch_input_shape else None
        self.input_shape = input_shape
        self._shape_config = ({"batch_input_shape": list(batch_input_shape)} if batch_input_shape
                              else {"input_shape": list(input_shape)} if input_shape else {})
        self.output_shape = None
        self.params = []
        self.grads = []

    def build(self, input_shape, rng, dtype, kernels):
        """Create the parameters for per-sample input_shape, drawing from rng;
        compute with `kernels` (a module of npLSTM.kernels); return the
        output shape."""
        self.kernels = kernels
        self.output_shape = self.compute_output_shape(input_shape)
        return self.output_shape

    def compute_output_shape(self, input_shape):
        return input_shape

    @abstractmethod
    def forward(self, x, mask=None):
        """The output for a batch x (B, ...), keeping what backward needs;
        mask (B, T) of bool or None says which timesteps count."""

    @abstractmethod
    def backward(self, dy, input_grad=True):
        """From dL/dy of the last forward: store the parameter gradients in
        `grads` and return dL/dx (None when not input_grad, where a layer
        with weights may skip computing it)."""

    def output_mask(self, mask):
        """The mask of the output: the input's, for a layer that keeps the time axis."""
        return mask

    def get_config(self):
        """The constructor's arguments, as JSON-ready values (see npLSTM.saving)."""
        return dict(self._shape_config)

    param_names = ()       # names of params, in order (Keras's weight names)
    plan = DEFAULT_PLAN    # how its kernels run a batch: its model's (npLSTM.plan)

    def set_plan(self, plan):
        """Run the kernels as this plan says (Sequential gives its own)."""
        self.plan = plan

    # Layers without recurrent state need nothing of the following.
    stateful = False
    states = None          # the carried state; a forward pass replaces it, never writes into it

    def reset_states(self, states=None):
        pass

    def get_states(self):
        return None


def glorot_uniform(rng, shape, dtype):
    """Keras's default kernel initialiser: U(-l, l), l = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def orthogonal(rng, shape, dtype):
    """Keras's default recurrent initialiser: a random matrix with orthonormal
    rows or columns (whichever there are fewer of), from the QR decomposition
    of a standard normal matrix, signs fixed so the result is uniformly drawn."""
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return np.ascontiguousarray(q.T if rows < cols else q, dtype=dtype)
