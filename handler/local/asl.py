"""A small interpreter of the Amazon States Language subset that the upgrade workflow uses, for the tests and the demo.

moto runs `lambda:invoke` tasks only with Docker, so this runs a definition state by state in this
process, with a Python handler standing in for the Lambda function. The states covered are Pass,
Task (`lambda:invoke` and `lambda:invoke.waitForTaskToken`), Choice, Wait (the time is skipped),
Succeed and Fail. The fields covered are InputPath, Parameters, ResultSelector, ResultPath,
OutputPath, Retry and Catch, with JSONPath paths made of names and indexes. The intrinsic functions
covered are States.JsonMerge (shallow), States.MathAdd, States.Format and States.Array. Anything else
raises `UnsupportedDefinition`, so a definition never runs differently here without notice.

For `waitForTaskToken`, `TaskTokenServer` plays the Step Functions API on 127.0.0.1: code that answers
a token (the Slack webhook) makes its real signed SendTaskSuccess or SendTaskFailure call to it.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_INVOKE_WAIT = "arn:aws:states:::lambda:invoke.waitForTaskToken"

# Guards against a definition that loops forever (a Choice that never leaves a polling loop).
DEFAULT_MAX_TRANSITIONS = 500

_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]")


class UnsupportedDefinition(Exception):
    """The definition uses a feature this interpreter does not implement."""


class StatesError(Exception):
    """An error inside the execution, with the name a Retry or Catch matches and its cause."""

    def __init__(self, error: str, cause: str = "") -> None:
        self.error = error
        self.cause = cause
        super().__init__(f"{error}: {cause}")


@dataclass
class Step:
    """One entry of the execution history."""

    state: str
    type: str
    input: Any
    output: Any = None
    error: str | None = None
    cause: str | None = None
    retries: int = 0


@dataclass
class Execution:
    """The result of a run: SUCCEEDED or FAILED, the output or the error, and the states passed through."""

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[Step] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    @property
    def states(self) -> list[str]:
        """The names of the states entered, in order."""
        return [step.state for step in self.history]


# -- task tokens ------------------------------------------------------------------------------------


@dataclass
class TokenAnswer:
    """How a task token was answered: `output` for SendTaskSuccess, `error` and `cause` for SendTaskFailure."""

    operation: str
    output: Any = None
    error: str | None = None
    cause: str | None = None


class TaskTokenServer:
    """The Step Functions callback API (SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat) on 127.0.0.1.

    Point `AWS_ENDPOINT_URL_SFN` at `url`. A token is answered at most once; a second answer or an
    unknown token gets the service's error, as Step Functions does. `calls` records every request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[str] = set()
        self.answers: dict[str, TokenAnswer] = {}
        self.calls: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "TaskTokenServer":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _token_handler_for(self))
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="task-tokens", daemon=True).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> "TaskTokenServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the task token server is not running: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def issue(self, token: str | None = None) -> str:
        """Open `token`, or a new token as long and as opaque as the ones Step Functions issues; return it."""
        token = token or "AQC" + secrets.token_urlsafe(480)
        with self._lock:
            self._open.add(token)
        return token

    def close(self, token: str) -> TokenAnswer | None:
        """Close the token (the state stops waiting) and return its answer, or None when nobody answered."""
        with self._lock:
            self._open.discard(token)
            return self.answers.get(token)

    def _answer(self, operation: str, request: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        token = request.get("taskToken")
        with self._lock:
            self.calls.append({"operation": operation, "token": token, "request": dict(request)})
            if token not in self._open:
                return 400, {"__type": "TaskTimedOut", "message": "Task Timed Out: the task does not exist anymore"}
            if operation == "SendTaskHeartbeat":
                return 200, {}
            if operation == "SendTaskSuccess":
                try:
                    output = json.loads(request.get("output", ""))
                except ValueError:
                    return 400, {"__type": "InvalidOutput", "message": "output is not valid JSON"}
                self.answers[token] = TokenAnswer(operation, output=output)
            elif operation == "SendTaskFailure":
                self.answers[token] = TokenAnswer(operation, error=request.get("error"), cause=request.get("cause"))
            else:
                return 400, {"__type": "UnknownOperationException", "message": f"unknown operation {operation}"}
            self._open.discard(token)
            return 200, {}


def _token_handler_for(server: TaskTokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes. With Nagle's algorithm on, the client's delayed
        # ACK then delays the body by about 40 ms per request.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
            if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
                status, body = 400, {"__type": "MissingAuthenticationTokenException", "message": "the request is not signed"}
            else:
                try:
                    request = json.loads(raw)
                except ValueError:
                    request = {}
                status, body = server._answer(operation, request)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# -- the interpreter ------------------------------------------------------------------------------


class LambdaContext:
    """The parts of a Lambda context that the handlers read."""

    function_name = "css-upgrade-scout-workflow"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:css-upgrade-scout-workflow"

    def __init__(self, timeout_seconds: float = 60.0) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._ends_at = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends_at - time.monotonic()) * 1000))


