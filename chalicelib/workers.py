"""Activity workers: poll an activity, run a function on each task's input, answer the task.

```python
from chalicelib.workers import worker, run_workers

@worker("add")
def add(payload):
    return payload["x"] + payload["y"]

run_workers(endpoint_url="http://127.0.0.1:8000")   # or: python -m chalicelib worker --activity add mod:add
```

Only boto3's ``stepfunctions`` client is used (``GetActivityTask``, ``SendTaskSuccess``,
``SendTaskFailure``, ``SendTaskHeartbeat``, and ``CreateActivity`` to turn a name into its ARN,
which is idempotent), so the same worker runs against AWS Step Functions when its client
points there. The function's return value (JSON) is the task's output; an exception fails
the task with the exception's class name as the error and its text as the cause.

Each of ``concurrency`` threads polls and runs one task at a time. While a task runs, a
heartbeat is sent every ``heartbeat_seconds``. :meth:`Worker.stop` (SIGTERM and SIGINT under
:func:`run_workers`) lets every thread finish the task it has, takes no more, and returns
once the polls in flight have ended (at most one poll, ``ACTIVITY_POLL_SECONDS`` on the
service): a task such a poll brings is run too, never dropped.

Nothing here imports the rest of the package: a worker needs only boto3.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

#: Activity name (or ARN) -> function, filled by :func:`worker`.
REGISTERED: dict[str, Callable[[Any], Any]] = {}

MAX_ERROR, MAX_CAUSE = 256, 32768  # what SendTaskFailure takes
READ_TIMEOUT = 70  # longer than the longest poll (60 s), which boto3's default of 60 s is not


def worker(activity: str) -> Callable[[Callable], Callable]:
    """Register ``fn(payload) -> result`` as the worker of ``activity`` (a name or an activity ARN)."""

    def register(fn: Callable) -> Callable:
        REGISTERED[activity] = fn
        return fn

    return register


def client(endpoint_url: str | None = None, *, concurrency: int = 1, region_name: str | None = None,
           api_key: str | None = None):
    """A ``stepfunctions`` client for workers: a read timeout past the long poll, a connection per thread;
    with ``api_key``, every request carries it as ``x-api-key`` (a stage of this service with ``API_KEY``)."""
    import boto3
    from botocore.config import Config

    region = region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region is None and endpoint_url:
        region = "us-east-1"  # the service's default STATES_REGION
    config = Config(read_timeout=READ_TIMEOUT, max_pool_connections=max(10, 2 * concurrency),
                    retries={"mode": "standard"})
    sfn = boto3.client("stepfunctions", endpoint_url=endpoint_url, region_name=region, config=config)
    if api_key:
        def add_key(request, **_):
            request.headers["x-api-key"] = api_key

        sfn.meta.events.register("before-sign.sfn", add_key)
    return sfn


def _task_gone(exc: Exception) -> bool:
    """The service no longer takes an answer for the token (answered, timed out, execution ended)."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")


