"""The 1997 paper's long-time-lag experiments: their sequences, their
judgement, and small sizes solved end to end."""
import dataclasses

import numpy as np
import pytest

import npLSTM as nl
from npLSTM import cli, tasks
from npLSTM.tasks import longlag


def settings(name, **changes):
    return dataclasses.replace(tasks.get(name).configs["default"], **changes)


def test_2a_has_two_sequences_that_differ_in_their_first_and_last_symbol():
    s = settings("longlag-2a", p=6)
    seqs = longlag.lag2_sequences(s, np.random.default_rng(0), 50, random_middle=False)
    assert seqs.shape == (50, 7)
    assert {tuple(row) for row in seqs} == {(5, 0, 1, 2, 3, 4, 5), (6, 0, 1, 2, 3, 4, 6)}
    X, y, weights = longlag.PROBLEMS["longlag-2a"].draw(s, np.random.default_rng(0), 3, "float64")
    assert X.shape == (3, 6, 7) and y.shape == (3, 6, 7)
    np.testing.assert_array_equal(X[:, 1:], y[:, :-1])          # next-symbol targets
    assert weights[0].tolist() == [0.01] * 5 + [1.0]


def test_2b_draws_a_random_middle_and_judges_only_the_end():
    s = settings("longlag-2b", p=6)
    seqs = longlag.lag2_sequences(s, np.random.default_rng(0), 200, random_middle=True)
    assert np.all(seqs[:, 0] == seqs[:, -1]) and set(seqs[:, 0]) == {5, 6}
    assert seqs[:, 1:-1].max() <= 4 and len({tuple(r) for r in seqs}) > 100
    outputs = np.zeros((1, 6, 7))
    y = np.zeros((1, 6, 7))
    y[0, -1, 5] = 1.0
    outputs[0, :-1] = 0.9                    # wrong everywhere but at the end ...
    outputs[0, -1, 5] = 0.8                  # ... where it is 0.2 off
    assert longlag.PROBLEMS["longlag-2b"].errors(s, outputs, y) == pytest.approx([0.2])
    assert longlag.PROBLEMS["longlag-2a"].errors(s, outputs, y) == pytest.approx([0.9])


def test_2c_sequences_begin_with_b_and_the_relevant_symbol_and_end_with_the_trigger():
    s = settings("longlag-2c", p=5, q=7)
    seqs, relevant = longlag.lag2c_sequences(s, np.random.default_rng(0), 300)
    b, e, x = s.p + 1, s.p, s.p + 2
    lengths = []
    for seq, r in zip(seqs, relevant):
        assert seq[0] == b and seq[1] == x + r and seq[-1] == e
        assert np.all(seq[2:-1] < s.p)                          # distractors only
        lengths.append(len(seq) - 3 - s.q)                      # distractors after the prefix
    # e comes with probability 1/10 at each step after the prefix: a geometric wait
    assert min(lengths) == 0 and abs(np.mean(lengths) - 9) < 1.5
    X, y, _ = longlag.PROBLEMS["longlag-2c"].draw(s, np.random.default_rng(0), 4, "float64")
    assert y.shape == (4, 2) and X.shape[2] == s.p + 4
    padding = np.all(X == longlag.PAD, axis=-1)
    assert padding.any() and not padding[:, -1].any()      # padded at the front ...
    assert np.all(np.diff(padding.astype(int), axis=1) <= 0)   # ... and only there


def test_adding_sequences_mark_two_values_and_sum_them():
    s = settings("adding", T=40)
    seqs, targets = longlag.adding_sequences(s, np.random.default_rng(1), 500)
    for seq, target in zip(seqs, targets):
        values, markers = seq[:, 0], seq[:, 1]
        assert 40 <= len(seq) <= 44 and np.all(np.abs(values) <= 1)
        marked = np.flatnonzero(markers == 1)
        assert len(marked) == 2 and marked.min() < 10 and marked.max() < 40 // 2 - 1
        assert markers[-1] == -1 and markers[0] == (1 if 0 in marked else -1)
        counted = [values[m] for m in marked if m > 0]       # a marked first step counts 0
        assert target == pytest.approx(0.5 + sum(counted) / 4)
        assert set(np.unique(markers)) <= {-1.0, 0.0, 1.0}


