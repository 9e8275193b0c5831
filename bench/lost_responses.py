"""Lost responses: clients that drop the connection before reading and retry, while servers are SIGKILLed.

``bench/load.py --lost-executions N`` runs this after its other phases (``make load`` does);
``tests/service/test_load.py`` runs a short form in CI. Against the Redis of ``REDIS_URL``, whose
database it FLUSHES first.

Servers: ``--servers`` `chalice local` processes, each started with the command ``make run``
runs (``tests/make_run.py``), all on that Redis, with ``LEASE_SECONDS`` short (2 s) so that
what a killed server held is freed soon; the approval emails go to a temporary outbox.

Clients: ``--clients`` threads. Each takes the next execution number ``i`` and:

1. starts it: ``POST /executions`` with the name ``lost-<i>`` (a third each of ``incsquare``,
   ``approval`` and ``parallel-approval``). The request is sent on a new connection that is
   closed as soon as its last byte is sent, before anything is read: its response is lost.
   Then the same bytes are sent again on a new connection, and read, until one answers 200;
2. redeems every continuation that answer lists the same way: ``POST /continuations/<id>``
   with the same answer, dropped, then sent again until one answers 200 (``"replay": true``
   when the dropped one, or one a killed server was making, had applied it).

Each send goes to the next server, round robin, so a killed server always has requests in
flight. A try that gets no answer (its server was killed: refused, reset, closed) is sent again; ``409 ExecutionStarting``, ``409 ContinuationBusy`` and ``503`` are tried again
20 ms later (not after ``Retry-After``: the dropped twin usually holds the lease only for
milliseconds); any other answer is final. Meanwhile a killer thread SIGKILLs one server at a
time, every ``--kill-every`` seconds (0.5 to 1.5 times that, at random), and starts it again on
its port.

Then, once the clients are done and the surviving servers' ticks have made the calls that
killed ones left in outboxes (the approval emails), the checks:

- duplicate executions: execution records per name beyond the first (must be 0), and names
  with no execution (0); every answer to one name's starts gives the same execution;
- lost answers: continuations answered 200 whose answer the execution does not show: it did
  not end SUCCEEDED with the output its answers give, or has fewer ``ExecutionResumed``
  events than continuations (must be 0);
- double-applied answers: ``ExecutionResumed`` events beyond one per continuation (must be 0);
- approval emails: none linking to a continuation of no stored execution, at most one per
  execution (an execution whose answer came before its email, when the server that started it
  was killed after the commit, needs none: the sweep finds the question answered);
- every ``asl:*`` key has a TTL, and no outbox entry is left.
"""
from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from bench.load import ANSWER, INPUTS, MACHINES, Started, check_keys, expected_output

LEASE_SECONDS = 2
PAUSE = 0.02  # seconds before trying again after ExecutionStarting, ContinuationBusy or 503
AGAIN = {"ExecutionStarting", "ContinuationBusy", "StoreUnavailable"}
REQUEST_DEADLINE = 120  # seconds one request may take with all its retries
ANSWER_BYTES = json.dumps(ANSWER).encode()
REFUSED_DROP = "a dropped send refused (server down)"


