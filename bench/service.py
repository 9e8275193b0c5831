"""Continuation service against a real Redis: latency, Redis round trips, memory.

Run from the project root, against a Redis server whose database may be flushed::

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/service.py [--iterations 2000] [--repeat 3]
        [--memory-executions 100000]

The script FLUSHES the database of ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``)
when it starts and again when it ends (``FLUSHDB``: only that database, nothing else).
With the defaults it takes about 3 minutes (one process; most of it creating the
executions whose memory is measured).

It measures, with ``state_machines/incsquare.json`` and input ``{"value": 6}``
(suspends once, at 49; resuming ends it at 50):

1. Suspend+resume through the HTTP app (``chalice.test.Client``, stage ``dev``): one
   iteration is ``POST /executions`` (suspends) then ``POST /continuations/{id}``
   with ``{}`` (finishes). Latency median and p99 of each request over every
   iteration of ``--repeat`` runs, and iterations per second (best run), after a
   warm-up.
2. As a reference measured in the same run, the Redis round-trip time (``PING`` on
   the client the service uses) and each request's latency in PING round trips:
   a figure that holds better across machines than milliseconds.
3. Redis round trips per request, counted on the connections of the service's
   client (``chalicelib.redis_connection.get_redis``): every send to the server
   counts, a pipeline or a script call as one; a NOSCRIPT retry as what it sends.
   Counted on the first iteration after the flush and in steady state, and for a start
   with a name (its reservation and its TTL kept with the records) and its redeem.
4. The same iteration through the Step Functions API (``POST /`` with ``X-Amz-Target``) with
   boto3's ``stepfunctions`` client, its requests answered by the same ``chalice.test.Client``:
   ``StartExecution`` (suspends) then ``SendTaskSuccess`` with the continuation ID as task
   token and ``{}`` as output (finishes). The token is read between the two (not timed), as a
   worker receives it. Latency median and p99, iterations per second (timed requests only),
   and the ratio to the REST figures of item 1, measured in the same run.
5. Redis memory per suspended execution: ``used_memory`` before and after
   creating ``--memory-executions`` suspended executions (through
   ``Service.start`` directly, not HTTP, to be fast), less the user data each
   carries (its input and the suspended state's parameters, as JSON), with
   ``MEMORY USAGE`` of a sample of keys of each kind to show where it goes.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from chalice.test import Client  # noqa: E402
from redis import Redis  # noqa: E402
from redis.commands.core import Script  # noqa: E402

from app import app  # noqa: E402
from tests.api.aws_clients import through_test_client  # noqa: E402
from chalicelib.service import catalog  # noqa: E402
from chalicelib.asl import load  # noqa: E402
from chalicelib.config import Settings, settings  # noqa: E402
from chalicelib.service.ids import id_hash, tag_of  # noqa: E402
from chalicelib.store.connection import get_redis  # noqa: E402
from chalicelib.approvals import make_service  # noqa: E402
from chalicelib.service import Service  # noqa: E402
from chalicelib.store import Store, unpack_record  # noqa: E402
from chalicelib.api.runtime import store_for  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MACHINE = "incsquare"
INPUT = {"value": 6}
TARGET_SUSPEND_TRIPS = 2
TARGET_RESUME_TRIPS = 3
TARGET_OVERHEAD_BYTES = 1024
MEMORY_SAMPLE = 200  # keys of each kind measured with MEMORY USAGE

Trips = list[list[str]]  # one list of command labels per round trip


# -- counting what is sent to Redis --------------------------------------------------------

@dataclass
class Recorder:
    """The round trips sent while recording: one list of command labels per send."""

    scripts: dict[str, str] = field(default_factory=dict)  # sha -> script name
    trips: Trips | None = None
    bytes_sent: int = 0  # every byte sent while recording, commands and their arguments
    bytes_read: int = 0  # the bytes of the replies' values read while recording (strings, numbers)

    def sent(self, packed) -> None:
        if self.trips is not None:
            self.trips.append([self._label(words) for words in commands_in(packed)])
            self.bytes_sent += packed_size(packed)

    def read(self, reply) -> None:
        if self.trips is not None:
            self.bytes_read += reply_size(reply)

    def _label(self, words: list[bytes]) -> str:
        name = words[0].decode().upper()
        if name == "EVALSHA" and len(words) > 1:
            return f"EVALSHA({self.scripts.get(words[1].decode(), words[1].decode()[:8])})"
        return name

    def record(self) -> Trips:
        self.trips = []
        self.bytes_sent = self.bytes_read = 0
        return self.trips

    def stop(self) -> None:
        self.trips = None


def packed_size(packed) -> int:
    chunks = packed if isinstance(packed, (list, tuple)) else [packed]
    return sum(len(c.encode()) if isinstance(c, str) else len(c) for c in chunks)


def reply_size(reply) -> int:
    """The bytes of a reply's values: its strings and numbers, those of a list's items."""
    if isinstance(reply, (list, tuple)):
        return sum(reply_size(item) for item in reply)
    if isinstance(reply, (bytes, bytearray)):
        return len(reply)
    return len(str(reply).encode()) if reply is not None else 0


def commands_in(packed) -> list[list[bytes]]:
    """The first two words of each command in packed RESP (a pipeline packs several)."""
    chunks = packed if isinstance(packed, (list, tuple)) else [packed]
    data = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
    commands, pos = [], 0
    while pos < len(data):
        end = data.index(b"\r\n", pos)
        count, pos = int(data[pos + 1:end]), end + 2
        words = []
        for index in range(count):
            end = data.index(b"\r\n", pos)
            length, pos = int(data[pos + 1:end]), end + 2
            if index < 2:
                words.append(data[pos:pos + length])
            pos += length + 2
        commands.append(words)
    return commands


def instrument(client: Redis, recorder: Recorder) -> None:
    """Make every connection of ``client``'s pool report what it sends and reads."""
    pool = client.connection_pool
    base = pool.connection_class

    class CountedConnection(base):  # type: ignore[misc, valid-type]
        def send_packed_command(self, command, check_health=True):
            recorder.sent(command)
            super().send_packed_command(command, check_health)

        def read_response(self, *args, **kwargs):
            reply = super().read_response(*args, **kwargs)
            recorder.read(reply)
            return reply

    pool.connection_class = CountedConnection
    pool.reset()  # connections made before now would not count


