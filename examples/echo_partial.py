"""Echo the first 2 of every 5 integers: the encoder-decoder of the tutorial.

The encoder LSTM reads a window of 5 and keeps only its last output; the
RepeatVector hands that vector to each of the decoder's 2 steps; the
decoder LSTM and the softmax head spell out the window's first 2 symbols.

    python examples/echo_partial.py [epochs]     (the tutorial: 5000)
"""
import sys

import numpy as np

import npLSTM as nl
from npLSTM.data import one_hot_decode, random_sequence, windows
from npLSTM.tasks.echo import ECHO_PARTIAL

length, n_in, n_out, alphabet, batch_size = 25, 5, 2, 100, 21
rng = np.random.default_rng(0)


def new_data():
    """21 windows of a new random sequence: X (21, 5, 100), y (21, 2, 100)."""
    return windows(random_sequence(rng, length, alphabet), n_in, n_out, alphabet)


model = nl.Sequential([
    nl.LSTM(150, stateful=True, batch_input_shape=(batch_size, n_in, alphabet)),
    nl.RepeatVector(n_out),
    nl.LSTM(150, return_sequences=True, stateful=True),
    nl.TimeDistributed(nl.Dense(alphabet, activation="softmax")),
], seed=0)
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
for epoch in range(epochs):
    X, y = new_data()
    model.fit(X, y, epochs=1, batch_size=batch_size, shuffle=False, verbose=0)
    model.reset_states()

X, y = new_data()
loss, accuracy = model.evaluate(X, y, batch_size=batch_size)
model.reset_states()
yhat = model.predict_classes(X, batch_size=batch_size)
for expected, predicted in zip(one_hot_decode(y), yhat):
    print("Expected:", expected.tolist(), "Predicted", predicted.tolist())
print(f"Accuracy: {accuracy:.2%}")
wrong = int((one_hot_decode(y) != yhat).sum())
if wrong:
    print(f"Not solved: {wrong} of the {yhat.size} symbols of this fresh sequence wrong.")
    print("\n".join(ECHO_PARTIAL.advice("tutorial" if epochs == 5000 else f"tutorial, epochs={epochs}")))
else:
    print(f"Solved: all {yhat.size} symbols of this fresh sequence are right.")