@dataclass
class LostReport:
    servers: int
    clients: int
    executions: int
    seconds: float = 0.0
    continuations: int = 0
    requests: int = 0  # every request sent, dropped ones included
    dropped: int = 0  # sent in full, the connection closed before reading
    retries: Counter = field(default_factory=Counter)  # why a request was sent again
    kills: int = 0
    starts: Counter = field(default_factory=Counter)  # the answer of a start's retry: new or alreadyExisted
    redemptions: Counter = field(default_factory=Counter)  # ok or replay
    duplicates: int = 0
    lost: int = 0
    double: int = 0
    emails: int = 0
    unsent: int = 0  # approvals answered before their email, left by a killed server, was due
    approvals: int = 0
    keys: int = 0
    timers: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        retries = ", ".join(f"{n:,} after {why}" for why, n in sorted(self.retries.items()))
        return [
            f"lost responses: {self.servers} chalice local servers (make run's command, LEASE_SECONDS="
            f"{LEASE_SECONDS}), {self.clients} client threads, {self.executions:,} named executions, "
            f"{self.continuations:,} continuations, {self.seconds:.1f} s",
            f"  {self.requests:,} requests: every start and redemption sent once and dropped before reading the "
            f"answer ({self.dropped:,} sent in full), then sent again: {retries or 'no other retries'}",
            f"  {self.kills} servers SIGKILLed during the run (each started again)",
            "  start retries answered: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.starts.items())),
            "  redemption retries answered: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.redemptions.items())),
            f"  duplicate executions (by name): {self.duplicates}",
            f"  lost answers: {self.lost}",
            f"  double-applied answers: {self.double}",
            f"  approval emails: {self.emails:,} for {self.approvals:,} approval executions, none dead or doubled; "
            f"{self.unsent} answered before the sweep was due to send the email a killed server left"
            if not any("email" in f for f in self.failures) else "  approval emails: see failures",
            f"  keys after the run: {self.keys:,} asl:* keys; {self.timers}",
            f"  failures: {len(self.failures)}",
            *[f"    {failure}" for failure in self.failures[:20]],
        ]


class Servers:
    """``count`` chalice local processes started with make run's command, each on its own port."""

    def __init__(self, count: int, environment: dict, logs: str):
        from tests.make_run import free_port

        self.environment, self.logs = environment, logs
        self.ports = [free_port() for _ in range(count)]
        self.processes: list[subprocess.Popen | None] = [None] * count
        self.lock = threading.Lock()
        for index in range(count):
            self.start(index)

    def start(self, index: int) -> None:
        from tests.make_run import ROOT, make_run_command, wait_for_port

        port = self.ports[index]
        with open(os.path.join(self.logs, f"server-{port}.log"), "ab") as log:
            process = subprocess.Popen(make_run_command(port), cwd=ROOT, env={**os.environ, **self.environment},
                                       stdout=log, stderr=subprocess.STDOUT)
        self.processes[index] = process
        wait_for_port(port, process, seconds=60)

    def kill(self, index: int) -> None:
        process = self.processes[index]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in self.processes:
            if process is not None:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


class Client:
    """Sends requests as a client whose responses may be lost: drop once, then retry until answered."""

    def __init__(self, ports: list[int], report: LostReport, lock: threading.Lock, first: int):
        self.ports, self.report, self.lock = ports, report, lock
        self.turn = first

    def count(self, **changes) -> None:
        with self.lock:
            for name, value in changes.items():
                setattr(self.report, name, getattr(self.report, name) + value)

    def retried(self, why: str) -> None:
        with self.lock:
            self.report.retries[why] += 1

    def port(self) -> int:
        """The next server, round robin: every try goes to another one, so every server has requests in flight."""
        self.turn += 1
        return self.ports[self.turn % len(self.ports)]

    def drop(self, message: bytes) -> None:
        """Send the request in full and close the connection without reading anything.

        A server that refuses the connection (it is down) is passed over for the next one, in
        order from the one picked (other threads move the round robin meanwhile, so taking the
        next pick could land on the same down server again), until one takes it.
        """
        first = self.ports.index(self.port())
        deadline = time.monotonic() + REQUEST_DEADLINE
        for attempt in itertools.count():
            port = self.ports[(first + attempt) % len(self.ports)]
            self.count(requests=1)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                    sock.sendall(message)
            except OSError:
                self.retried(REFUSED_DROP)
                if time.monotonic() > deadline:
                    raise
                if attempt % len(self.ports) == len(self.ports) - 1:
                    time.sleep(PAUSE)  # every server refused: they are restarting
                continue
            self.count(dropped=1)
            return

    def exchange(self, path: str, body: bytes) -> tuple[int, dict]:
        """The request dropped once, then sent again until it gets a final answer."""
        message = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
        self.drop(message)
        deadline = time.monotonic() + REQUEST_DEADLINE
        while time.monotonic() < deadline:
            self.count(requests=1)
            connection = http.client.HTTPConnection("127.0.0.1", self.port(), timeout=30)
            try:
                connection.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                                     "Connection": "close"})
                response = connection.getresponse()
                status, answer = response.status, json.loads(response.read())
            except (OSError, http.client.HTTPException) as error:
                self.retried("a refused connection (server down)" if isinstance(error, ConnectionRefusedError)
                             else "no answer (server killed during the request)")
                time.sleep(PAUSE)
                continue
            finally:
                connection.close()
            if answer.get("error") in AGAIN:
                self.retried(answer["error"])
                time.sleep(PAUSE)
                continue
            return status, answer
        raise TimeoutError(f"POST {path}: no final answer in {REQUEST_DEADLINE} s")


