"""The tutorial tasks end to end: npLSTM against the same training written
idiomatically in PyTorch and in Keras 3, measured in the same run, per
weight update.

    python benchmarks/tasks.py [--epochs-scale 0.2] [--rounds 3] [--dtype float32]
    pip install "npLSTM[bench]"     # PyTorch and Keras 3 with TensorFlow, the peers

Each round trains every contender once for the task's tutorial number of
epochs times --epochs-scale, in turn; the figure is the median over rounds
of training seconds (building and evaluating left out) per weight update.
The PyTorch versions below follow the tutorials: stateful LSTMs carry
(h, c) from batch to batch, detached, and reset after each sequence; Adam
with Keras's defaults (eps=1e-7). The Keras versions are the tutorials'
own code: a stateful model, one fit call per sequence, then reset_states.
Keras runs on the backend KERAS_BACKEND names (TensorFlow unless set).
"""
import argparse
import dataclasses
import os
import time

import numpy as np

from npLSTM import data, tasks


def torch_memory(settings, dtype):
    import torch
    import torch.nn.functional as F
    lstm = torch.nn.LSTM(5, settings.units, batch_first=True).to(dtype)
    head = torch.nn.Linear(settings.units, 5).to(dtype)
    params = list(lstm.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=settings.learning_rate, eps=1e-7)
    frames = [tuple(torch.tensor(a, dtype=dtype) for a in data.pairs(seq, 5))
              for seq in tasks.memory.sequences(settings)]

    def train():
        start, updates = time.perf_counter(), 0
        for _ in range(settings.epochs):
            for X, y in frames:
                state = None                       # reset after each sequence
                for k in range(len(X)):           # batch size 1, in order
                    optimizer.zero_grad()
                    out, (h, c) = lstm(X[k:k + 1], state)
                    F.binary_cross_entropy_with_logits(head(out[:, -1]), y[k:k + 1]).backward()
                    optimizer.step()
                    state = (h.detach(), c.detach())
                    updates += 1
        return updates, time.perf_counter() - start
    return train


def echo_epochs(s):
    """(X, y) of each epoch: a new random sequence, framed as the tutorial does."""
    rng = np.random.default_rng(0)
    for _ in range(s.epochs):
        yield data.windows(data.random_sequence(rng, s.length, s.alphabet), s.n_in, s.n_out,
                           s.alphabet)


def torch_echo(settings, dtype):
    """echo and echo-partial: one LSTM, or an encoder-decoder."""
    import torch
    import torch.nn.functional as F
    s = settings
    encoder = torch.nn.LSTM(s.alphabet, s.units, batch_first=True).to(dtype)
    decoder = torch.nn.LSTM(s.units, s.units, batch_first=True).to(dtype) \
        if s.topology == "encoder-decoder" else None
    head = torch.nn.Linear(s.units, s.alphabet).to(dtype)
    modules = [m for m in (encoder, decoder, head) if m is not None]
    optimizer = torch.optim.Adam([p for m in modules for p in m.parameters()],
                                 lr=s.learning_rate, eps=1e-7)

    def train():
        start, updates = time.perf_counter(), 0
        for X, y in echo_epochs(s):
            X, target = torch.tensor(X, dtype=dtype), torch.tensor(y.argmax(-1))
            states = [None, None]
            for first in range(0, len(X), s.batch_size):
                rows = slice(first, first + s.batch_size)
                optimizer.zero_grad()
                out, enc_state = encoder(X[rows], states[0])
                new_states = [enc_state]
                if decoder is not None:
                    repeated = out[:, -1:].expand(-1, s.n_out, -1)
                    out, dec_state = decoder(repeated, states[1])
                    new_states.append(dec_state)
                logits = head(out)
                F.cross_entropy(logits.reshape(-1, s.alphabet), target[rows].reshape(-1)).backward()
                optimizer.step()
                states = [tuple(t.detach() for t in st) for st in new_states] + [None]
                updates += 1
        return updates, time.perf_counter() - start
    return train


def keras_stateful(layers, loss, batch_shape, dtype):
    """A compiled Keras model (tutorial style) and a function resetting its state."""
    import keras
    keras.config.set_floatx(dtype)
    model = keras.Sequential([keras.Input(batch_shape=batch_shape)] + layers)
    model.compile(loss=loss, optimizer="adam")

    def reset_states():
        for layer in model.layers:
            if getattr(layer, "stateful", False):
                layer.reset_states()
    return model, reset_states


