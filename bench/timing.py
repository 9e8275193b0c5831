"""How the benchmarks time a piece of work."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class RedisTimes:
    """What a Redis server says of its own time (``INFO cpu commandstats``), in seconds since it started.

    On a busy machine these hold better than wall time, which also counts the waits for a core; they are
    the whole server's, so measure on a server of its own (others' commands would count)."""

    cpu: float  # the server process's CPU: used_cpu_sys + used_cpu_user
    commands: float  # time spent running commands (the usec of every command but INFO, which measures)

    def __sub__(self, other: RedisTimes) -> RedisTimes:
        return RedisTimes(self.cpu - other.cpu, self.commands - other.commands)


def redis_times(redis) -> RedisTimes:
    """The server's times now (one round trip)."""
    info = redis.info("cpu", "commandstats")
    commands = sum(stats["usec"] for name, stats in info.items()
                   if name.startswith("cmdstat_") and name != "cmdstat_info")
    return RedisTimes(info["used_cpu_sys"] + info["used_cpu_user"], commands / 1e6)


def load_average() -> str:
    """The machine's load average over 1, 5 and 15 minutes, as ``uptime`` shows it."""
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())
