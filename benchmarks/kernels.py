"""LSTM forward+backward and one Adam training step: npLSTM (Numba, NumPy)
against PyTorch's nn.LSTM, measured in the same run.

    python benchmarks/kernels.py                 # the table (PyTorch if installed)
    python benchmarks/kernels.py --quick         # fewer repeats
    python benchmarks/kernels.py --size 64,100,256,512 --dtype float32 --rounds 9
    python benchmarks/kernels.py --crossover     # where the compiled loop stops winning
    python benchmarks/kernels.py --startup       # compile time, then a cached process
    python benchmarks/kernels.py --compiled-executor        # where the compiled executor stops winning

Method: the contenders run in alternation, one block of calls each per
round (each block after one untimed call, so that no contender pays for
another library's thread pool winding down), so that a load that comes and
goes hits them all alike; each figure is the median over rounds. GFLOP/s
counts 3 * 2 * T * B * 4H * (D + H) per forward+backward (forward, and two
products backward) and is set against the best NumPy
matmul rate of this machine: a 2048 x 2048 product, timed as one more
contender in the same rounds, so that it meets the same load. That count includes
dL/dX (B*T*4H*D of it), which neither contender computes: PyTorch's X does
not require grad, and npLSTM's first layer skips it in training.

npLSTM runs with its defaults: at the larger sizes, a batch of 16 rows a
thread or more goes on as many of Numba's threads as BLAS may use, each
calling BLAS for its own rows. Beside the median % of GEMM, the middle
half of the rounds' own ratios (each round's npLSTM against the same
round's GEMM) shows how much the host moved. The machine should be
otherwise idle: the load average is printed first.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import npLSTM as nl
from npLSTM.kernels import routes

SIZES = [(1, 1, 5, 20), (7, 5, 100, 20), (21, 5, 100, 150), (64, 100, 128, 256),
         (64, 100, 256, 512)]
CROSSOVER_SIZES = [(B, T, 32, H) for T in (5, 100, 1000) for B in (1, 4, 16, 64, 256)
                   for H in (16, 32, 64, 128) if B * T * H <= 64 * 100 * 128]


def round_times(contenders, rounds, block_seconds=0.02):
    """{name: seconds per call in each round}, the contenders taking turns,
    one block of calls each per round. Each block starts with one untimed
    call: another library's thread pool (PyTorch's OpenMP, OpenBLAS) may
    still be spinning from the previous block, and the first call would
    pay for the handoff."""
    reps = {}
    for name, fn in contenders.items():   # warm up (compiles, allocator), size the blocks
        fn()
        start = time.perf_counter()
        fn()
        reps[name] = max(1, int(block_seconds / max(time.perf_counter() - start, 1e-7)))
    samples = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            fn()
            start = time.perf_counter()
            for _ in range(reps[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / reps[name])
    return samples


def medians(samples):
    """{name: the median of its samples}."""
    return {name: float(np.median(s)) for name, s in samples.items()}


def median_times(contenders, rounds, block_seconds=0.02):
    """{name: median seconds per call} over round_times's rounds."""
    return medians(round_times(contenders, rounds, block_seconds))


GEMM_SIZE = 2048        # the product that gives this machine's best matmul rate


def square_matmul(dtype, n=GEMM_SIZE):
    """A callable doing one n x n by n x n product: 2 n^3 flops."""
    a = np.random.default_rng(0).normal(size=(n, n)).astype(dtype)
    out = np.empty_like(a)
    return lambda: np.matmul(a, a, out=out)


def npLSTM_step(size, dtype, backend, train, lstm_loop="auto"):
    """A callable doing forward+backward (and an Adam step when train), the
    LSTM's loop shaped as lstm_loop asks (npLSTM.Plan)."""
    B, T, D, H = size
    model = nl.Sequential([nl.LSTM(H, return_sequences=True, input_shape=(T, D))],
                          seed=0, dtype=dtype, backend=backend)
    model.plan = nl.Plan(lstm_loop=lstm_loop)
    model.compile("mse", nl.Adam())
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(B, T, D)).astype(dtype), rng.normal(size=(B, T, H)).astype(dtype)
    if train:
        return lambda: model.train_on_batch(X, y)
    lstm = model.layers[0]
    dy = y.copy()
    # the parameter gradients, not dL/dX: PyTorch's X does not require grad either
    return lambda: (lstm.forward(X), lstm.backward(dy, input_grad=False))


