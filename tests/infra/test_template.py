"""Offline checks of infra/template.yaml and the upgrade state machine, without AWS credentials or network.

cfn-lint 1.54 and later no longer expand SAM templates, so it misses faults inside SAM resources (an SQS
event's properties, a queue visibility shorter than the function timeout, dependency cycles). These
tests therefore expand the template with aws-sam-translator and lint the expanded CloudFormation too.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode import decode_str
from samtranslator.translator.transform import transform

from handler.local.package import LAMBDA_TARGET

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
DEFINITION = ROOT / "infra" / "statemachine" / "upgrade.asl.json"

# W3037 flags IAM actions missing from cfn-lint's action list; it would report SAM-generated actions
# such as sqs:ChangeMessageVisibilityBatch that IAM accepts.
LINT_CONFIG = ManualArgs(regions=["us-east-1"], ignore_checks=["W3037"])

# The environment variables of the external contract's configuration table.
CONTRACT_VARIABLES = {
    "CSS_REGION", "CSS_PROJECT_ID", "CSS_ENDPOINT",
    "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "CSS_CREDENTIALS_SECRET",
    "UPGRADE_POLICY", "NOTIFY_TOPIC_ARN", "NOTIFY_EVENT_BUS", "DEDUPE_TABLE", "WORK_QUEUE_URL",
    "DEAD_LETTER_QUEUE_URL", "MAX_CONCURRENCY", "CSS_UPGRADE_AGENCY", "UPGRADE_EXECUTION_ENABLED",
    "SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET_NAME", "SLACK_APPROVERS", "SLACK_APPROVAL_WEBHOOK_URL",
    "SLACK_APPROVAL_WEBHOOK_NAME", "SLACK_REPLY_HOSTS", "SCAN_TARGETS",
}
# Contract variables that carry a secret value; the template passes secret names only.
SECRET_VALUE_VARIABLES = {
    "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "SLACK_SIGNING_SECRET", "SLACK_APPROVAL_WEBHOOK_URL",
}
# Variables naming a secret, and the parameter each must come from.
SECRET_NAME_VARIABLES = {
    "CSS_CREDENTIALS_SECRET": "CssCredentialsSecretName",
    "SLACK_SIGNING_SECRET_NAME": "SlackSigningSecretName",
    "SLACK_APPROVAL_WEBHOOK_NAME": "SlackApprovalWebhookSecretName",
}

EXPECTED_HANDLERS = {
    "WorkerFunction": "handler.worker.lambda_handler",
    "ScanFunction": "handler.scan.lambda_handler",
    "WebhookFunction": "handler.webhook.lambda_handler",
    "WorkflowFunction": "handler.workflow.lambda_handler",
}

# What each function cannot work without.
REQUIRED_VARIABLES = {
    "WorkerFunction": {"CSS_CREDENTIALS_SECRET", "NOTIFY_TOPIC_ARN", "DEDUPE_TABLE", "DEAD_LETTER_QUEUE_URL",
                       "MAX_CONCURRENCY", "SLACK_REPLY_HOSTS"},
    "ScanFunction": {"CSS_CREDENTIALS_SECRET", "SCAN_TARGETS", "WORK_QUEUE_URL"},
    "WebhookFunction": {"SLACK_SIGNING_SECRET_NAME", "WORK_QUEUE_URL", "SLACK_APPROVERS", "SLACK_REPLY_HOSTS"},
    "WorkflowFunction": {"CSS_CREDENTIALS_SECRET", "UPGRADE_EXECUTION_ENABLED", "CSS_UPGRADE_AGENCY",
                         "SLACK_APPROVAL_WEBHOOK_NAME", "NOTIFY_TOPIC_ARN", "DEDUPE_TABLE"},
}

WORKFLOW_ACTIONS = {"check", "request_approval", "start_upgrade", "upgrade_status", "retry_upgrade", "abort_upgrade"}
WORKFLOW_ERRORS = {"ConfigurationError", "CheckFailed", "ExecutionDisabled", "NotApproved",
                   "UpgradeAlreadyRunning", "NoUpgradeTask"}
LAMBDA_SERVICE_ERRORS = {"Lambda.ServiceException", "Lambda.TooManyRequestsException"}

# IAM actions that accept no resource but "*", with the reason.
UNSCOPABLE_ACTIONS = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions; needed for Tracing: Active",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions; needed for Tracing: Active",
}

EXPECTED_OUTPUTS = {"WorkQueueUrl", "NotifyTopicArn", "WebhookUrl", "StateMachineArn", "DeadLetterQueueUrl",
                    "DedupeTableName"}

METRICS_NAMESPACE = "CssUpgradeScout"
SERVICE_NAME = "css-upgrade-scout"


class _NoManagedPolicies:
    """The translator's managed-policy loader; this template names no managed policy."""

    def load(self) -> dict[str, str]:
        return {}


