"""The Numba kernels held equal to the reference kernels.

float64: |jit - reference| <= 1e-12 (|reference| + max|reference|) for every
array; float32: the same with 1e-5. Shapes are drawn on both sides of the
small/large crossover (routes.compiled_loop), so both loop shapes are held.
"""
import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numba import njit

import npLSTM as nl
from npLSTM.kernels import blas, gate_math, head_math, jit, reference, routes
from strategies import ROUTES, take_route

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
units = st.integers(1, 9) | st.integers(routes.SMALL_UNITS - 2, routes.SMALL_UNITS + 2)


def assert_equal_to(ours, theirs, rtol, what, scale=None):
    """Equal to rtol, relative to each entry or to scale: the largest entry
    unless given."""
    scale = np.abs(theirs).max() if scale is None else scale
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale, err_msg=what)


@settings(max_examples=60, deadline=None)
@given(B=st.integers(1, 5), T=st.integers(1, 8), D=st.integers(1, 8), H=units,
       every_step=st.booleans(), masked=st.sampled_from([0.0, 0.3, 0.7]),
       dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2**16),
       route=st.sampled_from(ROUTES))
def test_jit_equals_reference(B, T, D, H, every_step, masked, dtype, seed, route):
    """masked: the share of steps masked (0: no mask at all); route: the
    large path and the products from Python, or the rows on two threads
    (strategies.ROUTES; the compiled loops' rows too)."""
    rng = np.random.default_rng(seed)
    draw = lambda *shape, scale=1.0: (scale * rng.normal(size=shape)).astype(dtype)
    X, h0, c0 = draw(B, T, D), draw(B, H, scale=0.5), draw(B, H, scale=0.5)
    W, U, b = draw(D, 4 * H, scale=0.5), draw(H, 4 * H, scale=0.5), draw(4 * H, scale=0.5)
    dhs = draw(B, T, H) if every_step else None
    dh_T, dc_T = draw(B, H), draw(B, H)
    mask = rng.uniform(size=(B, T)) >= masked if masked else None
    rtol = TOLERANCE[dtype]
    results, seen = {}, {}
    weight_grads = reference.lstm_weight_grads

    def keeping_dZ(dZ, *args):                  # the reference's dZ, for the scales below
        seen["dZ"] = dZ
        return weight_grads(dZ, *args)
    with pytest.MonkeyPatch.context() as patch:
        batch_route = take_route(patch, route).route(B, H)
        patch.setattr(reference, "lstm_weight_grads", keeping_dZ)
        for name, kernels in (("reference", reference), ("jit", jit)):
            hs, h, c, cache = kernels.lstm_forward(X, h0, c0, W, U, b, mask=mask,
                                                   route=batch_route)
            grads = kernels.lstm_backward(dhs, dh_T, dc_T, cache, W, U, route=batch_route)
            results[name] = (hs, h, c) + tuple(grads)
    # dX, dW, dU, db and dh0 are sums of products with dZ: two summation
    # orders differ by a rounding of the terms' size, which cancellation can
    # leave much larger than the sum (float32: 2.8e-4 of it, seen). They are
    # held to rtol of the largest sum of the terms' magnitudes.
    dZ = np.abs(seen["dZ"])
    terms = weight_grads(dZ, np.abs(X), np.abs(h0), np.abs(results["reference"][0]), np.abs(W))
    terms += (dZ[:, 0] @ np.abs(U).T,)
    names = ("hs", "h_T", "c_T", "dX", "dW", "dU", "db", "dh0", "dc0")
    scales = dict(zip(names[3:8], (t.max() for t in terms)))
    for what, ours, theirs in zip(names, results["jit"], results["reference"]):
        assert ours.dtype == dtype and ours.shape == theirs.shape, what
        assert_equal_to(ours, theirs, rtol, what,
                        scale=max(np.abs(theirs).max(), scales.get(what, 0.0)))


def test_the_tasks_sizes_take_the_measured_paths():
    assert routes.compiled_loop(1, 20) and routes.compiled_loop(7, 20)      # memory, echo
    assert not routes.compiled_loop(21, 150)                             # echo-partial
    assert routes.compiled_loop(16, 32) and routes.compiled_loop(4, 16)     # adding, longlag-2a
    assert routes.compiled_loop(1, 128) and not routes.compiled_loop(1, 129)
    assert not routes.compiled_loop(16, 64)
    assert routes.compiled_loop(512, 16) and not routes.compiled_loop(64, 17)


