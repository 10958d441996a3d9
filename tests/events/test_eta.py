"""The ETA arithmetic (:mod:`pixelpipe.events.eta`): medians of service times, waiting in line,
running at its own pace or by the median, and how long a median is kept."""

from __future__ import annotations

from pixelpipe.events.eta import SAMPLE, ServiceTimes, Where, eta_s, median_s


def test_the_median_of_the_last_sample_of_service_times() -> None:
    assert median_s([]) is None
    assert median_s([3.0, 1.0, 100.0]) == 3.0  # one slow outlier does not move it
    newest_first = [2.0] * SAMPLE + [50.0] * SAMPLE  # older jobs are left out
    assert median_s(newest_first) == 2.0
    assert median_s([-1.0, 4.0]) == 4.0  # a clock step backwards is no service time


def test_waiting_in_line_counts_the_rounds_ahead_then_its_own_run() -> None:
    assert eta_s(10.0, Where(running=False)) == 10.0  # queued, no line: its own run
    assert eta_s(10.0, Where(running=False, position=1, slots=1)) == 20.0
    assert eta_s(10.0, Where(running=False, position=3, slots=1)) == 40.0
    assert eta_s(10.0, Where(running=False, position=3, slots=2)) == 30.0  # two at a time
    assert eta_s(None, Where(running=False, position=3)) is None  # nothing measured yet


def test_running_by_its_own_pace_or_by_the_median() -> None:
    assert eta_s(10.0, Where(running=True, elapsed_s=4.0)) == 6.0
    assert eta_s(10.0, Where(running=True, elapsed_s=12.0)) is None  # overdue: unknown
    assert eta_s(None, Where(running=True, elapsed_s=1.0)) is None
    # half done after 3 s: 3 s more, whatever the median says
    assert eta_s(10.0, Where(running=True, elapsed_s=3.0, fraction=0.5)) == 3.0
    assert eta_s(None, Where(running=True, elapsed_s=3.0, fraction=0.75)) == 1.0
    # 5 % is too early to judge its pace: the median
    assert eta_s(10.0, Where(running=True, elapsed_s=1.0, fraction=0.05)) == 9.0


def test_a_median_is_kept_for_its_time_to_live() -> None:
    now = [100.0]
    times = ServiceTimes(ttl_s=30.0, clock=lambda: now[0])
    assert times.get("k") == (False, None)
    times.put("k", 7.5)
    assert times.get("k") == (True, 7.5)
    times.put("none", None)
    assert times.get("none") == (True, None)  # "nothing measured" is kept too
    now[0] += 31.0
    assert times.get("k") == (False, None)  # stale: measured again
