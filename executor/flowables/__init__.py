"""The flowable task types, declared once each (properties and names); what they do is decided
by the executor. Importing this package registers them all."""

from executor.flowables import (  # noqa: F401
    allow_failure, dag, each_parallel, each_sequential, exit, for_each_item, foreach, if_task, log_fetch,
    loop_until, parallel, pause, resume, sequential, subflow, switch, wait_for, working_directory,
)