def torch_step(size, dtype, train):
    import torch
    B, T, D, H = size
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    lstm = torch.nn.LSTM(D, H, batch_first=True).to(tdtype)
    X = torch.randn(B, T, D, dtype=tdtype)
    dy = torch.randn(B, T, H, dtype=tdtype)
    optimizer = torch.optim.Adam(lstm.parameters(), eps=1e-7)

    def step():
        optimizer.zero_grad()
        out, _ = lstm(X)
        if train:
            torch.nn.functional.mse_loss(out, dy).backward()
            optimizer.step()
        else:
            out.backward(dy)
    return step


def have_torch():
    try:
        import torch
    except ImportError:
        return False
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    return True


def table(args):
    print(f"load average before: {os.getloadavg()[0]:.2f} (trust the figures only near 0)")
    torch_ok = have_torch()
    if not torch_ok:
        print("PyTorch is not installed: pip install 'npLSTM[parity]' to compare with it")
    rounds = args.rounds or (5 if args.quick else 15)
    for dtype in args.dtype:
        print(f"\n{dtype}: npLSTM with its defaults (BLAS at {nl.blas_threads()} threads, loop "
              f"threads {nl.loop_threads()}).")
        print(f"GEMM GF/s is a {GEMM_SIZE}^3 NumPy matmul in the same rounds; npLSTM's GF/s "
              "and % of GEMM are medians, beside them the middle half of the rounds' own %.")
        print(f"{'B,T,D,H':>18} {'step':>6} {'numba ms':>9} {'numpy ms':>9} {'torch ms':>9} "
              f"{'torch/numba':>11} {'GEMM GF/s':>9} {'numba GF/s: % of GEMM':>24}")
        for size in args.size or SIZES:
            B, T, D, H = size
            flops = 3 * 2 * T * B * 4 * H * (D + H)
            for train in (False, True):
                contenders = {"numba": npLSTM_step(size, dtype, "numba", train)}
                if not (args.quick and T * B * H > 100000):
                    contenders["numpy"] = npLSTM_step(size, dtype, "numpy", train)
                if torch_ok:
                    contenders["torch"] = torch_step(size, dtype, train)
                contenders["gemm"] = square_matmul(dtype)
                samples = round_times(contenders, rounds)
                t = medians(samples)
                peak = 2 * GEMM_SIZE ** 3 / t["gemm"] / 1e9
                cell = {k: f"{1e3 * v:.3f}" for k, v in t.items()}
                # each round's time against the same round's GEMM: how much the host moved
                shares = (100 * flops / np.array(samples["numba"])
                          / (2 * GEMM_SIZE ** 3 / np.array(samples["gemm"])))
                low, high = np.percentile(shares, [25, 75])
                gflops = flops / t["numba"] / 1e9
                share = f"{gflops:.1f}: {100 * gflops / peak:.0f}% ({low:.0f}-{high:.0f}%)"
                ratio = f"{t['torch'] / t['numba']:.2f}" if "torch" in t else "-"
                print(f"{str(size):>18} {'train' if train else 'f+b':>6} {cell['numba']:>9} "
                      f"{cell.get('numpy', '-'):>9} {cell.get('torch', '-'):>9} {ratio:>11} "
                      f"{peak:9.0f} {share:>24}", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


def crossover(args):
    """Time jit's two loop shapes against each other across sizes."""
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rounds = args.rounds or (5 if args.quick else 11)
    for dtype in args.dtype:
        print(f"\n{dtype}\n{'B':>4} {'T':>5} {'H':>4} {'compiled loop ms':>17} "
              f"{'large path ms':>17}  faster  {'rule says':>13}")
        for size in args.size or CROSSOVER_SIZES:
            B, T, _, H = size
            t = median_times({
                "compiled loop": npLSTM_step(size, dtype, "numba", False, "whole"),
                "large path": npLSTM_step(size, dtype, "numba", False, "steps"),
            }, rounds)
            rule = "compiled loop" if routes.compiled_loop(B, H) else "large path"
            print(f"{B:>4} {T:>5} {H:>4} {1e3 * t['compiled loop']:17.3f} "
                  f"{1e3 * t['large path']:17.3f}  {min(t, key=t.get)}  {rule:>13}", flush=True)


def compiled_executor(args):
    """Time training steps of LSTM -> TimeDistributed(Dense softmax) with
    one-hot inputs, as the tutorials train, in the compiled executor
    (npLSTM.executor) against layer by layer, across sizes: where
    COMPILED_WORK should lie."""
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'B':>4} {'T':>4} {'D':>4} {'H':>4} {'work':>10} {'compiled us':>12} "
          f"{'layers us':>10}  faster")
    rounds = 5 if args.quick else 11
    rng = np.random.default_rng(0)
    for B, T, D, H in [(B, T, D, H) for D in (5, 100) for H in (20, 50, 128) for B in (1, 4, 16)
                       for T in (1, 5, 20) if routes.compiled_loop(B, H)]:
        X = np.eye(D)[rng.integers(0, D, size=(B, T))]
        y = np.eye(D)[rng.integers(0, D, size=(B, T))]
        steps = {}
        for name in ("compiled", "layers"):
            model = nl.Sequential([nl.LSTM(H, return_sequences=True, input_shape=(T, D)),
                                   nl.TimeDistributed(nl.Dense(D, activation="softmax"))],
                                  seed=0, executor=name)
            model.compile("categorical_crossentropy", "adam")
            steps[name] = (lambda m: lambda: m.train_on_batch(X, y))(model)
        t = median_times(steps, rounds)
        work = B * T * (D + H + 1) * 4 * H
        print(f"{B:>4} {T:>4} {D:>4} {H:>4} {work:>10,} {1e6 * t['compiled']:12.1f} "
              f"{1e6 * t['layers']:10.1f}  {min(t, key=t.get)}", flush=True)


