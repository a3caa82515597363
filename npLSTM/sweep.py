"""Sweeps: one task over many seeds (and settings), in worker processes.

    results, interrupted = run_in_workers(jobs, calls, "memory sweep")

Each call is a run of a task (_run_one: task name, settings, seed, dtype,
config label, BLAS and loop threads); the workers start fresh (spawned),
ignore Ctrl-C, and are stopped by the sweep's own process when it gets
one, which keeps the runs that finished. The rest summarises the runs as
`nplstm sweep` prints them.
"""
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from . import tasks
from .threads import set_threads


def _run_one(task_name, settings, seed, dtype, config, blas_threads, loop_threads):
    set_threads(blas_threads, loop_threads)
    return tasks.get(task_name).run(settings, seed=seed, dtype=dtype, config=config)


def _worker_ignores_ctrl_c():
    """Ctrl-C in a terminal reaches every process of the group: the sweep's
    own process stops the workers, which must not die in the middle first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_in_workers(jobs, calls, name):
    """_run_one(*call) for each call, in `jobs` fresh (spawned) worker
    processes, with a bar of the runs finished: (the Results in the calls'
    order, None for those not finished, and whether Ctrl-C stopped them).
    A run's error, or a worker that dies (BrokenProcessPool), stops the
    sweep with that error."""
    from tqdm import tqdm
    bar = tqdm(total=len(calls), desc=name, unit="run", file=sys.stderr)
    pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn"),
                               initializer=_worker_ignores_ctrl_c)
    futures = [pool.submit(_run_one, *call) for call in calls]
    for future in futures:
        future.add_done_callback(lambda f: f.cancelled() or f.exception() or bar.update(1))
    interrupted = False
    try:
        for future in futures:
            future.result()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        _stop(pool)
        bar.close()
    return [f.result() if f.done() and not f.cancelled() and f.exception() is None else None
            for f in futures], interrupted


def _stop(pool):
    """Shut the pool down now: runs not started are cancelled, the workers
    still running one are terminated (ProcessPoolExecutor.shutdown would
    wait for them; its processes are the only handle on them)."""
    workers = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join()


def parse_grid(pairs):
    """["units=10,20", "epochs=5"] -> every combination, as --set dictionaries:
    [{"units": "10", "epochs": "5"}, {"units": "20", "epochs": "5"}]."""
    combos = [{}]
    for pair in pairs or []:
        key, sep, values = pair.partition("=")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not choices:
            raise ValueError(f"--grid takes key=value1,value2,..., got {pair!r}")
        combos = [{**combo, key.strip(): value} for combo in combos for value in choices]
    return combos


def median(values):
    return sorted(values)[len(values) // 2] if values else None


def summarize(results):
    """(solved, median accuracy, median train seconds) of one configuration's runs."""
    return (sum(r.solved for r in results), median([r.accuracy for r in results]),
            median([r.train_seconds for r in results]))


def sequences_seen(results):
    """The median training sequences of the solved runs, for the tasks that count
    them (the paper's experiments), with the paper's figure; or None."""
    if not results or "sequences" not in results[0].extra:
        return None
    solved = [r.extra["sequences"] for r in results if r.solved]
    paper = results[0].extra["paper_sequences"]
    within = None if paper is None else sum(seen <= paper for seen in solved)
    return (median(solved), within, paper)


def print_sweep(variants, rows):
    """The table of a sweep: one line per seed, or per setting of a grid;
    rows holds each variant's finished Results."""
    counts = any("sequences" in r.extra for row in rows for r in row)   # the paper's tasks
    if len(variants) == 1:
        print(f"{'seed':>6} {'accuracy':>9} {'solved':>7} {'updates':>8} {'seconds':>8}"
              + (f" {'sequences':>10} {'quick checks':>12} {'full tests':>10}" if counts else ""))
        for r in rows[0]:
            print(f"{r.seed:>6} {r.accuracy:>9.2%} {str(r.solved):>7} {r.updates:>8} "
                  f"{r.train_seconds:>8.2f}"
                  + (f" {r.extra['sequences']:>10} {r.extra['quick_checks']:>12} "
                     f"{r.extra['full_tests']:>10}" if counts else ""))
        return
    width = max(len(" ".join(f"{k}={v}" for k, v in o.items())) for o, _ in variants)
    print(f"{'setting':<{width}} {'solved':>9} {'median accuracy':>16} {'median s':>9}"
          + (f" {'median sequences':>17}" if counts else ""))
    for (overrides, _), runs in zip(variants, rows):
        shown = " ".join(f"{k}={v}" for k, v in overrides.items())
        if not runs:
            print(f"{shown:<{width}} {'0/0':>9} {'-':>16} {'-':>9}" + (f" {'-':>17}" if counts
                                                                      else ""))
            continue
        solved, accuracy, seconds = summarize(runs)
        print(f"{shown:<{width}} {f'{solved}/{len(runs)}':>9} {accuracy:>16.2%} "
              f"{seconds:>9.2f}" + (f" {str(sequences_seen(runs)[0]):>17}" if counts else ""))
