"""How the benchmarks time a piece of work."""
from __future__ import annotations

import time
from typing import Callable


def best(work: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` timed runs of ``work``, in seconds, after one untimed warm-up run.

    The minimum, not the mean: on a shared machine the noise only ever adds time.
    """
    work()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)
