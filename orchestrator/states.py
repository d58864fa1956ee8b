"""The one state enum of executions and task runs, its groups and its allowed transitions.

Pure Python: the executor's decision core imports this, so it must not import Django.
"""

from __future__ import annotations

from enum import Enum


class State(str, Enum):
    CREATED = "CREATED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    RETRYING = "RETRYING"
    RETRIED = "RETRIED"
    SKIPPED = "SKIPPED"

    def __str__(self) -> str:  # so f-strings print "SUCCESS", not "State.SUCCESS"
        return self.value

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_failed(self) -> bool:
        return self in FAILED_STATES


TERMINAL = frozenset(
    {State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED, State.RETRIED, State.SKIPPED}
)
# States a task run or execution is in while something may still happen to it.
ACTIVE = frozenset(State) - TERMINAL
FAILED_STATES = frozenset({State.FAILED, State.KILLED})
# Terminal states that count as "it went well" for the parent's outcome.
SUCCESSFUL = frozenset({State.SUCCESS, State.WARNING, State.SKIPPED})

# The final state of a group of task runs: the worst one wins.
_SEVERITY = {
    State.SKIPPED: 0,
    State.SUCCESS: 1,
    State.WARNING: 2,
    State.CANCELLED: 3,
    State.RETRIED: 3,
    State.FAILED: 4,
    State.KILLED: 5,
}

ALLOWED_TRANSITIONS: dict[State, frozenset[State]] = {
    State.CREATED: frozenset(
        {State.QUEUED, State.RUNNING, State.SKIPPED, State.KILLING, State.KILLED, State.CANCELLED, State.FAILED,
         State.SUCCESS, State.WARNING, State.PAUSED}
    ),
    State.QUEUED: frozenset({State.RUNNING, State.KILLING, State.KILLED, State.CANCELLED, State.FAILED}),
    State.RUNNING: frozenset(
        {State.SUCCESS, State.WARNING, State.FAILED, State.KILLING, State.KILLED, State.PAUSED, State.RETRYING,
         State.CANCELLED, State.RETRIED}  # RETRIED: a flow retry made a new execution in its place
    ),
    State.PAUSED: frozenset(
        {State.RUNNING, State.KILLING, State.KILLED, State.FAILED, State.SUCCESS, State.WARNING, State.CANCELLED}
    ),
    # A retry: the next attempt is dispatched like the first one.
    State.RETRYING: frozenset({State.CREATED, State.RUNNING, State.RETRIED, State.KILLING, State.KILLED, State.FAILED}),
    State.RESTARTED: frozenset({State.RUNNING, State.CREATED, State.KILLING, State.KILLED, State.FAILED}),
    State.KILLING: frozenset({State.KILLED}),
    # Terminal states move only through an explicit user action: restart, retry or markAs.
    State.SUCCESS: frozenset({State.RESTARTED, State.FAILED, State.WARNING}),
    State.WARNING: frozenset({State.RESTARTED, State.SUCCESS, State.FAILED}),
    State.FAILED: frozenset({State.RESTARTED, State.RETRIED, State.SUCCESS, State.WARNING}),
    State.KILLED: frozenset({State.RESTARTED}),
    State.CANCELLED: frozenset(),
    State.RETRIED: frozenset(),
    State.SKIPPED: frozenset(),
}


class IllegalTransition(ValueError):
    def __init__(self, current: State, target: State) -> None:
        super().__init__(f"cannot go from {current} to {target}")
        self.current = current
        self.target = target


def can_transition(current: State, target: State) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


def check_transition(current: State, target: State) -> None:
    if not can_transition(current, target):
        raise IllegalTransition(current, target)


def worst(states) -> State:
    """The combined outcome of terminal states (KILLED > FAILED > WARNING > SUCCESS)."""
    result = State.SUCCESS
    for state in states:
        if _SEVERITY.get(state, 0) > _SEVERITY[result]:
            result = state
    return result
