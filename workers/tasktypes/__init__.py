"""The runnable task types, one module each. Importing this package registers them all."""

from workers.tasktypes import debug, execution, flow_sleep, labels, log, output  # noqa: F401
from workers.tasktypes import scripts_python, scripts_shell  # noqa: F401
from workers.tasktypes import http  # noqa: F401
from workers.tasktypes import storage, storage_items  # noqa: F401
from workers.tasktypes import kv  # noqa: F401
from workers.tasktypes import for_each_item  # noqa: F401
from workers.tasktypes import celery_task  # noqa: F401