def test_padded_sequences_give_what_each_sequence_gives_alone():
    s = settings("adding", T=20, units=4)
    layers, loss = longlag.PROBLEMS["adding"].build(s, 3.0, -2.0)
    model = nl.Sequential(layers, seed=0)
    X, _, _ = longlag.PROBLEMS["adding"].draw(s, np.random.default_rng(2), 6, "float64")
    together = model.predict(X)
    for k in range(6):
        alone = X[k:k + 1][:, ~np.all(X[k] == longlag.PAD, axis=-1)]
        np.testing.assert_allclose(model.predict(alone), together[k:k + 1], rtol=1e-13)


@pytest.mark.parametrize("name,changes", [
    ("longlag-2a", dict(p=10)),
    ("longlag-2c", dict(p=10, q=10)),
])
def test_small_lags_are_solved_and_training_stops_there(name, changes):
    task = tasks.get(name)
    s = settings(name, test_sequences=2000, **changes)
    result = task.run(s, seed=0)
    assert result.solved and result.accuracy == 1.0
    assert result.updates < s.epochs and len(result.history["loss"]) == result.updates
    assert result.extra["sequences"] == result.updates * s.batch_size
    assert "training sequences" in result.report[0]


def test_checks_wait_for_a_right_training_batch(monkeypatch):
    """A quick check runs only after an update whose own batch was judged
    right, at least check_every updates after the last; the full test only
    after a quick check passed; training stops at the first full test passed."""
    s = settings("longlag-2a", p=10, check_every=10, epochs=3000)
    calls = []                          # (sequences tested, update, the batch was right)
    real_train_on_batch = nl.Sequential.train_on_batch
    right = []

    def train_on_batch(model, X, y, **kw):
        result = real_train_on_batch(model, X, y, **kw)
        if kw.get("return_outputs"):        # a training update (the warm-up's is undone)
            outputs = result[1]
            right.append(bool(np.all(np.abs(outputs - y).max(axis=(1, 2)) < 0.25)))
        return result

    def test(problem, model, settings, rng, n, dtype, decide):
        assert decide               # a check stops once it has failed
        calls.append((n, model.optimizer.iterations, right[-1]))
        return (0.0, 0.1) if len(calls) >= 3 else (0.5, 0.9)     # from the third check on
    monkeypatch.setattr(nl.Sequential, "train_on_batch", train_on_batch)
    monkeypatch.setattr(longlag, "test", test)
    result = tasks.get("longlag-2a").run(s, seed=0)
    sizes = [n for n, _, _ in calls]
    assert sizes == [longlag.QUICK] * 3 + [s.test_sequences]
    assert all(batch_right for _, _, batch_right in calls)
    updates = [u for n, u, _ in calls if n == longlag.QUICK]
    assert updates[0] >= 10 and np.all(np.diff(updates) >= 10)
    assert result.solved and result.updates == calls[-1][1] == updates[-1]
    assert (result.extra["quick_checks"], result.extra["full_tests"]) == (3, 1)
    assert "3 quick checks, 1 full tests" in result.report[0]


def test_an_unlearnable_model_is_never_checked_during_training(monkeypatch):
    """At a learning rate of 1e-9 the model stays a guess: no training batch
    is ever right, so only the final full test runs."""
    calls = []
    real_test = longlag.test
    monkeypatch.setattr(longlag, "test", lambda *a: calls.append(a[4]) or real_test(*a))
    result = tasks.get("longlag-2a").run(settings("longlag-2a", p=10, learning_rate=1e-9,
                                                  epochs=60, test_sequences=50))
    assert not result.solved and calls == [50]