def _decode(path: Path) -> dict[str, Any]:
    template, matches = decode_str(path.read_text(encoding="utf-8"))
    assert not matches, [str(match) for match in matches]
    return template


def _lint_messages(template_text: str) -> list[str]:
    return [str(match) for match in lint(template_text, config=LINT_CONFIG)]


@pytest.fixture(scope="module")
def raw_template() -> dict[str, Any]:
    return _decode(TEMPLATE)


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(DEFINITION.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def expanded(raw_template: dict[str, Any], definition: dict[str, Any]) -> dict[str, Any]:
    """The template as CloudFormation receives it after the SAM transform."""
    template = json.loads(json.dumps(raw_template))
    # The translator accepts only S3 code locations; `sam deploy` uploads the local zip and
    # definition file in their place.
    template["Globals"]["Function"]["CodeUri"] = "s3://placeholder/code.zip"
    state_machine = template["Resources"]["UpgradeStateMachine"]["Properties"]
    del state_machine["DefinitionUri"]
    state_machine["Definition"] = copy.deepcopy(definition)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return transform(template, {}, _NoManagedPolicies())


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == resource_type}


def _parameter_of(value: Any) -> str | None:
    """Return the parameter a property value refers to, directly or through either branch of Fn::If."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            parameter = _parameter_of(branch)
            if parameter and parameter != "AWS::NoValue":
                return parameter
    return None


def _statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every statement of a policy document, with both branches of a conditional statement."""
    pending = list(document["Statement"]) if isinstance(document["Statement"], list) else [document["Statement"]]
    while pending:
        statement = pending.pop()
        if "Fn::If" in statement:
            pending.extend(branch for branch in statement["Fn::If"][1:] if branch != {"Ref": "AWS::NoValue"})
        else:
            yield statement


def _policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, role in _resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            yield name, policy["PolicyDocument"]
    for name, policy in _resources(template, "AWS::IAM::Policy").items():
        yield name, policy["Properties"]["PolicyDocument"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- lint ----------------------------------------------------------------------------------------------


def test_raw_template_lints_clean() -> None:
    messages = _lint_messages(TEMPLATE.read_text(encoding="utf-8"))
    assert messages == [], "\n".join(messages)


def test_expanded_template_lints_clean(expanded: dict[str, Any]) -> None:
    messages = _lint_messages(json.dumps(expanded))
    assert messages == [], "\n".join(messages)


def test_definition_lints_clean(definition: dict[str, Any]) -> None:
    # The SAM expansion turns the definition into a joined string that cfn-lint does not read, so the
    # definition is linted on its own as an object.
    template = {
        "Resources": {
            "StateMachine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/placeholder",
                    "Definition": definition,
                    "DefinitionSubstitutions": {
                        "WorkflowFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:placeholder",
                    },
                },
            }
        }
    }
    messages = _lint_messages(json.dumps(template))
    assert messages == [], "\n".join(messages)


# --- worker, queues, table -------------------------------------------------------------------------------


