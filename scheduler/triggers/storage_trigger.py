"""`io.kestra.plugin.aws.s3.Trigger` and `io.kestra.plugin.minio.Trigger`: list a bucket's
objects under a prefix at an interval (on a worker) and start an execution with the new ones,
downloaded into the internal storage; then MOVE or DELETE them, or leave them (NONE). Each
object (a key with its ETag) fires once."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from orchestrator.flowlang.types import Props, is_dynamic
from scheduler.triggers import TriggerType, register
from scheduler.triggers.polling_base import PollingProperties

AWS = "io.kestra.plugin.aws.s3.Trigger"
MINIO = "io.kestra.plugin.minio.Trigger"
MAX_KEYS = 1000


class MoveTo(Props):
    key: str = Field(min_length=1, description="The prefix the objects are moved under.")
    bucket: str | None = Field(None, description="The bucket they are moved to (default: the same).")


class StorageTriggerProperties(PollingProperties):
    bucket: str = Field(min_length=1)
    prefix: str | None = Field(None, description="Only the objects whose key starts with this.")
    regexp: str | None = Field(None, description="Only the objects whose whole key matches this expression.")
    maxKeys: int = Field(MAX_KEYS, ge=1, le=MAX_KEYS, description="At most this many objects per execution.")
    action: Literal["MOVE", "DELETE", "NONE"] = Field(description="What happens to an object once it fired.")
    moveTo: MoveTo | None = Field(None, description="Where MOVE puts the objects: {key, bucket}.")
    accessKeyId: str | None = None
    secretKeyId: str | None = None
    sessionToken: str | None = None
    region: str | None = None
    # Accepted as Kestra accepts them; listing is always recursive and by object.
    delimiter: str | None = None
    marker: str | None = None
    filter: Literal["FILES", "DIRECTORY", "BOTH"] | None = None

    @field_validator("regexp")
    @classmethod
    def _compiles(cls, value: Any) -> Any:
        if isinstance(value, str) and not is_dynamic(value):
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"not a valid regular expression: {error}") from None
        return value

    @model_validator(mode="after")
    def _move_needs_a_destination(self) -> "StorageTriggerProperties":
        if self.action == "MOVE" and self.moveTo is None:
            raise ValueError("action MOVE needs `moveTo` (the key prefix, and optionally the bucket, to move to)")
        if self.action != "MOVE" and self.moveTo is not None:
            raise ValueError(f"`moveTo` is only read with action MOVE, not {self.action}")
        return self


class AwsS3TriggerProperties(StorageTriggerProperties):
    endpointOverride: str | None = Field(None, description="An S3-compatible server's URL instead of AWS.")
    forcePathStyle: bool | None = None
    compatibilityMode: bool | None = None


class MinioTriggerProperties(StorageTriggerProperties):
    endpoint: str = Field(min_length=1, description="The MinIO server's URL, e.g. http://minio:9000.")


register(TriggerType(name=AWS, properties=AwsS3TriggerProperties, kind="polling",
                     title="Start an execution with new objects of an S3 bucket"))
register(TriggerType(name=MINIO, properties=MinioTriggerProperties, kind="polling",
                     title="Start an execution with new objects of a MinIO bucket"))
