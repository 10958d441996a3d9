"""A waiting or running job's ETA, from the measured service times of the jobs before it.

The service time of a finished job is the time from its submission to the provider to its image
being stored (``finished_at - submitted_at``); cache hits ran nothing and do not count. A model's
service time is the median of its last :data:`SAMPLE` finished jobs on the same provider, at the
same size when at least :data:`MIN_SAMPLES` of them had it (the size matters for GPU servers and
per-megapixel models), else at any size. Medians are kept per process for :data:`TTL_S` seconds
(:class:`ServiceTimes`), so a progress event or a job read costs a dictionary look-up, and one read
of recent jobs per model every half minute at most.

From a service time ``T`` (:func:`eta_s`):

* in a backend's line at ``queue_position`` ``p``, with ``slots`` runs at once: the rounds ahead,
  then its own run: ``T × (⌈p / slots⌉ + 1)``;
* queued, not in a line: ``T``;
* running: the job's own pace once it reports a fraction done (``elapsed × (1 - f) / f``, from
  10 % on), else ``T`` less the time it has run; unknown (None) once it overruns ``T``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

SAMPLE = 20  # finished jobs per median
MIN_SAMPLES = 3  # at one size, before that size's median is trusted
TTL_S = 30.0  # how long a median is reused
PACE_FROM = 0.1  # a reported fraction done is trusted from here on


def median_s(durations: Sequence[float]) -> float | None:
    """The median of the last :data:`SAMPLE` service times (newest first); None without any."""
    recent = [d for d in durations[:SAMPLE] if d >= 0]
    return statistics.median(recent) if recent else None


@dataclass(frozen=True, slots=True)
class Where:
    """Where a job stands: in line (``position``, of a backend with ``slots``), queued, or running
    for ``elapsed_s`` with ``fraction`` done (None: not reported)."""

    running: bool
    position: int | None = None
    slots: int = 1
    elapsed_s: float = 0.0
    fraction: float | None = None


def eta_s(service_s: float | None, where: Where) -> float | None:
    """Seconds until the job's image is expected (see the module's docstring); None: unknown."""
    if where.running:
        f = where.fraction
        if f is not None and PACE_FROM <= f < 1 and where.elapsed_s > 0:
            return round(where.elapsed_s * (1 - f) / f, 1)
        if service_s is None or where.elapsed_s > service_s:
            return None
        return round(service_s - where.elapsed_s, 1)
    if service_s is None:
        return None
    rounds = math.ceil(where.position / max(1, where.slots)) if where.position else 0
    return round(service_s * (rounds + 1), 1)


class ServiceTimes:
    """Medians by key, each kept :data:`TTL_S` seconds (one per process, in ``Services``)."""

    def __init__(self, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._clock = ttl_s, clock
        self._kept: dict[Hashable, tuple[float, float | None]] = {}

    def get(self, key: Hashable) -> tuple[bool, float | None]:
        """(fresh, median): ``fresh`` False when it must be measured again."""
        kept = self._kept.get(key)
        if kept is None or self._clock() - kept[0] > self._ttl:
            return False, None
        return True, kept[1]

    def put(self, key: Hashable, median: float | None) -> None:
        if len(self._kept) > 4096:  # models × sizes: a bound, never reached in practice
            self._kept.clear()
        self._kept[key] = (self._clock(), median)