def test_visibility_timeout_covers_worker(expanded: dict[str, Any], raw_template: dict[str, Any]) -> None:
    visibility = expanded["Resources"]["WorkQueue"]["Properties"]["VisibilityTimeout"]
    worker_timeout = expanded["Resources"]["WorkerFunction"]["Properties"]["Timeout"]
    longest_window = raw_template["Parameters"]["WorkerBatchingWindowSeconds"]["MaxValue"]

    assert visibility >= 6 * worker_timeout, f"VisibilityTimeout {visibility} < 6 x worker Timeout {worker_timeout}"
    assert visibility >= 6 * worker_timeout + longest_window, "the batching window is not covered"


def test_worker_reports_batch_item_failures(expanded: dict[str, Any]) -> None:
    mappings = _resources(expanded, "AWS::Lambda::EventSourceMapping")
    assert set(mappings) == {"WorkerFunctionWorkQueue"}

    properties = mappings["WorkerFunctionWorkQueue"]["Properties"]
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]}
    assert properties["FunctionName"] == {"Ref": "WorkerFunction"}


@pytest.mark.parametrize(
    ("mapping_property", "parameter"),
    [
        ("BatchSize", "WorkerBatchSize"),
        ("MaximumBatchingWindowInSeconds", "WorkerBatchingWindowSeconds"),
    ],
)
def test_worker_batching_from_parameters(expanded: dict[str, Any], mapping_property: str, parameter: str) -> None:
    properties = expanded["Resources"]["WorkerFunctionWorkQueue"]["Properties"]
    assert properties[mapping_property] == {"Ref": parameter}


def test_worker_concurrency_bounded(expanded: dict[str, Any], raw_template: dict[str, Any]) -> None:
    scaling = expanded["Resources"]["WorkerFunctionWorkQueue"]["Properties"]["ScalingConfig"]
    parameter = raw_template["Parameters"]["WorkerMaxConcurrency"]

    assert scaling["MaximumConcurrency"] == {"Ref": "WorkerMaxConcurrency"}
    assert parameter["MinValue"] == 2
    assert parameter["MaxValue"] == 1000
    assert 2 <= parameter["Default"] <= 1000


def test_redrive_to_dead_letter_queue(expanded: dict[str, Any], raw_template: dict[str, Any]) -> None:
    redrive = expanded["Resources"]["WorkQueue"]["Properties"]["RedrivePolicy"]
    receive_count = raw_template["Parameters"]["MaxReceiveCount"]

    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert receive_count["MinValue"] >= 5
    assert receive_count["Default"] >= 5


