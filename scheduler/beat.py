"""celery beat's scheduler for Harrier: django-celery-beat's DatabaseScheduler, which sees a
PeriodicTask created or changed while beat starts.

DatabaseScheduler takes its first change stamp only at the tick after its initial read, so a
trigger deployed in between would wait for its five-minute full sync. Taking the stamp before
the initial read makes such a change a change like any other, seen at the next tick.
"""

from __future__ import annotations

from django_celery_beat.schedulers import DatabaseScheduler as _DatabaseScheduler


class DatabaseScheduler(_DatabaseScheduler):
    def setup_schedule(self) -> None:
        stamp = self.Changes.last_change()
        if stamp is None:  # no change recorded yet: record one, so that the next one compares
            self.Changes.update_changed()
            stamp = self.Changes.last_change()
        self._last_timestamp = stamp
        super().setup_schedule()
