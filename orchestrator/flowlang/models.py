"""Declarations of a flow's own properties (everything but the tasks and triggers, which have
registries of their own). The validator checks flows with these models and the JSON Schema is
generated from them, so each rule is written once."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.flowlang.model_errors import describe_rule
from orchestrator.flowlang.types import (
    INPUTS_MARKER, Duration, InputList, Label, LabelValue, Props, parse_duration,
)
from workers.registry import ID_PATTERN, NAMESPACE_PATTERN, TASKS_MARKER

FLOW_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
INPUT_ID_PATTERN = r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"
TRIGGERS_MARKER = "x-harrier-triggers"

describe_rule(ID_PATTERN, "letters, digits, '_' and '-', starting with a letter or a digit")
describe_rule(FLOW_ID_PATTERN, "letters, digits, '.', '_' and '-', starting with a letter or a digit")
describe_rule(
    NAMESPACE_PATTERN, "lowercase letters, digits, '.', '_' and '-', starting with a lowercase letter or a digit"
)
describe_rule(INPUT_ID_PATTERN, "letters, digits, '.', '_' and '-', starting with a letter or a digit")

# Kestra's input types; BOOL is the later toggle-style boolean.
INPUT_TYPES = (
    "STRING", "ENUM", "SELECT", "MULTISELECT", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME", "DATE",
    "TIME", "DURATION", "FILE", "JSON", "YAML", "URI", "EMAIL", "SECRET", "ARRAY",
)
InputType = Literal[INPUT_TYPES]  # type: ignore[valid-type]

TaskDefinitions = Annotated[list[dict[str, Any]], Field(json_schema_extra={TASKS_MARKER: True})]
OptionalTaskDefinitions = Annotated[list[dict[str, Any]] | None, Field(json_schema_extra={TASKS_MARKER: True})]
TriggerDefinitions = Annotated[list[dict[str, Any]] | None, Field(json_schema_extra={TRIGGERS_MARKER: True})]


# -- retries ----------------------------------------------------------------------------------------

class _RetryBase(Props):
    maxAttempt: int | None = Field(None, ge=1, description="Attempts in all, the first one included.")
    maxDuration: Duration | None = Field(None, description="Stop retrying after this long.")
    warningOnRetry: bool | None = Field(None, description="End in WARNING when a retry was needed.")
    behavior: Literal["RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"] | None = None

    @model_validator(mode="after")
    def _interval_within_duration(self) -> "_RetryBase":
        interval = parse_duration(getattr(self, "interval", None) or getattr(self, "minInterval", None))
        limit = parse_duration(self.maxDuration)
        if interval is not None and limit is not None and limit <= interval:
            raise ValueError("'maxDuration' must be longer than the interval between attempts")
        return self


class ConstantRetry(_RetryBase):
    type: Literal["constant"]
    interval: Duration


class ExponentialRetry(_RetryBase):
    type: Literal["exponential"]
    interval: Duration
    maxInterval: Duration
    delayFactor: float | None = None


class RandomRetry(_RetryBase):
    type: Literal["random"]
    minInterval: Duration
    maxInterval: Duration


Retry = Annotated[Union[ConstantRetry, ExponentialRetry, RandomRetry], Field(discriminator="type")]


class Identity(BaseModel):
    """A task's or a trigger's id alone: checked when its type is missing or unknown, so that one
    mistake does not hide the other."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    id: str = Field(pattern=ID_PATTERN, max_length=256)


class RetryHolder(BaseModel):
    """Wraps a task's `retry` so that it is checked with the same declaration as the flow's."""

    retry: Retry


class TimeoutHolder(BaseModel):
    """Wraps a task's `timeout`: the common declaration (workers/registry.py) takes any string,
    and a timeout is a duration like every other."""

    timeout: Duration


# -- the other parts of a flow ----------------------------------------------------------------------

class Concurrency(Props):
    limit: int = Field(ge=1, description="Executions of this flow allowed to run at once.")
    behavior: Literal["QUEUE", "CANCEL", "FAIL"] | None = Field(
        None, description="What happens to an execution over the limit (default QUEUE)."
    )


class Output(Props):
    id: str = Field(pattern=INPUT_ID_PATTERN)
    type: InputType
    value: Any = Field(description="Usually an expression over the task outputs.")
    description: str | None = None
    displayName: str | None = Field(None, max_length=64)
    required: bool | None = None


class PluginDefault(Props):
    type: str = Field(min_length=1, description="A task or trigger type, or a prefix of types.")
    values: dict[str, Any] | None = None
    forced: bool | None = None


class _SlaBase(Props):
    id: str = Field(min_length=1)
    behavior: Literal["FAIL", "CANCEL", "NONE"]
    labels: dict[str, LabelValue] | list[Label] | None = None


class MaxDurationSla(_SlaBase):
    type: Literal["MAX_DURATION"]
    duration: Duration


class AssertionSla(_SlaBase):
    model_config = ConfigDict(populate_by_name=True)
    type: Literal["EXECUTION_ASSERTION"]
    assert_: str = Field(alias="assert", description="An expression that must stay true.")


Sla = Annotated[Union[MaxDurationSla, AssertionSla], Field(discriminator="type")]