def test_dead_letter_queue_keeps_14_days(expanded: dict[str, Any]) -> None:
    assert expanded["Resources"]["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 1209600


@pytest.mark.parametrize("queue", ["WorkQueue", "DeadLetterQueue"])
def test_queue_encrypted(expanded: dict[str, Any], queue: str) -> None:
    assert expanded["Resources"][queue]["Properties"]["SqsManagedSseEnabled"] is True


def test_dead_letter_queue_url_given_to_worker(expanded: dict[str, Any]) -> None:
    variables = expanded["Resources"]["WorkerFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": "DeadLetterQueue"}


def test_dedupe_table_shape(expanded: dict[str, Any]) -> None:
    properties = expanded["Resources"]["DedupeTable"]["Properties"]

    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


# --- IAM ----------------------------------------------------------------------------------------------


def test_no_wildcard_resource_but_unscopable(expanded: dict[str, Any]) -> None:
    wildcard = []
    for role, document in _policy_documents(expanded):
        for statement in _statements(document):
            if "*" not in _as_list(statement.get("Resource", [])):
                continue
            actions = set(_as_list(statement["Action"]))
            if not actions <= set(UNSCOPABLE_ACTIONS):
                wildcard.append(f"{role}: {sorted(actions - set(UNSCOPABLE_ACTIONS))}")
    assert wildcard == []


def test_roles_attach_no_managed_policies(expanded: dict[str, Any]) -> None:
    # AWS managed policies such as AWSLambdaSQSQueueExecutionRole grant on every resource.
    attached = {
        name: role["Properties"]["ManagedPolicyArns"]
        for name, role in _resources(expanded, "AWS::IAM::Role").items()
        if role["Properties"].get("ManagedPolicyArns")
    }
    assert attached == {}


def test_no_statement_allows_all_actions(expanded: dict[str, Any]) -> None:
    broad = [
        f"{role}: {statement['Action']}"
        for role, document in _policy_documents(expanded)
        for statement in _statements(document)
        if any(action == "*" or action.endswith(":*") for action in _as_list(statement.get("Action", [])))
    ]
    assert broad == []


def test_state_machine_named_from_stack(raw_template: dict[str, Any]) -> None:
    properties = raw_template["Resources"]["UpgradeStateMachine"]["Properties"]
    assert properties["Name"] == {"Fn::Sub": "${AWS::StackName}-upgrade"}


def test_webhook_answers_tasks_of_this_state_machine(raw_template: dict[str, Any]) -> None:
    document = raw_template["Resources"]["WebhookRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    callbacks = [s for s in _statements(document) if "states:SendTaskSuccess" in _as_list(s["Action"])]

    assert len(callbacks) == 1
    assert set(_as_list(callbacks[0]["Action"])) == {"states:SendTaskSuccess", "states:SendTaskFailure"}
    assert callbacks[0]["Resource"]["Fn::Sub"].endswith(":stateMachine:${AWS::StackName}-upgrade")


# --- functions ----------------------------------------------------------------------------------------


def test_functions_use_expected_handlers(expanded: dict[str, Any]) -> None:
    handlers = {name: fn["Properties"]["Handler"] for name, fn in _resources(expanded, "AWS::Lambda::Function").items()}
    assert handlers == EXPECTED_HANDLERS


@pytest.mark.parametrize("handler_path", sorted(EXPECTED_HANDLERS.values()))
def test_handler_resolves_to_callable(handler_path: str) -> None:
    module_name, attribute = handler_path.rsplit(".", 1)
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute, None)), f"{handler_path} is not a callable"


@pytest.mark.parametrize("function", sorted(EXPECTED_HANDLERS))
def test_environment_names_contract_variables(expanded: dict[str, Any], function: str) -> None:
    variables = set(expanded["Resources"][function]["Properties"]["Environment"]["Variables"])
    unknown = {name for name in variables - CONTRACT_VARIABLES if not name.startswith("POWERTOOLS_")}

    assert unknown == set()
    assert variables & SECRET_VALUE_VARIABLES == set()
    assert REQUIRED_VARIABLES[function] <= variables, f"missing {REQUIRED_VARIABLES[function] - variables}"


def test_powertools_metrics_settings(raw_template: dict[str, Any]) -> None:
    variables = raw_template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert variables["POWERTOOLS_SERVICE_NAME"] == SERVICE_NAME


