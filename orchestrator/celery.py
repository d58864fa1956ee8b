"""The Celery application: the transport between Harrier's components.

`celery -A orchestrator worker -Q worker.default` finds this module. Configuration comes from
Django settings (the CELERY_ namespace) but is read lazily, so a worker never needs a database.
"""

import os

from celery import Celery
from celery.signals import (
    celeryd_after_setup, task_postrun, task_prerun, worker_process_init, worker_process_shutdown, worker_shutdown,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")

app = Celery("harrier")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Every consumer is declared here so that any process can route to any queue by name.
app.conf.imports = ("executor.tasks", "workers.tasks", "orchestrator.indexer", "orchestrator.benchmarking",
                    "scheduler.tasks")
# Celery's Django fixup closes every database connection before and after each task unless
# this is set: a new connection per executor step costs more than the step. Connections are
# instead handled like Django handles them between requests (CONN_MAX_AGE, health checks),
# by the signal handlers below.
app.conf.CELERY_DB_REUSE_MAX = 2**62


@task_prerun.connect
@task_postrun.connect
def _recycle_connections(**kwargs) -> None:
    from django.db import close_old_connections

    close_old_connections()


# Worker liveness (workers/liveness.py): a worker of `worker.<group>` queues heartbeats from the
# process that runs its jobs — each prefork child, or the worker itself for threads and solo.
@celeryd_after_setup.connect
def _worker_groups(sender=None, instance=None, **kwargs) -> None:
    from workers import liveness

    liveness.on_worker_setup(instance)


@worker_process_init.connect
def _pool_child(**kwargs) -> None:
    from workers import liveness

    liveness.on_pool_child()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _leave(**kwargs) -> None:
    from workers import liveness

    liveness.on_shutdown()
