"""The continuation service's routes. The handlers live in ``chalicelib/api``."""
import os

from chalice import Chalice, Rate

from chalicelib.api import admission, authorization, eventbridge, fallback, openapi, rest, runtime, stepfunctions

runtime.check_deployed_configuration()
runtime.prepare_local_server()
app = Chalice(app_name="asl-continuations")
app.api.binary_types = []

JSON = ["application/json"]
FORM_OR_JSON = ["application/x-www-form-urlencoded", "application/json"]
AWS_JSON_OR_JSON = ["application/json", stepfunctions.CONTENT_TYPE, eventbridge.CONTENT_TYPE]


def request():
    return app.current_request


@app.route("/executions", methods=["POST"], content_types=JSON)
def start_execution():
    return rest.start_execution(request())


@app.route("/executions", methods=["GET"])
def list_executions():
    return rest.list_executions(request())


@app.route("/executions/{execution_id}", methods=["GET"])
def get_execution(execution_id):
    return rest.get_execution(request(), execution_id)


@app.route("/executions/{execution_id}", methods=["DELETE"])
def stop_execution(execution_id):
    return rest.stop_execution(request(), execution_id)


@app.route("/executions/{execution_id}/redrive", methods=["POST"], content_types=JSON)
def redrive_execution(execution_id):
    return rest.redrive_execution(request(), execution_id)


@app.route("/events", methods=["POST"], content_types=JSON)
def publish_events():
    return rest.publish_events(request())


@app.route("/continuations/{continuation}", methods=["POST"], content_types=FORM_OR_JSON)
def redeem_continuation(continuation):
    return rest.redeem_continuation(request(), continuation)


@app.route("/continuations/{continuation}", methods=["GET"])
def describe_continuation(continuation):
    return rest.describe_continuation(request(), continuation)


@app.route("/continuations/{continuation}/decide", methods=["GET"])
def show_decision(continuation):
    return rest.show_decision(request(), continuation)


@app.route("/continuations/{continuation}/decide", methods=["POST"], content_types=FORM_OR_JSON)
def decide(continuation):
    return rest.decide(request(), continuation)


@app.route("/continuations/{continuation}/failure", methods=["POST"], content_types=JSON)
def fail_continuation(continuation):
    return rest.fail_continuation(request(), continuation)


@app.route("/continuations/{continuation}/heartbeat", methods=["POST"], content_types=JSON)
def heartbeat_continuation(continuation):
    return rest.heartbeat_continuation(request(), continuation)


@app.route("/state-machines", methods=["GET"])
def list_state_machines():
    return rest.list_state_machines(request())


@app.route("/state-machines/validate", methods=["POST"], content_types=JSON)
def validate_state_machine():
    return rest.validate_state_machine(request())


@app.route("/state-machines/{name}", methods=["GET"])
def get_state_machine(name):
    return rest.get_state_machine(request(), name)


@app.route("/state-machines/{name}/diagram", methods=["GET"])
def state_machine_diagram(name):
    return rest.state_machine_diagram(request(), name)


@app.route("/", methods=["POST"], content_types=AWS_JSON_OR_JSON)
def prototype():
    """With ``X-Amz-Target``: the Step Functions API (JSON 1.0 protocol) or EventBridge's PutEvents (JSON 1.1);
    without: the prototype's call."""
    if eventbridge.is_target(request()):
        return eventbridge.handle(request())
    if stepfunctions.operation_of(request()) is not None:
        return stepfunctions.handle(request())
    return rest.prototype(request())


@app.route("/openapi.json", methods=["GET"])
def openapi_document():
    return openapi.response(request())


fallback.install(app)  # after every route: 405 for the methods a path lacks, 404 for unknown paths
authorization.install(app)  # after every route: one check for all of them
admission.install(app)  # then the headers: bytes HTTP allows, and a Host the stage trusts


@app.lambda_function(name="continue_execution")
def continue_execution(event, context):
    """Runs an execution on after a request's budget ran out, or one worker of a map run (a Distributed
    Map's children), invoked asynchronously.

    It stops with time to spare and invokes itself again for what is left.
    """
    seconds = context.get_remaining_time_in_millis() / 1000 - 10
    if "mapRun" in event:
        runtime.work_in_background(event["mapRun"], seconds)
    else:
        runtime.continue_in_background(event["executionId"], seconds)
    return {"ok": True}


@app.schedule(Rate(int(os.environ.get("TIMER_RATE_MINUTES", "1")), unit=Rate.MINUTES))
def fire_timers(event):
    """Fires due timers: long Waits, Retry back-off, task timeouts and heartbeats, execution timeouts."""
    return runtime.fire_timers()
