"""The flat parameter buffer: every weight of a model as a view of one vector.

The layers own their parameters: `layer.params` stays the list a layer
computes with. Once the model is built, each of those arrays is a view of
one flat vector, `flat`, laid out layer by layer in get_weights() order:

    flat      [ W_0 | U_0 | b_0 | W_1 | b_1 | ... ]        (P,)
    segments  (start, stop) of each array in flat

so that the optimizer and the divergence check make one pass over one
vector per step instead of one per array (most of a small model's step
time), and so that whatever needs every weight at once, the optimizer,
the compiled batches, gradcheck and saving, reads this one public layout
rather than the model's insides.
"""
import numpy as np


class ParameterBuffer:
    """The parameters of `layers` (built), moved into one flat vector."""

    def __init__(self, layers, dtype):
        self.layers = list(layers)
        arrays = [p for layer in self.layers for p in layer.params]
        self.flat = np.concatenate([p.ravel() for p in arrays] or [np.zeros(0, dtype)])
        self.segments = []
        offset = 0
        for layer in self.layers:
            for k, p in enumerate(layer.params):   # a wrapper shares its inner layer's list
                layer.params[k] = self.flat[offset:offset + p.size].reshape(p.shape)
                self.segments.append((offset, offset + p.size))
                offset += p.size

    @property
    def views(self):
        """Every parameter array, in get_weights() order (views of flat)."""
        return [p for layer in self.layers for p in layer.params]

    @property
    def size(self):
        return self.flat.size

    def gradients(self):
        """The gradients of the last backward pass, laid out as flat."""
        grads = [g.ravel() for layer in self.layers for g in layer.grads]
        return np.concatenate(grads) if grads else np.zeros(0, self.flat.dtype)

    def gradient_buffer(self):
        """An empty flat gradient and its views shaped as the parameters: for
        a kernel that writes every gradient in place."""
        grads = np.empty_like(self.flat)
        return grads, [grads[start:stop].reshape(p.shape)
                       for (start, stop), p in zip(self.segments, self.views)]
