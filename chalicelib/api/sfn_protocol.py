"""The Step Functions API's parts every operation uses: AWS's errors, the request check, pages, ARNs,
and the execution and task-token operations on the service (``Protocol``).

* ARNs are AWS's, with the stage's region and account (``STATES_REGION``,
  ``STATES_ACCOUNT_ID``): ``arn:aws:states:<region>:<account>:stateMachine:<name>`` and
  ``...:execution:<machine>:<name>``, ``...:activity:<name>``; an execution started without
  a name is named by its execution ID. Timestamps are epoch seconds.
* A task token is a continuation ID: ``SendTaskSuccess`` answers it as ``POST
  /continuations/{id}`` does (a ``module:suspend`` task merges the output into its input),
  ``SendTaskFailure`` as ``.../failure``, ``SendTaskHeartbeat`` as ``.../heartbeat``.
  Unlike REST, sending a token that was already answered is ``TaskTimedOut``, as in AWS.
* A listing's ``nextToken`` is where its next page starts, as JSON in base64url (``next_token``);
  a token another listing gave, or none this service gave, is ``InvalidToken``.
* Requests are checked against botocore's own model of the operation's input
  (required members, types, lengths); a failed check is ``ValidationException``.
"""
from __future__ import annotations

import base64
import functools
import json
import re
from datetime import datetime
from typing import Any, Callable

from ..asl.limits import MAX_REQUEST_DEPTH
from ..config import Settings
from ..service import Service, ServiceError, answer_digest
from ..service.ids import is_well_formed
from .http import JSON_NUMBERS_ONLY, nests_too_deep

class AwsError(Exception):
    """An error as AWS answers it: ``status`` and ``{"__type": code, "message": message}``."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status



# -- the service's errors, as AWS names them ---------------------------------------------------

#: REST code -> (AWS code, status). Codes not here are answered by :func:`translate`.
CODES = {
    "ExecutionNotFound": ("ExecutionDoesNotExist", 400),
    "ExecutionExpired": ("ExecutionDoesNotExist", 400),
    "ExecutionAlreadyExists": ("ExecutionAlreadyExists", 400),
    "ExecutionStarting": ("ThrottlingException", 400),  # a retry (botocore retries it) finds it started
    "StateMachineNotFound": ("StateMachineDoesNotExist", 400),
    "InvalidDefinition": ("InvalidDefinition", 400),
    "ResourceNotAllowed": ("InvalidDefinition", 400),
    "ContinuationNotFound": ("TaskDoesNotExist", 400),
    "ContinuationInternal": ("InvalidToken", 400),
    "ContinuationAlreadyRedeemed": ("TaskTimedOut", 400),
    "ContinuationExpired": ("TaskTimedOut", 400),
    "ContinuationBusy": ("ThrottlingException", 400),
    "InvalidAnswer": ("InvalidOutput", 400),
    "Busy": ("ThrottlingException", 400),
    "StoreUnavailable": ("ServiceUnavailable", 503),
    "InvalidRequest": ("ValidationException", 400),
    "MalformedJSON": ("SerializationException", 400),
    "PayloadTooLarge": ("ValidationException", 400),
    "ExecutionNotRedrivable": ("ExecutionNotRedrivable", 400),
}


def translate(error: ServiceError) -> AwsError:
    code, status = CODES.get(error.code, ("InternalFailure", 500) if error.status >= 500
                             else ("ValidationException", 400))
    message = error.message
    if error.code == "InvalidAnswer" and error.extra.get("fieldErrors"):
        message += " " + "; ".join(f"{field or 'output'}: {text}"
                                    for field, text in error.extra["fieldErrors"].items())
    if error.extra.get("problems"):
        message += " " + "; ".join(p["message"] for p in error.extra["problems"])
    return AwsError(code, message, status)


# -- the request ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def service_model():
    """botocore's model of the Step Functions API (shipped with botocore, which boto3 brings)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("stepfunctions")


def read_params(request, operation: str, config: Settings, model=None) -> dict:
    """The request's members for ``operation``, checked against ``model`` (botocore's; by default
    Step Functions')."""
    raw = request.raw_body or b""
    if len(raw) > config.max_body_bytes:
        raise AwsError("ValidationException", f"The request body is larger than {config.max_body_bytes} bytes.")
    try:
        params = json.loads(raw, **JSON_NUMBERS_ONLY) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise AwsError("SerializationException", "The request body is not valid JSON.") from None
    if not isinstance(params, dict):
        raise AwsError("SerializationException", "The request body must be a JSON object.")
    from botocore.validate import ParamValidator

    shape = (model or service_model()).operation_model(operation).input_shape
    known = {k: v for k, v in params.items() if k in shape.members}  # unknown members are ignored, as AWS does
    report = ParamValidator().validate(known, shape)
    if report.has_errors():
        raise AwsError("ValidationException", report.generate_report())
    return known


# -- pages ---------------------------------------------------------------------------------------

def page_size(params: dict, most: int = 1000) -> int:
    """``maxResults``: absent or 0 is 100, as in AWS, and at most ``most``."""
    limit = params.get("maxResults") or 100
    if not 1 <= limit <= most:
        raise AwsError("ValidationException", f"maxResults must be from 0 to {most}.")
    return limit


