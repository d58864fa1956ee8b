"""A real HTTP server for the HTTP task tests: the standard library's, in a thread, on a free port.

Routes:
  /echo            any method: JSON {method, path, query, headers, body} of the request
  /status/<code>   that status, with the body "status <code>"
  /redirect/<code>?to=<url>   that redirect status to <url>
  /loop/<n>        n redirects in a row before /echo
  /auth            200 for Basic user:secret or Bearer token-1, else 401
  /big/<n>         n bytes (a repeating pattern), streamed in 64 KiB pieces with a Content-Length
  /slow            a 200 whose body never comes until the server stops
  /empty           200 with no body
  /named           a file with a Content-Disposition name
  /latin1          text in ISO-8859-1, declared so
  /binary          bytes that are not text
  /poll/<name>?sleep=<s>   records when each call started and ended (`polls[name]`), takes s
                   seconds, and answers `answers[name]`: (status, JSON body), by default
                   (200, {"ready": false})
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PATTERN = bytes(range(256)) * 256  # 64 KiB


def big_body(size: int) -> bytes:
    """What /big/<size> sends (for small sizes, to compare)."""
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        body = self._body()
        self.server.requests.append((self.command, self.path, dict(self.headers.items())))
        route = parts[0] if parts else ""
        if route == "echo":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = base64.b64encode(body).decode()
            document = {"method": self.command, "path": url.path, "query": parse_qs(url.query),
                        "headers": {k.lower(): v for k, v in self.headers.items()}, "body": text}
            self._send(200, json.dumps(document).encode(), {"Content-Type": "application/json",
                                                            "X-Multi": "one", "x-multi": "two"})
        elif route == "status":
            self._send(int(parts[1]), f"status {parts[1]}".encode(), {"Content-Type": "text/plain"})
        elif route == "redirect":
            target = parse_qs(url.query)["to"][0]
            self._send(int(parts[1]), b"", {"Location": target})
        elif route == "loop":  # /loop/<n> redirects to /loop/<n-1>, and /loop/0 to /echo
            left = int(parts[1])
            self._send(302, b"", {"Location": f"/loop/{left - 1}" if left else "/echo"})
        elif route == "auth":
            given = self.headers.get("Authorization", "")
            good = {"Basic " + base64.b64encode(b"user:secret").decode(), "Bearer token-1"}
            if given in good:
                self._send(200, b"welcome", {"Content-Type": "text/plain"})
            else:
                self._send(401, b"who are you?", {"Content-Type": "text/plain", "WWW-Authenticate": "Basic"})
        elif route == "big":
            size = int(parts[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            sent = 0
            while sent < size:
                piece = PATTERN[: min(len(PATTERN), size - sent)]
                self.wfile.write(piece)
                sent += len(piece)
        elif route == "slow":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"x")
            self.wfile.flush()
            self.server.stopping.wait(120)
        elif route == "empty":
            self._send(200)
        elif route == "named":
            self._send(200, b"a,b\n1,2\n", {"Content-Type": "text/csv",
                                            "Content-Disposition": 'attachment; filename="../../etc/report.csv"'})
        elif route == "latin1":
            self._send(200, "café".encode("latin-1"), {"Content-Type": "text/plain; charset=ISO-8859-1"})
        elif route == "binary":
            self._send(200, b"\x89PNG\x00\xff\xfe", {"Content-Type": "image/png"})
        elif route == "poll":
            self._poll(parts[1], float(parse_qs(url.query).get("sleep", ["0"])[0]))
        else:
            self._send(404, b"no such route")

    def _poll(self, name: str, sleep: float) -> None:
        call = {"start": time.time(), "end": None}
        self.server.polls.setdefault(name, []).append(call)
        self.server.stopping.wait(sleep)
        status, document = self.server.answers.get(name, (200, {"ready": False}))
        call["end"] = time.time()
        self._send(status, json.dumps(document).encode(), {"Content-Type": "application/json"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.stopping = threading.Event()
        self.polls: dict[str, list[dict[str, float | None]]] = {}
        self.answers: dict[str, tuple[int, object]] = {}


class LocalServer:
    """Started on `host` at a free port; `url(path)` names its routes."""

    def __init__(self, host: str = "127.0.0.1", tls: "ssl.SSLContext | None" = None) -> None:
        self.host = host
        self._server = _Server((host, 0))
        self.port = self._server.server_address[1]
        self.scheme = "https" if tls else "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        return self._server.requests

    def polls(self, name: str) -> list[dict[str, float | None]]:
        """The calls of /poll/<name> so far, each {start, end} (epoch seconds; end None while it runs)."""
        return list(self._server.polls.get(name, ()))

    def answer(self, name: str, status: int, document: object) -> None:
        self._server.answers[name] = (status, document)

    def __enter__(self) -> "LocalServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