@pytest.mark.parametrize("function", sorted(EXPECTED_HANDLERS))
def test_function_logs_to_retained_group(expanded: dict[str, Any], function: str) -> None:
    log_group = expanded["Resources"][function]["Properties"]["LoggingConfig"]["LogGroup"]
    properties = expanded["Resources"][log_group["Ref"]]["Properties"]
    assert properties["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_webhook_behind_public_function_url(expanded: dict[str, Any]) -> None:
    url = expanded["Resources"]["WebhookFunctionUrl"]["Properties"]
    webhook = expanded["Resources"]["WebhookFunction"]["Properties"]

    assert url["AuthType"] == "NONE"
    assert url["TargetFunctionArn"] == {"Ref": "WebhookFunction"}
    assert webhook["Timeout"] <= 10
    assert webhook["MemorySize"] <= 256


def test_build_target_matches_runtime(raw_template: dict[str, Any]) -> None:
    function = raw_template["Globals"]["Function"]
    architecture = {"arm64": "aarch64", "x86_64": "x86_64"}[function["Architectures"][0]]

    assert function["Runtime"] == "python" + LAMBDA_TARGET.python_version
    assert all(platform.endswith(architecture) for platform in LAMBDA_TARGET.platforms)


def test_code_is_the_packaged_zip(raw_template: dict[str, Any]) -> None:
    code = (TEMPLATE.parent / raw_template["Globals"]["Function"]["CodeUri"]).resolve()
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")

    assert code == ROOT / "build" / "css-upgrade-scout.zip"
    assert "--out build/css-upgrade-scout.zip" in makefile


# --- secrets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("variable", "parameter"), sorted(SECRET_NAME_VARIABLES.items()))
def test_secret_passed_by_name(expanded: dict[str, Any], variable: str, parameter: str) -> None:
    sources = {
        name: _parameter_of(fn["Properties"]["Environment"]["Variables"][variable])
        for name, fn in _resources(expanded, "AWS::Lambda::Function").items()
        if variable in fn["Properties"]["Environment"]["Variables"]
    }
    assert sources, f"no function gets {variable}"
    assert set(sources.values()) == {parameter}


@pytest.mark.parametrize("parameter", sorted(SECRET_NAME_VARIABLES.values()))
def test_secret_parameter_has_no_value(raw_template: dict[str, Any], parameter: str) -> None:
    definition = raw_template["Parameters"][parameter]
    assert definition.get("Default", "") == ""
    assert ":" not in definition["AllowedPattern"], "an ARN or a URL would pass the pattern"


def test_secrets_read_only_by_name(expanded: dict[str, Any]) -> None:
    secret_resources = [
        statement["Resource"]
        for _, document in _policy_documents(expanded)
        for statement in _statements(document)
        if "secretsmanager:GetSecretValue" in _as_list(statement["Action"])
    ]
    pattern = re.compile(r"^arn:\$\{AWS::Partition\}:secretsmanager:\$\{AWS::Region\}:\$\{AWS::AccountId\}:secret:\$\{(\w+)\}-\?{6}$")

    assert secret_resources
    for resource in secret_resources:
        match = pattern.match(resource["Fn::Sub"])
        assert match, resource
        assert match.group(1) in SECRET_NAME_VARIABLES.values()


def test_template_creates_no_secret(expanded: dict[str, Any]) -> None:
    assert _resources(expanded, "AWS::SecretsManager::Secret") == {}


# --- schedule, alarms, outputs ------------------------------------------------------------------------


def test_scan_schedule_shape(expanded: dict[str, Any]) -> None:
    schedules = _resources(expanded, "AWS::Scheduler::Schedule")
    assert set(schedules) == {"ScanFunctionSchedule"}

    properties = schedules["ScanFunctionSchedule"]["Properties"]
    assert properties["ScheduleExpressionTimezone"] == {"Ref": "ScanScheduleTimezone"}
    assert properties["ScheduleExpression"] == {"Ref": "ScanScheduleExpression"}
    assert properties["FlexibleTimeWindow"]["Mode"] == "FLEXIBLE"
    assert properties["Target"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert properties["Name"] == {"Fn::Sub": "${AWS::StackName}-scan"}


def test_scan_may_only_send_to_work_queue(expanded: dict[str, Any]) -> None:
    document = expanded["Resources"]["ScanRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    sqs = [s for s in _statements(document) if any(a.startswith("sqs:") for a in _as_list(s["Action"]))]

    assert len(sqs) == 1
    assert _as_list(sqs[0]["Action"]) == ["sqs:SendMessage"]
    assert sqs[0]["Resource"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]}


@pytest.mark.parametrize(
    ("namespace", "metric", "dimension"),
    [
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", {"Name": "QueueName", "Value": {"Fn::GetAtt": ["WorkQueue", "QueueName"]}}),
        ("AWS/Lambda", "Errors", {"Name": "FunctionName", "Value": {"Ref": "WorkerFunction"}}),
        ("AWS/Lambda", "Throttles", {"Name": "FunctionName", "Value": {"Ref": "WorkerFunction"}}),
        (METRICS_NAMESPACE, "ConfigurationFault", {"Name": "service", "Value": SERVICE_NAME}),
    ],
)
def test_alarm_notifies_alarm_topic(expanded: dict[str, Any], namespace: str, metric: str, dimension: dict) -> None:
    alarms = [
        alarm["Properties"]
        for alarm in _resources(expanded, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["Namespace"] == namespace
        and alarm["Properties"]["MetricName"] == metric
        and alarm["Properties"]["Dimensions"] == [dimension]
    ]
    assert len(alarms) == 1, f"expected one alarm on {namespace} {metric} {dimension}"
    assert alarms[0]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert alarms[0]["ComparisonOperator"] == "GreaterThanThreshold"


def test_outputs_present(raw_template: dict[str, Any]) -> None:
    assert EXPECTED_OUTPUTS <= set(raw_template["Outputs"])


def test_parameters_documented(raw_template: dict[str, Any]) -> None:
    undocumented = [name for name, parameter in raw_template["Parameters"].items() if not parameter.get("Description")]
    assert undocumented == []


def test_number_parameters_bounded(raw_template: dict[str, Any]) -> None:
    unbounded = [
        name
        for name, parameter in raw_template["Parameters"].items()
        if parameter["Type"] == "Number" and "AllowedValues" not in parameter and "MinValue" not in parameter
    ]
    assert unbounded == []


def test_execution_disabled_by_default(raw_template: dict[str, Any]) -> None:
    assert raw_template["Parameters"]["UpgradeExecutionEnabled"]["Default"] == "false"


# --- state machine ------------------------------------------------------------------------------------


def _transitions(state: dict[str, Any]) -> list[str]:
    targets = [state[key] for key in ("Next", "Default") if key in state]
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    return targets


def _choice_variables(rule: dict[str, Any]) -> Iterator[str]:
    if "Variable" in rule:
        yield rule["Variable"]
    for key in ("And", "Or"):
        for nested in rule.get(key, []):
            yield from _choice_variables(nested)
    if "Not" in rule:
        yield from _choice_variables(rule["Not"])


def _payload(state: dict[str, Any]) -> dict[str, Any] | None:
    return state.get("Parameters", {}).get("Payload")


def test_definition_uri_points_at_file(raw_template: dict[str, Any]) -> None:
    uri = raw_template["Resources"]["UpgradeStateMachine"]["Properties"]["DefinitionUri"]
    assert (TEMPLATE.parent / uri).resolve() == DEFINITION


def test_substitutions_match_placeholders(raw_template: dict[str, Any]) -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", DEFINITION.read_text(encoding="utf-8")))
    substitutions = raw_template["Resources"]["UpgradeStateMachine"]["Properties"]["DefinitionSubstitutions"]

    assert placeholders == set(substitutions)
    assert substitutions["WorkflowFunctionArn"] == {"Fn::GetAtt": ["WorkflowFunction", "Arn"]}


def test_transitions_target_existing_states(definition: dict[str, Any]) -> None:
    states = definition["States"]
    dangling = [f"{name} -> {target}" for name, state in states.items() for target in _transitions(state) if target not in states]
    assert definition["StartAt"] in states
    assert dangling == []


def test_every_state_reachable(definition: dict[str, Any]) -> None:
    states = definition["States"]
    reached, pending = set(), [definition["StartAt"]]
    while pending:
        name = pending.pop()
        if name in reached or name not in states:
            continue
        reached.add(name)
        pending.extend(_transitions(states[name]))
    assert set(states) - reached == set()


def test_tasks_invoke_workflow_actions(definition: dict[str, Any]) -> None:
    tasks = {name: state for name, state in definition["States"].items() if state["Type"] == "Task"}
    actions = {}
    for name, state in tasks.items():
        assert state["Parameters"]["FunctionName"] == "${WorkflowFunctionArn}", name
        payload = _payload(state)
        # Check merges a constant {"action": "check"} over the execution input (see the Prepare state).
        actions[name] = payload["action"] if payload else "check"

    assert set(actions.values()) <= WORKFLOW_ACTIONS
    assert set(actions.values()) >= WORKFLOW_ACTIONS - {"abort_upgrade"}


def test_check_action_cannot_be_overridden(definition: dict[str, Any]) -> None:
    prepare = definition["States"][definition["StartAt"]]
    check = definition["States"]["Check"]

    assert prepare["Parameters"]["check_action"] == {"action": "check"}
    # The later argument of States.JsonMerge wins, so the input's own "action" is replaced.
    assert check["Parameters"]["Payload.$"] == "States.JsonMerge($.request, $.check_action, false)"


def test_approval_waits_for_task_token(definition: dict[str, Any]) -> None:
    approval = definition["States"]["RequestApproval"]

    assert approval["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert approval["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert approval["TimeoutSeconds"] > 0
    assert approval["ResultSelector"] == {"approved_by.$": "$.approved_by"}


def test_tasks_retry_lambda_service_errors(definition: dict[str, Any]) -> None:
    missing = [
        name
        for name, state in definition["States"].items()
        if state["Type"] == "Task"
        and not any(LAMBDA_SERVICE_ERRORS <= set(retrier["ErrorEquals"]) for retrier in state.get("Retry", []))
    ]
    assert missing == []


def test_catchers_name_known_errors(definition: dict[str, Any]) -> None:
    unknown = {
        error
        for state in definition["States"].values()
        for catcher in state.get("Catch", [])
        for error in catcher["ErrorEquals"]
        if error not in WORKFLOW_ERRORS and not error.startswith("States.")
    }
    assert unknown == set()


def test_every_workflow_error_caught(definition: dict[str, Any]) -> None:
    caught = set()
    for state in definition["States"].values():
        for catcher in state.get("Catch", []):
            caught.update(catcher["ErrorEquals"])

    assert WORKFLOW_ERRORS <= caught
    assert "States.TaskFailed" in caught


def test_catchers_end_in_terminal_states(definition: dict[str, Any]) -> None:
    states = definition["States"]
    not_terminal = [
        catcher["Next"]
        for state in states.values()
        for catcher in state.get("Catch", [])
        if states[catcher["Next"]]["Type"] not in {"Fail", "Succeed"}
    ]
    assert not_terminal == []


def test_choices_read_fields_written_before(definition: dict[str, Any]) -> None:
    """Each Choice reads `$.<slot>.<field>`; a state writing `<slot>` must select `<field>` into it."""
    states = definition["States"]
    start = states[definition["StartAt"]]
    unwritten = []
    for name, state in states.items():
        if state["Type"] != "Choice":
            continue
        for rule in state["Choices"]:
            for variable in _choice_variables(rule):
                slot, field = variable.split(".")[1:3]
                written = [start["Parameters"].get(slot, {})]
                written += [
                    writer.get("ResultSelector") or writer.get("Parameters", {})
                    for writer in states.values()
                    if writer.get("ResultPath") == f"$.{slot}"
                ]
                if not all(field in keys or f"{field}.$" in keys for keys in written if keys):
                    unwritten.append(f"{name}: {variable}")
    assert unwritten == []


def test_upgrade_retries_bounded(definition: dict[str, Any]) -> None:
    decision = definition["States"]["RetryDecision"]
    (rule,) = decision["Choices"]

    assert rule["Variable"] == "$.retry.count"
    assert rule["Next"] == "CountRetry"
    assert definition["States"][decision["Default"]]["Type"] == "Fail"
    assert definition["States"]["CountRetry"]["Next"] == "RetryUpgrade"
