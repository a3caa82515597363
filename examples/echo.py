"""Echo random integers: the sequence-to-sequence task of the Keras tutorial.

Every epoch draws 25 new random integers in [0, 99], cuts them into
windows of 5 and trains the LSTM to output each window as it reads it.

    python examples/echo.py [epochs]
"""
import sys

import numpy as np

import npLSTM as nl
from npLSTM.data import one_hot_decode, random_sequence, windows
from npLSTM.tasks.echo import ECHO

length, n_in, n_out, alphabet, batch_size = 25, 5, 5, 100, 7
rng = np.random.default_rng(0)


def new_data():
    """21 windows of a new random sequence: X and y (21, 5, 100)."""
    return windows(random_sequence(rng, length, alphabet), n_in, n_out, alphabet)


model = nl.Sequential([
    nl.LSTM(20, return_sequences=True, stateful=True,
            batch_input_shape=(batch_size, n_in, alphabet)),
    nl.TimeDistributed(nl.Dense(alphabet, activation="softmax")),
], seed=0)
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 500
for epoch in range(epochs):
    X, y = new_data()
    model.fit(X, y, epochs=1, batch_size=batch_size, shuffle=False, verbose=0)
    model.reset_states()

# Evaluate on a sequence the model has never seen.
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
    print("\n".join(ECHO.advice("tutorial" if epochs == 500 else f"tutorial, epochs={epochs}")))
else:
    print(f"Solved: all {yhat.size} symbols of this fresh sequence are right.")
