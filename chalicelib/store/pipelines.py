"""Pipelines of script calls (EVALSHA) that survive Redis losing its scripts.

redis-py would check every script with SCRIPT EXISTS before each pipeline (an extra
round trip); calling EVALSHA directly keeps a write at one round trip. When Redis
has lost the scripts (a restart, a failover), they are loaded and the commands that
failed for that run again, and only those: on a Redis Cluster the others ran on
nodes that kept their scripts, and a commit that has run must not run twice.
"""
from __future__ import annotations

from typing import Callable, Iterable

from redis.exceptions import NoScriptError


class _Recorded:
    """A pipeline that remembers the command each call added (one per call), to run some again."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.commands: list[tuple[str, tuple, dict]] = []

    def execute(self, **options) -> list:
        return self.pipe.execute(**options)

    def __getattr__(self, name: str):
        method = getattr(self.pipe, name)

        def add(*args, **kwargs):
            self.commands.append((name, args, kwargs))
            return method(*args, **kwargs)
        return add


def run(redis, fill: Callable, scripts: Iterable) -> list:
    """Run the pipeline ``fill`` builds; load ``scripts`` again if Redis lost them (see above)."""
    pipe = _Recorded(redis.pipeline(transaction=False))
    fill(pipe)
    replies = pipe.execute(raise_on_error=False)
    lost = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if lost:
        loaded = {}
        for script in scripts:
            sha, script.sha = script.sha, redis.script_load(script.script)
            loaded[sha] = script.sha
        again = redis.pipeline(transaction=False)
        for index in lost:
            name, args, kwargs = pipe.commands[index]  # EVALSHA, sha, ...: with the SHA as loaded
            getattr(again, name)(*args[:1], loaded.get(args[1], args[1]), *args[2:], **kwargs)
        for index, reply in zip(lost, again.execute(raise_on_error=False)):
            replies[index] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies
