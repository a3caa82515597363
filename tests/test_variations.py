"""The tasks' variations (TASKS.md, "Extensions"): topologies, encodings,
masking, alphabets and gaps, random middles, stateless runs, batches."""
import dataclasses

import numpy as np
import pytest

from npLSTM import data, tasks
from npLSTM.tasks import echo, memory
from npLSTM.tasks.common import apply_overrides

ECHO = tasks.get("echo")
MEMORY = tasks.get("memory")


def echo_settings(**changes):
    return dataclasses.replace(ECHO.configs["tutorial"], **changes)


def memory_settings(**changes):
    return dataclasses.replace(MEMORY.configs["tutorial"], **changes)


@pytest.mark.parametrize("topology,x_shape,kinds", [
    ("many-to-one", (21, 5, 100), ["LSTM", "Dense", "Reshape", "Activation"]),
    ("one-to-one", (21, 1, 500), ["LSTM", "Dense", "Reshape", "Activation"]),
    ("encoder-decoder", (21, 5, 100), ["LSTM", "RepeatVector", "LSTM", "TimeDistributed"]),
])
def test_echo_topologies_frame_and_build_as_described(topology, x_shape, kinds):
    settings = echo_settings(topology=topology, n_out=3)
    X, y, counted = echo.framed(settings, np.random.default_rng(0), "float64")
    assert X.shape == x_shape and y.shape == (21, 3, 100) and counted.all()
    windows = X.reshape(21, 5, 100).argmax(-1)
    np.testing.assert_array_equal(y.argmax(-1), windows[:, :3])
    np.testing.assert_array_equal(windows[1:, :4], windows[:-1, 1:])   # sliding by one
    model = echo.build_model(settings, seed=0, dtype="float64")
    assert [type(layer).__name__ for layer in model.layers] == kinds
    assert model.output_shape == (3, 100)
    result = ECHO.run(dataclasses.replace(settings, epochs=2, eval_sequences=1), seed=0)
    assert result.updates == 6 and len(result.report) == 22


def test_echo_as_regression_scales_integers_and_rounds_predictions():
    settings = echo_settings(encoding="linear", alphabet=10)
    X, y, _ = echo.framed(settings, np.random.default_rng(0), "float64")
    assert X.shape == (21, 5, 1) and X.min() >= 0 and X.max() <= 1
    np.testing.assert_array_equal(echo.decode(X, settings) / 9, X[..., 0])
    outputs = np.array([[[-0.3], [0.06], [0.5], [1.4]]])
    assert list(echo.decode(outputs, settings)[0]) == [0, 1, 4, 9]
    model = echo.build_model(settings, seed=0, dtype="float64")
    assert (model.loss.name, model.layers[-1].layer.activation) == ("mse", "linear")
    result = ECHO.run(dataclasses.replace(settings, epochs=3, eval_sequences=1), seed=0)
    assert np.isnan(result.history["accuracy"]).all() and len(result.history["loss"]) == 3


def test_masked_echo_keeps_the_windows_past_the_end():
    settings = echo_settings(masking=True, batch_size=5, topology="encoder-decoder", n_out=2)
    X, y, counted = echo.framed(settings, np.random.default_rng(0), "float64")
    assert X.shape == (25, 5, 100)
    padded = np.all(X == echo.MASK_VALUE, axis=-1)
    # window i starts at symbol i: the last 4 windows run 1 to 4 steps past the end
    np.testing.assert_array_equal(padded.sum(axis=1), [0] * 21 + [1, 2, 3, 4])
    np.testing.assert_array_equal(counted.sum(axis=1), [2] * 24 + [1])
    model = echo.build_model(settings, seed=0, dtype="float64")
    assert type(model.layers[0]).__name__ == "Masking"
    result = ECHO.run(dataclasses.replace(settings, epochs=2, eval_sequences=1), seed=0)
    assert result.updates == 10
    assert result.report[-2].count(",") == 0       # the last window echoes one symbol


@pytest.mark.parametrize("changes,message", [
    (dict(topology="sideways"), "topology must be one of"),
    (dict(encoding="binary"), "encoding must be one of"),
    (dict(masking=True, topology="one-to-one", n_out=2, batch_size=5), "masking skips timesteps"),
    (dict(masking=True), r"the 25 windows .* whole batches of batch_size=7"),
    (dict(n_out=6), "need 1 <= n_out <= n_in"),
])
def test_echo_settings_that_cannot_work_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        ECHO.run(echo_settings(epochs=1, **changes))


def test_stateless_echo_starts_every_batch_from_zeros():
    settings = echo_settings(stateful=False, shuffle=True)
    model = echo.build_model(settings, seed=0, dtype="float64")
    assert not model.layers[0].stateful
    result = ECHO.run(dataclasses.replace(settings, epochs=2, eval_sequences=1), seed=0)
    assert result.updates == 6


