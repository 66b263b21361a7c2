"""T4: full-jitter backoff is bounded, uniform, and spreads a fleet that failed at once."""

from __future__ import annotations

import random
import statistics

import pytest

from phase_settings._retry import BACKOFF_BASE, BACKOFF_CAP, full_jitter


@pytest.mark.parametrize("attempt", range(1, 7))
def test_bounds_mean_and_uniformity(attempt: int) -> None:
    rng = random.Random(1234 + attempt)
    bound = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    draws = sorted(full_jitter(attempt, rng=rng) for _ in range(10_000))
    assert draws[0] >= 0 and draws[-1] <= bound
    assert statistics.fmean(draws) == pytest.approx(bound / 2, rel=0.05)
    # Kolmogorov-Smirnov distance against uniform[0, bound]; critical value at alpha=0.01
    n = len(draws)
    ks = max(max((i + 1) / n - d / bound, d / bound - i / n) for i, d in enumerate(draws))
    assert ks < 1.63 / n**0.5


def test_cap_holds_for_large_attempts() -> None:
    rng = random.Random(7)
    assert all(full_jitter(a, rng=rng) <= BACKOFF_CAP for a in range(1, 200))


def test_sixty_four_clients_spread_over_distinct_slots() -> None:
    rng = random.Random(99)
    attempt = 5  # window 8 s: 800 slots of 10 ms
    bound = BACKOFF_BASE * 2 ** (attempt - 1)
    slots = {int(full_jitter(attempt, rng=rng) / 0.01) for _ in range(64)}
    slot_count = bound / 0.01
    expected = slot_count * (1 - (1 - 1 / slot_count) ** 64)  # distinct slots under uniformity
    assert len(slots) >= 0.9 * expected
