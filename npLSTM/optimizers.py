"""Optimizers: update parameters in place from their gradients.

An optimizer keeps one slot array per parameter and moment (created at the
first step, zeros) and a step counter `iterations`, as Keras does.
"""
import math

import numpy as np

from .kernels import reference


def _check_hyper(value, name, low, high, low_inclusive=False):
    ok = isinstance(value, (int, float, np.floating)) and np.isfinite(value) and (
        (low <= value if low_inclusive else low < value) and value < high)
    if not ok:
        bracket = "[" if low_inclusive else "("
        raise ValueError(f"{name} must be a number in {bracket}{low}, {high}), got {value!r}")
    return float(value)


class Optimizer:
    """Base: step(params, grads) applies one update to every parameter in place.

    Subclasses name their slots and define update(p, g, *slots) for one
    parameter. Hyperparameters are Python floats, so that float32 parameters
    are updated in float32 arithmetic (NumPy 2 promotion rules).

    Gradient clipping, as Keras does it (at most one of the three):
        clipnorm         each weight's gradient scaled down to this norm
        global_clipnorm  all gradients together scaled down to this norm
        clipvalue        every entry clipped to [-clipvalue, clipvalue]
    """

    slot_names = ()
    kernels = reference     # the model sets its backend's kernels at compile

    def __init__(self, learning_rate, clipnorm=None, global_clipnorm=None, clipvalue=None):
        self.learning_rate = _check_hyper(learning_rate, "learning_rate", 0.0, np.inf)
        clips = {"clipnorm": clipnorm, "global_clipnorm": global_clipnorm, "clipvalue": clipvalue}
        given = [name for name, value in clips.items() if value is not None]
        if len(given) > 1:
            raise ValueError(f"set at most one of clipnorm, global_clipnorm, clipvalue; got {given}")
        for name, value in clips.items():
            setattr(self, name, None if value is None else _check_hyper(value, name, 0.0, np.inf))
        self.iterations = 0
        self.slots = None     # {slot name: [array per parameter]}

    def get_config(self):
        """The constructor's arguments (see npLSTM.saving)."""
        return {name: getattr(self, name) for name in
                self.config_names + ("clipnorm", "global_clipnorm", "clipvalue")}

    def clip(self, grads, segments=None):
        """Clipped copies of grads. segments: for each array, the (start, stop)
        of every weight in it, when several weights share one flat array."""
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads))
            scale = self.global_clipnorm / norm if norm > self.global_clipnorm else 1.0
            return [g * scale for g in grads]
        if self.clipnorm is not None:
            clipped = [g.copy() for g in grads]
            for k, g in enumerate(clipped):
                for start, stop in (segments[k] if segments else [(0, g.size)]):
                    part = g.reshape(-1)[start:stop]
                    norm = math.sqrt(float(np.dot(part, part)))
                    if norm > self.clipnorm:
                        part *= self.clipnorm / norm
            return clipped
        return grads

    def slots_for(self, params):
        """The slots, created as zeros for these parameters at the first step."""
        if self.slots is None:
            self.slots = {name: [np.zeros_like(p) for p in params] for name in self.slot_names}
        return self.slots

    @property
    def clips(self):
        """Whether any gradient clipping is set."""
        return (self.clipnorm, self.global_clipnorm, self.clipvalue) != (None, None, None)

    def step(self, params, grads, segments=None):
        """One update of every parameter, in place, from its (clipped) gradient."""
        grads = self.clip(grads, segments)
        self.slots_for(params)
        self.iterations += 1
        for k, (p, g) in enumerate(zip(params, grads)):
            self.update(p, g, *(self.slots[name][k] for name in self.slot_names))


class SGD(Optimizer):
    """Stochastic gradient descent, with Keras's momentum and Nesterov forms:

        v = momentum v - lr g
        p += v                         (classic)
        p += momentum v - lr g         (nesterov)
    """

    slot_names = ("velocity",)
    config_names = ("learning_rate", "momentum", "nesterov")

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **clipping):
        super().__init__(learning_rate, **clipping)
        self.momentum = _check_hyper(momentum, "momentum", 0.0, 1.0, low_inclusive=True)
        self.nesterov = bool(nesterov)

    def update(self, p, g, v):
        v *= self.momentum
        v -= self.learning_rate * g
        p += self.momentum * v - self.learning_rate * g if self.nesterov else v


class Adam(Optimizer):
    """Adam as Keras computes it (defaults lr 1e-3, betas 0.9 / 0.999, eps 1e-7):

        alpha_t = lr sqrt(1 - b2^t) / (1 - b1^t)
        then kernels.adam_update: m, v the moving averages of g and g^2,
        p -= alpha_t m / (sqrt(v) + eps_t)

    epsilon_form  where eps goes:
        "keras"    eps_t = eps: added to sqrt(v), the "epsilon hat" of Kingma
                   & Ba (just before their section 2.1). The default.
        "pytorch"  eps_t = eps sqrt(1 - b2^t): the same as adding eps to the
                   bias-corrected sqrt(v / (1 - b2^t)), as torch.optim.Adam
                   and the paper's Algorithm 1 do.
    The two differ only where sqrt(v) is not much larger than eps, that is
    for gradients of about 1e-6 and less; there they can differ a lot.
    """

    slot_names = ("m", "v")
    config_names = ("learning_rate", "beta_1", "beta_2", "epsilon", "epsilon_form")
    EPSILON_FORMS = ("keras", "pytorch")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 epsilon_form="keras", **clipping):
        super().__init__(learning_rate, **clipping)
        self.beta_1 = _check_hyper(beta_1, "beta_1", 0.0, 1.0, low_inclusive=True)
        self.beta_2 = _check_hyper(beta_2, "beta_2", 0.0, 1.0, low_inclusive=True)
        self.epsilon = _check_hyper(epsilon, "epsilon", 0.0, np.inf, low_inclusive=True)
        if epsilon_form not in self.EPSILON_FORMS:
            raise ValueError(f"epsilon_form must be one of {self.EPSILON_FORMS}, "
                             f"got {epsilon_form!r}")
        self.epsilon_form = epsilon_form

    def coefficients(self, t):
        """(alpha_t, eps_t) of step t (the first is 1)."""
        return reference.adam_coefficients(float(t), self.learning_rate, self.beta_1,
                                           self.beta_2, self.epsilon,
                                           self.epsilon_form == "pytorch")

    def update(self, p, g, m, v):
        alpha, eps = self.coefficients(self.iterations)
        self.kernels.adam_update(p, g, m, v, alpha, self.beta_1, self.beta_2, eps)


OPTIMIZERS = {"adam": Adam, "sgd": SGD}


def get(optimizer):
    """An optimizer from a name (with default settings) or an instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError(f"unknown optimizer {optimizer!r}; known: {sorted(OPTIMIZERS)} "
                     "or an npLSTM.Adam / npLSTM.SGD instance")
