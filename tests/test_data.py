"""One-hot coding and the framings of the tasks."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from npLSTM import data


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 120).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.integers(0, n - 1), min_size=1, max_size=30))))
def test_one_hot_round_trip(case):
    n, values = case
    encoded = data.one_hot(values, n)
    assert encoded.shape == (len(values), n)
    np.testing.assert_array_equal(encoded.sum(axis=1), 1.0)
    np.testing.assert_array_equal(data.one_hot_decode(encoded), values)


@pytest.mark.parametrize("values,n,match", [
    ([0, 5], 5, r"\[0, 4\].*got \[5\]"), ([-1], 3, r"got \[-1\]"),
    ([0.5], 3, "whole numbers"), (["a"], 3, "whole numbers"), ([1], 0, "n_features"),
])
def test_one_hot_names_what_is_wrong(values, n, match):
    with pytest.raises(ValueError, match=match):
        data.one_hot(values, n)


def test_memory_pairs():
    X, y = data.pairs([3, 0, 1, 2, 3], 5)
    assert X.shape == (4, 1, 5) and y.shape == (4, 5)
    np.testing.assert_array_equal(data.one_hot_decode(X[:, 0]), [3, 0, 1, 2])
    np.testing.assert_array_equal(data.one_hot_decode(y), [0, 1, 2, 3])


@pytest.mark.parametrize("n_out", [5, 2])
def test_echo_windows(n_out):
    seq = np.arange(25) * 3 % 100
    X, y = data.windows(seq, 5, n_out, 100)
    assert X.shape == (21, 5, 100) and y.shape == (21, n_out, 100)
    for i in (0, 7, 20):
        np.testing.assert_array_equal(data.one_hot_decode(X[i]), seq[i:i + 5])
        np.testing.assert_array_equal(data.one_hot_decode(y[i]), seq[i:i + n_out])


def test_windows_check_their_sizes():
    with pytest.raises(ValueError, match="n_out <= n_in"):
        data.windows(range(10), 3, 4, 10)
    with pytest.raises(ValueError, match="no window of 5"):
        data.windows(range(4), 5, 2, 10)


def test_random_sequences_follow_the_seed():
    a = data.random_sequence(np.random.default_rng(3), 25, 100)
    b = data.random_sequence(np.random.default_rng(3), 25, 100)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 99 and len(a) == 25