@dataclass
class Instrumented:
    """The service on the Redis of the settings, with every command it sends recorded."""

    config: Settings
    redis: Redis
    store: Store
    recorder: Recorder
    service: Service


def instrumented_service() -> Instrumented:
    """The service as the benchmarks of one process build it: the settings' Redis (flushed), its store,
    a recorder of what is sent (scripts named by their store attribute), approval pages at http://bench."""
    config = settings()
    redis = get_redis(config)
    store = Store(redis, history_limit=config.history_limit)
    recorder = Recorder(scripts={script.sha: name.lstrip("_") for name, script in vars(store).items()
                                 if isinstance(script, Script)})
    instrument(redis, recorder)
    service = make_service(config, store, base_url="http://bench")
    redis.flushdb()
    return Instrumented(config, redis, store, recorder, service)


# -- one iteration through HTTP ------------------------------------------------------------

def start(client: Client, name: str | None = None) -> str:
    body = {"stateMachine": MACHINE, "input": INPUT, **({"name": name} if name else {})}
    response = client.http.post("/executions", headers={"Content-Type": "application/json"},
                                body=json.dumps(body))
    document = json.loads(response.body)
    assert document["status"] == "SUSPENDED", (response.status_code, document)
    return document["continuations"][0]["id"]


def redeem(client: Client, continuation: str) -> None:
    response = client.http.post(f"/continuations/{continuation}",
                                headers={"Content-Type": "application/json"}, body=b"{}")
    document = json.loads(response.body)
    assert document["status"] == "SUCCEEDED" and document["output"] == {"value": 50}, \
        (response.status_code, document)


@dataclass
class Run:
    starts: list[float]  # seconds, one per start request
    redeems: list[float]  # seconds, one per redeem request
    seconds: float  # the whole run


def timed_run(client: Client, iterations: int) -> Run:
    run = Run([], [], 0.0)
    began = time.perf_counter()
    for _ in range(iterations):
        t0 = time.perf_counter()
        continuation = start(client)
        t1 = time.perf_counter()
        redeem(client, continuation)
        run.starts.append(t1 - t0)
        run.redeems.append(time.perf_counter() - t1)
    run.seconds = time.perf_counter() - began
    return run


