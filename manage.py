#!/usr/bin/env python
"""Harrier's command line: `python manage.py server local`, `flow run FILE`, `benchmark`…"""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
    if sys.argv[1:3] in (["server", "local"], ["flow", "run"]):
        # Everything in this process: no broker needed.
        os.environ.setdefault("HARRIER_BUS", "local")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
