"""The same seed gives bit-identical weights, losses and predictions, in
this process and in a new one."""
import subprocess
import sys

import pytest

RUN = """
import hashlib, numpy as np, npLSTM as nl
def run(backend, dtype):
    model = nl.Sequential([nl.LSTM(7, return_sequences=True, input_shape=(4, 3)),
                           nl.TimeDistributed(nl.Dense(2, activation="softmax"))],
                          seed=42, dtype=dtype, backend=backend)
    model.compile("categorical_crossentropy", "adam")
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(10, 4, 3)), np.eye(2)[rng.integers(0, 2, (10, 4))]
    history = model.fit(X, y, epochs=3, batch_size=4, shuffle=True, verbose=0)
    digest = hashlib.sha256()
    for w in model.get_weights() + [model.predict(X), np.array(history.history["loss"])]:
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()
"""


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_new_process_reproduces_the_run_bit_for_bit(backend, dtype):
    namespace = {}
    exec(RUN, namespace)
    here = namespace["run"](backend, dtype)
    assert here == namespace["run"](backend, dtype)                  # same process, twice
    code = RUN + f"\nprint(run({backend!r}, {dtype!r}))"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=300).stdout.strip()
    assert here == there
