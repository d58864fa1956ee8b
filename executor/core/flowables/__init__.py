"""Kestra's flowable tasks, decided by the pure core: one handler module per type, registered in
`executor.core.decide.FLOWABLES` when imported. Importing this package registers them all.

The shared machinery (groups of task runs, `errors` and `finally`, loop values) is in `common`;
docs/flowable-tasks.md describes what each flowable does.
"""

from executor.core.flowables import (  # noqa: F401
    allow_failure, dag, each_parallel, each_sequential, exit, for_each_item, foreach, if_task, log_fetch, loop_until,
    parallel, pause, resume, subflow, switch, working_directory,
)