def test_rows_go_on_threads_as_measured():
    """A batch's rows go on threads (Route.threads: the compiled loops'
    rows, the products'), and the large path cuts it into a block of rows
    per thread, each calling BLAS itself (where npLSTM found a BLAS it can
    call: Route.blocks): by default as many threads as BLAS's, where each
    gets routes.MIN_THREAD_ROWS rows; with loop threads, that many, a row
    each at least; never more than Numba started."""
    rows = routes.MIN_THREAD_ROWS

    def route(B, H, loop_threads=1, blas_threads=2, most=4, blas_callable=True):
        return routes.route(B, H, loop_threads, blas_threads, most, blas_callable)
    assert [route(B, 256).threads for B in (1, 2 * rows - 1, 2 * rows, 1000)] == [1, 1, 2, 2]
    assert route(64, 256).blocks.tolist() == [0, 32, 64]
    assert route(2 * rows, 256).blocks.tolist() == [0, rows, 2 * rows]
    assert route(2 * rows - 1, 256).blocks is None       # fewer rows a thread: BLAS's threads
    assert route(64, routes.TINY_UNITS).blocks is None   # the compiled loop's sizes
    assert route(64, 256, blas_callable=False).blocks is None   # no BLAS to call: from Python
    assert len(route(1000, 256, blas_threads=8).blocks) == 4 + 1   # Numba's threads at most
    assert len(route(3 * rows, 256, blas_threads=8).blocks) == 3 + 1
    assert route(64, 256, blas_threads=1).blocks is None           # BLAS held to one thread
    assert route(64, 256, 2, blas_threads=1).blocks.tolist() == [0, 32, 64]
    assert route(3, 256, 2, blas_threads=1).blocks.tolist() == [0, 1, 3]
    assert route(1, 256, 2, blas_threads=1).blocks is None     # one row: nothing to share
    assert route(2, 256, 4, blas_threads=1).blocks.tolist() == [0, 1, 2]  # a thread a row at most


two_d = st.integers(1, 40)


@settings(max_examples=60, deadline=None)
@given(m=two_d, k=two_d, n=two_d,
       layouts=st.tuples(*[st.sampled_from(["C", "F", "wide", "tall", "strided"])] * 2),
       dtype=st.sampled_from([np.float64, np.float32]), threads=st.integers(1, 3),
       one_thread=st.booleans(), seed=st.integers(0, 2**16))
def test_products_on_threads_equal_numpy(m, k, n, layouts, dtype, threads, one_thread, seed):
    """blas.matmul, rows shared among threads however small the product
    (or, one_thread, on the calling thread with BLAS held to one), on
    operands laid out by rows or by columns, their rows (wide) or columns
    (tall) further apart than their length, or neither one entry apart
    (strided: copied first)."""
    rng = np.random.default_rng(seed)

    def laid_out(shape, layout):
        rows, columns = shape
        if layout == "wide":
            return rng.normal(size=(rows, columns + 3)).astype(dtype)[:, :columns]
        if layout == "tall":
            return rng.normal(size=(columns, rows + 3)).astype(dtype)[:, :rows].T
        if layout == "strided":
            return rng.normal(size=(2 * rows, 2 * columns)).astype(dtype)[::2, ::2]
        return np.asarray(rng.normal(size=shape).astype(dtype), order=layout)
    a, b = laid_out((m, k), layouts[0]), laid_out((k, n), layouts[1])
    route = routes.Route(True, threads, None, blas_threads=2,
                         most=numba.config.NUMBA_NUM_THREADS, one_thread_work=0,
                         thread_work=m * n * k + 1 if one_thread else 1)
    ours = blas.matmul(a, b, route)
    assert ours.dtype == dtype and ours.shape == (m, n)
    theirs = a.astype(np.float64) @ b.astype(np.float64)
    assert_equal_to(ours, theirs, TOLERANCE[dtype], "a @ b",
                    scale=(np.abs(a).astype(np.float64) @ np.abs(b)).max())