class Worker:
    """Runs ``fn`` on the tasks of one activity, in ``concurrency`` threads."""

    def __init__(self, activity: str, fn: Callable[[Any], Any], *, sfn=None, endpoint_url: str | None = None,
                 concurrency: int = 1, worker_name: str | None = None, heartbeat_seconds: float = 10.0,
                 api_key: str | None = None):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.activity, self.fn = activity, fn
        self.sfn = sfn or client(endpoint_url, concurrency=concurrency, api_key=api_key)
        self.concurrency = concurrency
        self.worker_name = worker_name or f"{socket.gethostname()}-{os.getpid()}"
        self.heartbeat_seconds = heartbeat_seconds
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.arn: str | None = None

    def activity_arn(self) -> str:
        if self.arn is None:
            self.arn = self.activity if self.activity.startswith("arn:") else \
                self.sfn.create_activity(name=self.activity)["activityArn"]
        return self.arn

    def start(self) -> "Worker":
        arn = self.activity_arn()
        for index in range(self.concurrency):
            name = self.worker_name if self.concurrency == 1 else f"{self.worker_name}-{index + 1}"
            thread = threading.Thread(target=self._loop, args=(arn, name), name=f"worker-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> None:
        """Take no more tasks; the ones running finish (see :meth:`join`)."""
        self.stopping.set()

    def join(self, timeout: float | None = None) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def run(self) -> None:
        """Start and wait until stopped and every thread has finished its task."""
        self.start()
        self.join()

    def _loop(self, arn: str, name: str) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                task = self.sfn.get_activity_task(activityArn=arn, workerName=name)
                backoff = 1.0
            except Exception:  # noqa: BLE001 - the service is unreachable or refused: wait, then poll again
                log.warning("polling %s failed; again in %.0f s", arn, backoff, exc_info=True)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            token = task.get("taskToken")
            if token:  # run it even when a stop came during the poll: a task taken is never dropped
                self.perform(token, task.get("input", "null"))

    def perform(self, token: str, input_text: str) -> None:
        """Run the function on one task's input with heartbeats, then answer the task."""
        done = threading.Event()
        beating = threading.Thread(target=self._heartbeats, args=(token, done), daemon=True)
        beating.start()
        try:
            try:
                result = self.fn(json.loads(input_text))
                output = json.dumps(result, ensure_ascii=False)
            except Exception as exc:  # noqa: BLE001 - the function's failure is the task's
                self._answer(self.sfn.send_task_failure, taskToken=token, error=type(exc).__name__[:MAX_ERROR],
                             cause=str(exc)[:MAX_CAUSE])
            else:
                self._answer(self.sfn.send_task_success, taskToken=token, output=output)
        finally:
            done.set()
            beating.join()

    def _answer(self, send: Callable, **fields) -> None:
        try:
            send(**fields)
        except Exception as exc:  # noqa: BLE001 - nothing to do but tell: its timeouts end the task
            if _task_gone(exc):
                log.warning("the task was no longer waiting for an answer (%s)", exc)
            else:
                log.exception("answering a task failed; its timeouts will end it")

    def _heartbeats(self, token: str, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_seconds):
            try:
                self.sfn.send_task_heartbeat(taskToken=token)
            except Exception as exc:  # noqa: BLE001
                if _task_gone(exc):
                    return
                log.warning("a heartbeat failed: %s", exc)


def run_workers(workers: Iterable[tuple[str, Callable]] | None = None, *, endpoint_url: str | None = None,
                concurrency: int = 1, worker_name: str | None = None, heartbeat_seconds: float = 10.0,
                api_key: str | None = None, handle_signals: bool = True) -> None:
    """Run workers (by default every function registered with :func:`worker`) until SIGTERM or SIGINT,
    then let each finish the task it has, and return."""
    pairs = list(REGISTERED.items() if workers is None else workers)
    if not pairs:
        raise ValueError("no workers: register functions with @worker(activity) or pass (activity, fn) pairs")
    sfn = client(endpoint_url, concurrency=concurrency * len(pairs), api_key=api_key)
    running = [Worker(activity, fn, sfn=sfn, concurrency=concurrency, worker_name=worker_name,
                      heartbeat_seconds=heartbeat_seconds) for activity, fn in pairs]

    def stop(signum=None, frame=None) -> None:
        log.info("stopping: finishing the tasks running, taking no more")
        for each in running:
            each.stop()

    signals = {signal.SIGTERM, signal.SIGINT}
    if handle_signals:
        for number in signals:
            signal.signal(number, stop)
        # The threads start with these signals blocked, so the kernel delivers them to the main thread: its
        # wait below is interrupted and the handler runs at once (a signal caught by another thread would
        # wait for the main thread to wake up, while the workers took more tasks).
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        for each in running:
            each.start()
    finally:
        if handle_signals:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    for each in running:
        each.join()