def run_execution(client: Client, i: int, results: dict, failures: list[str]) -> None:
    machine = MACHINES[i % len(MACHINES)]
    name = f"lost-{i}"
    body = json.dumps({"stateMachine": machine, "input": INPUTS[machine](i), "name": name}).encode()
    status, document = client.exchange("/executions", body)
    if status != 200 or document.get("status") != "SUSPENDED":
        failures.append(f"start {name}: {status} {document}")
        return
    with client.lock:
        client.report.starts["alreadyExisted" if document.get("alreadyExisted") else "new"] += 1
    idents = [c["id"] for c in document["continuations"]]
    results[name] = Started(document["executionId"], machine, document["input"], idents)
    for ident in idents:
        status, answer = client.exchange(f"/continuations/{ident}", ANSWER_BYTES)
        if status != 200:
            failures.append(f"continuation {ident} of {name}: {status} {answer}")
            continue
        with client.lock:
            client.report.redemptions["replay" if answer.get("replay") else "ok"] += 1


def killer(servers: Servers, every: float, stop: threading.Event, report: LostReport, rng: random.Random) -> None:
    while not stop.wait(every * rng.uniform(0.5, 1.5)):
        index = rng.randrange(len(servers.ports))
        servers.kill(index)
        report.kills += 1
        servers.start(index)


def run_lost_responses(redis_url: str, executions: int, servers: int = 3, clients: int = 8,
                       kill_every: float = 3.0, seed: int = 1) -> LostReport:
    """Run the clients against ``servers`` chalice local processes on ``redis_url`` (flushed first)."""
    from redis import Redis

    redis = Redis.from_url(redis_url)
    redis.flushdb()
    report = LostReport(servers, clients, executions)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="lost-responses-") as folder:
        outbox = os.path.join(folder, "outbox")
        environment = {"REDIS_URL": redis_url, "LEASE_SECONDS": str(LEASE_SECONDS), "OUTBOX_DIR": outbox,
                       "PUBLIC_BASE_URL": "http://load.test"}
        running = Servers(servers, environment, folder)
        try:
            results: dict[str, Started] = {}
            failures: list[str] = []
            numbers = itertools.count()
            lock = threading.Lock()

            def work(first: int) -> None:
                client = Client(running.ports, report, lock, first)
                while (i := next(numbers)) < executions:
                    try:
                        run_execution(client, i, results, failures)
                    except Exception as error:  # noqa: BLE001 - a failure of the run, reported
                        failures.append(f"execution lost-{i}: {type(error).__name__}: {error}")

            stop = threading.Event()
            chaos = threading.Thread(target=killer, args=(running, kill_every, stop, report, rng), daemon=True)
            began = time.perf_counter()
            threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
            if kill_every > 0:
                chaos.start()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            report.seconds = time.perf_counter() - began
            stop.set()
            if kill_every > 0:
                chaos.join()
            report.failures += failures
            report.continuations = sum(len(s.continuations) for s in results.values())
            wait_for_outboxes(redis, report)
            with environment_of(environment):
                documents = check_results(report, results, redis)
            check_emails(report, results, documents, outbox)
        finally:
            running.stop()
    check_keys(report, redis)
    redis.close()
    return report


