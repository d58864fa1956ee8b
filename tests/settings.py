"""Settings for the test run: Harrier's own, pointed at this machine's PostgreSQL and a Redis
database of the tests' own. Set before Django reads its settings, and inherited by every
process the tests start."""

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
# A Redis database of its own, flushed at the start, so tests never see another run's messages.
TEST_REDIS_DB = int(os.environ.get("HARRIER_TEST_REDIS_DB", "11"))

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/harrier")
os.environ.setdefault("CELERY_BROKER_URL", f"redis://127.0.0.1:6379/{TEST_REDIS_DB}")
os.environ.setdefault("HARRIER_HOME", str(_ROOT / ".harrier" / "test"))
os.environ.setdefault("HARRIER_WORKER_GROUPS", "gpu,nodb,liveness")
# Every executor step that reads only part of an execution is checked against one over all of it.
os.environ.setdefault("HARRIER_CHECK_FOCUSED_STEPS", "1")
# The admin's static files are not collected for tests; WhiteNoise only needs the directory.
os.environ.setdefault("HARRIER_STATIC_ROOT", str(Path(os.environ["HARRIER_HOME"]) / "static"))
Path(os.environ["HARRIER_STATIC_ROOT"]).mkdir(parents=True, exist_ok=True)

from orchestrator.settings import *  # noqa: E402,F401,F403
