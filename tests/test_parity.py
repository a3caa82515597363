"""npLSTM held equal to PyTorch on identical weights and inputs.

Agreement is measured per array: |ours - theirs| <= rtol (|theirs| + max|theirs|),
i.e. relative to each entry, with the array's largest entry as the scale
below which an entry counts as ~0. rtol is 1e-10 for forward passes and
gradients in float64, 1e-9 after 20 Adam steps, 1e-5 in float32.
"""
import numpy as np
import pytest
from hypothesis import given, settings

torch = pytest.importorskip("torch")

import npLSTM as nl  # noqa: E402
from npLSTM import interop  # noqa: E402

from strategies import Config, configs  # noqa: E402
from torch_mirror import Mirror, torch_row_losses  # noqa: E402

torch.set_num_threads(2)


def assert_close(ours, theirs, rtol, what=""):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, what
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * np.abs(theirs).max(),
                               err_msg=what)


def tensor(a, requires_grad=False):
    return torch.tensor(np.asarray(a), requires_grad=requires_grad)


def initial_states(model):
    """{layer index: (h0, c0) tensors} of the stateful layers that have a state."""
    return {k: tuple(tensor(s, requires_grad=True) for s in layer.get_states())
            for k, layer in enumerate(model.layers)
            if layer.stateful and layer.get_states() is not None}


# Forward ------------------------------------------------------------------------------


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("with_state", [False, True])
def test_stacked_lstm_forward_and_final_states(return_sequences, with_state):
    """Two npLSTM LSTMs against one nn.LSTM(num_layers=2)."""
    B, T, D, H = 3, 7, 4, 5
    model = nl.Sequential([
        nl.LSTM(H, return_sequences=True, stateful=True, batch_input_shape=(B, T, D)),
        nl.LSTM(H, return_sequences=return_sequences, stateful=True),
    ], seed=11)
    rng = np.random.default_rng(0)
    states = [(rng.normal(size=(B, H)), rng.normal(size=(B, H))) for _ in range(2)]
    if with_state:
        for layer, s in zip(model.layers, states):
            layer.reset_states(s)
    module = torch.nn.LSTM(D, H, num_layers=2, batch_first=True).double()
    interop.copy_to_torch(model.layers, module)
    X = rng.normal(size=(B, T, D))
    initial = None
    if with_state:
        initial = tuple(torch.tensor(np.stack([s[i] for s in states])) for i in range(2))
    out, (h, c) = module(tensor(X), initial)
    ours = model.predict(X)
    theirs = out.detach().numpy() if return_sequences else out[:, -1].detach().numpy()
    assert_close(ours, theirs, 1e-10, "outputs")
    for k, layer in enumerate(model.layers):
        assert_close(layer.states[0], h[k].detach().numpy(), 1e-10, f"h of layer {k}")
        assert_close(layer.states[1], c[k].detach().numpy(), 1e-10, f"c of layer {k}")


# Loss and every gradient ------------------------------------------------------------------


def compare_backprop(model, X, y, rtol):
    mirror = Mirror(model)
    states = initial_states(model)
    Xt = tensor(X, requires_grad=True)
    loss, _ = mirror.loss(Xt, tensor(y), states)
    loss.backward()
    ours = model.backprop(X, y)
    assert_close(ours.loss, loss.item(), rtol, "loss")
    for k, (a, b) in enumerate(zip(ours.grads, mirror.gradients())):
        assert_close(a, b, rtol, f"gradient of weights[{k}]")
    assert_close(ours.inputs, Xt.grad.numpy(), rtol, "gradient of the input")
    for (dh0, dc0), (h0, c0) in zip(ours.states, states.values()):
        assert_close(dh0, h0.grad.numpy(), rtol, "gradient of h0")
        assert_close(dc0, c0.grad.numpy(), rtol, "gradient of c0")


@settings(max_examples=40, deadline=None)
@given(configs())
def test_loss_and_every_gradient_match(config):
    """Every head and loss, TimeDistributed heads, stacked LSTMs, RepeatVector
    encoder-decoders, stateful layers from a non-zero state."""
    model = config.build()
    compare_backprop(model, *config.data(), rtol=1e-10)


@pytest.mark.parametrize("head,loss", [("sigmoid", "binary_crossentropy"),
                                       ("softmax", "categorical_crossentropy"),
                                       ("linear", "mse")])
def test_float32_agrees_to_1e5(head, loss):
    config = Config(batch=4, timesteps=6, features=5, units=(8, 6), topology="encoder-decoder",
                    head=head, loss=loss, outputs=4, repeat=3, stateful=True, seed=2)
    compare_backprop(config.build("float32"), *config.data("float32"), rtol=1e-5)


# Training ------------------------------------------------------------------------------