def load_definition(path: str, substitutions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read a definition file, replacing `${Name}` placeholders as SAM's DefinitionSubstitutions does."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    for name, value in (substitutions or {}).items():
        text = text.replace("${" + name + "}", value)
    return json.loads(text)


class StateMachine:
    """Runs a definition with `lambda_handler` standing in for every Lambda function it invokes.

    Parameters
    ----------
    definition:
        The state machine definition (a decoded ASL document).
    lambda_handler:
        Called as `lambda_handler(payload, context)`; an exception it raises fails the task with the
        exception's class name as the error, as the Lambda service reports it.
    tokens:
        The running TaskTokenServer that answers `waitForTaskToken` states.
    on_wait:
        Called as `on_wait(state_name, payload)` after a `waitForTaskToken` state invoked its function:
        the moment a person or a system would answer the token. If the token is still unanswered
        when it returns, the state times out (`States.Timeout`) without waiting.
    """

    def __init__(
        self,
        definition: dict[str, Any],
        lambda_handler: Callable[[Any, Any], Any],
        *,
        tokens: TaskTokenServer | None = None,
        on_wait: Callable[[str, Any], None] | None = None,
        max_transitions: int = DEFAULT_MAX_TRANSITIONS,
    ) -> None:
        self.definition = definition
        self.lambda_handler = lambda_handler
        self.tokens = tokens
        self.on_wait = on_wait
        self.max_transitions = max_transitions

    def run(self, execution_input: Any, name: str | None = None) -> Execution:
        """Run the machine from StartAt to a Succeed or Fail state (or an uncaught error)."""
        name = name or uuid.uuid4().hex
        context: dict[str, Any] = {
            "Execution": {"Id": f"arn:aws:states:us-east-1:123456789012:execution:local:{name}", "Name": name,
                          "Input": copy.deepcopy(execution_input), "StartTime": _now()},
            "StateMachine": {"Id": "arn:aws:states:us-east-1:123456789012:stateMachine:local", "Name": "local"},
        }
        execution = Execution(status="RUNNING")
        states = self.definition["States"]
        current = self.definition["StartAt"]
        data = copy.deepcopy(execution_input)

        for _ in range(self.max_transitions):
            state = states[current]
            context["State"] = {"Name": current, "EnteredTime": _now(), "RetryCount": 0}
            step = Step(current, state["Type"], copy.deepcopy(data))
            execution.history.append(step)
            try:
                data, following = self._run_state(current, state, data, context, step, execution)
            except StatesError as error:
                step.error, step.cause = error.error, error.cause
                execution.status, execution.error, execution.cause = "FAILED", error.error, error.cause
                return execution
            step.output = copy.deepcopy(data)
            if following is None:
                if state["Type"] == "Fail":
                    execution.status = "FAILED"
                    execution.error, execution.cause = state.get("Error"), state.get("Cause")
                else:
                    execution.status, execution.output = "SUCCEEDED", data
                return execution
            current = following
        raise RuntimeError(f"the execution passed {self.max_transitions} transitions without ending: the definition loops")

    # -- states -----------------------------------------------------------------------------------

    def _run_state(self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], step: Step, execution: Execution):
        kind = state["Type"]
        if kind == "Pass":
            effective = select(state.get("InputPath", "$"), data, context)
            if "Parameters" in state:
                effective = apply_template(state["Parameters"], effective, context)
            result = state["Result"] if "Result" in state else effective
            return self._output(state, data, result, context), _next(state)
        if kind == "Task":
            return self._task(name, state, data, context, step)
        if kind == "Choice":
            effective = select(state.get("InputPath", "$"), data, context)
            for rule in state["Choices"]:
                if matches(rule, effective, context):
                    return select(state.get("OutputPath", "$"), effective, context), rule["Next"]
            if "Default" not in state:
                raise StatesError("States.NoChoiceMatched", f"no choice of state {name} matched")
            return select(state.get("OutputPath", "$"), effective, context), state["Default"]
        if kind == "Wait":
            execution.waits.append(float(state.get("Seconds", 0)))
            effective = select(state.get("InputPath", "$"), data, context)
            return select(state.get("OutputPath", "$"), effective, context), _next(state)
        if kind == "Succeed":
            effective = select(state.get("InputPath", "$"), data, context)
            return select(state.get("OutputPath", "$"), effective, context), None
        if kind == "Fail":
            return data, None
        raise UnsupportedDefinition(f"state {name}: type {kind} is not supported")

    def _task(self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], step: Step):
        resource = state["Resource"]
        if resource not in (LAMBDA_INVOKE, LAMBDA_INVOKE_WAIT):
            raise UnsupportedDefinition(f"state {name}: resource {resource} is not supported")
        attempts = [0] * len(state.get("Retry", []))

        while True:
            try:
                result = self._invoke(name, state, data, context, resource == LAMBDA_INVOKE_WAIT)
                break
            except StatesError as error:
                retrier = _first_match(state.get("Retry", []), error.error)
                if retrier is not None and attempts[retrier] < state["Retry"][retrier].get("MaxAttempts", 3):
                    attempts[retrier] += 1
                    step.retries += 1
                    context["State"]["RetryCount"] = step.retries
                    continue
                catcher = _first_match(state.get("Catch", []), error.error)
                if catcher is None:
                    raise
                rule = state["Catch"][catcher]
                step.error, step.cause = error.error, error.cause
                failure = {"Error": error.error, "Cause": error.cause}
                return place(rule.get("ResultPath", "$"), data, failure), rule["Next"]

        if "ResultSelector" in state:
            result = apply_template(state["ResultSelector"], result, context)
        return self._output(state, data, result, context), _next(state)

    def _invoke(self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], wait_for_token: bool) -> Any:
        token = None
        if wait_for_token:
            if self.tokens is None:
                raise UnsupportedDefinition(f"state {name} waits for a task token, but no TaskTokenServer was given")
            token = self.tokens.issue()
            context["Task"] = {"Token": token}
        try:
            effective = select(state.get("InputPath", "$"), data, context)
            parameters = apply_template(state.get("Parameters", {"Payload.$": "$"}), effective, context)
        finally:
            context.pop("Task", None)
        payload = json.loads(json.dumps(parameters.get("Payload")))

        try:
            output = self.lambda_handler(payload, LambdaContext())
        except Exception as raised:  # noqa: BLE001 - every function error becomes a States error, as in Lambda
            if token is not None:
                self.tokens.close(token)
            error_type = type(raised).__name__
            cause = json.dumps({"errorMessage": str(raised), "errorType": error_type, "requestId": str(uuid.uuid4()), "stackTrace": []})
            raise StatesError(error_type, cause) from None
        output = json.loads(json.dumps(output))

        if token is None:
            return {"ExecutedVersion": "$LATEST", "Payload": output, "StatusCode": 200}

        if self.on_wait is not None:
            self.on_wait(name, payload)
        answer = self.tokens.close(token)
        if answer is None:
            if "TimeoutSeconds" not in state and "HeartbeatSeconds" not in state:
                raise RuntimeError(f"state {name} waits for a task token forever: nobody answered it and it has no timeout")
            raise StatesError("States.Timeout", f"state {name} timed out waiting for its task token")
        if answer.operation == "SendTaskFailure":
            raise StatesError(answer.error or "", answer.cause or "")
        return answer.output

    def _output(self, state: dict[str, Any], data: Any, result: Any, context: dict[str, Any]) -> Any:
        combined = place(state.get("ResultPath", "$"), data, result)
        return select(state.get("OutputPath", "$"), combined, context)


