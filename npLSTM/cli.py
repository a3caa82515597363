"""The `nplstm` command: run the reference tasks, sweep them over seeds,
look inside a trained model."""
import argparse
import dataclasses
import json
import os
import sys
import time
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from . import tasks
from .sweep import parse_grid, print_sweep, run_in_workers, sequences_seen, summarize
from .tasks.common import Progress, apply_overrides
from .threads import set_threads

INTERRUPTED = 130          # the exit status of a program stopped by Ctrl-C (128 + SIGINT)


def parse_sets(pairs):
    """["units=30", "epochs=10"] -> {"units": "30", "epochs": "10"}."""
    overrides = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes key=value, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def config_label(name, base, settings):
    """The configuration's name, then the settings that differ from it:
    "tutorial", "tutorial, epochs=100"."""
    changed = [f"{key}={value}" for key, value in dataclasses.asdict(settings).items()
               if getattr(base, key) != value]
    return ", ".join([name] + changed)


def settings_for(task, args):
    """The task's settings: the chosen config, then --epochs and --set; and
    their label."""
    overrides = parse_sets(args.set)
    for name in ("epochs", "p", "q", "T"):
        if getattr(args, name) is not None:
            overrides[name] = str(getattr(args, name))
    base = task.configs[args.config]
    settings = apply_overrides(base, overrides)
    return settings, config_label(args.config, base, settings)


def require_plotting(args):
    """Fail before any training when --plot is asked for without matplotlib."""
    if getattr(args, "plot", None):
        from .plots import require_matplotlib
        try:
            require_matplotlib()
        except ImportError as error:
            raise ValueError(f"--plot: {error}") from None


def say_if_compiling(args, workers=0):
    """Before a first run, say that the wait is Numba compiling, once."""
    from .kernels.cache import kernel_cache_folder, kernels_compiled
    if getattr(args, "quiet", False) or kernels_compiled():
        return
    who = f"each of the {workers} workers compiles" if workers > 1 else "npLSTM compiles"
    print(f"{who} its kernels for this machine first: about 15-30 s, once (later runs "
          f"load them from {kernel_cache_folder()})", file=sys.stderr, flush=True)


class ProgressBar(Progress):
    """A tqdm bar over the epochs, from the moment training starts (after
    compiling, so its clock and estimate time training only)."""

    def __init__(self, task):
        self.task, self.bar = task, None

    def start(self, epochs):
        from tqdm import tqdm
        self.bar = tqdm(total=epochs, desc=self.task, unit="epoch", file=sys.stderr)

    def epoch(self, epoch, loss, accuracy):
        self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.3f}", refresh=False)
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def train_one(task, args, quiet):
    """Train and evaluate the task as the arguments say: (Result, model)."""
    settings, label = settings_for(task, args)
    say_if_compiling(args)
    progress = None if quiet else ProgressBar(task.name)
    try:
        return task.train(settings, seed=args.seed, dtype=args.dtype, config=label,
                          progress=progress)
    finally:
        if progress is not None:
            progress.close()


def report(task, result, args):
    """The tutorial's printout (unless --quiet), the summary line, and plain
    words when the task was not solved or training was interrupted."""
    if not args.quiet:
        print("\n".join(result.report))
    print(result.summary())
    if result.interrupted:              # the figures are the stopped model's, not the config's
        print(f"interrupted after {result.epochs_done} epochs ({result.updates} updates)")
    elif not result.solved and not args.quiet:
        print("\n".join(["Not solved."] + task.advice(result.config)))


def command_run(args):
    require_plotting(args)
    names = list(tasks.TASKS) if args.task == "all" else [args.task]
    if args.save and len(names) > 1:
        raise ValueError("--save keeps one model: name one task, not 'all'")
    results = []
    for name in names:
        task = tasks.get(name)
        result, model = train_one(task, args, args.quiet or args.json)
        report(task, result, args)
        results.append(result)
        if args.save:
            model.save(args.save)
            print(f"model saved to {args.save}")
        if result.interrupted:
            break
    if args.plot:
        from .plots import plot_history
        plot_history(results, args.plot)
        print(f"training curves drawn in {args.plot}")
    if args.json:
        payload = [r.to_json() for r in results]
        print(json.dumps(payload[0] if len(payload) == 1 else payload))
    return INTERRUPTED if results[-1].interrupted else 0


