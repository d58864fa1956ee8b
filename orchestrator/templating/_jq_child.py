"""The jq helper process (see jqrunner.py): one JSON request per line in, one reply per line out.

Runs with no environment, an address-space limit, and only the standard library and jq.
"""

import json
import os
import resource
import sys


def main() -> None:
    os.environ.clear()  # jq's $ENV and env must see nothing, not even the locale Python sets
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        import jq
    except ImportError:
        jq = None
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if jq is None:
            reply = {"error": "the jq package is not installed"}
        else:
            try:
                reply = {"ok": jq.compile(request["program"]).input_text(request["input"]).all()}
            except MemoryError:
                reply = {"error": "jq ran out of memory"}
            except Exception as exc:  # any jq failure is the template's error
                reply = {"error": str(exc)}
        try:
            text = json.dumps(reply, ensure_ascii=False, allow_nan=True)
        except (TypeError, ValueError) as exc:
            text = json.dumps({"error": f"unreadable jq output: {exc}"})
        sys.stdout.buffer.write((text + "\n").encode("utf-8"))
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
