"""The Scheduler: Schedule triggers driven by celery beat (service.py), their dates (dates.py,
planning.py) and conditions (conditions.py); trigger declarations live in triggers/.

The names of its Celery tasks are here, so that importing them needs neither Django nor a database.
"""

FIRE_TASK = "harrier.scheduler.fire"
SWEEP_TASK = "harrier.scheduler.sweep"
SCHEDULER_QUEUE = "scheduler"