def test_the_gate_biases_start_from_the_lag():
    """f = sig(ln L) = L / (1 + L), a memory kept ~L steps; i = 0.5 / sqrt(L)."""
    for name, changes, lag in [("longlag-2a", dict(p=50), 50), ("longlag-2c", dict(q=90), 100),
                               ("adding", dict(T=200), 200)]:
        s = settings(name, **changes)
        f, i = longlag.initial_biases(longlag.PROBLEMS[name], s)
        assert f == pytest.approx(np.log(lag))
        assert 1 / (1 + np.exp(-i)) == pytest.approx(0.5 / np.sqrt(lag))
        s = dataclasses.replace(s, lag_init=False, forget_bias=2.5, input_bias=-1.0)
        assert longlag.initial_biases(longlag.PROBLEMS[name], s) == (2.5, -1.0)
    _, model = tasks.get("longlag-2a").train(settings("longlag-2a", p=25, epochs=1,
                                                       test_sequences=10), seed=0)
    lstm = model.layers[0]
    assert (lstm.forget_bias, lstm.input_bias) == (pytest.approx(np.log(25)),
                                                   pytest.approx(np.log(0.1 / 0.9)))


def test_an_unsolved_run_reports_its_test():
    result = tasks.get("adding").run(settings("adding", T=20, epochs=3, test_sequences=300))
    assert not result.solved and result.updates == 3
    assert 0.0 <= result.accuracy < 1.0 and result.extra["largest_error"] > 0.04


@pytest.mark.parametrize("name,changes,message", [
    ("longlag-2a", dict(p=1), "p must be at least 2"),
    ("adding", dict(T=10), "adding needs T of at least 20"),
    ("longlag-2b", dict(middle_weight=-1.0), "middle_weight must not be negative"),
])
def test_settings_that_cannot_work_are_named(name, changes, message):
    with pytest.raises(ValueError, match=message):
        tasks.get(name).run(settings(name, **changes))


def test_the_command_line_takes_p_q_and_t(capsys):
    assert cli.main(["run", "longlag-2c", "--p", "6", "--q", "4", "--epochs", "2", "--quiet",
                     "--set", "test_sequences=100", "--json"]) == 0
    record = cli.json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (record["settings"]["p"], record["settings"]["q"]) == (6, 4)
    assert record["extra"]["paper_sequences"] is None          # not a size of the paper's
    problem = longlag.PROBLEMS["longlag-2c"]
    assert problem.paper(settings("longlag-2c", p=1000, q=1000)) == 49000
    assert longlag.PROBLEMS["adding"].paper(settings("adding", T=1000)) == 853000
    with pytest.raises(SystemExit):
        cli.main(["run", "memory", "--T", "30"])
    assert "unknown setting 'T'" in capsys.readouterr().err


def test_a_deciding_test_stops_once_it_has_failed():
    """decide=True stops at the first batch past the allowed wrong count; the
    whole test runs otherwise, and when the model passes."""
    s = settings("longlag-2c", p=4, q=2, batch_size=5)
    problem = longlag.PROBLEMS["longlag-2c"]
    layers, loss = problem.build(s, 1.0, 0.0)
    model = nl.Sequential(layers, seed=0)                 # untrained: wrong on most sequences
    batches = []
    real_predict = model.predict
    model.predict = lambda X, batch_size: batches.append(len(X)) or real_predict(X, batch_size)
    rng = np.random.default_rng(0)
    whole, _ = longlag.test(problem, model, s, rng, 100, "float64")
    assert len(batches) == 20 and whole > 0.5
    batches.clear()
    wrong, _ = longlag.test(problem, model, s, rng, 100, "float64", decide=True)
    assert batches == [5] and wrong > problem.allowed_wrong


def test_a_time_limit_stops_a_run_unsolved():
    s = settings("longlag-2a", p=10, time_limit=1e-9, test_sequences=100)
    result = tasks.get("longlag-2a").run(s, seed=0)
    assert result.updates == 1 and not result.solved
    assert "(stopped at the time limit, 1e-09 s)" in result.report[0]
    with pytest.raises(ValueError, match="time_limit must be 0 .none. or a number of seconds, "
                                         "got -1.0"):
        tasks.get("longlag-2a").run(settings("longlag-2a", time_limit=-1.0), seed=0)