def command_inspect(args):
    from . import inspection
    from .model import load_model
    require_plotting(args)
    task = tasks.get(args.task)
    settings, _ = settings_for(task, args)
    if args.model:
        model = load_model(args.model)
        print(f"model loaded from {args.model}")
        say_if_compiling(args)
    else:
        result, model = train_one(task, args, args.quiet or args.json)
        print(result.summary())
        if result.interrupted:
            print(f"interrupted after {result.epochs_done} epochs ({result.updates} updates); "
                  "looking inside the model as it stands")
    if not (args.quiet or args.json):
        model.summary()
    # The probe sequences come from a third stream of the seed, apart from the
    # two of training (tasks.common.seeded).
    rng = np.random.default_rng(np.random.SeedSequence(args.seed).spawn(3)[2])
    try:
        seen = inspection.inspect(task, model, settings, rng, marked=args.mark)
    except ValueError as error:
        if not args.model:
            raise
        raise ValueError(f"the model in {args.model} does not take {task.name}'s data with "
                         f"these settings: {error}") from None
    print("\n".join(inspection.describe(seen)))
    if args.csv:
        inspection.write_csv(seen, args.csv)
        print(f"gates and states written to {args.csv}")
    if args.plot:
        from .plots import plot_inspection
        plot_inspection(seen, args.plot)
        print(f"heat maps drawn in {args.plot}")
    if args.json:
        print(json.dumps({"task": task.name, "sequences": seen.titles, "layers": [
            {"layer": layer.name, "context_step": layer.context_step,
             "context_units": layer.context_units,
             "spread": [float(layer.spread[u]) for u in layer.context_units]}
            for layer in seen.layers]}))
    return INTERRUPTED if not args.model and result.interrupted else 0


