"""The state enum's groups and transition table."""

import itertools

import pytest

from orchestrator.states import (
    ALLOWED_TRANSITIONS, TERMINAL, IllegalTransition, State, can_transition, check_transition, worst,
)


@pytest.mark.parametrize("current,target", list(itertools.product(State, State)))
def test_transition_table_is_the_only_guard(current, target):
    allowed = target in ALLOWED_TRANSITIONS[current]
    assert can_transition(current, target) is allowed
    if allowed:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition, match=f"cannot go from {current} to {target}"):
            check_transition(current, target)


def test_every_state_has_a_row():
    assert set(ALLOWED_TRANSITIONS) == set(State)


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_only_move_by_user_action(state):
    # Leaving a terminal state is a restart, retry or markAs, never back to RUNNING directly.
    assert State.RUNNING not in ALLOWED_TRANSITIONS[state]
    assert state.is_terminal


@pytest.mark.parametrize(
    "states,expected",
    [
        ([], State.SUCCESS),
        ([State.SUCCESS, State.SUCCESS], State.SUCCESS),
        ([State.SUCCESS, State.SKIPPED], State.SUCCESS),
        ([State.SUCCESS, State.WARNING], State.WARNING),
        ([State.WARNING, State.FAILED, State.SUCCESS], State.FAILED),
        ([State.FAILED, State.KILLED, State.WARNING], State.KILLED),
    ],
)
def test_final_state_rule(states, expected):
    # KILLED > FAILED > WARNING > SUCCESS
    assert worst(states) is expected
