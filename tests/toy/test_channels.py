"""The lecture's "one more example": 7x7x3 input, two 3x3x3 filters, stride 2 -> 3x3x2, against the kernel."""

import numpy as np
import pytest

from convtui.core.ops import conv2d_forward
from convtui.toy.channels import cell_order, cell_work, make_example, output_size


def hand_loop(x_padded, w, b, stride):
    """y[k, i, j] = b[k] + sum_c sum_u sum_v w[k, c, u, v] * x_pad[c, i*s + u, j*s + v], by plain loops."""
    k_count, c_count, f, _ = w.shape
    n = (x_padded.shape[1] - f) // stride + 1
    y = np.zeros((k_count, n, n))
    for k in range(k_count):
        for i in range(n):
            for j in range(n):
                total = b[k]
                for c in range(c_count):
                    for u in range(f):
                        for v in range(f):
                            total += w[k, c, u, v] * x_padded[c, i * stride + u, j * stride + v]
                y[k, i, j] = total
    return y


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_shapes_match_the_slide(seed):
    ex = make_example(seed)
    assert ex.x.shape == (3, 5, 5) and ex.x_padded.shape == (3, 7, 7)
    assert ex.w.shape == (2, 3, 3, 3) and ex.b.shape == (2,)
    assert ex.y.shape == (2, 3, 3) and output_size() == 3
    assert np.all(ex.x_padded[:, 0, :] == 0) and np.all(ex.x_padded[:, :, 6] == 0)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_every_cell_total_equals_kernel_and_hand_loop(seed):
    ex = make_example(seed)
    reference = hand_loop(ex.x_padded, ex.w, ex.b, 2)
    np.testing.assert_array_equal(ex.y, reference)
    # The kernel on the already padded 7x7x3 volume (padding 0) agrees too.
    np.testing.assert_array_equal(conv2d_forward(ex.x_padded[None], ex.w, ex.b, 2, 0)[0], reference)
    order = cell_order()
    assert len(order) == 18
    for k, i, j in order:
        work = cell_work(ex, k, i, j)
        assert work.total == work.kernel_value == reference[k, i, j]
        assert work.channel_sums.shape == (3,)
        np.testing.assert_array_equal(work.products, work.patch * ex.w[k])
        assert work.total == work.channel_sums.sum() + ex.b[k]


def test_cell_window_uses_stride_two():
    ex = make_example(0)
    work = cell_work(ex, 1, 2, 1)
    assert work.rows == range(4, 7) and work.cols == range(2, 5)
    np.testing.assert_array_equal(work.patch, ex.x_padded[:, 4:7, 2:5])


def test_seed_is_fixed_and_reroll_changes_the_numbers():
    a, b, c = make_example(0), make_example(0), make_example(1)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert set(np.unique(a.x)) <= {0, 1, 2} and set(np.unique(a.w)) <= {-1, 0, 1}
