"""T4: full-jitter backoff is bounded, uniform, and spreads a fleet that failed at once.

The documented numbers (base 0.5 s, cap 20 s) are stated here, not read from the module under
test, so a changed base or cap fails these tests.
"""

from __future__ import annotations

import random
import statistics

import pytest

from phase_settings._core.retry import full_jitter

BASE_S = 0.5
CAP_S = 20.0
# attempt -> the documented window [0, min(20, 0.5 * 2 ** (attempt - 1))]
WINDOWS = {1: 0.5, 2: 1.0, 3: 2.0, 4: 4.0, 5: 8.0, 6: 16.0, 7: 20.0, 8: 20.0, 30: 20.0}


class _Edges(random.Random):
    """``uniform(a, b)`` answers ``a`` then ``b``: the two ends of the window the library asks."""

    def __init__(self) -> None:
        super().__init__(0)
        self.asked: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.asked.append((a, b))
        return a if len(self.asked) % 2 else b


def test_the_windows_follow_the_documented_formula() -> None:
    """The library's own draw spans exactly [0, min(20, 0.5 * 2 ** (attempt - 1))]."""
    for attempt, window in WINDOWS.items():
        assert window == min(CAP_S, BASE_S * 2 ** (attempt - 1))
        edges = _Edges()
        assert full_jitter(attempt, rng=edges) == 0.0
        assert full_jitter(attempt, rng=edges) == window
        assert edges.asked == [(0.0, window), (0.0, window)]


@pytest.mark.parametrize("attempt", sorted(WINDOWS))
def test_bounds_mean_and_uniformity(attempt: int) -> None:
    rng = random.Random(1234 + attempt)
    bound = WINDOWS[attempt]
    draws = sorted(full_jitter(attempt, rng=rng) for _ in range(10_000))
    assert draws[0] >= 0 and draws[-1] <= bound
    # the whole window is used: its top is reached, not a smaller one
    assert draws[-1] >= 0.99 * bound and draws[0] <= 0.01 * bound
    assert statistics.fmean(draws) == pytest.approx(bound / 2, rel=0.05)
    # Kolmogorov-Smirnov distance against uniform[0, bound]; critical value at alpha=0.01
    n = len(draws)
    ks = max(max((i + 1) / n - d / bound, d / bound - i / n) for i, d in enumerate(draws))
    assert ks < 1.63 / n**0.5


def test_cap_holds_for_large_attempts() -> None:
    rng = random.Random(7)
    draws = [full_jitter(a, rng=rng) for a in range(1, 200)]
    assert all(0 <= d <= CAP_S for d in draws)
    assert max(draws) > 0.9 * CAP_S  # the cap is the window, not a bound never approached


def test_sixty_four_clients_spread_over_distinct_slots() -> None:
    rng = random.Random(99)
    attempt = 5  # window 8 s: 800 slots of 10 ms
    bound = 8.0
    slots = {int(full_jitter(attempt, rng=rng) / 0.01) for _ in range(64)}
    assert max(slots) < bound / 0.01
    slot_count = bound / 0.01
    expected = slot_count * (1 - (1 - 1 / slot_count) ** 64)  # distinct slots under uniformity
    assert len(slots) >= 0.9 * expected
