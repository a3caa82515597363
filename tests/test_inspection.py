"""Looking inside: model.summary(), model.trace(), nplstm inspect's data, CSV and pictures."""
import csv
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings

import npLSTM as nl
from npLSTM import inspection, tasks
from npLSTM.kernels.reference import sigmoid
from npLSTM.layers.lstm import LSTMTrace

from strategies import configs


def test_summary_prints_layers_shapes_and_counts_as_keras_does(capsys):
    model = nl.Sequential([nl.LSTM(20, stateful=True, batch_input_shape=(1, 1, 5)),
                           nl.Dense(5, activation="sigmoid")])
    model.summary()
    lines = capsys.readouterr().out.splitlines()
    # The memory tutorial's model: Keras prints the same names and numbers.
    assert lines[0] == 'Model: "sequential"'
    assert lines[4].split() == ["lstm", "(LSTM)", "(1,", "20)", "2080"]
    assert lines[5].split() == ["dense", "(Dense)", "(1,", "5)", "105"]
    assert lines[7:10] == ["Total params: 2,185", "Trainable params: 2,185",
                           "Non-trainable params: 0"]


def test_summary_names_repeated_layers_and_shows_an_open_batch_as_none():
    model = nl.Sequential([nl.LSTM(8, return_sequences=True, input_shape=(5, 3)),
                           nl.LSTM(4), nl.RepeatVector(2), nl.LSTM(4, return_sequences=True),
                           nl.TimeDistributed(nl.Dense(3, activation="softmax"))])
    printed = []
    model.summary(print_fn=printed.append)
    rows = [line.split() for line in printed[0].splitlines()[4:9]]
    assert [r[0] for r in rows] == ["lstm", "lstm_1", "repeat_vector", "lstm_2",
                                    "time_distributed"]
    assert rows[0][2:] == ["(None,", "5,", "8)", str(4 * 8 * (3 + 8 + 1))]
    assert rows[2][2:] == ["(None,", "2,", "4)", "0"]
    total = sum(w.size for w in model.get_weights())
    assert f"Total params: {total:,}" in printed[0]


def test_summary_of_an_unbuilt_model_says_what_to_do():
    with pytest.raises(ValueError, match="not built yet: give the first layer input_shape"):
        nl.Sequential([nl.LSTM(3)]).summary()


def reference_gates(W, U, b, x, h_prev):
    """i, f, g, o from the weights, written out apart from the kernels."""
    i, f, g, o = np.split(x @ W + h_prev @ U + b, 4, axis=-1)
    return sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@settings(max_examples=25, deadline=None)
@given(config=configs())
def test_trace_holds_the_gates_and_states_the_layers_computed(config, backend):
    X, _ = config.data()
    outputs = config.build(backend=backend).predict(X, batch_size=config.batch)
    model = config.build(backend=backend)      # the same start again, state included
    traces = model.trace(X, batch_size=config.batch)
    lstms = [layer for layer in model.layers if isinstance(layer, nl.LSTM)]
    assert len(traces) == len(lstms)
    # The traced pass is predict's pass: the same outputs, bit for bit.
    np.testing.assert_array_equal(_head(model, traces[-1]), outputs)
    x = X
    for trace, layer in zip(traces, lstms):
        W, U, b = layer.params
        h_prev, c_prev = trace.initial_hidden, trace.initial_cell
        for t in range(trace.cell.shape[1]):
            i, f, g, o = (getattr(trace, q)[:, t] for q in LSTMTrace.QUANTITIES[:4])
            for got, want in zip((i, f, g, o), reference_gates(W, U, b, x[:, t], h_prev)):
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
            c = f * c_prev + i * g
            h = o * np.tanh(c)
            if backend == "numpy":      # the very operations of the reference kernel
                np.testing.assert_array_equal(trace.cell[:, t], c)
                np.testing.assert_array_equal(trace.hidden[:, t], h)
            else:                       # compiled: its own tanh, maybe fused multiply-adds
                np.testing.assert_allclose(trace.cell[:, t], c, rtol=1e-13, atol=1e-15)
                np.testing.assert_allclose(trace.hidden[:, t], h, rtol=1e-13, atol=1e-15)
            h_prev, c_prev = trace.hidden[:, t], trace.cell[:, t]
        x = _input_of_next_lstm(model, layer, trace)


def _input_of_next_lstm(model, layer, trace):
    """What the layer hands on to the next LSTM: every h, or the last one repeated."""
    if layer.return_sequences:
        return trace.hidden
    repeat = next((l for l in model.layers if isinstance(l, nl.RepeatVector)), None)
    return None if repeat is None else np.repeat(trace.hidden[:, -1:], repeat.n, axis=1)


