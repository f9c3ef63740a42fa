import numpy as np

from emoview.realtime.ring import RingBuffer
from emoview.realtime.smoothing import ProbabilitySmoother


def test_smoothing_follows_a_change_at_the_same_speed_at_any_frame_rate():
    def settle_time(fps):
        smoother = ProbabilitySmoother(time_constant_s=0.25, margin=0.08)
        t = 0.0
        for _ in range(30):
            smoother.update(np.array([0.9, 0.1]), t)
            t += 1000 / fps
        for step in range(1, 1000):
            smoother.update(np.array([0.1, 0.9]), t)
            t += 1000 / fps
            if smoother.label_index == 1:
                return step / fps
        raise AssertionError("never switched")

    slow, fast = settle_time(10), settle_time(60)
    assert 0.05 < fast < 0.6 and abs(slow - fast) < 0.12


def test_label_does_not_flicker_between_close_classes():
    smoother = ProbabilitySmoother(time_constant_s=0.0, margin=0.1)  # no averaging: margin alone
    labels = []
    for i in range(20):
        p = np.array([0.48, 0.52]) if i % 2 else np.array([0.52, 0.48])
        smoother.update(p, i * 33.0)
        labels.append(smoother.label_index)
    assert set(labels) == {0}
    smoother.update(np.array([0.3, 0.7]), 700.0)
    assert smoother.label_index == 1


def test_smoothed_probabilities_stay_a_distribution():
    smoother = ProbabilitySmoother()
    rng = np.random.default_rng(0)
    for i in range(50):
        p = rng.dirichlet(np.ones(7))
        out = smoother.update(p, i * 40.0)
    assert abs(out.sum() - 1) < 1e-5 and (out >= 0).all()


def test_ring_buffer_returns_the_last_frames_in_order_without_growing():
    ring = RingBuffer(size=4, features=2)
    assert ring.window().shape == (0, 2)
    for i in range(1, 4):
        ring.push(np.array([i, -i]))
    np.testing.assert_array_equal(ring.window()[:, 0], [1, 2, 3])
    for i in range(4, 11):
        ring.push(np.array([i, -i]))
    np.testing.assert_array_equal(ring.window()[:, 0], [7, 8, 9, 10])
    assert ring.window().base is not None  # a view, not a copy
    assert ring._data.shape == (8, 2)