STARTUP = """
import time
start = time.perf_counter()
import numpy as np
import npLSTM as nl
imported = time.perf_counter()
m = nl.Sequential([nl.LSTM(20, stateful=True, batch_input_shape=(1, 1, 5)),
                   nl.Dense(5, activation="sigmoid")], seed=0)
m.compile("binary_crossentropy", "adam")
m.train_on_batch(np.eye(5)[:1, None], np.eye(5)[1:2])
print(f"{imported - start:.2f} {time.perf_counter() - imported:.2f}")
"""


def startup(args):
    """A first process compiles the kernels into a fresh cache; a second reuses it."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("first process (compiles)", "second process (cached)"):
            out = subprocess.run([sys.executable, "-c", STARTUP], env=env, capture_output=True,
                                 text=True, check=True).stdout.split()
            print(f"{label:>26}: import {out[0]} s, first training step {out[1]} s")


def size_arg(text):
    """'B,T,D,H' as a tuple of four positive integers."""
    try:
        size = tuple(int(n) for n in text.split(","))
    except ValueError:
        size = ()
    if len(size) != 4 or min(size) < 1:
        raise argparse.ArgumentTypeError(f"expected four positive integers B,T,D,H, got {text!r}")
    return size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, skip slow NumPy runs")
    parser.add_argument("--crossover", action="store_true", help="measure the dispatch size")
    parser.add_argument("--startup", action="store_true", help="compile and cached start times")
    parser.add_argument("--compiled-executor", action="store_true",
                        help="where compiling the whole training step stops winning")
    parser.add_argument("--size", type=size_arg, action="append", metavar="B,T,D,H",
                        help="a size to time (repeatable; default: the five of the table, "
                             "or the crossover's grid)")
    parser.add_argument("--dtype", choices=("float32", "float64"), action="append",
                        help="a precision to time (repeatable; default: both)")
    parser.add_argument("--rounds", type=int,
                        help="rounds per figure (default: table 15, crossover 11; --quick 5)")
    args = parser.parse_args()
    args.dtype = args.dtype or ["float32", "float64"]
    (crossover if args.crossover else startup if args.startup else compiled_executor if args.compiled_executor
     else table)(args)


if __name__ == "__main__":
    main()