def _head(model, last_trace):
    """The layers after the last LSTM, applied to its traced output."""
    k = max(n for n, layer in enumerate(model.layers) if isinstance(layer, nl.LSTM))
    x = last_trace.hidden if model.layers[k].return_sequences else last_trace.hidden[:, -1]
    for layer in model.layers[k + 1:]:
        x = layer.forward(x)
    return x


def test_trace_advances_a_stateful_model_as_predict_does():
    def model():
        return nl.Sequential([nl.LSTM(4, stateful=True, return_sequences=True,
                                      batch_input_shape=(2, 3, 2))], seed=1)
    X = np.random.default_rng(0).normal(size=(4, 3, 2))
    traced, predicted = model(), model()
    first = traced.trace(X, batch_size=2)[0]
    np.testing.assert_array_equal(first.hidden, predicted.predict(X, batch_size=2))
    # row j of the second batch starts where row j of the first ended
    np.testing.assert_array_equal(first.initial_hidden[2:], first.hidden[:2, -1])
    np.testing.assert_array_equal(traced.trace(X, batch_size=2)[0].hidden,
                                  predicted.predict(X, batch_size=2))


def test_trace_needs_an_lstm_and_checks_its_input():
    dense = nl.Sequential([nl.Dense(2, activation="linear", input_shape=(3,))])
    with pytest.raises(ValueError, match="trace shows LSTM layers, and this model has none"):
        dense.trace(np.zeros((1, 3)))
    model = nl.Sequential([nl.LSTM(2, input_shape=(3, 4))])
    with pytest.raises(ValueError, match=r"X must have shape \('batch', 3, 4\), got \(1, 3, 5\)"):
        model.trace(np.zeros((1, 3, 5)))


def trained_memory(epochs=None, seed=0):
    task = tasks.get("memory")
    settings = task.configs["default"]
    if epochs is not None:
        settings = dataclasses.replace(settings, epochs=epochs)
    return task, settings, task.train(settings, seed=seed)


def test_a_trained_memory_model_has_a_unit_whose_cell_separates_a_from_b():
    task, settings, (result, model) = trained_memory()
    _, _, (_, untrained) = trained_memory(epochs=1)
    assert result.solved
    seen = inspection.inspect(task, model, settings, rng=None)
    before = inspection.inspect(task, untrained, settings, rng=None)
    layer = seen.layers[0]
    assert seen.titles == ["A = 3 0 1 2 3", "B = 4 0 1 2 4"]
    assert layer.arrays["cell"].shape == (2, 4, 20)
    assert layer.context_step == 2        # after "1": the state the conflict step reads
    best = layer.context_units[0]
    a, b = layer.arrays["cell"][:, 2, best]
    # Measured over seeds 0-9 of the default: the best unit's |A - B| is 0.29-2.45
    # after training, 2.7 to 16 times the largest of any unit after one epoch
    # (0.08-0.14); seed 0: 2.30 against 0.14.
    assert abs(a - b) == layer.spread[best] == layer.spread.max()
    assert abs(a - b) > 2 * before.layers[0].spread.max()
    assert abs(a - b) > 1.0


def test_inspect_joins_the_tutorials_one_step_samples_into_sequences():
    task = tasks.get("memory")
    settings = dataclasses.replace(task.configs["tutorial"], epochs=2)
    result, model = task.train(settings, seed=0)
    seen = inspection.inspect(task, model, settings, rng=None, marked=5)
    assert seen.layers[0].arrays["hidden"].shape == (2, 4, 20)
    assert seen.step_labels == [["3", "0", "1", "2"], ["4", "0", "1", "2"]]
    assert len(seen.layers[0].context_units) == 5
    # the state is reset afterwards, so predicting is unchanged by looking
    assert all(layer.states is None for layer in model.layers)


def test_csv_has_a_row_per_sequence_layer_step_and_unit(tmp_path):
    task = tasks.get("echo-partial")
    settings = dataclasses.replace(task.configs["tutorial"], epochs=1, units=6, eval_sequences=1)
    _, model = task.train(settings, seed=0)
    seen = inspection.inspect(task, model, settings, np.random.default_rng(3))
    assert [layer.name for layer in seen.layers] == ["lstm", "lstm_1"]
    assert len(seen.titles) == 3
    inspection.write_csv(seen, tmp_path / "states.csv")
    with open(tmp_path / "states.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(inspection.CSV_COLUMNS)
    assert len(rows) == 3 * (5 + 2) * 6          # sequences x (encoder + decoder steps) x units
    decoder = [r for r in rows if r["layer"] == "lstm_1"]
    assert {r["input"] for r in decoder} == {""}
    row = next(r for r in rows if (r["sequence"], r["layer"], r["step"], r["unit"])
               == ("1", "lstm", "4", "3"))
    for q in LSTMTrace.QUANTITIES:
        assert float(row[q]) == seen.layers[0].arrays[q][1, 4, 3]
    assert row["input"] == seen.step_labels[1][4]
    assert row["context_unit"] == str(int(3 in seen.layers[0].context_units))
