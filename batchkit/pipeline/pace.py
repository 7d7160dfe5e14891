"""The pace of a threaded run: the time per batch of a timed round, and a stretch's watch on its own pace.

Used by the thread engine's probe and checks in prefetch.py (NOTE [ Adaptive threads ] there).
"""
from __future__ import annotations

from collections import deque

__all__ = ['CHECK_SHARE', 'CLEAR_WIN', 'COSTLY_STRETCH', 'FIRST_STRETCH', 'INLINE_ROUND', 'INLINE_WIN', 'LONGEST_STRETCH',
           'PROBE_ROUNDS', 'RECHECK_GAPS', 'SHORT_RUNS', 'SLOWDOWN', 'WATCH_EVERY', 'Probe', 'Watch', 'gaps_of',
           'next_stretch', 'pace']

PROBE_ROUNDS = 2            # NOTE [ Adaptive threads ]
INLINE_ROUND = 9            # batches in a timed inline round (a pool's round: 2 * window + 6)
SHORT_RUNS = 3              # runs too short to time one probe round, after which the probe settles inline
FIRST_STRETCH = 256         # batches in the chosen mode before the first recheck; each next stretch is 4 times longer,
LONGEST_STRETCH = 1024      # up to this: a run is checked at least every 1024 batches ...
CHECK_SHARE = 0.01          # ... unless its check costs more than this share of the stretch after it,
COSTLY_STRETCH = 4096       # which may then be up to this long
WATCH_EVERY = 64            # batches between looks at a stretch's own pace ...
SLOWDOWN = 1.5              # ... which, this many times slower than at the stretch's start, calls a check at once
RECHECK_GAPS = 16           # the current mode's latest gaps a recheck compares with
CLEAR_WIN = 0.8             # a mode with workers must take at most this share of the time per batch to replace inline
INLINE_WIN = 0.95           # inline, which never costs a hand-off, replaces a mode with workers at this share


def gaps_of(stamps: list[float]) -> list[float]:
    """The time between each stamp and the next."""
    return [later - earlier for earlier, later in zip(stamps, stamps[1:])]


def next_stretch(stretch: int, close: bool, slowed: bool, cost: float) -> int:
    """The batches before the next check, after one that ended a stretch of `stretch` batches (NOTE [ Adaptive
    threads ]). `close`: the rival was faster, not clearly; `slowed`: the watch cut the stretch short; `cost`: the
    time the check's rival rounds took beyond what the mode kept needs for as many batches, in its batches."""
    if close:
        return FIRST_STRETCH
    if slowed:
        return stretch
    return max(min(4 * stretch, LONGEST_STRETCH), min(int(cost / CHECK_SHARE), COSTLY_STRETCH))


def pace(gaps: list[float], span: int) -> float:
    """The mean gap between batches, each gap capped at 4 times the lower quartile of the time per batch over
    `span` gaps: a stall counts as a slow batch, not as 30 of them (NOTE [ Adaptive threads ])."""
    per_batch = sorted(sum(gaps[i:i + span]) / span for i in range(len(gaps) - span + 1)) or [max(gaps)]
    limit = 4 * per_batch[len(per_batch) // 4]
    return sum(min(gap, limit) for gap in gaps) / len(gaps)


class Probe:
    """The paces of the probe's rounds so far, per mode, and what it times or decides next (NOTE [ Adaptive
    threads ]). Kept by the pipeline when a run ends before the probe decides, so that its next run goes on with
    the probe instead of starting it again."""

    __slots__ = ('paces', 'short_runs')

    def __init__(self) -> None:
        self.paces: dict[str, list[float]] = {'pool': [], 'inline': [], 'one thread': []}
        self.short_runs = 0       # runs that ended before any round was timed

    def next_step(self, single_worker: bool) -> tuple[str, bool]:
        """(mode, decided): the mode decided on, or else the mode whose round is timed next. Rounds of the pool
        and inline in turns, up to PROBE_ROUNDS each unless the pool is clearly faster; the pool if its best
        round is at least 5% faster; else one thread if clearly faster than inline (tried only when the pool
        has more than one). Inline after SHORT_RUNS runs too short to time a round: each paid for starting the
        pool and gained nothing, and the checks time the pool again later."""
        if self.short_runs >= SHORT_RUNS:
            return 'inline', True
        pool, inline, one = self.paces['pool'], self.paces['inline'], self.paces['one thread']
        if len(pool) > len(inline):
            return 'inline', False
        if len(pool) < PROBE_ROUNDS and not (pool and min(pool) < CLEAR_WIN * min(inline)):
            return 'pool', False
        if min(pool) * 1.05 <= min(inline):
            return 'pool', True
        if single_worker:
            return 'inline', True
        if not one:
            return 'one thread', False
        return ('one thread' if one[0] <= CLEAR_WIN * min(inline) else 'inline'), True


class Watch:
    """The latest stamps of a stretch and whether its pace fell behind its own start (NOTE [ Adaptive threads ])."""

    __slots__ = ('stamps', 'span', 'count', 'start', 'slowed')

    def __init__(self, span: int) -> None:
        self.stamps: deque[float] = deque(maxlen=RECHECK_GAPS + 1)      # the latest only: runs can be long
        self.span, self.count, self.start, self.slowed = span, 0, 0.0, False

    def check(self) -> bool:
        """Called once a batch: True once the pace fell to SLOWDOWN times the stretch's first (looked at every
        WATCH_EVERY batches) and RECHECK_GAPS gaps have been timed since."""
        self.count += 1
        if self.slowed:
            return len(self.stamps) == self.stamps.maxlen
        if self.count % WATCH_EVERY or len(self.stamps) < 3:
            return False
        latest = pace(gaps_of(list(self.stamps)), self.span)
        if not self.start:
            self.start = latest
        elif latest > SLOWDOWN * self.start:
            self.slowed = True
            self.stamps.clear()       # the gaps that straddle the slowdown would judge the rival by a mixed pace
        return False