def test_threads_are_set_back_after_a_product_on_threads():
    """BLAS at one thread and Numba's threads only while a product runs on
    them, both as before after, an error inside too; holds that overlap
    (as two Python threads' may) put BLAS back when the last ends."""
    if blas.GEMM is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS npLSTM finds")
    blas_before = nl.blas_threads()
    nl.set_blas_threads(2)
    try:
        before = (2, numba.get_num_threads())
        with blas.on_threads(1):
            assert blas.threads() == 1 and numba.get_num_threads() == 1
        with pytest.raises(ZeroDivisionError):
            with blas.on_threads(1):
                1 / 0
        assert (blas.threads(), numba.get_num_threads()) == before
        first, second = blas.one_blas_thread(), blas.one_blas_thread()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)            # the first to start ends first
        assert blas.threads() == 1
        second.__exit__(None, None, None)
        assert blas.threads() == 2
    finally:
        nl.set_blas_threads(blas_before)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("shape", [(7,), (3, 7), (3, 4, 7)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_kernels_equal_reference(route, shape, dtype, monkeypatch):
    batch_route = take_route(monkeypatch, route).route(shape[0] if len(shape) > 1 else 1)
    rng = np.random.default_rng(5)
    X, W, b = (rng.normal(size=s).astype(dtype) for s in (shape, (7, 5), (5,)))
    dZ = rng.normal(size=shape[:-1] + (5,)).astype(dtype)
    results = [(kernels.dense_forward(X, W, b, route=batch_route),) +
               kernels.dense_backward(dZ, X, W, route=batch_route)
               for kernels in (jit, reference)]
    for what, ours, theirs in zip(("z", "dX", "dW", "db"), *results):
        assert ours.dtype == dtype and ours.shape == theirs.shape, what
        assert_equal_to(ours, theirs, TOLERANCE[dtype], what)
    assert jit.dense_backward(dZ, X, W, with_dX=False)[0] is None


@pytest.mark.parametrize("route", ROUTES)
def test_inputs_are_left_unchanged(route, monkeypatch):
    plan = take_route(monkeypatch, route)
    rng = np.random.default_rng(0)
    for H in (4, routes.SMALL_UNITS + 1):
        arrays = [rng.normal(size=s) for s in [(2, 3, 5), (2, H), (2, H), (5, 4 * H),
                                                 (H, 4 * H), (4 * H,)]]
        copies = [a.copy() for a in arrays]
        batch_route = plan.route(2, H)
        _, _, _, cache = jit.lstm_forward(*arrays, route=batch_route)
        upstream = [rng.normal(size=(2, 3, H)), rng.normal(size=(2, H)), rng.normal(size=(2, H))]
        upstream_copies = [a.copy() for a in upstream]
        jit.lstm_backward(*upstream, cache, arrays[3], arrays[4], route=batch_route)
        for a, c in zip(arrays + upstream, copies + upstream_copies):
            np.testing.assert_array_equal(a, c)


@njit
def exp_neg(x, out):
    for k in range(x.size):
        out[k] = gate_math._exp_neg(x[k])


@pytest.mark.parametrize("dtype, lowest, ulps",
                         [(np.float64, 745.2, 1.01), (np.float32, 104.0, 1.06)])
def test_the_vectorised_exp_is_exp(dtype, lowest, ulps):
    """Within 1.01 ulp of libm's exp (float32: 1.06 of the exact exp), down
    through the subnormal numbers to -745.2 (float32: -104), 0 below (where
    exp rounds to 0), NaN for NaN; computed in the argument's precision."""
    x = np.concatenate([-np.geomspace(1e-30, lowest, 20_001), [0.0, -0.0, -lowest]]).astype(dtype)
    out = np.empty_like(x)
    exp_neg(x, out)
    exact = np.exp(x.astype(np.float64))     # libm's; for float32, exact to its precision
    assert (np.abs(out - exact) <= ulps * np.spacing(exact.astype(dtype))).all()
    assert (out[x < -720 if dtype == np.float64 else x < -90] > 0).any()   # subnormals
    special = np.array([-lowest - 0.5, -1e30, -np.inf, np.nan], dtype=dtype)
    exp_neg(special, out[:4])
    np.testing.assert_array_equal(out[:4], [0.0, 0.0, 0.0, np.nan])


def test_extreme_pre_activations_stay_finite():
    """Gates saturate at +-1000 without overflow: i = 1, f = 0, g = 1, o = 0,
    so each step's cell is exactly 1 and its output 0, as in reference."""
    X = np.full((1, 2, 1), 1000.0)
    W = np.array([[1.0, -1.0, 1.0, -1.0]])
    z = np.zeros((1, 1))
    with np.errstate(over="raise", invalid="raise"):
        hs, h, c, _ = jit.lstm_forward(X, z, z, W, np.zeros((1, 4)), np.zeros(4))
    np.testing.assert_array_equal(c, [[1.0]])
    np.testing.assert_array_equal(hs, np.zeros((1, 2, 1)))
    np.testing.assert_array_equal(hs, reference.lstm_forward(X, z, z, W, np.zeros((1, 4)),
                                                             np.zeros(4))[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_update_equals_reference(dtype):
    rng = np.random.default_rng(1)
    arrays = {name: rng.normal(size=1000).astype(dtype) for name in ("p", "g", "m")}
    arrays["v"] = rng.uniform(size=1000).astype(dtype)
    ours = {k: a.copy() for k, a in arrays.items()}
    theirs = {k: a.copy() for k, a in arrays.items()}
    hyper = (3e-4, 0.9, 0.999, 1e-7)
    for _ in range(3):
        jit.adam_update(ours["p"], ours["g"], ours["m"], ours["v"], *hyper)
        reference.adam_update(theirs["p"], theirs["g"], theirs["m"], theirs["v"], *hyper)
    for name in ("p", "m", "v"):
        assert ours[name].dtype == dtype
        assert_equal_to(ours[name], theirs[name], TOLERANCE[dtype], name)


@njit
def _compiled_adam_coefficients(t, learning_rate, beta_1, beta_2, epsilon, pytorch_form):
    return jit.adam_coefficients(t, learning_rate, beta_1, beta_2, epsilon, pytorch_form)


@settings(max_examples=60, deadline=None)
@given(t=st.integers(1, 10**7), learning_rate=st.floats(1e-6, 1.0),
       beta_1=st.floats(0.0, 0.999), beta_2=st.floats(0.0, 0.9999),
       epsilon=st.floats(0.0, 1e-3), pytorch_form=st.booleans())
def test_adam_coefficients_compiled_are_the_same_bits(t, learning_rate, beta_1, beta_2, epsilon,
                                                      pytorch_form):
    """The compiled batches compute Adam's coefficients compiled; the layer-by-layer
    steps in Python: bit for bit the same numbers, so both update alike."""
    settings_ = (learning_rate, beta_1, beta_2, epsilon, pytorch_form)
    assert _compiled_adam_coefficients(float(t), *settings_) == \
        reference.adam_coefficients(float(t), *settings_)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
       dtype=st.sampled_from([np.float64, np.float32]), scale=st.sampled_from([1.0, 30.0, 1000.0]),
       seed=st.integers(0, 2**16), strided=st.booleans())
def test_head_kernels_equal_reference(shape, dtype, scale, seed, strided):
    """Activations, fused losses and the squared error, at ordinary and
    saturating logits; with strided, z is a view of memory laid out with
    its first two axes swapped, not C-contiguous (the results were once
    written into a copy of such a layout and lost)."""
    rng = np.random.default_rng(seed)
    z = (scale * rng.normal(size=shape)).astype(dtype)
    if strided and len(shape) > 1:
        z = np.ascontiguousarray(z.swapaxes(0, 1)).swapaxes(0, 1)
    targets = {"binary_crossentropy_with_logits": rng.uniform(size=shape).astype(dtype),
               "categorical_crossentropy_with_logits":
                   rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]).astype(dtype),
               "mean_squared_error": (scale * rng.normal(size=shape)).astype(dtype)}
    weights = [None, rng.uniform(size=shape[:-1]).astype(dtype)]
    rtol = TOLERANCE[dtype]
    for (name, y), w in ((t, w) for t in targets.items() for w in weights):
        ours, theirs = getattr(jit, name)(z, y, w), getattr(reference, name)(z, y, w)
        assert ours[1].dtype == dtype
        assert abs(ours[0] - theirs[0]) <= rtol * max(abs(theirs[0]), 1.0), name
        # The gradient is a difference of terms of the row's weight: binary
        # (w / K) (a - y), categorical w (a sum(y) - y). In float32 each term
        # rounds by about 6e-8 of it, so a small difference is held to rtol
        # of the terms, not of itself. (The squared error's 2 (w / K) (a - y)
        # is one product of the rounded difference, as large as itself.)
        terms = (1.0 / np.prod(shape[:-1]) if w is None else np.abs(w).max()) / \
            (shape[-1] if name.startswith("binary") else 1)
        assert_equal_to(ours[1], theirs[1], rtol, name, scale=max(terms, np.abs(theirs[1]).max()))
    for kernel, y, name in ((head_math._bce_with_logits, targets["binary_crossentropy_with_logits"],
                             "sigmoid"),
                            (head_math._cce_with_logits,
                             targets["categorical_crossentropy_with_logits"], "softmax")):
        z2, y2 = z.reshape(-1, shape[-1]), y.reshape(-1, shape[-1])
        outputs = np.empty_like(z2)         # the head's outputs, made on the way
        kernel(z2, y2, np.ones(len(outputs), dtype), np.empty_like(outputs), outputs)
        assert_equal_to(outputs, reference.activation_forward(name, z2), rtol, name)
    for name in ("sigmoid", "softmax", "tanh", "linear"):
        ours = jit.activation_forward(name, z)
        assert ours.dtype == dtype
        assert_equal_to(ours, reference.activation_forward(name, z), rtol, name)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 300), dtype=st.sampled_from([np.float64, np.float32]),
       special=st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 1e38, -1e38, 0.0]),
                        max_size=3),
       seed=st.integers(0, 2**16))
