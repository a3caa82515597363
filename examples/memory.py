"""Learn to remember: the memory task of the Keras LSTM tutorial, on npLSTM.

Two sequences share their middle; only the first symbol tells what comes
last. A stateful LSTM sees one symbol at a time and must carry the first
one across the gap.

    python examples/memory.py [epochs]
"""
import sys

import npLSTM as nl
from npLSTM.data import one_hot_decode, pairs
from npLSTM.tasks.memory import TASK as MEMORY

# The two sequences: after 0 1 2 the answer is 3 for A and 4 for B.
seq_a = [3, 0, 1, 2, 3]
seq_b = [4, 0, 1, 2, 4]
n_features = 5
Xa, ya = pairs(seq_a, n_features)        # X (4, 1, 5): one timestep per sample
Xb, yb = pairs(seq_b, n_features)        # y (4, 5):    the next symbol

# The tutorial's model: a stateful LSTM, batch size fixed to 1.
model = nl.Sequential([
    nl.LSTM(20, stateful=True, batch_input_shape=(1, 1, n_features)),
    nl.Dense(n_features, activation="sigmoid"),
], seed=0)
model.compile(loss="binary_crossentropy", optimizer="adam")

# Train: each epoch fits A step by step, resets, then B, resets.
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 250
for epoch in range(epochs):
    for X, y in ((Xa, ya), (Xb, yb)):
        model.fit(X, y, epochs=1, batch_size=1, shuffle=False, verbose=0)
        model.reset_states()

# Evaluate: each sequence step by step, from a reset state.
wrong = 0
for X, y in ((Xa, ya), (Xb, yb)):
    yhat = model.predict_classes(X, batch_size=1)
    model.reset_states()
    for x, target, guess in zip(one_hot_decode(X[:, 0]), one_hot_decode(y), yhat):
        print(f"X={float(x):.1f} y={float(target):.1f}, yhat={float(guess):.1f}")
        wrong += int(target != guess)

# This setup is luck: each update's gradient stops at its one step, so
# nothing teaches the cell to keep the first symbol. How often it works:
if wrong:
    print(f"Not solved: {wrong} of the 8 predictions wrong.")
    print("\n".join(MEMORY.advice("tutorial" if epochs == 250 else f"tutorial, epochs={epochs}")))
else:
    print("Solved: all 8 predictions are right.")
