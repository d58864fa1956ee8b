"""`manage.py execution kill|resume ID`: act on an execution of the configured database.

The actions are the executor's own (executor/service.py), taken under the execution's lock, so
they are safe while the executor runs; the jobs and messages they cause go through the
configured broker, which the executor and workers consume.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator.management.commands.flow import parse_inputs


class Command(BaseCommand):
    help = "Kill or resume an execution."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        kill = actions.add_parser("kill", help="kill an execution and the subflows it waits for")
        kill.add_argument("execution_id")
        resume = actions.add_parser("resume", help="resume a paused execution")
        resume.add_argument("execution_id")
        resume.add_argument("--input", action="append", default=[], metavar="KEY=VALUE",
                            help="an input of the pause's onResume (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        from executor.service import NotKillable, NotPaused, kill_execution, resume_execution
        from orchestrator.models import Execution

        execution_id = options["execution_id"]
        try:
            if options["action"] == "kill":
                kill_execution(execution_id)
            else:
                resume_execution(execution_id, parse_inputs(options["input"]))
        except LookupError as error:
            raise CommandError(str(error).strip("'\""))
        except (NotKillable, NotPaused) as error:
            raise CommandError(str(error))
        execution = Execution.objects.get(id=execution_id)
        self.stdout.write(f"Execution {execution_id} is {execution.state}")