def timed_protocol_run(client: Client, sfn, iterations: int) -> Run:
    """StartExecution + SendTaskSuccess through boto3; ``seconds`` counts the timed requests only."""
    arn = f"arn:aws:states:{settings().aws_region}:{settings().aws_account_id}:stateMachine:{MACHINE}"
    run = Run([], [], 0.0)
    for _ in range(iterations):
        t0 = time.perf_counter()
        started = sfn.start_execution(stateMachineArn=arn, input=json.dumps(INPUT))
        t1 = time.perf_counter()
        name = started["executionArn"].rsplit(":", 1)[1]
        [waiting] = json.loads(client.http.get(f"/executions/{name}").body)["continuations"]
        t2 = time.perf_counter()
        sfn.send_task_success(taskToken=waiting["id"], output="{}")
        run.starts.append(t1 - t0)
        run.redeems.append(time.perf_counter() - t2)
    run.seconds = sum(run.starts) + sum(run.redeems)
    return run


def counted_iteration(client: Client, recorder: Recorder, name: str | None = None) -> tuple[Trips, Trips]:
    """The round trips of one start (with ``name``, if given) and of one redeem."""
    trips = recorder.record()
    continuation = start(client, name)
    started = list(trips)
    trips.clear()
    redeem(client, continuation)
    redeemed = list(trips)
    recorder.stop()
    return started, redeemed


def ping_times(redis: Redis, count: int) -> list[float]:
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        redis.ping()
        times.append(time.perf_counter() - t0)
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- memory ------------------------------------------------------------------------------

@dataclass
class Created:
    execution_id: str
    continuation: str
    user_bytes: int  # JSON of the input and of the suspended state's parameters


def create_suspended(service: Service, definition: str, count: int) -> list[Created]:
    created = []
    for _ in range(count):
        document = service.start(definition, INPUT, state_machine=MACHINE, trusted=True)
        waiting = document["continuations"][0]
        user = json_size(document["input"]) + json_size(waiting["parameters"])
        created.append(Created(document["executionId"], waiting["id"], user))
    return created


def json_size(value) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def used_memory(redis: Redis) -> int:
    return int(redis.info("memory")["used_memory"])


@dataclass
class KeyKind:
    """Sampled keys of one kind: MEMORY USAGE of each (values included) and the encoding Redis chose."""

    sizes: list[int]
    encoding: str


def key_kinds(redis: Redis, store: Store, sample: list[Created]) -> dict[str, KeyKind]:
    keys = {
        "execution record (string)": [store.execution_key(c.execution_id) for c in sample],
        "continuation hash": [continuation_key(store, c.continuation) for c in sample],
    }
    pipe = redis.pipeline(transaction=False)
    for names in keys.values():
        for name in names:
            pipe.memory_usage(name, samples=0)
    sizes = iter(pipe.execute())
    return {kind: KeyKind([next(sizes) or 0 for _ in names], _text(redis.object("encoding", names[0])))
            for kind, names in keys.items()}


def continuation_key(store: Store, continuation: str) -> str:
    return store.continuation_key(tag_of(continuation), id_hash(continuation))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def mean_fields(redis: Redis, keys: list[str]) -> dict[str, float]:
    """Mean bytes of each field's value in the hashes ``keys``, largest first."""
    totals: dict[str, int] = {}
    for key in keys:
        for name, value in redis.hgetall(key).items():
            totals[_text(name)] = totals.get(_text(name), 0) + len(value)
    return {name: total / len(keys) for name, total in sorted(totals.items(), key=lambda kv: -kv[1])}


def record_parts(redis: Redis, store: Store, sample: list[Created]) -> dict[str, float]:
    """Mean bytes of each part of the execution record: stored (compressed, all parts together)
    and, for comparison, each part's compact JSON before compression."""
    totals: dict[str, int] = {}
    for created in sample:
        stored = redis.get(store.execution_key(created.execution_id))
        record = unpack_record(created.execution_id, stored)
        parts = {"stored value": len(stored), "JSON: document": json_size(record.document),
                 "snapshot": json_size(record.snapshot), "open points": json_size(record.open),
                 "history": json_size(record.history)}
        for name, size in parts.items():
            totals[name] = totals.get(name, 0) + size
    return {name: total / len(sample) for name, total in totals.items()}


@dataclass
class Memory:
    count: int
    seconds: float
    delta: int  # used_memory after - before
    user_bytes: float  # mean per execution
    keys: int
    kinds: dict[str, KeyKind]
    definition_bytes: int
    record_parts: dict[str, float]
    continuation_fields: dict[str, float]