def command_sweep(args):
    task = tasks.get(args.task)
    base, label = settings_for(task, args)
    grid = parse_grid(args.grid)
    variants = [(overrides, apply_overrides(base, overrides)) for overrides in grid]
    jobs = args.jobs or os.cpu_count() or 1
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    # Workers start fresh (spawn) and share the cores' BLAS threads, so J
    # workers do not fight over the cores.
    loop = args.loop_threads or 1
    blas = args.blas_threads or max(1, (os.cpu_count() or 1) // jobs)
    configs = [config_label(args.config, task.configs[args.config], settings)
               for _, settings in variants]
    calls = [(task.name, settings, seed, args.dtype, config, blas, loop)
             for (_, settings), config in zip(variants, configs) for seed in seeds]
    say_if_compiling(args, workers=min(jobs, len(calls)))
    start = time.perf_counter()
    finished, interrupted = run_in_workers(jobs, calls, f"{task.name} sweep")
    wall = time.perf_counter() - start
    rows = [[r for r in finished[k * len(seeds):(k + 1) * len(seeds)] if r is not None]
            for k in range(len(variants))]
    print(f"{task.name} [{label}] {base}")
    print_sweep(variants, rows)
    runs = [r for row in rows for r in row]
    if runs:
        solved, _, seconds = summarize(runs)
        rate = f"{solved} of the {len(runs)} runs that finished" if interrupted else \
            f"{solved}/{len(runs)} ({solved / len(runs):.0%})"
        print(f"solved {rate}; median train time {seconds:.2f} s per seed; wall "
              f"{wall:.1f} s with {jobs} jobs")
    counted = sequences_seen(runs)
    if counted is not None:
        seen, within, paper = counted
        print(f"training sequences of the solved runs: median {seen}; "
              + (f"{within} solved within the paper's {paper:,}" if paper else
                 "the paper reports no figure at these sizes"))
    if interrupted:
        print(f"interrupted: {len(runs)} of {len(calls)} runs finished; the workers were "
              "stopped")
    if args.json:
        records = []
        for (overrides, settings), config, row in zip(variants, configs, rows):
            solved, accuracy, seconds = summarize(row)
            records.append({"task": task.name, "config": config, "grid": overrides,
                            "settings": dataclasses.asdict(settings), "seeds": len(row),
                            "solved": solved,
                            "median_sequences": (sequences_seen(row) or [None])[0],
                            "success_rate": solved / len(row) if row else None,
                            "median_accuracy": accuracy, "median_train_seconds": seconds,
                            "interrupted": interrupted, "runs": [r.to_json() for r in row]})
        print(json.dumps(records[0] if len(records) == 1 else records))
    return INTERRUPTED if interrupted else 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="nplstm",
        description="npLSTM: a from-scratch LSTM engine. Run the classic LSTM memory "
                    "demonstrations of the Keras tutorials (memory: remember a symbol "
                    "across a gap; echo: echo a window of random integers; echo-partial: "
                    "echo its first 2 with an encoder-decoder) and the long-time-lag "
                    "experiments of Hochreiter & Schmidhuber 1997 (longlag-2a, longlag-2b, "
                    "longlag-2c, adding), sweep them over seeds and settings, and look "
                    "inside the trained models. docs/experiments.md explains each task and "
                    "its configurations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def task_options(p, with_seed=True):
        p.add_argument("--config", choices=["default", "tutorial"], default="default",
                       help="'tutorial': the original Keras tutorial's configuration, "
                            "unchanged; 'default': the one that solves the task reliably "
                            "(docs/experiments.md explains each). Default: %(default)s")
        if with_seed:
            p.add_argument("--seed", type=int, default=0,
                           help="seed of weights and data; the same seed gives the same "
                                "run, bit for bit (default: %(default)s)")
        p.add_argument("--epochs", type=int, default=None,
                       help="override the configuration's number of epochs (the paper's "
                            "tasks: the most updates; they stop when solved)")
        p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                       help="floating-point precision (default: %(default)s)")
        for name, meaning in (("p", "the time lag of longlag-2a/2b/2c (their p)"),
                              ("q", "longlag-2c's prefix before the trigger (its q)"),
                              ("T", "the adding task's shortest sequence (its T)")):
            p.add_argument(f"--{name}", type=int, default=None, metavar=name.upper(),
                           help=f"{meaning}; the same as --set {name}=...")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override any setting of the task, e.g. --set units=30 "
                            "(repeatable; an unknown key lists the known ones)")
        p.add_argument("--json", action="store_true",
                       help="end the output with one line of JSON holding the results")
        p.add_argument("--blas-threads", type=int, default=None, metavar="N",
                       help="threads for NumPy's BLAS, and for the LSTM loops on batches "
                            "of 16 rows a thread or more (default: one per core; sweep: the "
                            "cores shared among the jobs). Fewer can be faster on a busy "
                            "machine")
        p.add_argument("--loop-threads", type=int, default=None, metavar="N",
                       help="threads sharing out a batch's rows in the LSTM loops at any "
                            "batch, each calling BLAS for its rows in the larger layers "
                            "(default: 1, the loops' threads then set by --blas-threads)")

    run = sub.add_parser(
        "run", help="train and evaluate a task, printing the tutorial's output",
        description="Train a task with a progress bar, then print the tutorial-style "
                    "predictions and a one-line summary.")
    run.add_argument("task", choices=sorted(tasks.TASKS) + ["all"],
                     help="the task to run ('all': each in turn)")
    task_options(run)
    run.add_argument("--quiet", action="store_true",
                     help="no progress bar and no predictions: only the summary line")
    run.add_argument("--plot", metavar="PNG",
                     help="draw the training loss and accuracy per epoch into this image "
                          "(needs matplotlib: pip install \"npLSTM[plot]\")")
    run.add_argument("--save", metavar="NPZ",
                     help="save the trained model to this file (for nplstm inspect --model)")
    run.set_defaults(handler=command_run)

    look = sub.add_parser(
        "inspect", help="look inside a trained model: gates, cell and hidden states",
        description="Train a task (or load a model saved by nplstm run --save), run it "
                    "over the task's sequences and record, at every step, each LSTM "
                    "unit's input, forget and output gates, candidate, cell state and "
                    "hidden state. Prints the context units: those whose cell state "
                    "differs most between the sequences where the task needs its memory "
                    "(memory: after the third step, before the step where A and B need "
                    "different answers; echo tasks: after the last step).")
    look.add_argument("task", choices=sorted(tasks.TASKS))
    task_options(look)
    look.add_argument("--model", metavar="NPZ",
                      help="load this model instead of training one; the task's settings "
                           "(--config, --set) must frame data its way")
    look.add_argument("--plot", metavar="PNG",
                      help="draw the heat maps into this image (needs matplotlib: "
                           "pip install \"npLSTM[plot]\")")
    look.add_argument("--csv", metavar="CSV",
                      help="write every value, one row per sequence, layer, step and unit")
    look.add_argument("--mark", type=int, default=3,
                      help="how many context units to name per layer (default: %(default)s)")
    look.add_argument("--quiet", action="store_true",
                      help="no progress bar and no model summary")
    look.set_defaults(handler=command_inspect)

    sweep = sub.add_parser(
        "sweep", help="run a task over many seeds (and settings) in parallel; report success",
        description="Run a task over N seeds in J worker processes and print a table "
                    "of seed, accuracy, solved and seconds with the success rate. With "
                    "--grid, run every combination of the given settings over the seeds "
                    "and print the success rate, median accuracy and median training "
                    "time of each: tuning.")
    sweep.add_argument("task", choices=sorted(tasks.TASKS))
    sweep.add_argument("--seeds", type=int, default=20, help="how many seeds (default: 20)")
    sweep.add_argument("--first-seed", type=int, default=0,
                       help="the first seed; seeds run from it upwards (default: 0)")
    sweep.add_argument("--jobs", type=int, default=None,
                       help="worker processes (default: all cores)")
    sweep.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                       help="try each of these values of a setting, e.g. --grid units=10,20 "
                            "(repeatable: every combination is run)")
    task_options(sweep, with_seed=False)
    sweep.set_defaults(handler=command_sweep)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("epochs", "seeds", "jobs", "mark", "p", "q", "T", "blas_threads",
                 "loop_threads"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    try:
        if args.command != "sweep":                     # sweep sets them in its workers
            set_threads(args.blas_threads, args.loop_threads)
        return args.handler(args)
    except ValueError as error:
        parser.error(str(error))
    except KeyboardInterrupt:               # outside training (which stops cleanly itself)
        print("\ninterrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenProcessPool:
        print("nplstm sweep: a worker process died (killed, or out of memory?); the sweep "
              "stopped", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
