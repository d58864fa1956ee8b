"""`manage.py execution kill|resume|restart|replay|set-state`: act on an execution of the
configured database.

The actions are the executor's own (executor/service.py), taken under the execution's lock, so
they are safe while the executor runs; the jobs and messages they cause go through the
configured broker, which the executor and workers consume.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator.management.commands.flow import parse_inputs


class Command(BaseCommand):
    help = "Kill, resume, restart or replay an execution, or change a task run's state."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        kill = actions.add_parser("kill", help="kill an execution and the subflows it waits for")
        kill.add_argument("execution_id")
        resume = actions.add_parser("resume", help="resume a paused execution")
        resume.add_argument("execution_id")
        resume.add_argument("--input", action="append", default=[], metavar="KEY=VALUE",
                            help="an input of the pause's onResume (repeatable)")
        restart = actions.add_parser("restart", help="run the failed task runs of a FAILED or KILLED execution again")
        restart.add_argument("execution_id")
        restart.add_argument("--revision", type=int, default=None,
                             help="restart on this revision of the flow (a new execution when it differs)")
        replay = actions.add_parser("replay", help="a new execution keeping what ran before a task run")
        replay.add_argument("execution_id")
        replay.add_argument("--from", dest="task_run_id", default=None, help="the task run to replay from "
                            "(default: the whole execution)")
        replay.add_argument("--revision", type=int, default=None, help="the flow revision to replay on")
        set_state = actions.add_parser("set-state", help="give an ended task run another state")
        set_state.add_argument("execution_id")
        set_state.add_argument("task_run_id")
        set_state.add_argument("state", choices=["SUCCESS", "WARNING", "FAILED"])

    def handle(self, *args: Any, **options: Any) -> None:
        from executor import service
        from orchestrator.models import Execution
        from orchestrator.states import State

        execution_id = options["execution_id"]
        action = options["action"]
        try:
            if action == "kill":
                service.kill_execution(execution_id)
            elif action == "resume":
                service.resume_execution(execution_id, parse_inputs(options["input"]))
            elif action == "restart":
                restarted = service.restart_execution(execution_id, options["revision"])
                if restarted is not None:
                    self.stdout.write(f"Execution {restarted.id} restarts {execution_id} on revision "
                                      f"{restarted.flow_revision}")
                    return
            elif action == "set-state":
                service.change_task_run_state(execution_id, options["task_run_id"], State(options["state"]))
            else:
                replay = service.replay_execution(execution_id, options["task_run_id"], options["revision"])
                self.stdout.write(f"Execution {replay.id} replays {execution_id}")
                return
        except LookupError as error:
            raise CommandError(str(error).strip("'\""))
        except ValueError as error:  # NotKillable, NotPaused, NotApplicable
            raise CommandError(str(error))
        execution = Execution.objects.get(id=execution_id)
        self.stdout.write(f"Execution {execution_id} is {execution.state}")
