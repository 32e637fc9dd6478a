"""The bulk window while interactive requests are present, sized by how much bulk slows them."""

from __future__ import annotations

import time
from collections.abc import Callable


class AdaptiveWindow:
    """AIMD on the number of bulk items a replica runs while interactive requests are present.

    Each finished interactive answer reports its time per token, whole: from dispatch to its last
    token, so the wait for a slot, the engine's queue and prefill count as well as decoding (on the
    H100, with targets of 1.5-2.0 on the time per output token after the first, interactive p50
    latency still grew 1.6-1.9x: much of bulk's toll comes before the first token). Its baseline is
    the typical value with no bulk item in flight; before there is one, the lowest sample at all. Both
    the baseline and the slowdown (value / baseline) are smoothed: each sample moves them by
    `smoothing` of the difference, so one slow answer among normal ones is noise, not a trend, and
    the baseline is a typical answer rather than the luckiest one (which made every later answer
    look slow, and the window collapse on some runs and not on others). Above `target` the window
    shrinks by `decrease` (at most once per `cooldown_s`, so one burst of slow answers is one
    step); at or below, it grows by one. The window stays within [`floor`, `ceiling`]."""

    def __init__(
        self,
        floor: int,
        ceiling: int,
        target: float = 1.3,
        decrease: float = 0.7,
        cooldown_s: float = 0.5,
        smoothing: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.floor, self.ceiling = max(1, floor), max(1, floor, ceiling)
        self.target, self.decrease, self.cooldown_s, self.smoothing = target, decrease, cooldown_s, smoothing
        self.slowdown: float | None = None  # smoothed time per token / baseline
        self._clock = clock
        self.value = float(self.ceiling)
        self.baseline: float | None = None  # typical time per token with no bulk in flight
        self._lowest: float | None = None  # lowest value at all (the baseline until there is one)
        self._last_cut = float("-inf")

    @property
    def size(self) -> int:
        return int(self.value)

    def record(self, per_token_s: float, bulk_in_flight: int) -> None:
        """One finished interactive answer's time per token (whole answer), and the bulk items running then."""
        if per_token_s <= 0:
            return
        if bulk_in_flight == 0:
            base = self.baseline
            self.baseline = per_token_s if base is None else base + self.smoothing * (per_token_s - base)
        self._lowest = per_token_s if self._lowest is None else min(self._lowest, per_token_s)
        base = self.baseline if self.baseline is not None else self._lowest
        ratio = per_token_s / base
        self.slowdown = ratio if self.slowdown is None else self.slowdown + self.smoothing * (ratio - self.slowdown)
        now = self._clock()
        if self.slowdown > self.target:
            if now - self._last_cut >= self.cooldown_s:
                self.value = max(float(self.floor), self.value * self.decrease)
                self._last_cut = now
        else:
            self.value = min(float(self.ceiling), self.value + 1.0)
