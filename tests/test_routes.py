"""The route decisions (npLSTM.kernels.routes): plain functions of the sizes
and thread counts, checked at the tutorials' sizes and at the edges."""
from hypothesis import given, strategies as st

from npLSTM.kernels import routes


def product_threads(m, n, k, row_threads, blas_threads, most):
    """routes.product_threads for a batch on row_threads, with the table's thresholds."""
    return routes.product_threads(m, n, k, routes.Route(True, row_threads, None, blas_threads,
                                                        most))


def test_a_small_batchs_products_use_blas_threads_only_when_large():
    """On the calling thread, echo-partial's per-step products (21 rows of
    150 units) and its x W run on one thread; a large product on BLAS's."""
    step, xw = (21, 4 * 150, 150), (21 * 5, 4 * 150, 100)
    for m, n, k in (step, xw):
        assert product_threads(m, n, k, row_threads=1, blas_threads=2, most=2) == 1
    assert product_threads(1600, 1024, 128, 1, 2, 2) == 0
    assert product_threads(7, 80, 20, 1, 2, 2) == 0       # BLAS's one thread anyway
    assert product_threads(21, 600, 150, 1, 1, 2) == 0    # BLAS set to one thread


@given(m=st.integers(1, 5000), n=st.integers(1, 2000), k=st.integers(1, 2000),
       row_threads=st.integers(1, 8), blas_threads=st.integers(1, 8), most=st.integers(1, 8))
def test_a_product_is_never_shared_among_more_threads_than_allowed(m, n, k, row_threads,
                                                                   blas_threads, most):
    threads = product_threads(m, n, k, row_threads, blas_threads, most)
    assert threads in (0, 1) or 2 <= threads <= min(row_threads, m, most)
    if threads >= 2:
        assert m * n * k >= threads * routes.THREAD_WORK
    if m * n * k <= routes.ONE_THREAD_WORK or blas_threads < 2:
        assert threads == 0


def test_the_compiled_executor_takes_the_tutorials_small_models():
    memory = [(1, 20)], 1 * 1 * (5 + 20 + 1) * 80 + 1 * 21 * 5
    echo = [(7, 20)], 7 * 5 * (100 + 20 + 1) * 80 + 7 * 21 * 100
    echo_partial = [(21, 150), (21, 150)], 0                     # LSTMs too large for loops
    assert routes.compiled_executor(*memory) and routes.compiled_executor(*echo)
    assert not routes.compiled_executor(*echo_partial)
