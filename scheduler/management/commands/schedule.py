"""`manage.py schedule list|backfill|pause|resume|cancel|disable|enable|unlock|sync` — the Schedule
triggers' states and backfills from the command line (the admin has the same actions)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduler import actions, service


def _pairs(values: list[str] | None, what: str) -> dict[str, str] | None:
    if not values:
        return None
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep:
            raise CommandError(f"{what} {value!r} is not KEY=VALUE")
        pairs[key] = rest
    return pairs


class Command(BaseCommand):
    help = "Inspect Schedule triggers, run and steer their backfills."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        listing = commands.add_parser("list", help="every Schedule trigger with its state")
        listing.add_argument("--namespace")
        commands.add_parser("sync", help="re-make trigger states and PeriodicTasks from the flows' YAML")
        for name, text in (("pause", "pause the trigger's backfill"), ("resume", "resume the trigger's backfill"),
                           ("cancel", "cancel the trigger's backfill"), ("disable", "switch the trigger off"),
                           ("enable", "switch the trigger on (it fires from now)"),
                           ("unlock", "release the trigger's evaluation lock"), ("backfill", "replay past dates")):
            action = commands.add_parser(name, help=text)
            action.add_argument("namespace")
            action.add_argument("flow_id")
            action.add_argument("trigger_id")
            if name == "backfill":
                action.add_argument("--start", required=True, help="ISO date, e.g. 2025-01-01T00:00:00Z")
                action.add_argument("--end", help="ISO date (default: now)")
                action.add_argument("--input", action="append", metavar="KEY=VALUE")
                action.add_argument("--label", action="append", metavar="KEY=VALUE")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "list":
                self._list(options.get("namespace"))
                return
            if action == "sync":
                service.sync_all()
                return
            where = (options["namespace"], options["flow_id"], options["trigger_id"])
            if action == "backfill":
                backfill = actions.start_backfill(*where, start=options["start"], end=options["end"],
                                                  inputs=_pairs(options["input"], "--input"),
                                                  labels=_pairs(options["label"], "--label")).backfill
                self.stdout.write(f"backfill {backfill['id']}: {backfill['start']} → {backfill['end']}")
            elif action in ("pause", "resume"):
                actions.set_backfill_paused(*where, action == "pause")
            elif action == "cancel":
                actions.delete_backfill(*where)
            elif action in ("disable", "enable"):
                actions.set_disabled(*where, action == "disable")
            elif action == "unlock":
                actions.unlock(*where)
        except (LookupError, ValueError) as error:
            raise CommandError(str(error)) from None

    def _list(self, namespace: str | None) -> None:
        for state in actions.states(namespace):
            switch = "on" if state.fires else ("disabled" if state.disabled else "off in its YAML")
            backfill = ""
            if state.backfill:
                paused = ", paused" if state.backfill.get("paused") else ""
                backfill = f"  backfill at {state.backfill['cursor']} until {state.backfill['end']}{paused}"
            next_date = state.next_date.isoformat() if state.next_date else "-"
            self.stdout.write(f"{state.namespace}.{state.flow_id} {state.trigger_id}: {switch}, "
                              f"last {state.last_date.isoformat()}, next {next_date}{backfill}")