def wait_for_outboxes(redis, report: LostReport, seconds: float = LEASE_SECONDS + 20) -> None:
    """Until the servers' ticks have made every call a killed server left (after its lease)."""
    deadline = time.monotonic() + seconds
    while list(redis.scan_iter("asl:*:o:*", count=1000)):
        if time.monotonic() > deadline:
            report.failures.append(f"outbox entries left after {seconds:.0f} s")
            return
        time.sleep(0.2)


@contextlib.contextmanager
def environment_of(variables: dict):
    """This process's environment with ``variables`` set, for the service the checks read through."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_results(report: LostReport, results: dict[str, Started], redis) -> dict[str, dict]:
    from chalicelib.api import runtime

    service = runtime.make_service(None)
    by_name: Counter = Counter()
    for key in redis.scan_iter("asl:*:x:*", count=1000):
        by_name[service.describe(key.decode().rsplit(":", 1)[1], with_history=False).get("name")] += 1
    report.duplicates = sum(n - 1 for n in by_name.values() if n > 1)
    if report.duplicates:
        report.failures += [f"{n} executions named {name}" for name, n in by_name.items() if n > 1][:10]
    missing = [f"lost-{i}" for i in range(report.executions) if by_name[f"lost-{i}"] == 0]
    if missing:
        report.failures.append(f"{len(missing)} names with no execution, e.g. {missing[:3]}")
    documents = {}
    for name, execution in results.items():
        document = documents[name] = service.describe(name)
        if document["executionId"] != execution.execution_id:
            report.failures.append(f"{name}: answered {execution.execution_id}, stored {document['executionId']}")
        resumed = [e["type"] for e in document["history"]].count("ExecutionResumed")
        applied = document["status"] == "SUCCEEDED" and document.get("output") == expected_output(execution)
        wanted = len(execution.continuations)
        if resumed > wanted:
            report.double += resumed - wanted
            report.failures.append(f"{name}: resumed {resumed} times for {wanted} continuations")
        elif not applied or resumed < wanted:
            report.lost += max(1, wanted - resumed)
            report.failures.append(f"{name}: {document['status']} {document.get('output')!r}, resumed {resumed} "
                                   f"times for {wanted} continuations")
    return documents


def seconds_to_answer(document: dict) -> float:
    """From the execution's start to its first resume, by its history's timestamps."""
    times = {}
    for event in document["history"]:
        times.setdefault(event["type"], datetime.fromisoformat(event["timestamp"]))
    return (times["ExecutionResumed"] - times["ExecutionStarted"]).total_seconds()


def check_emails(report: LostReport, results: dict[str, Started], documents: dict[str, dict], outbox: str) -> None:
    """No dead or doubled email; an approval without one was answered before its email was due."""
    approvals = {ident: name for name, s in results.items() if s.machine == "approval" for ident in s.continuations}
    report.approvals = sum(1 for s in results.values() if s.machine == "approval")
    files = [f for f in os.listdir(outbox) if f.endswith(".eml")] if os.path.isdir(outbox) else []
    report.emails = len(files)
    per_execution: Counter = Counter()
    for file in files:
        with open(os.path.join(outbox, file), encoding="utf-8") as handle:
            found = re.search(r"/continuations/([A-Za-z0-9_-]+)", handle.read())
        name = approvals.get(found.group(1)) if found else None
        if name is None:
            report.failures.append(f"email {file} links to no stored execution's continuation")
        else:
            per_execution[name] += 1
    report.failures += [f"{n} emails for {name}" for name, n in per_execution.items() if n > 1]
    for name, execution in results.items():
        if execution.machine != "approval" or per_execution[name] or name not in documents:
            continue
        # its email was left in the outbox (the server that started it was killed after the commit) and the
        # answer came first; a sweep would have sent it a lease and a tick (1 s) after the commit
        took = seconds_to_answer(documents[name])
        if took > LEASE_SECONDS + 1.5:
            report.failures.append(f"email for {name} never sent (answered {took:.1f} s after the start)")
        else:
            report.unsent += 1