class Check(Props):
    condition: str | None = Field(None, description="An expression; the check fails when it is false.")
    when: str | None = Field(None, description="Later name of `condition`.")
    message: str = Field(min_length=1)
    style: Literal["ERROR", "SUCCESS", "WARNING", "INFO"] | None = None
    behavior: Literal["BLOCK_EXECUTION", "FAIL_EXECUTION", "CREATE_EXECUTION"] | None = None

    @model_validator(mode="after")
    def _has_condition(self) -> "Check":
        if self.condition is None and self.when is None:
            raise ValueError("a check needs a `condition`")
        return self


class FlowModel(Props):
    """The top level of a flow. Tasks, inputs and triggers are lists of mappings here; each item is
    checked against its own declaration by the validator."""

    id: str = Field(min_length=1, max_length=100, pattern=FLOW_ID_PATTERN)
    namespace: str = Field(min_length=1, max_length=150, pattern=NAMESPACE_PATTERN)
    revision: int | None = Field(None, ge=1)
    description: str | None = None
    labels: dict[str, LabelValue] | list[Label] | None = None
    inputs: InputList | None = None
    variables: dict[str, Any] | None = None
    tasks: TaskDefinitions = Field(min_length=1)
    errors: OptionalTaskDefinitions = None
    finally_: OptionalTaskDefinitions = Field(None, alias="finally")
    afterExecution: OptionalTaskDefinitions = Field(
        None, description="Tasks to run once the execution has ended, whatever its state."
    )
    triggers: TriggerDefinitions = None
    outputs: list[Output] | None = None
    concurrency: Concurrency | None = None
    retry: Retry | None = None
    pluginDefaults: list[PluginDefault] | None = None
    taskDefaults: list[PluginDefault] | None = Field(None, description="Older name of `pluginDefaults`.")
    sla: list[Sla] | None = None
    checks: list[Check] | None = None
    disabled: bool = False
    deleted: bool = False

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, populate_by_name=True)


FLOW_KEYS = frozenset(field.alias or name for name, field in FlowModel.model_fields.items())


# -- inputs -----------------------------------------------------------------------------------------

class DependsOn(Props):
    inputs: list[str] | None = Field(None, description="Ids of the inputs this one depends on.")
    condition: str | None = Field(None, description="Show this input only when this expression is true.")


class InputBase(Props):
    id: str | None = Field(None, pattern=INPUT_ID_PATTERN, description="Dots make nested inputs.")
    name: str | None = Field(None, pattern=INPUT_ID_PATTERN, description="Older name of `id`.")
    type: InputType
    description: str | None = None
    displayName: str | None = Field(None, max_length=64)
    required: bool = True
    defaults: Any = None
    prefill: Any = None
    dependsOn: DependsOn | None = None


class StringInput(InputBase):
    validator: str | None = Field(None, description="A regular expression the value must match.")
    minLength: int | None = Field(None, ge=0, description="Fewest characters allowed.")
    maxLength: int | None = Field(None, ge=0, description="Most characters allowed.")


class ValuesInput(InputBase):
    values: list[str] | None = None
    expression: str | None = Field(None, description="An expression that gives the values.")
    allowCustomValue: bool | None = None
    autoSelectFirst: bool | None = None
    isRadio: bool | None = None


class MultiselectInput(ValuesInput):
    options: list[str] | None = Field(None, description="Older name of `values`.")
    itemType: InputType | None = None
    minLength: int | None = Field(None, ge=0, description="Fewest values that may be chosen.")
    maxLength: int | None = Field(None, ge=0, description="Most values that may be chosen.")


class IntInput(InputBase):
    min: int | None = None
    max: int | None = None


class FloatInput(InputBase):
    min: float | None = None
    max: float | None = None


class DurationInput(InputBase):
    min: Duration | None = None
    max: Duration | None = None


class TemporalInput(InputBase):
    after: str | None = None
    before: str | None = None


class FileInput(InputBase):
    extension: str | None = None
    allowedFileExtensions: list[str] | None = None


class ArrayInput(InputBase):
    itemType: InputType
    minLength: int | None = Field(None, ge=0, description="Fewest items allowed.")
    maxLength: int | None = Field(None, ge=0, description="Most items allowed.")


class InputIdentity(BaseModel):
    """An input's id alone: checked when its type is missing or unknown, so that one mistake does
    not hide the other."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    id: str | None = Field(None, pattern=INPUT_ID_PATTERN)
    name: str | None = Field(None, pattern=INPUT_ID_PATTERN)


INPUT_MODELS: dict[str, type[InputBase]] = {
    "STRING": StringInput, "SECRET": StringInput, "ENUM": ValuesInput, "SELECT": ValuesInput,
    "MULTISELECT": MultiselectInput, "INT": IntInput, "FLOAT": FloatInput, "DURATION": DurationInput,
    "DATETIME": TemporalInput, "DATE": TemporalInput, "TIME": TemporalInput, "FILE": FileInput,
    "ARRAY": ArrayInput,
}


def input_model(input_type: str) -> type[InputBase]:
    return INPUT_MODELS.get(input_type, InputBase)


__all__ = [
    "FLOW_KEYS", "FlowModel", "INPUTS_MARKER", "Identity", "INPUT_MODELS", "InputIdentity", "INPUT_TYPES", "RetryHolder", "TRIGGERS_MARKER",
    "TimeoutHolder", "input_model",
]
