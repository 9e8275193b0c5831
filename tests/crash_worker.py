"""Worker processes for the fault tests: ``python -m tests.crash_worker <mode> <continuation> ...``.

Run with REDIS_URL (and LEASE_SECONDS) set; each goes through the service the app uses.

- ``claim``: redeems the continuation with ``{"by": "crashed"}``; when the resume is about
  to be written (``Store.commit``: the claim is taken, nothing written) it prints
  ``claimed`` and waits there to be killed.
- ``redeem <answer JSON>``: prints ``ready``, waits for a line on stdin (so that several
  workers start together), redeems with the answer, retrying while the continuation is
  busy, and prints one JSON line: the first try's outcome and the last one's document.
- ``start <boundary> <name> [definition JSON]``: starts ``incsquare`` (or the definition given)
  named ``name`` and hangs, printing ``<boundary>``: ``reserved`` (the name is reserved, nothing
  is committed) or ``committed`` (the first commit is written, the process has done nothing
  after it: not even handed a RUNNING execution to the background).
- ``effect <boundary> <target> <name> <url>``: starts an execution named ``name`` whose
  first state is a task-token call to ``target`` (see :func:`effect_definition`) and
  hangs, printing ``<boundary>``, at that boundary: ``committed`` (after the commit,
  before the call), ``called`` (the target has the call, the caller has no answer yet),
  ``made`` (the call returned, before it is removed from the outbox).

:class:`RecordingClient` stands in for boto3 clients in the worker and in the test:
every call is appended as a JSON line to the file ``CALL_LOG`` names.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from chalicelib.api import runtime as web
from chalicelib.service import ServiceError
from chalicelib.service.calls import PendingCalls
from chalicelib.store import Store

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:approve"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/approvals.fifo"
TOPIC = "arn:aws:sns:us-east-1:123456789012:approvals.fifo"


def effect_definition(target: str, url: str = "") -> dict:
    """A one-state definition waiting on a task-token call to ``target``; its token is sent along."""
    token = {"token.$": "$$.Task.Token"}
    task = {
        "http": {"Resource": "arn:aws:states:::http:invoke.waitForTaskToken",
                 "Parameters": {"ApiEndpoint": url, "Method": "POST", "RequestBody": token}},
        "lambda": {"Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                   "Parameters": {"FunctionName": FUNCTION, "Payload": token}},
        "sqs": {"Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": QUEUE, "MessageGroupId": "g", "MessageBody": token}},
        "sns": {"Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
                "Parameters": {"TopicArn": TOPIC, "MessageGroupId": "g", "Message": token}},
        "child": {"Resource": "arn:aws:states:::states:startExecution.waitForTaskToken",
                  "Parameters": {"StateMachineArn": "arn:aws:states:local:000000000000:stateMachine:incsquare",
                                 "Input": {"value": 1, **token}}},
        # the spelling without .waitForTaskToken: it waits, and is sent after the commit, all the same
        "email": {"Resource": "arn:aws:states:::email:send",
                  "Parameters": {"To": "kim@example.com", "Title": "Approve?", "Choices": ["approve", "reject"]}},
    }[target]
    return {"StartAt": "Call", "States": {"Call": {"Type": "Task", **task, "ResultPath": "$.reply", "End": True}}}


class RecordingClient:
    """A boto3 client whose calls are written to ``CALL_LOG`` and answered as AWS would, roughly."""

    ANSWERS = {"invoke": {"StatusCode": 202, "Payload": b""}, "send_message": {"MessageId": "m-1"},
               "publish": {"MessageId": "m-2"}}

    def __init__(self, service: str):
        import boto3

        real = boto3.session.Session(region_name="us-east-1", aws_access_key_id="test",
                                     aws_secret_access_key="test").client(service)
        self.meta = real.meta  # its model: what the resources read requests and results with

    def __getattr__(self, operation: str):
        def call(**request):
            entry = {"op": operation, **{k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.items()}}
            with open(os.environ["CALL_LOG"], "a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")
            return dict(self.ANSWERS[operation])
        return call


def kill_at(boundary: str, *arguments: str, environment: dict) -> float:
    """Run ``python -m tests.crash_worker <arguments>`` with ``environment`` added until it prints
    ``boundary``, then SIGKILL it; ``time.monotonic()`` when the boundary was reached."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    worker = subprocess.Popen([sys.executable, "-m", "tests.crash_worker", *arguments], cwd=root,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, **environment})
    try:
        assert worker.stdout.readline().strip() == boundary
        reached = time.monotonic()
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
        return reached
    finally:
        worker.kill()
        worker.stdout.close()


def record_aws_calls() -> None:
    from chalicelib.resources import aws

    aws.client = lambda service, region=None, timeout=None: RecordingClient(service)


def stop_here(marker: str):
    def stop(*args, **kwargs):
        print(marker, flush=True)
        time.sleep(600)
        raise SystemExit("not killed")
    return stop


def effect(boundary: str, target: str, name: str, url: str = "") -> None:
    record_aws_calls()
    if boundary == "committed":
        PendingCalls.perform = stop_here("committed")
    elif boundary == "called":
        make = PendingCalls._make

        def make_and_stop(self, execution_id, point, nonce, handler, payload, context):
            def call(payload, context):
                handler(payload, context)
                stop_here("called")()
            make(self, execution_id, point, nonce, call, payload, context)
        PendingCalls._make = make_and_stop
    elif boundary == "made":
        Store.remove_call = stop_here("made")
    web.make_service(None).start(effect_definition(target, url), {"n": 1}, state_machine=None, trusted=True,
                                 name=name)
    raise SystemExit("no boundary reached")


def start(boundary: str, name: str, definition: str = "") -> None:
    commit = Store.commit
    if boundary == "reserved":
        Store.commit = stop_here("reserved")
    else:
        def commit_and_stop(store, change):
            commit(store, change)
            stop_here("committed")()
        Store.commit = commit_and_stop
    machine = None
    if not definition:
        machine = "incsquare"
        with open("state_machines/incsquare.json", encoding="utf-8") as handle:
            definition = handle.read()
    web.make_service(None).start(definition, {"value": 6}, state_machine=machine, trusted=True, name=name)
    raise SystemExit("no boundary reached")


def hang(store: Store, change) -> None:
    print("claimed", flush=True)
    time.sleep(600)
    raise SystemExit("not killed")


def claim(continuation: str) -> None:
    Store.commit = hang
    web.make_service(None).redeem(continuation, result={"by": "crashed"})
    raise SystemExit("redeemed without committing")


def redeem(continuation: str, answer: str) -> None:
    service = web.make_service(None)
    print("ready", flush=True)
    sys.stdin.readline()
    tries: list[str] = []
    while True:
        try:
            document = service.redeem(continuation, result=json.loads(answer))
        except ServiceError as error:
            tries.append(error.code)
            if error.code != "ContinuationBusy" or len(tries) > 200:
                print(json.dumps({"tries": tries, "document": None}), flush=True)
                return
            time.sleep(0.02)
            continue
        tries.append("replay" if document.get("replay") else "ok")
        print(json.dumps({"tries": tries, "document": document}), flush=True)
        return


if __name__ == "__main__":
    {"claim": claim, "redeem": redeem, "effect": effect, "start": start}[sys.argv[1]](*sys.argv[2:])
