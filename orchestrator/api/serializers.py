"""The shapes the API reads and answers, declared for the OpenAPI document (drf-spectacular).

Answers are built by orchestrator/kestra_json.py and orchestrator/api/flows.py from the rows
(one place writes Kestra's JSON); these serializers describe them and validate JSON bodies.
"""

from __future__ import annotations

from rest_framework import serializers

from orchestrator.states import State

# Named once each, for the OpenAPI document's enums (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]).
STATES = [s.value for s in State]
END_STATES = [State.SUCCESS.value, State.WARNING.value, State.FAILED.value]
LOG_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]


class ErrorDetail(serializers.Serializer):
    path = serializers.CharField(help_text="the property or input at fault, e.g. `tasks[1].message`")
    message = serializers.CharField()
    line = serializers.IntegerField(allow_null=True, help_text="1-based line of the YAML source, when known")


class Error(serializers.Serializer):
    message = serializers.CharField()
    details = ErrorDetail(many=True, required=False)


class Flow(serializers.Serializer):
    id = serializers.CharField()
    namespace = serializers.CharField()
    revision = serializers.IntegerField()
    disabled = serializers.BooleanField()
    deleted = serializers.BooleanField()
    description = serializers.CharField(required=False)
    labels = serializers.JSONField(required=False)
    inputs = serializers.ListField(child=serializers.DictField(), required=False)
    variables = serializers.DictField(required=False)
    tasks = serializers.ListField(child=serializers.DictField())
    errors = serializers.ListField(child=serializers.DictField(), required=False)
    triggers = serializers.ListField(child=serializers.DictField(), required=False)
    source = serializers.CharField(required=False, help_text="the YAML as deployed (with `source=true`, and on "
                                                              "create and update)")


class PagedFlows(serializers.Serializer):
    results = Flow(many=True)
    total = serializers.IntegerField()


class FlowValidation(serializers.Serializer):
    index = serializers.IntegerField(help_text="0-based position of the flow in the body (documents split by ---)")
    flow = serializers.CharField(allow_null=True)
    namespace = serializers.CharField(allow_null=True)
    constraints = serializers.CharField(allow_null=True, help_text="every problem, one a line; null when valid")
    details = ErrorDetail(many=True)
    outdated = serializers.BooleanField()
    deprecationPaths = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    infos = serializers.ListField(child=serializers.CharField())


class StateHistory(serializers.Serializer):
    state = serializers.ChoiceField(choices=STATES)
    date = serializers.DateTimeField()


class ExecutionState(serializers.Serializer):
    current = serializers.ChoiceField(choices=STATES)
    histories = StateHistory(many=True)
    startDate = serializers.DateTimeField(required=False)
    endDate = serializers.DateTimeField(required=False)
    duration = serializers.CharField(required=False, help_text="ISO-8601, e.g. PT1.5S")


class Label(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.CharField()


class TaskRun(serializers.Serializer):
    id = serializers.CharField()
    executionId = serializers.CharField()
    taskId = serializers.CharField()
    parentTaskRunId = serializers.CharField(allow_null=True)
    value = serializers.CharField(allow_null=True)
    iteration = serializers.IntegerField(allow_null=True)
    state = ExecutionState()
    attempts = serializers.ListField(child=serializers.DictField())
    outputs = serializers.DictField(allow_null=True)


class Execution(serializers.Serializer):
    id = serializers.CharField()
    namespace = serializers.CharField()
    flowId = serializers.CharField()
    flowRevision = serializers.IntegerField()
    state = ExecutionState()
    taskRunList = TaskRun(many=True)
    inputs = serializers.DictField()
    outputs = serializers.DictField(allow_null=True)
    labels = Label(many=True)
    variables = serializers.DictField(allow_null=True)
    trigger = serializers.DictField(allow_null=True)
    parentId = serializers.CharField(allow_null=True)
    originalId = serializers.CharField()
    scheduleDate = serializers.DateTimeField(allow_null=True, help_text="when it was asked to start; null for now")


class PagedExecutions(serializers.Serializer):
    results = Execution(many=True)
    total = serializers.IntegerField()
    totalIsExact = serializers.BooleanField(help_text="false when more rows matched than are counted")


class ChangeTaskRunState(serializers.Serializer):
    taskRunId = serializers.CharField(max_length=32)
    state = serializers.ChoiceField(choices=END_STATES)


class LogLine(serializers.Serializer):
    namespace = serializers.CharField()
    flowId = serializers.CharField()
    executionId = serializers.CharField()
    taskId = serializers.CharField(allow_null=True)
    taskRunId = serializers.CharField(allow_null=True)
    attemptNumber = serializers.IntegerField(allow_null=True)
    level = serializers.ChoiceField(choices=LOG_LEVELS)
    message = serializers.CharField()
    timestamp = serializers.DateTimeField()


class Version(serializers.Serializer):
    version = serializers.CharField()


class Worker(serializers.Serializer):
    id = serializers.CharField(help_text="host:pid of the process running jobs")
    host = serializers.CharField()
    pid = serializers.IntegerField()
    groups = serializers.ListField(child=serializers.CharField())
    since = serializers.CharField(allow_null=True)


class Workers(serializers.Serializer):
    workers = Worker(many=True)
    waiting = serializers.CharField(required=False, allow_null=True,
                                    help_text="with `group`: why its jobs wait (no live worker), or null")