def measure_memory(redis: Redis, store: Store, config: Settings, count: int) -> Memory:
    service = make_service(config, store)
    definition = catalog.load_text(MACHINE)
    service.start(definition, INPUT, state_machine=MACHINE, trusted=True)  # compiled, scripts loaded
    redis.flushdb()
    before = used_memory(redis)
    began = time.perf_counter()
    created = create_suspended(service, definition, count)
    seconds = time.perf_counter() - began
    delta = used_memory(redis) - before
    sample = created[::max(1, count // MEMORY_SAMPLE)][:MEMORY_SAMPLE]
    return Memory(
        count=count, seconds=seconds, delta=delta,
        user_bytes=statistics.mean(c.user_bytes for c in created),
        keys=redis.dbsize(),
        kinds=key_kinds(redis, store, sample),
        definition_bytes=redis.memory_usage(store.definition_key(load(definition).hash), samples=0) or 0,
        record_parts=record_parts(redis, store, sample),
        continuation_fields=mean_fields(redis, [continuation_key(store, c.continuation) for c in sample]),
    )


# -- report ------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f}"


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def report_http(runs: list[Run], iterations: int, warmup: int, ping: float) -> None:
    starts = [t for run in runs for t in run.starts]
    redeems = [t for run in runs for t in run.redeems]
    rates = [iterations / run.seconds for run in runs]
    print(f"1. HTTP (chalice.test.Client, stage dev): {len(runs)} runs x {iterations} iterations after "
          f"{warmup} warm-up ones; latency over all {len(starts)} requests of each kind")
    print(f"  {'request':34s} {'median ms':>9s} {'p99 ms':>8s} {'median in PINGs':>16s}")
    for label, times in (("start (suspends)", starts), ("redeem (resumes, finishes)", redeems)):
        median = statistics.median(times)
        print(f"  {label:34s} {ms(median):>9s} {ms(percentile(times, 0.99))} {median / ping:16.1f}")
    print(f"  suspend+resume iterations/s        {max(rates):9,.0f}   best run "
          f"(median run {statistics.median(rates):,.0f})")


def report_protocol(runs: list[Run], rest: list[Run], iterations: int, ping: float) -> None:
    starts = [t for run in runs for t in run.starts]
    redeems = [t for run in runs for t in run.redeems]
    rest_starts = [t for run in rest for t in run.starts]
    rest_redeems = [t for run in rest for t in run.redeems]
    rates = [iterations / run.seconds for run in runs]
    rest_rate = max(iterations / run.seconds for run in rest)
    print(f"4. Step Functions API through boto3 (same test client): {len(runs)} runs x {iterations} iterations; "
          "ratio: median latency over the REST request's of item 1")
    print(f"  {'request':34s} {'median ms':>9s} {'p99 ms':>8s} {'median in PINGs':>16s} {'x REST':>7s}")
    for label, times, reference in (("StartExecution (suspends)", starts, rest_starts),
                                    ("SendTaskSuccess (finishes)", redeems, rest_redeems)):
        median = statistics.median(times)
        print(f"  {label:34s} {ms(median):>9s} {ms(percentile(times, 0.99))} {median / ping:16.1f} "
              f"{median / statistics.median(reference):7.2f}")
    print(f"  start+answer iterations/s          {max(rates):9,.0f}   best run "
          f"({max(rates) / rest_rate:.2f}x the REST rate)")


def report_ping(pings: list[float]) -> None:
    print(f"2. Reference: Redis PING on the service's client and connection, {len(pings)} in a row")
    print(f"  PING round trip                    {ms(statistics.median(pings)):>9s} "
          f"{ms(percentile(pings, 0.99))}  (median, p99 ms)")


def report_trips(first: tuple[Trips, Trips], steady: list[tuple[Trips, Trips]],
                 named: list[tuple[Trips, Trips]]) -> None:
    print(f"3. Redis round trips per request, counted on the service's connections (a pipeline or a script "
          f"call is one): first iteration after the flush, then the most of {len(steady)} later ones")
    print_trips("start, first (definition not stored)", first[0])
    print_trips("redeem, first", first[1])
    print_trips("start, steady state", max((s for s, _ in steady), key=len), TARGET_SUSPEND_TRIPS)
    print_trips("redeem, steady state", max((r for _, r in steady), key=len), TARGET_RESUME_TRIPS)
    print_trips("start with a name, steady state", max((s for s, _ in named), key=len))
    print_trips("redeem of a named one, steady state", max((r for _, r in named), key=len))
    counts = sorted({(len(s), len(r)) for s, r in steady})
    if len(counts) > 1:
        print(f"  (steady-state (start, redeem) counts varied: {counts})")


def print_trips(label: str, trips: Trips, target: int | None = None) -> None:
    line = f"  {label:38s} {len(trips):3d}"
    if target is not None:
        line += f"   target <= {target}: {verdict(len(trips) <= target)}"
    print(line)
    for number, commands in enumerate(trips, 1):
        print(f"      {number}. {' + '.join(commands)}")


def report_memory(m: Memory) -> None:
    per_execution = m.delta / m.count
    overhead = per_execution - m.user_bytes
    print(f"5. Redis memory per suspended execution: used_memory before and after creating {m.count:,} "
          f"(through Service.start, not HTTP: {m.count / m.seconds:,.0f}/s; {m.keys:,} keys); "
          f"MEMORY USAGE of {len(next(iter(m.kinds.values())).sizes)} sampled keys of each kind")
    print(f"  used_memory delta / executions       {per_execution:9,.0f} bytes")
    print(f"  user data (input + parameters JSON)  {m.user_bytes:9,.0f} bytes")
    print(f"  overhead beyond its own data         {overhead:9,.0f} bytes   "
          f"target < {TARGET_OVERHEAD_BYTES}: {verdict(overhead < TARGET_OVERHEAD_BYTES)}")
    print("  by key, mean MEMORY USAGE per execution:")
    accounted = m.definition_bytes / m.count
    for kind, sampled in m.kinds.items():
        mean = statistics.mean(sampled.sizes)
        accounted += mean
        print(f"    {kind:34s} {mean:9,.0f} bytes   ({sampled.encoding})")
    print(f"    {'definition (one, shared)':34s} {m.definition_bytes / m.count:9,.2f} bytes   "
          f"({m.definition_bytes:,} in all)")
    print(f"    {'rest (keyspace and expiry entries)':34s} {per_execution - accounted:9,.0f} bytes")
    print("  execution record, mean bytes:        "
          + ", ".join(f"{name} {size:,.0f}" for name, size in m.record_parts.items()))
    print("  continuation hash, mean value bytes: "
          + ", ".join(f"{name} {size:,.0f}" for name, size in m.continuation_fields.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=2000, help="suspend+resume iterations per timed run")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs")
    parser.add_argument("--warmup", type=int, default=200, help="iterations before the timed runs")
    parser.add_argument("--pings", type=int, default=10_000)
    parser.add_argument("--counted", type=int, default=20, help="iterations whose round trips are counted")
    parser.add_argument("--memory-executions", type=int, default=100_000)
    args = parser.parse_args()

    config = settings()
    redis = get_redis(config)  # the client the service uses (one per process and URL)
    store = store_for(config)
    recorder = Recorder(scripts={script.sha: name.lstrip("_") for name, script in vars(store).items()
                                 if isinstance(script, Script)})
    instrument(redis, recorder)
    redis.flushdb()
    print(f"python {sys.version.split()[0]}, redis-server {redis.info('server')['redis_version']} at "
          f"{config.redis_url} (flushed at start and end), state machine {MACHINE} input "
          f"{json.dumps(INPUT)}; {args.repeat} runs x {args.iterations} HTTP iterations (rate: best run), "
          f"{args.pings} PINGs, round trips of {args.counted} iterations, memory of "
          f"{args.memory_executions:,} executions; medians and p99 over all samples")
    try:
        client = Client(app, stage_name="dev", project_dir=ROOT)
        first = counted_iteration(client, recorder)
        timed_run(client, args.warmup)
        steady = [counted_iteration(client, recorder) for _ in range(args.counted)]
        named = [counted_iteration(client, recorder, f"counted-{n}") for n in range(args.counted)]
        runs = [timed_run(client, args.iterations) for _ in range(args.repeat)]
        sfn = through_test_client(client)
        timed_protocol_run(client, sfn, args.warmup)
        protocol = [timed_protocol_run(client, sfn, args.iterations) for _ in range(args.repeat)]
        pings = ping_times(redis, args.pings)
        redis.flushdb()
        memory = measure_memory(redis, store, config, args.memory_executions)
    finally:
        redis.flushdb()
    print()
    report_http(runs, args.iterations, args.warmup, statistics.median(pings))
    print()
    report_ping(pings)
    print()
    report_trips(first, steady, named)
    print()
    report_protocol(protocol, runs, args.iterations, statistics.median(pings))
    print()
    report_memory(memory)


if __name__ == "__main__":
    main()