def test_all_finite_is_isfinite_all(size, dtype, special, seed):
    """Special values dropped at random places, large finite ones included."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=size).astype(dtype)
    if size:
        a[rng.integers(0, size, size=len(special))] = np.array(special, dtype=dtype)
    assert jit.all_finite(a) == reference.all_finite(a) == np.isfinite(a).all()


@settings(max_examples=40, deadline=None)
@given(a=st.lists(st.floats(-1e30, 1e30), min_size=1, max_size=200),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_value_range_is_min_and_max(a, dtype):
    a = np.array(a, dtype=dtype)
    assert jit.value_range(a) == reference.value_range(a) == (a.min(), a.max())


@pytest.mark.parametrize("kernels", [reference, jit])
@pytest.mark.parametrize("B, T, D, H", [(2, 3, 4, 5), (3, 4, 30, routes.SMALL_UNITS + 4)])
def test_backward_without_input_gradient(kernels, B, T, D, H):
    """with_dX=False (a first layer in training): dX is None, every other
    gradient is the same bit for bit; at both loop shapes."""
    rng = np.random.default_rng(7)
    X, h0, c0 = rng.normal(size=(B, T, D)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    W, U, b = rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H)
    hs, _, _, cache = kernels.lstm_forward(X, h0, c0, W, U, b)
    upstream = (rng.normal(size=hs.shape), rng.normal(size=(B, H)), rng.normal(size=(B, H)))
    full = kernels.lstm_backward(*upstream, cache, W, U)
    without = kernels.lstm_backward(*upstream, cache, W, U, with_dX=False)
    assert without[0] is None
    for ours, theirs in zip(without[1:], full[1:]):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("head", ["lstm", "dense"])
@pytest.mark.parametrize("route", ROUTES)
def test_large_path_models_train_as_the_reference(head, route, monkeypatch):
    """Two stacked LSTMs on the large path (BLAS per step from Python, or
    called by each thread for its rows: strategies.ROUTES), then a loss on
    the last LSTM's outputs or a Dense head: three training steps, float64,
    give the reference backend's losses and weights."""
    plan = take_route(monkeypatch, route)
    B, T, D, H = 3, 4, 5, routes.SMALL_UNITS + 4
    assert not routes.compiled_loop(B, H)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(B, T, D))
    y = rng.normal(size=(B, T, H if head == "lstm" else 2))
    results = {}
    for backend in ("numpy", "numba"):
        layers = [nl.LSTM(H, return_sequences=True, input_shape=(T, D)),
                  nl.LSTM(H, return_sequences=True)]
        if head == "dense":
            layers.append(nl.TimeDistributed(nl.Dense(2)))
        model = nl.Sequential(layers, seed=0, backend=backend)
        model.plan = plan
        model.compile("mse", "adam")
        losses = [model.train_on_batch(X, y) for _ in range(3)]
        results[backend] = losses, model.get_weights()
    np.testing.assert_allclose(results["numba"][0], results["numpy"][0], rtol=1e-10)
    for ours, theirs in zip(results["numba"][1], results["numpy"][1]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12)