def next_token(where: Any) -> str:
    """The ``nextToken`` of a page whose next one starts at ``where`` (JSON), as base64url text."""
    return base64.urlsafe_b64encode(json_text(where).encode()).decode()


def invalid_token() -> AwsError:
    return AwsError("InvalidToken", "Invalid Token: the nextToken is not one this service gave.")


def read_token(params: dict, fits: Callable[[Any], bool]) -> Any:
    """Where the page the request's ``nextToken`` asks for starts (None without one): what
    :func:`next_token` was given, if it ``fits`` this listing; else InvalidToken."""
    token = params.get("nextToken")
    if token is None:
        return None
    try:
        where = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:  # not base64, not UTF-8, not JSON
        raise invalid_token() from None
    if not fits(where):
        raise invalid_token()
    return where


def after_name(params: dict) -> str | None:
    """The name a page of names in order starts after (the last of the page before)."""
    return read_token(params, lambda name: isinstance(name, str) and name != "")


def page_of_names(registry: Any, params: dict, member: str, item: Callable[[str, Any], dict]) -> dict:
    """A listing of a registry (state machines, activities) by name: ``{member: [...], "nextToken"}``.

    ``registry`` has ``names(after, limit) -> (names, more)`` and ``get(name)``; ``item`` makes
    the listed entry of a name and what ``get`` found (a name deleted meanwhile is left out).
    """
    names, more = registry.names(after_name(params), page_size(params))
    items = [item(name, found) for name in names if (found := registry.get(name)) is not None]
    out: dict[str, Any] = {member: items}
    if more and names:
        out["nextToken"] = next_token(names[-1])
    return out


def page_of(items: list, params: dict) -> tuple[list, str | None]:
    """A page of ``items``, held whole (its token: the position it starts at), and the next one's token."""
    start = read_token(params, lambda at: type(at) is int and 0 <= at <= len(items)) or 0
    end = start + page_size(params)
    return items[start:end], (next_token(end) if end < len(items) else None)


# -- ARNs, names, times --------------------------------------------------------------------------

#: What an ARN of another region or account names (nothing here), by kind.
MISSING = {"execution": ("ExecutionDoesNotExist", "Execution"), "activity": ("ActivityDoesNotExist", "Activity")}


class Arns:
    """The stage's ARNs: ``arn:aws:states:<region>:<account>:<kind>:...``."""

    def __init__(self, config: Settings):
        self.prefix = f"arn:aws:states:{config.aws_region}:{config.aws_account_id}:"

    def state_machine(self, name: str) -> str:
        return f"{self.prefix}stateMachine:{name}"

    def activity(self, name: str) -> str:
        return f"{self.prefix}activity:{name}"

    def execution(self, document: dict) -> str:
        return f"{self.prefix}execution:{document.get('stateMachine') or 'inline'}:{document['name']}"

    def parse(self, arn: str, kind: str, parts: int) -> list[str]:
        """The resource parts of an ARN of ``kind`` (InvalidArn if malformed, DoesNotExist if elsewhere)."""
        pieces = arn.split(":")
        if (len(pieces) != 6 + parts or pieces[:3] != ["arn", "aws", "states"] or pieces[5] != kind
                or not all(pieces[6:])):
            raise AwsError("InvalidArn", f"Invalid Arn: '{arn}'")
        if arn[:len(self.prefix)] != self.prefix:
            missing, what = MISSING.get(kind, ("StateMachineDoesNotExist", "State Machine"))
            raise AwsError(missing, f"{what} Does Not Exist: '{arn}'")
        return pieces[6:]


#: AWS's rule for names: 1 to 80 characters, no whitespace, brackets, wildcards, special or control characters.
_BAD_NAME = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")


def check_name(name: str) -> None:
    if not 1 <= len(name) <= 80 or _BAD_NAME.search(name):
        raise AwsError("InvalidName", f"Invalid Name: '{name}'")


def epoch(iso: str | None) -> float | None:
    """An ISO 8601 instant of the execution document as epoch seconds (what the protocol carries)."""
    return None if iso is None else datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def parse_json_field(text: str, code: str, what: str) -> Any:
    too_deep = f"Invalid {what}: the value nests arrays and objects more than {MAX_REQUEST_DEPTH} levels deep."
    try:
        value = json.loads(text, **JSON_NUMBERS_ONLY)
    except ValueError:
        raise AwsError(code, f"Invalid {what}: the value is not valid JSON.") from None
    except RecursionError:
        raise AwsError(code, too_deep) from None
    if nests_too_deep(value):
        raise AwsError(code, too_deep)
    return value


#: The execution document's status as AWS names it: a suspended execution is running in AWS's terms.
STATUSES = {"SUSPENDED": "RUNNING"}


