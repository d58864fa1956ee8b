"""Everything in one process: the bus, the executor, workers and the indexer as threads.

`server local` and `flow run` use this, so a new user needs neither Redis nor PostgreSQL.
"""

from __future__ import annotations

import time

from orchestrator import bus
from orchestrator.models import Execution
from orchestrator.states import State
from workers import claims


class LocalRuntime:
    def __init__(self, worker_threads: int = 4) -> None:
        self.bus = bus.local_bus(worker_threads)
        bus.set_bus(self.bus)
        claims.set_claims(claims.MemoryClaims())
        from executor import delays

        delays.start_thread()

    def wait_for(self, execution_id: str, timeout: float) -> Execution:
        """Block until the execution is terminal and everything it emitted has been handled."""
        from executor.reconciler import reconcile_once

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"execution {execution_id} did not end within {timeout:g}s")
            self.bus.wait_idle(min(remaining, 1.0))
            execution = Execution.objects.get(id=execution_id)
            if State(execution.state).is_terminal:
                self.bus.wait_idle(max(deadline - time.monotonic(), 0.1))
                return execution
            if self.bus.wait_idle(0):
                # Nothing is moving yet the execution is not over: let the reconciler look.
                # (A retry or a pause waits in the repository: poll gently, not in a tight loop.)
                reconcile_once(idle_seconds=1)
                time.sleep(0.05)