def test_stateful_chain_carries_and_detaches_the_state():
    """Two consecutive updates, the state carried from the first call into
    the second and detached there, as Keras stateful training does."""
    config = Config(batch=2, timesteps=3, features=3, units=(4,), topology="many-to-many",
                    head="softmax", loss="categorical_crossentropy", outputs=3, repeat=1,
                    stateful=True, seed=4)
    model = config.build()
    model.compile(model.loss.name, nl.SGD(learning_rate=0.5))
    model.reset_states()
    mirror = Mirror(model)
    optimizer = torch.optim.SGD(mirror.parameters(), lr=0.5)
    rng = np.random.default_rng(1)
    state = None
    for call in range(2):
        X, y = config.data()[0] + rng.normal(size=(2, 3, 3)), config.data()[1]
        ours = model.train_on_batch(X, y)
        optimizer.zero_grad()
        loss, finals = mirror.loss(tensor(X), tensor(y), state)
        loss.backward()
        optimizer.step()
        state = {0: tuple(s.detach() for s in finals[0])}      # carried, detached
        assert_close(ours, loss.item(), 1e-10, f"loss of call {call}")
        assert_close(model.layers[0].states[0], finals[0][0].detach().numpy(), 1e-10, "h")
    ours = model.get_weights()
    mirror.copy_back()
    for k, (a, b) in enumerate(zip(ours, model.get_weights())):
        assert_close(a, b, 1e-10, f"weights[{k}] after two updates")


@pytest.mark.parametrize("topology,head,loss", [
    ("many-to-one", "sigmoid", "binary_crossentropy"),
    ("encoder-decoder", "softmax", "categorical_crossentropy"),
    ("many-to-many", "linear", "mse"),
])
def test_twenty_adam_steps_give_the_same_weights(topology, head, loss):
    config = Config(batch=3, timesteps=5, features=4, units=(6, 5), topology=topology,
                    head=head, loss=loss, outputs=3, repeat=2, stateful=False, seed=9)
    model = config.build()
    model.compile(loss, nl.Adam(epsilon_form="pytorch"))
    mirror = Mirror(model)
    optimizer = torch.optim.Adam(mirror.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    rng = np.random.default_rng(3)
    X0, y = config.data()
    for step in range(20):
        X = X0 + 0.1 * rng.normal(size=X0.shape)
        model.train_on_batch(X, y)
        optimizer.zero_grad()
        mirror.loss(tensor(X), tensor(y))[0].backward()
        optimizer.step()
    ours = model.get_weights()
    mirror.copy_back()
    for k, (a, b) in enumerate(zip(ours, model.get_weights())):
        assert_close(a, b, 1e-9, f"weights[{k}] after 20 Adam steps")


# The tests can fail ----------------------------------------------------------------------


CORRECT_TO_TORCH = interop.lstm_to_torch


def wrong_gate_order(kernel, recurrent_kernel, bias):
    """i and f swapped on the way to PyTorch."""
    def swap(a):
        i, f, c, o = np.split(a, 4, axis=-1)
        return np.concatenate([f, i, c, o], axis=-1)
    return CORRECT_TO_TORCH(swap(kernel), swap(recurrent_kernel), swap(bias))


def wrong_bias_mapping(kernel, recurrent_kernel, bias):
    """The whole bias given to both of PyTorch's biases (so it counts twice)."""
    w_ih, w_hh, b_ih, _ = CORRECT_TO_TORCH(kernel, recurrent_kernel, bias)
    return w_ih, w_hh, b_ih, b_ih.copy()


@pytest.mark.parametrize("broken", [wrong_gate_order, wrong_bias_mapping])
def test_a_wrong_mapping_is_caught(broken, monkeypatch):
    config = Config(batch=2, timesteps=4, features=3, units=(4,), topology="many-to-many",
                    head="sigmoid", loss="binary_crossentropy", outputs=2, repeat=1,
                    stateful=False, seed=6)
    model = config.build()
    monkeypatch.setattr(interop, "lstm_to_torch", broken)
    with pytest.raises(AssertionError, match="loss|gradient"):
        compare_backprop(model, *config.data(), rtol=1e-10)


# Masks ----------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(config=configs(masking=True))
def test_a_masked_model_equals_pytorch_running_only_the_steps_that_count(config):
    """PyTorch has no mask: each sample runs alone over its unmasked steps,
    from its own initial state, and the loss is the mean over the rows that
    count (the unmasked steps of a per-step output; every row otherwise)."""
    model = config.build()
    X, y = config.data()
    keep = np.any(X != 0, axis=-1)
    outputs = config.build().predict(X, batch_size=config.batch)
    ours = model.backprop(X, y)
    mirror = Mirror(model)
    states = initial_states(model)
    total, rows = 0, 0
    for b in range(config.batch):
        per_step = config.topology == "many-to-many"
        out, logits, _ = mirror.forward(tensor(X[b:b + 1, keep[b]]),
                                        {k: (h[b:b + 1], c[b:b + 1])
                                         for k, (h, c) in states.items()})
        target = y[b:b + 1, keep[b]] if per_step else y[b:b + 1]
        losses = torch_row_losses(model.loss.name, logits, out, tensor(target))
        total, rows = total + losses.sum(), rows + losses.numel()
        assert_close(outputs[b][keep[b]] if per_step else outputs[b], out[0].detach().numpy(),
                     1e-10, f"outputs of sample {b}")
    loss = total / rows
    loss.backward()
    assert_close(ours.loss, loss.item(), 1e-10, "loss")
    for k, (a, t) in enumerate(zip(ours.grads, mirror.gradients())):
        assert_close(a, t, 1e-10, f"gradient {k}")