class Protocol:
    """One request's operations, on the service."""

    def __init__(self, service: Service, config: Settings):
        self.service = service
        self.config = config
        self.arns = Arns(config)

    # -- executions ----------------------------------------------------------------------------

    def execution(self, arn: str) -> dict:
        """The execution document an execution ARN names (its state machine must match)."""
        machine, name = self.arns.parse(arn, "execution", 2)
        try:
            document = self.service.describe(name, with_history=False)
        except ServiceError as error:
            if error.code in ("ExecutionNotFound", "ExecutionExpired"):
                raise AwsError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'") from None
            raise
        if (document.get("stateMachine") or "inline") != machine or document["name"] != name:
            raise AwsError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'")
        return document

    def start(self, machine: str, arn: str, input: Any, name: str | None, dispatch: bool = True) -> dict:
        """Start the state machine ``machine`` (shipped or registered) as ``StartExecution`` does
        (``dispatch``: see ``Executions.start``)."""
        found = self.service.machines.definition(machine)
        if found is None:
            raise AwsError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'")
        text, trusted = found
        return self.service.start(text, input, state_machine=machine, trusted=trusted, name=name, dispatch=dispatch)

    def start_execution(self, params: dict) -> dict:
        [machine] = self.arns.parse(params["stateMachineArn"], "stateMachine", 1)
        name = params.get("name")
        if name is not None:
            check_name(name)
        input = parse_json_field(params.get("input", "{}"), "InvalidExecutionInput", "execution input")
        document = self.start(machine, params["stateMachineArn"], input, name)
        return {"executionArn": self.arns.execution(document), "startDate": epoch(document["startDate"])}

    def describe_execution(self, params: dict) -> dict:
        document = self.execution(params["executionArn"])
        out: dict[str, Any] = {
            "executionArn": self.arns.execution(document),
            "stateMachineArn": self.arns.state_machine(document.get("stateMachine") or "inline"),
            "name": document["name"],
            "status": STATUSES.get(document["status"], document["status"]),
            "startDate": epoch(document["startDate"]),
            "input": json_text(document.get("input")),
            "inputDetails": {"included": True},
            "redriveCount": document.get("redriveCount", 0),
        }
        if document.get("redriveDate"):
            out["redriveDate"] = epoch(document["redriveDate"])
        out["redriveStatus"], reason = self.service.redrive_status(document["executionId"])
        if reason:
            out["redriveStatusReason"] = reason
        if document.get("stopDate"):
            out["stopDate"] = epoch(document["stopDate"])
        if document["status"] == "SUCCEEDED":
            out["output"] = json_text(document.get("output"))
            out["outputDetails"] = {"included": True}
        for field in ("error", "cause"):
            if document.get(field) is not None:
                out[field] = document[field]
        return out

    def stop_execution(self, params: dict) -> dict:
        """Stop (ABORTED) with the given error and cause; an execution that has ended already
        answers when it ended and changes nothing, so a retried stop is harmless."""
        document = self.execution(params["executionArn"])
        if document["status"] in ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"):
            return {"stopDate": epoch(document["stopDate"])}
        try:
            stopped = self.service.executions.stop(
                document["executionId"], "ABORTED", params.get("error", "States.Aborted"),
                params.get("cause", "Stopped by a StopExecution request."), "ExecutionAborted", "aborted")
        except ServiceError as error:
            if error.code != "ExecutionAlreadyFinished":
                raise
            stopped = self.service.describe(document["executionId"], with_history=False)
        return {"stopDate": epoch(stopped["stopDate"])}

    def redrive_execution(self, params: dict) -> dict:
        """Run a FAILED, TIMED_OUT or ABORTED execution again from where it stopped (``Service.redrive``);
        the same ``clientToken`` within 15 minutes answers the same redrive."""
        document = self.execution(params["executionArn"])
        redriven = self.service.redrive(document["executionId"], client_token=params.get("clientToken"))
        return {"redriveDate": epoch(redriven["redriveDate"])}

    # -- task tokens -----------------------------------------------------------------------------

    def token(self, params: dict) -> str:
        token = params["taskToken"]
        if not is_well_formed(token):
            raise AwsError("InvalidToken", "Invalid Token: the task token is malformed.")
        return token

    def answered(self, document: dict) -> dict:
        """A token answered before (REST answers the same answer again as a replay): TaskTimedOut."""
        if document.get("replay"):
            raise AwsError("TaskTimedOut", "Task Timed Out: the task token was already answered "
                                           f"at {document.get('answeredAt')}.")
        return {}

    def send_task_success(self, params: dict) -> dict:
        token = self.token(params)
        output = parse_json_field(params["output"], "InvalidOutput", "output")
        # the digest of the output's text, as REST takes the same text as a request body
        digest = answer_digest("result", params["output"].encode())
        return self.answered(self.service.redeem(token, result=output, digest=digest))

    def send_task_failure(self, params: dict) -> dict:
        token = self.token(params)
        error, cause = params.get("error", "States.TaskFailed"), params.get("cause")
        digest = answer_digest("failure", json_text({"error": error, "cause": cause}).encode())
        return self.answered(self.service.redeem(token, error=error, cause=cause, digest=digest))

    def send_task_heartbeat(self, params: dict) -> dict:
        self.service.heartbeat(self.token(params))
        return {}