def test_memory_takes_any_alphabet_and_gap():
    settings = memory_settings(alphabet=7, gap=8)
    a, b = memory.sequences(settings)
    assert a.tolist() == [5, 0, 1, 2, 3, 4, 0, 1, 2, 5]
    assert b.tolist() == [6, 0, 1, 2, 3, 4, 0, 1, 2, 6]
    X, y, weights = memory.framed(dataclasses.replace(settings, full_sequence=True,
                                                      stateful=False), "float64")[0]
    assert X.shape == (1, 9, 7) and y.shape == (1, 9, 7) and weights.shape == (1, 9)
    result = MEMORY.run(dataclasses.replace(settings, epochs=2), seed=0)
    assert result.updates == 2 * 2 * 9 and len(result.report) == 18


def test_memory_with_a_random_middle_judges_the_last_step_of_fresh_sequences():
    settings = memory_settings(random_middle=True, gap=6, full_sequence=True, stateful=False,
                               end_weight=5.0, eval_sequences=7)
    rng = np.random.default_rng(0)
    first, second = memory.sequences(settings, rng), memory.sequences(settings, rng)
    assert [s[0] for s in first] == [3, 4] and [s[-1] for s in first] == [3, 4]
    assert not np.array_equal(first[0][1:-1], second[0][1:-1])
    assert np.all(first[0][1:-1] <= 2)
    _, _, weights = memory.framed(settings, "float64", rng)[0]
    assert weights.tolist() == [[1, 1, 1, 1, 1, 1, 5]]
    result = MEMORY.run(dataclasses.replace(settings, epochs=3), seed=0)
    assert result.report[-1].endswith("of 14 fresh sequences")
    assert result.updates == 3 * 2


def test_memory_stateless_and_batched_variants():
    stateless = memory.build_model(memory_settings(stateful=False), seed=0, dtype="float64")
    assert not stateless.layers[0].stateful
    batched = memory_settings(full_sequence=True, stateful=False, batch_size=2, shuffle=True,
                              epochs=3)
    assert MEMORY.run(batched, seed=0).updates == 3          # both sequences in one batch
    pairs = memory_settings(batch_size=2, epochs=3)
    assert MEMORY.run(pairs, seed=0).updates == 3 * 2 * 2     # 4 steps in batches of 2


@pytest.mark.parametrize("changes,message", [
    (dict(alphabet=2), "alphabet of at least 3"),
    (dict(gap=0), "gap must be at least 1"),
    (dict(batch_size=3), "batch_size=3 must divide the 4 steps"),
    (dict(full_sequence=True, stateful=False, batch_size=3),
     "batch_size=3 must divide the 2 sequences"),
    (dict(full_sequence=True), "full_sequence .* takes stateful=false"),
    (dict(end_weight=-1.0), "end_weight must not be negative"),
])
def test_memory_settings_that_cannot_work_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        MEMORY.run(memory_settings(epochs=1, **changes))


def test_every_variation_is_a_command_line_setting():
    settings = apply_overrides(ECHO.configs["tutorial"],
                               {"topology": "many-to-one", "encoding": "linear",
                                "masking": "true", "stateful": "false", "shuffle": "yes"})
    assert (settings.topology, settings.encoding, settings.masking, settings.stateful,
            settings.shuffle) == ("many-to-one", "linear", True, False, True)
    settings = apply_overrides(MEMORY.configs["default"],
                               {"gap": "100", "alphabet": "10", "random_middle": "1",
                                "end_weight": "10"})
    assert (settings.gap, settings.alphabet, settings.random_middle, settings.end_weight) == \
        (100, 10, True, 10.0)


def test_window_symbols_pad_past_the_end():
    X, y = data.window_symbols([1, 2, 3], 2, 1, pad=True)
    assert X.tolist() == [[1, 2], [2, 3], [3, data.PAD]] and y.tolist() == [[1], [2], [3]]


def test_a_reshaped_many_to_one_model_saves_and_loads(tmp_path):
    import npLSTM as nl
    settings = echo_settings(topology="many-to-one", n_out=2, alphabet=10)
    model = echo.build_model(settings, seed=0, dtype="float64")
    X, _, _ = echo.framed(settings, np.random.default_rng(0), "float64")
    model.save(tmp_path / "m.npz")
    loaded = nl.load_model(tmp_path / "m.npz")
    assert [type(layer).__name__ for layer in loaded.layers] == \
        ["LSTM", "Dense", "Reshape", "Activation"]
    np.testing.assert_array_equal(loaded.predict(X, batch_size=7), model.predict(X, batch_size=7))
