"""`io.kestra.plugin.core.trigger.Webhook`: start an execution on an HTTP call to the flow's
webhook URL, which ends with `key`."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from scheduler.triggers import TriggerBase, TriggerType, old_aliases, register

NAME = "io.kestra.plugin.core.trigger.Webhook"


class WebhookProperties(TriggerBase):
    key: str = Field(min_length=1, max_length=256, description="The secret last part of the webhook URL.")
    wait: bool = Field(False, description="Answer the call only once the execution has ended.")
    returnOutputs: bool = Field(False, description="With `wait`, answer with the execution's outputs.")
    inputs: dict[str, Any] | None = Field(None, description="Inputs of the execution started.")

    @field_validator("conditions")
    @classmethod
    def _no_multiple_condition(cls, conditions: Any) -> Any:
        # Kestra refuses these: a webhook call is one event, there is no window to gather others.
        for condition in conditions or ():
            if condition.type.endswith("MultipleCondition"):
                raise ValueError("a Webhook trigger cannot use a MultipleCondition")
        return conditions


register(TriggerType(name=NAME, properties=WebhookProperties, kind="webhook", aliases=old_aliases(NAME),
                     title="Start an execution on an HTTP call"))