def _next(state: dict[str, Any]) -> str | None:
    if state.get("End"):
        return None
    return state["Next"]


def _first_match(rules: list[dict[str, Any]], error: str) -> int | None:
    """Return the index of the first Retry or Catch rule whose ErrorEquals matches `error`."""
    for index, rule in enumerate(rules):
        for name in rule["ErrorEquals"]:
            if name == error or name == "States.ALL" or (name == "States.TaskFailed" and error != "States.Timeout"):
                return index
    return None


# -- paths, templates and intrinsic functions -----------------------------------------------------


def read_path(path: str, data: Any, context: Mapping[str, Any]) -> Any:
    """Return the value at a JSONPath (`$.a.b[0]`, or `$$.Task.Token` in the context object)."""
    if path.startswith("$$"):
        value, rest = context, path[2:]
    elif path.startswith("$"):
        value, rest = data, path[1:]
    else:
        raise UnsupportedDefinition(f"path {path!r} does not start with $")
    position = 0
    while position < len(rest):
        match = _PATH_PART.match(rest, position)
        if match is None:
            raise UnsupportedDefinition(f"path {path!r} is not a plain path of names and indexes")
        key = match.group(1) if match.group(1) is not None else match.group(3)
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise StatesError("States.Runtime", f"the JSONPath {path} could not be found in the input")
            value = value[key]
        else:
            index = int(match.group(2))
            if not isinstance(value, list) or index >= len(value):
                raise StatesError("States.Runtime", f"the JSONPath {path} could not be found in the input")
            value = value[index]
        position = match.end()
    return value


