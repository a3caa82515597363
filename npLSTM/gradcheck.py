"""Finite-difference gradient checks against any compiled model.

For every checked entry x_k of a parameter, of the input X, or of a stateful
LSTM's initial state (h0, c0), the derivative of the loss is estimated with
the sixth-order central difference

    n_k = [45 (L(x+s) - L(x-s)) - 9 (L(x+2s) - L(x-2s)) + (L(x+3s) - L(x-3s))] / 60s

and compared with the backpropagated a_k by the relative error

    err_k = |a_k - n_k| / max(|a_k|, |n_k|, floor)

The floor keeps vanishingly small gradients from dividing by ~0: below it
the check is on the absolute difference scaled by 1 / floor.

Why this stencil: a finite difference errs by rounding (~eps |L| / s) and by
truncation (~s^order). Measured over 150 hypothesis-drawn LSTM models in
float64, the worst relative error was 1.0e-7 for the two-sided fourth-order
stencil (s = 1e-3) and 1.6e-8 for this sixth-order one (s = 5e-3): its
larger step divides the rounding error down without truncation taking over
(at s = 1e-2 it does, in the tail).
"""
from dataclasses import dataclass

import numpy as np

from .layers import Masking


@dataclass
class Check:
    """The comparison for one array."""
    name: str          # e.g. "layer 0 LSTM recurrent_kernel", "inputs", "layer 0 LSTM h0"
    checked: int       # entries compared
    size: int          # entries in the array
    worst: float       # worst relative error among them
    worst_index: tuple  # where it occurred
    analytic: float    # the backpropagated value there
    numeric: float     # the finite-difference value there


@dataclass
class GradcheckReport:
    checks: list

    @property
    def worst(self):
        return max((c.worst for c in self.checks), default=0.0)

    def passed(self, tolerance=1e-7):
        return self.worst < tolerance

    def __str__(self):
        rows = [f"{'array':<40} {'checked':>12} {'worst rel err':>14}  at (analytic vs numeric)"]
        for c in self.checks:
            rows.append(f"{c.name:<40} {f'{c.checked}/{c.size}':>12} {c.worst:>14.2e}  "
                        f"{c.worst_index} ({c.analytic:.6e} vs {c.numeric:.6e})")
        rows.append(f"worst relative error: {self.worst:.2e}")
        return "\n".join(rows)


# (k, c_k): n = sum_k c_k (L(x + k s) - L(x - k s)) / s
SIXTH_ORDER = ((1, 45 / 60), (2, -9 / 60), (3, 1 / 60))


def numerical_derivative(loss, array, index, step):
    """Sixth-order central difference of loss() in array[index] (restored after)."""
    saved = array[index]
    total = 0.0
    for k, c in SIXTH_ORDER:
        array[index] = saved + k * step
        up = loss()
        array[index] = saved - k * step
        total += c * (up - loss())
    array[index] = saved
    return total / step


def compare(name, loss, array, analytic, *, step, floor, max_entries, rng, where=None):
    """Check analytic against finite differences of loss() in array's entries
    (all, or only those where `where` is True; a sample of max_entries when
    there are more)."""
    checkable = np.ones(array.shape, bool) if where is None else where
    indices = [tuple(int(i) for i in index) for index in zip(*np.nonzero(checkable))]
    if max_entries is not None and len(indices) > max_entries:
        picked = np.sort(rng.choice(len(indices), size=max_entries, replace=False))
        indices = [indices[k] for k in picked]
    worst = (0.0, (), 0.0, 0.0)
    for index in indices:
        numeric = numerical_derivative(loss, array, index, step)
        a = float(analytic[index])
        err = abs(a - numeric) / max(abs(a), abs(numeric), floor)
        if err >= worst[0]:
            worst = (err, index, a, numeric)
    return Check(name, len(indices), array.size, *worst)


def gradcheck(model, X, y, *, sample_weight=None, step=5e-3, floor=1e-5, max_entries=None,
              seed=0, inputs=True, states=True):
    """Compare every gradient of a compiled float64 model with finite differences.

    model        a compiled npLSTM.Sequential with dtype float64 (float32's 7
                 digits cannot resolve a finite difference to 1e-7)
    X, y         one batch; the loss is computed from the model's current
                 recurrent state, which is left unchanged
    sample_weight  as in Sequential.fit
    step, floor  see the module docstring
    max_entries  check at most this many entries per array, drawn with
                 numpy's Generator(seed); None checks every entry
    inputs       also check dL/dX (of the steps that count, after a Masking layer)
    states       also check dL/d(h0, c0) of each stateful LSTM whose state is
                 set (a zero state is checked as any other value)

    Returns a GradcheckReport (str() prints a table; .worst, .passed(tol)).
    """
    if model.dtype != np.float64:
        raise ValueError(f"gradcheck needs a float64 model, this one is {model.dtype}")
    result = model.backprop(X, y, sample_weight)          # checks X, y and the weights
    X = np.array(X, dtype=np.float64)                       # a copy the checks perturb
    original_states = model.states
    states_used = [None if s is None else tuple(a.copy() for a in s)   # the arrays
                   for s in original_states]                           # the checks perturb
    rng = np.random.default_rng(seed)
    options = dict(step=step, floor=floor, max_entries=max_entries, rng=rng)

    def loss():
        model.states = states_used
        return np.ravel(model.test_on_batch(X, y, sample_weight))[0]

    checks = []
    grads = iter(result.grads)
    for n, layer in enumerate(model.layers):
        for name, param in zip(layer.param_names, layer.params):
            checks.append(compare(f"layer {n} {type(layer).__name__} {name}",
                                  loss, param, next(grads), **options))
    if inputs:
        # A masked step's loss does not change with its input until the input
        # leaves the mask value, and then jumps: there is no derivative to
        # check, only the gradient 0 (which tests/test_masking.py checks).
        first = model.layers[0]
        counted = None if not isinstance(first, Masking) else np.broadcast_to(
            np.any(X != first.mask_value, axis=-1)[..., None], X.shape)
        checks.append(compare("inputs", loss, X, result.inputs, where=counted, **options))
    if states:
        stateful = [(n, layer) for n, layer in enumerate(model.layers) if layer.stateful]
        for (n, layer), state_grads in zip(stateful, result.states):
            if states_used[n] is None:      # zeros: give them arrays to perturb
                zeros = np.zeros((len(X), layer.units))
                states_used[n] = (zeros, zeros.copy())
            for label, state, grad in zip(("h0", "c0"), states_used[n], state_grads):
                checks.append(compare(f"layer {n} {type(layer).__name__} {label}",
                                      loss, state, grad, **options))
    model.states = original_states
    return GradcheckReport(checks)