def keras_memory(settings, dtype):
    import keras
    s = settings
    model, reset_states = keras_stateful(
        [keras.layers.LSTM(s.units, stateful=True), keras.layers.Dense(5, activation="sigmoid")],
        "binary_crossentropy", (1, 1, 5), dtype)
    frames = [tuple(a.astype(dtype) for a in data.pairs(seq, 5))
              for seq in tasks.memory.sequences(s)]

    def train():
        start, updates = time.perf_counter(), 0
        for _ in range(s.epochs):
            for X, y in frames:
                model.fit(X, y, epochs=1, batch_size=1, verbose=0, shuffle=False)
                reset_states()
                updates += len(X)
        return updates, time.perf_counter() - start
    return train


def keras_echo(settings, dtype):
    import keras
    s = settings
    L = keras.layers
    if s.topology == "encoder-decoder":
        layers = [L.LSTM(s.units, stateful=True), L.RepeatVector(s.n_out),
                  L.LSTM(s.units, return_sequences=True, stateful=True)]
    else:
        layers = [L.LSTM(s.units, return_sequences=True, stateful=True)]
    layers.append(L.TimeDistributed(L.Dense(s.alphabet, activation="softmax")))
    model, reset_states = keras_stateful(layers, "categorical_crossentropy",
                                         (s.batch_size, s.n_in, s.alphabet), dtype)

    def train():
        start, updates = time.perf_counter(), 0
        for X, y in echo_epochs(s):
            model.fit(X.astype(dtype), y.astype(dtype), epochs=1, batch_size=s.batch_size,
                      verbose=0, shuffle=False)
            reset_states()
            updates += -(-len(X) // s.batch_size)
        return updates, time.perf_counter() - start
    return train


def npLSTM_task(task, settings, dtype):
    def train():
        result = task.run(settings, seed=0, dtype=dtype)
        return result.updates, result.train_seconds      # training only, as for PyTorch
    return train


TORCH = {"memory": torch_memory, "echo": torch_echo, "echo-partial": torch_echo}
KERAS = {"memory": keras_memory, "echo": keras_echo, "echo-partial": keras_echo}


def peers(threads):
    """The installed peers: {"PyTorch": its module, "Keras": its module},
    each set to the given number of threads."""
    found = {}
    try:
        import torch
        torch.set_num_threads(threads)
        found["PyTorch"] = torch
    except ImportError:
        print("PyTorch is not installed: pip install 'npLSTM[bench]' to compare with it")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")         # TensorFlow's start-up chatter
    try:
        import keras
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        found["Keras"] = keras
    except ImportError:
        print("Keras is not installed: pip install 'npLSTM[bench]' to compare with it")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs-scale", type=float, default=0.2,
                        help="fraction of each tutorial's epochs to train (default 0.2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--tasks", nargs="*", default=list(TORCH), choices=list(TORCH))
    parser.add_argument("--no-keras", action="store_true",
                        help="leave Keras out (it is 10-1000x slower: most of the run's time)")
    args = parser.parse_args()
    found = peers(int(os.environ.get("BENCH_THREADS", "2")))
    if args.no_keras:
        found.pop("Keras", None)
    print(f"load average before: {os.getloadavg()[0]:.2f}; dtype {args.dtype}"
          + (f"; Keras backend {found['Keras'].backend.backend()}" if "Keras" in found else ""))
    columns = [name for name in ("PyTorch", "Keras") if name in found]
    print(f"{'task':>13} {'epochs':>7} {'updates':>8} {'npLSTM us':>10} "
          + " ".join(f"{name + ' us':>11} {'speed-up':>9}" for name in columns))
    for name in args.tasks:
        task = tasks.get(name)
        settings = task.configs["tutorial"]
        settings = dataclasses.replace(settings,
                                       epochs=max(1, round(settings.epochs * args.epochs_scale)))
        contenders = {"npLSTM": npLSTM_task(task, settings, args.dtype)}
        if "PyTorch" in found:
            torch = found["PyTorch"]
            contenders["PyTorch"] = TORCH[name](settings, getattr(torch, args.dtype))
        if "Keras" in found:
            contenders["Keras"] = KERAS[name](settings, args.dtype)
        samples = {k: [] for k in contenders}
        for _ in range(args.rounds):
            for label, train in contenders.items():
                updates, seconds = train()
                samples[label].append(seconds / updates)
        t = {k: float(np.median(v)) for k, v in samples.items()}
        print(f"{name:>13} {settings.epochs:>7} {updates:>8} {1e6 * t['npLSTM']:10.1f} "
              + " ".join(f"{1e6 * t[peer]:11.1f} {t[peer] / t['npLSTM']:9.2f}"
                         for peer in columns))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