def select(path: str | None, data: Any, context: Mapping[str, Any]) -> Any:
    """Apply an InputPath or OutputPath: None gives {}, any path selects that part of `data`."""
    if path is None:
        return {}
    return copy.deepcopy(read_path(path, data, context))


def place(path: str | None, data: Any, result: Any) -> Any:
    """Apply a ResultPath: `$` replaces the input, `$.a.b` sets that field of a copy, None discards the result."""
    if path is None:
        return copy.deepcopy(data)
    if path == "$":
        return copy.deepcopy(result)
    names = re.findall(r"\.([A-Za-z_][A-Za-z0-9_-]*)", path)
    if "." + ".".join(names) != path[1:] or not names:
        raise UnsupportedDefinition(f"ResultPath {path!r} is not a plain path of names")
    combined = copy.deepcopy(data) if isinstance(data, dict) else {}
    target = combined
    for name in names[:-1]:
        if not isinstance(target.get(name), dict):
            target[name] = {}
        target = target[name]
    target[names[-1]] = copy.deepcopy(result)
    return combined


def apply_template(template: Any, data: Any, context: Mapping[str, Any]) -> Any:
    """Build Parameters or ResultSelector: keys ending in `.$` take a path's value or an intrinsic function's result."""
    if isinstance(template, dict):
        built = {}
        for key, value in template.items():
            if key.endswith(".$"):
                built[key[:-2]] = evaluate(value, data, context)
            else:
                built[key] = apply_template(value, data, context)
        return built
    if isinstance(template, list):
        return [apply_template(item, data, context) for item in template]
    return copy.deepcopy(template)


