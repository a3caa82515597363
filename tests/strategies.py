"""Hypothesis strategies: random model configurations and data to match."""
from dataclasses import dataclass

import numpy as np
import numba
from hypothesis import strategies as st

import npLSTM as nl
from npLSTM.kernels import blas

# (head activation, loss): the three natural pairs, and MSE on other heads
# (which takes the unfused path through the activation's derivative).
HEAD_LOSS = [("sigmoid", "binary_crossentropy"), ("softmax", "categorical_crossentropy"),
             ("linear", "mse"), ("tanh", "mse"), ("sigmoid", "mse"), ("softmax", "mse")]
TOPOLOGIES = ["many-to-many", "many-to-one", "encoder-decoder", "reshaped"]

# The two ways the Numba backend runs the larger layers and the products,
# each a plan (npLSTM.Plan) whose routes the kernels are given:
#   python   BLAS from Python, on BLAS's threads: the large path's steps and
#            every product (a batch too small for npLSTM's threads:
#            routes.MIN_THREAD_ROWS);
#   threads  the rows of a batch on two of Numba's threads, each calling
#            BLAS for its own (routes.row_blocks), and so every product
#            (blas.matmul, routes.product_threads), even the small ones the
#            tests use.
PLANS = {"python": nl.Plan(loop_threads=1),
         "threads": nl.Plan(loop_threads=min(2, numba.config.NUMBA_NUM_THREADS),
                            one_thread_work=0, thread_work=1)}
ROUTES = list(PLANS)


def take_route(patch, route):
    """The plan of a route (patch: a pytest MonkeyPatch, undone after: for
    threads, BLAS's thread count as on a machine of two cores)."""
    if route == "threads":
        patch.setattr(blas, "threads", lambda: 2)
    return PLANS[route]


@dataclass(frozen=True)
class Config:
    batch: int
    timesteps: int
    features: int
    units: tuple          # one entry per LSTM
    topology: str         # many-to-many, many-to-one, encoder-decoder
    head: str
    loss: str
    outputs: int
    repeat: int           # RepeatVector length (encoder-decoder); output steps (reshaped)
    stateful: bool        # first LSTM stateful, with a random non-zero state
    seed: int
    masking: bool = False  # a Masking(0.0) first, and about 30% of the steps masked

    def build(self, dtype="float64", backend="numba", executor="auto", optimizer="adam",
              plan=None):
        """The model, compiled, with its stateful state set; plan: in place
        of the executor, the whole plan."""
        layers = []
        n = len(self.units)
        shape = {"batch_input_shape": (self.batch, self.timesteps, self.features)}
        if self.masking:
            layers.append(nl.Masking(0.0, **shape))
            shape = {}
        for k, units in enumerate(self.units):
            if self.topology == "encoder-decoder":
                # the first LSTM encodes to one vector; the others decode
                seq = k > 0
            else:
                seq = self.topology == "many-to-many" or k < n - 1
            layers.append(nl.LSTM(units, return_sequences=seq,
                                  stateful=self.stateful and k == 0, **(shape if k == 0 else {})))
            if self.topology == "encoder-decoder" and k == 0:
                layers.append(nl.RepeatVector(self.repeat))
        if self.topology == "reshaped":     # many-to-one, as `repeat` steps of `outputs`
            layers += [nl.Dense(self.repeat * self.outputs),
                       nl.Reshape((self.repeat, self.outputs)), nl.Activation(self.head)]
        else:
            dense = nl.Dense(self.outputs, activation=self.head)
            layers.append(dense if self.topology == "many-to-one" else nl.TimeDistributed(dense))
        model = nl.Sequential(layers, seed=self.seed, dtype=dtype, backend=backend,
                              executor=executor)
        if plan is not None:
            model.plan = plan
        model.compile(loss=self.loss, optimizer=optimizer)
        if self.stateful:
            rng = np.random.default_rng(self.seed + 1)
            h = rng.normal(scale=0.5, size=(self.batch, self.units[0]))
            c = rng.normal(scale=0.5, size=(self.batch, self.units[0]))
            first_lstm = next(layer for layer in model.layers if isinstance(layer, nl.LSTM))
            first_lstm.reset_states((h, c))
        return model

    @property
    def output_steps(self):
        """The output's time axis: () for many-to-one."""
        return {"many-to-many": (self.timesteps,), "many-to-one": (),
                "encoder-decoder": (self.repeat,), "reshaped": (self.repeat,)}[self.topology]

    def data(self, dtype="float64"):
        """Inputs and targets that suit the loss."""
        rng = np.random.default_rng(self.seed + 2)
        X = rng.normal(size=(self.batch, self.timesteps, self.features))
        if self.masking:        # every row keeps at least one step
            keep = rng.uniform(size=X.shape[:2]) > 0.3
            keep[np.arange(self.batch), rng.integers(self.timesteps, size=self.batch)] = True
            X[~keep] = 0.0
        shape = (self.batch,) + self.output_steps + (self.outputs,)
        if self.loss == "binary_crossentropy":
            y = rng.uniform(size=shape)
        elif self.loss == "categorical_crossentropy":
            y = rng.dirichlet(np.ones(self.outputs), size=shape[:-1])
        else:
            y = rng.normal(size=shape)
        return X.astype(dtype), y.astype(dtype)


    def sample_weight(self, per_step):
        """Random weights in [0, 2): one per sample, or one per output step."""
        rng = np.random.default_rng(self.seed + 3)
        return rng.uniform(0, 2, size=(self.batch,) + (self.output_steps if per_step else ()))


@st.composite
def configs(draw, max_batch=4, max_time=8, max_features=6, max_units=8, masking=False):
    topology = draw(st.sampled_from(TOPOLOGIES))
    n_lstm = draw(st.integers(2 if topology == "encoder-decoder" else 1, 2))
    head, loss = draw(st.sampled_from(HEAD_LOSS))
    # A softmax over one class is constant: its gradients are identically 0.
    min_outputs = 2 if head == "softmax" else 1
    return Config(
        batch=draw(st.integers(1, max_batch)),
        timesteps=draw(st.integers(1, max_time)),
        features=draw(st.integers(1, max_features)),
        units=tuple(draw(st.integers(1, max_units)) for _ in range(n_lstm)),
        topology=topology, head=head, loss=loss,
        outputs=draw(st.integers(min_outputs, 5)),
        repeat=draw(st.integers(1, 3)),
        stateful=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
        masking=masking,
    )