def evaluate(expression: str, data: Any, context: Mapping[str, Any]) -> Any:
    """Evaluate a path or an intrinsic function call such as `States.MathAdd($.retry.count, 1)`."""
    expression = expression.strip()
    if expression.startswith("States."):
        name, _, rest = expression.partition("(")
        if not rest.endswith(")"):
            raise UnsupportedDefinition(f"intrinsic function call {expression!r} is malformed")
        arguments = [_argument(item, data, context) for item in _split_arguments(rest[:-1])]
        return _intrinsic(name, arguments)
    return copy.deepcopy(read_path(expression, data, context))


def _split_arguments(text: str) -> list[str]:
    """Split an argument list at top-level commas, respecting nested calls and quoted strings."""
    parts, depth, quoted, current = [], 0, False, ""
    for char in text:
        if char == "'" and not current.endswith("\\"):
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _argument(text: str, data: Any, context: Mapping[str, Any]) -> Any:
    if text.startswith("$") or text.startswith("States."):
        return evaluate(text, data, context)
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("\\'", "'")
    if text in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[text]
    try:
        return json.loads(text)
    except ValueError:
        raise UnsupportedDefinition(f"intrinsic function argument {text!r} is not supported") from None


def _intrinsic(name: str, arguments: list[Any]) -> Any:
    if name == "States.JsonMerge":
        first, second, deep = arguments
        if deep:
            raise UnsupportedDefinition("States.JsonMerge with deep merging is not supported")
        if not isinstance(first, dict) or not isinstance(second, dict):
            raise StatesError("States.Runtime", "States.JsonMerge needs two JSON objects")
        return {**first, **second}
    if name == "States.MathAdd":
        first, second = arguments
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in (first, second)):
            raise StatesError("States.Runtime", "States.MathAdd needs two integers")
        return first + second
    if name == "States.Format":
        template, *values = arguments
        pieces = template.split("{}")
        if len(pieces) != len(values) + 1:
            raise StatesError("States.Runtime", "States.Format has a different number of {} and arguments")
        return "".join(piece + (str(values[index]) if index < len(values) else "") for index, piece in enumerate(pieces))
    if name == "States.Array":
        return list(arguments)
    raise UnsupportedDefinition(f"intrinsic function {name} is not supported")


# -- Choice rules ---------------------------------------------------------------------------------

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "StringEquals": lambda value, expected: isinstance(value, str) and value == expected,
    "NumericEquals": lambda value, expected: _is_number(value) and value == expected,
    "NumericLessThan": lambda value, expected: _is_number(value) and value < expected,
    "NumericLessThanEquals": lambda value, expected: _is_number(value) and value <= expected,
    "NumericGreaterThan": lambda value, expected: _is_number(value) and value > expected,
    "NumericGreaterThanEquals": lambda value, expected: _is_number(value) and value >= expected,
    "BooleanEquals": lambda value, expected: isinstance(value, bool) and value == expected,
}


def matches(rule: dict[str, Any], data: Any, context: Mapping[str, Any]) -> bool:
    """Evaluate one Choice rule (with And, Or, Not, IsPresent, IsNull and the comparisons above)."""
    if "And" in rule:
        return all(matches(item, data, context) for item in rule["And"])
    if "Or" in rule:
        return any(matches(item, data, context) for item in rule["Or"])
    if "Not" in rule:
        return not matches(rule["Not"], data, context)

    try:
        value = read_path(rule["Variable"], data, context)
        present = True
    except StatesError:
        value, present = None, False
    if "IsPresent" in rule:
        return present == rule["IsPresent"]
    if not present:
        raise StatesError("States.Runtime", f"Invalid path {rule['Variable']}: the choice state's condition path references an invalid value")
    if "IsNull" in rule:
        return (value is None) == rule["IsNull"]
    for operator, compare in _COMPARISONS.items():
        if operator in rule:
            return compare(value, rule[operator])
    raise UnsupportedDefinition(f"choice rule {sorted(rule)} is not supported")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
