"""`io.kestra.plugin.core.http.Request` and `…http.Download`: call an HTTP server from a worker.

Request keeps the response body as an output (text, at most `options.maxContentLength` bytes);
Download streams it into internal storage, never holding it whole. Both follow redirects
themselves, a bounded number of times, so that each hop is seen: its scheme checked, its
credentials kept to the origin they were given for, and its connection made through the SSRF
guard (workers/http_guard.py) like the first one.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
from datetime import timedelta
from typing import Annotated, Any, Callable, Iterator, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from workers.context import RunContext, TaskFailure
from workers.http_guard import (
    ConnectionsAborted,
    DestinationRefused,
    GuardedBackend,
    GuardedTransport,
    policy_from_settings,
)
from workers.registry import TaskBase, TaskType, register

REQUEST = "io.kestra.plugin.core.http.Request"
DOWNLOAD = "io.kestra.plugin.core.http.Download"

MAX_REDIRECTS = 20
DEFAULT_MAX_CONTENT_LENGTH = 10 * 1024 * 1024  # Kestra's default for Request
DEFAULT_READ_TIMEOUT = timedelta(minutes=5)  # Kestra's readIdleTimeout default
READ_CHUNK = 64 * 1024
USER_AGENT = "Harrier"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# How much of an error response's body the failure message quotes.
ERROR_BODY_CHARS = 1000


# --- properties ----------------------------------------------------------------------------

class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class TimeoutOptions(_Options):
    connectTimeout: timedelta | None = Field(None, description="How long connecting (and resolving) may take.")
    readIdleTimeout: timedelta | None = Field(
        None, description="How long a read may wait for data before the request fails (default PT5M).")


class BasicAuth(_Options):
    type: Literal["BASIC"]
    username: str | None = None
    password: str | None = None


class BearerAuth(_Options):
    type: Literal["BEARER"]
    token: str | None = None


class SslOptions(_Options):
    insecureTrustAllCertificates: bool | None = Field(
        None, description="Accept any certificate, unverified (for self-signed test servers only).")


LogKind = Literal["REQUEST_HEADERS", "REQUEST_BODY", "RESPONSE_HEADERS", "RESPONSE_BODY"]


class HttpOptions(_Options):
    timeout: TimeoutOptions | None = None
    auth: Annotated[BasicAuth | BearerAuth, Field(discriminator="type")] | None = None
    ssl: SslOptions | None = None
    followRedirects: bool = Field(True, description=f"Follow redirects (at most {MAX_REDIRECTS}).")
    allowFailed: bool = Field(False, description="Do not fail on a response code >= 400.")
    allowedResponseCodes: list[int] | None = Field(
        None, description="The only response codes that do not fail the task.")
    defaultCharset: str = Field("UTF-8", description="The charset of text without a declared one.")
    logs: list[LogKind] | None = Field(None, description="What of the exchange to log.")
    maxContentLength: int | None = Field(
        None, ge=0, description="Request: the largest body kept as output, in bytes (default 10 MiB).")
    # Kestra's older spellings, still read.
    connectTimeout: timedelta | None = None
    readTimeout: timedelta | None = None
    basicAuthUser: str | None = None
    basicAuthPassword: str | None = None
    logLevel: Literal["ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF", "NOT_SPECIFIED"] | None = None
    # Accepted and ignored, as Kestra ignores them.
    readIdleTimeout: timedelta | None = None
    connectionPoolIdleTimeout: timedelta | None = None


class HttpProperties(TaskBase):
    uri: str = Field(description="The URL to call (http or https).")
    method: str = Field("GET", description=f"The HTTP method: one of {', '.join(METHODS)}.")
    headers: dict[str, str] | None = Field(None, description="Request headers.")
    body: str | dict[str, Any] | list[Any] | None = Field(
        None, description="The request body as text (a map or a list is sent as JSON).")
    formData: dict[str, Any] | None = Field(
        None, description="A form: URL-encoded, or multipart when contentType is multipart/form-data "
                          "(a kestra:/// URI, or {name, content}, sends a file from internal storage).")
    contentType: str = Field("application/json", description="The Content-Type of `body`.")
    options: HttpOptions = Field(default_factory=HttpOptions, description="Timeouts, authentication, redirects…")
    allowFailed: bool | None = Field(None, description="Deprecated: options.allowFailed.")
    sslOptions: SslOptions | None = Field(None, description="Deprecated: options.ssl.")


class RequestProperties(HttpProperties):
    encryptBody: bool = Field(False, description="Keep the body encrypted, as the output encryptedBody.")


class DownloadProperties(HttpProperties):
    failOnEmptyResponse: bool = Field(True, description="Fail when the response has no content.")


# --- the exchange ----------------------------------------------------------------------------

class Exchange:
    """One task attempt's client: guarded connections, aborted when the attempt must stop."""

    def __init__(self, props: HttpProperties, ctx: RunContext, backend: GuardedBackend | None = None) -> None:
        self.props = props
        self.ctx = ctx
        self.options = props.options
        self.backend = backend or GuardedBackend(policy_from_settings())
        ssl_options = self.options.ssl or props.sslOptions
        verify = not (ssl_options and ssl_options.insecureTrustAllCertificates)
        timeouts = self.options.timeout or TimeoutOptions()
        connect = timeouts.connectTimeout or self.options.connectTimeout
        read = timeouts.readIdleTimeout or self.options.readTimeout or DEFAULT_READ_TIMEOUT
        # trust_env off: no proxy from the environment (it would resolve names past the guard)
        # and no credentials from ~/.netrc.
        self.client = httpx.Client(
            transport=GuardedTransport(self.backend, verify=verify), trust_env=False, follow_redirects=False,
            timeout=httpx.Timeout(connect=_seconds(connect), read=_seconds(read), write=_seconds(read), pool=None),
        )
        self._done = threading.Event()
        self._stopper = threading.Thread(target=self._abort_on_stop, name="harrier-http-stop", daemon=True)

    def __enter__(self) -> "Exchange":
        self._stopper.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.client.close()

    def _abort_on_stop(self) -> None:
        while not self._done.is_set():
            if self.ctx.stop_requested.wait(0.05):
                self.backend.connections.abort()
                return

    @property
    def stopped(self) -> bool:
        return self.ctx.stop_requested.is_set()

    def send(self, extra_headers: dict[str, str] | None = None) -> httpx.Response:
        """Send the request and follow redirects; the final response, its body not yet read."""
        props = self.props
        method = props.method.upper()
        if method not in METHODS:
            raise TaskFailure(f"method {props.method!r} is not supported: use one of {', '.join(METHODS)}")
        first = self.url(props.uri)
        url = first
        headers = self.headers(extra_headers)
        authorization = self.authorization()
        body, content_type = self.body_builder()
        for _ in range(MAX_REDIRECTS + 1):
            request_headers = dict(headers)
            if content_type and not _has(request_headers, "content-type"):
                request_headers["Content-Type"] = content_type
            # Credentials go only to the origin they were written for, not to where it redirects.
            if authorization and _origin(url) == _origin(first) and not _has(request_headers, "authorization"):
                request_headers["Authorization"] = authorization
            request = self.client.build_request(method, url, headers=request_headers, **(body() if body else {}))
            self.log_request(request)
            response = self.transmit(request, first)
            location = response.headers.get("location")
            if not (self.options.followRedirects and response.status_code in REDIRECTS and location):
                return response
            response.close()
            target = self.url(location, base=url, redirected_from=url)
            self.ctx.log("DEBUG", f"{method} {url} redirected ({response.status_code}) to {target}")
            if response.status_code == 303 and method != "HEAD" or (
                    response.status_code in (301, 302) and method == "POST"):
                # as browsers do; 307 and 308 keep the method and the body
                method, body, content_type = "GET", None, None
                headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
            if _origin(target) != _origin(url):
                headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
            url = target
        raise TaskFailure(f"{first} redirected more than {MAX_REDIRECTS} times (the last to {url})")

    def transmit(self, request: httpx.Request, first: httpx.URL) -> httpx.Response:
        via = "" if request.url == first else f" (redirected from {first})"
        try:
            return self.client.send(request, stream=True)
        except DestinationRefused as refused:
            raise TaskFailure(f"{request.url} is refused{via}: {refused}") from None
        except ConnectionsAborted:
            raise TaskFailure(f"{request.method} {request.url} stopped: the task was asked to stop") from None
        except httpx.TimeoutException as error:
            raise TaskFailure(f"{request.method} {request.url}{via} timed out ({_timeout_kind(error)})") from None
        except httpx.HTTPError as error:
            raise TaskFailure(f"{request.method} {request.url}{via} failed: {_describe(error)}") from None

    def url(self, text: str, base: httpx.URL | None = None, redirected_from: httpx.URL | None = None) -> httpx.URL:
        # Kestra's one concession to hand-written URLs: spaces are encoded.
        text = text.strip().replace(" ", "%20")
        try:
            url = base.join(text) if base is not None else httpx.URL(text)
        except httpx.InvalidURL as error:
            raise TaskFailure(f"{text!r} is not a valid URL: {error}") from None
        if url.scheme not in ("http", "https"):
            where = f"the redirect from {redirected_from} to {url}" if redirected_from else repr(text)
            raise TaskFailure(f"{where} is refused: only http and https URLs can be requested")
        if not url.host:
            raise TaskFailure(f"{text!r} is not a valid URL: it names no host")
        return url

    def headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, **(extra or {})}
        for name, value in (self.props.headers or {}).items():
            for existing in [k for k in headers if k.lower() == name.lower()]:
                del headers[existing]
            headers[name] = value
        return headers

    def authorization(self) -> str | None:
        auth = self.options.auth
        if isinstance(auth, BearerAuth) and auth.token:
            return f"Bearer {auth.token}"
        user = password = None
        if isinstance(auth, BasicAuth):
            user, password = auth.username, auth.password
        elif self.options.basicAuthUser is not None:
            user, password = self.options.basicAuthUser, self.options.basicAuthPassword
        if user is None:
            return None
        token = base64.b64encode(f"{user}:{password or ''}".encode("utf-8")).decode("ascii")
        return f"Basic {token}"

    def body_builder(self) -> tuple[Callable[[], dict[str, Any]] | None, str | None]:
        """What builds the request's content, and the Content-Type to send with it. The builder is
        called again for each hop, so that a 307 or 308 sends the content again (a file from
        storage is opened anew)."""
        props = self.props
        if props.formData:
            if self.multipart:
                # httpx writes the multipart Content-Type itself, with its boundary
                return (lambda: {"data": self.form_fields(), "files": self.form_files()}), None
            return (lambda: {"data": self.form_fields()}), None
        if props.body is not None:
            text = props.body if isinstance(props.body, str) else json.dumps(props.body)
            content = _encode(text, self.options.defaultCharset)
            return (lambda: {"content": content}), props.contentType or None
        # Kestra sends a Content-Type even without a body; Harrier only when the flow wrote one.
        return None, (props.contentType or None) if "contentType" in props.model_fields_set else None

    @property
    def multipart(self) -> bool:
        return self.props.contentType.split(";")[0].strip().lower() == "multipart/form-data"

    def form_fields(self) -> dict[str, str]:
        """The form's plain fields (every field, unless multipart sends some as files)."""
        return {key: value if isinstance(value, str) else json.dumps(value)
                for key, value in (self.props.formData or {}).items()
                if not (self.multipart and _is_file_field(value))}

    def form_files(self) -> dict[str, tuple[str, Any]]:
        files = {}
        for key, value in (self.props.formData or {}).items():
            if isinstance(value, str) and _is_file_field(value):
                files[key] = (_file_name(value), self.open_stored(value))
            elif _is_file_field(value):
                files[key] = (str(value["name"]), self.open_stored(str(value["content"])))
        return files

    def open_stored(self, uri: str) -> Any:
        from orchestrator.storage import StorageError, check_scope, get_storage

        job = self.ctx.job
        try:
            location = check_scope(uri, job["namespace"], job["flowId"], job["executionId"])
            return get_storage().get(location)
        except StorageError as error:
            raise TaskFailure(f"formData cannot send {uri}: {error}") from None

    def check_status(self, response: httpx.Response, read_error_body: bool = True) -> None:
        code = response.status_code
        allowed = self.options.allowedResponseCodes
        allow_failed = self.options.allowFailed or bool(self.props.allowFailed)
        if allowed:
            failed = code not in allowed
        else:
            failed = code >= 400 and not allow_failed
        if not failed:
            return
        detail = ""
        if read_error_body:
            sample = _read_some(response, ERROR_BODY_CHARS * 4)
            text = sample.decode(response.encoding or "utf-8", errors="replace")[:ERROR_BODY_CHARS].strip()
            detail = f": {text}" if text else ""
        response.close()
        phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
        raise TaskFailure(f"{response.request.method} {response.request.url} answered HTTP {code}{phrase}{detail}")

    def chunks(self, response: httpx.Response) -> Iterator[bytes]:
        """The response's body in pieces, ending early (with an error) when the task must stop."""
        try:
            for chunk in response.iter_bytes(READ_CHUNK):
                if self.stopped:
                    raise TaskFailure(f"reading {response.request.url} stopped: the task was asked to stop")
                yield chunk
        except httpx.TimeoutException as error:
            raise TaskFailure(f"reading {response.request.url} timed out ({_timeout_kind(error)})") from None
        except httpx.HTTPError as error:
            if self.stopped:
                raise TaskFailure(f"reading {response.request.url} stopped: the task was asked to stop") from None
            raise TaskFailure(f"reading {response.request.url} failed: {_describe(error)}") from None

    def log_request(self, request: httpx.Request) -> None:
        logs = self.logs()
        if "REQUEST_HEADERS" in logs:
            self.ctx.log("INFO", f"request {request.method} {request.url} headers: " + _headers_text(request.headers))
        if "REQUEST_BODY" in logs and isinstance(self.props.body, str):
            self.ctx.log("INFO", f"request {request.method} {request.url} body: {self.props.body}")

    def log_response(self, response: httpx.Response, text: str | None = None) -> None:
        logs = self.logs()
        if "RESPONSE_HEADERS" in logs:
            self.ctx.log("INFO", f"response {response.status_code} from {response.request.url} headers: "
                         + _headers_text(response.headers))
        if "RESPONSE_BODY" in logs and text is not None:
            self.ctx.log("INFO", f"response {response.status_code} from {response.request.url} body: {text}")

    def logs(self) -> frozenset[str]:
        if self.options.logs is not None:
            return frozenset(self.options.logs)
        # the deprecated logLevel, read as Kestra reads it
        return frozenset({
            "TRACE": ("REQUEST_HEADERS", "REQUEST_BODY", "RESPONSE_HEADERS", "RESPONSE_BODY"),
            "DEBUG": ("REQUEST_HEADERS", "RESPONSE_HEADERS"),
            "INFO": ("RESPONSE_HEADERS",),
        }.get(self.options.logLevel or "", ()))


# --- Request -----------------------------------------------------------------------------------

def run_request(props: RequestProperties, ctx: RunContext) -> dict[str, Any]:
    limit = props.options.maxContentLength
    limit = DEFAULT_MAX_CONTENT_LENGTH if limit is None else limit
    with Exchange(props, ctx) as exchange:
        response = exchange.send()
        try:
            exchange.check_status(response)
            data = bytearray()
            for chunk in exchange.chunks(response):
                data += chunk
                if len(data) > limit:
                    raise TaskFailure(
                        f"the response of {response.request.url} is larger than {limit} bytes: raise "
                        "options.maxContentLength, or use io.kestra.plugin.core.http.Download to store it")
        finally:
            response.close()
        body = _text(bytes(data), response, props.options.defaultCharset)
        exchange.log_response(response, body)
        ctx.log("DEBUG", f"{response.request.method} {response.request.url}: HTTP {response.status_code}, "
                         f"{len(data)} bytes")
    outputs: dict[str, Any] = {"uri": str(exchange.url(props.uri)), "code": response.status_code,
                               "headers": _headers_output(response)}
    if props.encryptBody:
        from orchestrator.encryption import encrypt

        outputs["encryptedBody"] = encrypt(body) if body is not None else None
    else:
        outputs["body"] = body
    return outputs


def _text(data: bytes, response: httpx.Response, default_charset: str) -> str | None:
    if not data and (response.request.method == "HEAD" or response.status_code in (204, 304)):
        return None
    charset = response.charset_encoding or default_charset
    try:
        text = data.decode(charset)
    except LookupError:
        raise TaskFailure(f"the response of {response.request.url} declares an unknown charset {charset!r}") from None
    except UnicodeDecodeError:
        raise TaskFailure(f"the response of {response.request.url} is not {charset} text: use "
                          "io.kestra.plugin.core.http.Download to keep binary content") from None
    if "\x00" in text:  # outputs are JSON kept in PostgreSQL, which refuses NUL characters
        raise TaskFailure(f"the response of {response.request.url} contains NUL characters, which an output "
                          "cannot hold: use io.kestra.plugin.core.http.Download to keep binary content")
    return text


# --- Download ----------------------------------------------------------------------------------

class _BodyStream(io.RawIOBase):
    """A response body as a binary stream that storage reads in pieces of its choosing."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = READ_CHUNK
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._pending = chunk
        data, self._pending = self._pending[:size], self._pending[size:]
        self.count += len(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def run_download(props: DownloadProperties, ctx: RunContext) -> dict[str, Any]:
    from orchestrator.storage import StorageError, get_storage, task_file_uri

    job = ctx.job
    storage = get_storage()
    # The file is kept as the server sent it: ask for no compression unless the flow asks.
    with Exchange(props, ctx) as exchange:
        response = exchange.send({"Accept-Encoding": "identity"})
        try:
            exchange.check_status(response)
            name = _download_name(response)
            try:
                uri = task_file_uri(job["namespace"], job["flowId"], job["executionId"], job["task"]["id"],
                                    job["taskRunId"], name)
            except StorageError:
                uri = task_file_uri(job["namespace"], job["flowId"], job["executionId"], job["task"]["id"],
                                    job["taskRunId"], "download")
            stream = _BodyStream(exchange.chunks(response))
            try:
                length = storage.put(uri, stream)
            except StorageError as error:
                raise TaskFailure(f"the response of {response.request.url} cannot be stored: {error}") from None
        finally:
            response.close()
        exchange.log_response(response)
        expected = response.headers.get("content-length")
        if expected and expected.isdigit() and "content-encoding" not in response.headers \
                and response.request.method != "HEAD" and int(expected) != length:
            storage.delete(uri)
            raise TaskFailure(f"{response.request.url} announced {expected} bytes but sent {length}")
        if length == 0:
            allow_failed = props.options.allowFailed or bool(props.allowFailed)
            if props.failOnEmptyResponse and not allow_failed:
                storage.delete(uri)
                raise TaskFailure(f"{response.request.url} answered HTTP {response.status_code} with no content "
                                  "(failOnEmptyResponse is true)")
            if not props.failOnEmptyResponse:
                ctx.log("WARN", f"the file downloaded from {response.request.url} is empty")
        ctx.log("DEBUG", f"{response.request.url} downloaded: {length} bytes to {uri}")
    return {"uri": uri, "code": response.status_code, "length": length, "headers": _headers_output(response)}


_DISPOSITION_NAME = re.compile(r"""filename\*?\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))""", re.IGNORECASE)


def _download_name(response: httpx.Response) -> str:
    """The stored file's name: the one Content-Disposition gives, else the URL's last segment."""
    from urllib.parse import unquote

    name = ""
    disposition = response.headers.get("content-disposition", "")
    found = {match.group(0).split("=", 1)[0].strip().lower(): match.group(1) or match.group(2)
             for match in _DISPOSITION_NAME.finditer(disposition)}
    if found.get("filename*"):
        value = found["filename*"].strip()
        if "'" in value:  # RFC 5987: charset'language'percent-encoded
            charset, _, encoded = value.split("'", 2)
            try:
                name = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                name = ""
    if not name and found.get("filename"):
        name = found["filename"].strip().replace('\\"', '"')
    if not name:
        name = unquote(response.request.url.path.rsplit("/", 1)[-1])
    # only a last path segment: a name that climbs (../../x) or names a directory keeps its end
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    if name in ("", ".", ".."):
        return "download"
    return name[:200]


# --- helpers -----------------------------------------------------------------------------------

def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else max(value.total_seconds(), 0.001)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _has(headers: dict[str, str], name: str) -> bool:
    return any(key.lower() == name for key in headers)


def _encode(text: str, charset: str) -> bytes:
    try:
        return text.encode(charset)
    except LookupError:
        raise TaskFailure(f"options.defaultCharset {charset!r} is not a known charset") from None
    except UnicodeEncodeError as error:
        raise TaskFailure(f"the body cannot be encoded as {charset}: {error.reason}") from None


def _is_file_field(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith("kestra:///")
    return isinstance(value, dict) and "name" in value and "content" in value


def _file_name(uri: str) -> str:
    from orchestrator.storage import InvalidStorageURI, parse_uri

    try:
        return parse_uri(uri).name
    except InvalidStorageURI as error:
        raise TaskFailure(f"formData cannot send {uri}: {error}") from None


def _headers_output(response: httpx.Response) -> dict[str, list[str]]:
    """Each header name, as the server wrote it, with its values in order (Kestra's shape)."""
    headers: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}  # names are case-insensitive: the first spelling stands for all
    for raw_name, raw_value in response.headers.raw:
        name = raw_name.decode("latin-1")
        name = spelled.setdefault(name.lower(), name)
        headers.setdefault(name, []).append(raw_value.decode("latin-1"))
    return headers


def _headers_text(headers: httpx.Headers) -> str:
    return ", ".join(f"{name}: {value}" for name, value in headers.multi_items())


def _read_some(response: httpx.Response, limit: int) -> bytes:
    data = bytearray()
    try:
        for chunk in response.iter_bytes(READ_CHUNK):
            data += chunk
            if len(data) >= limit:
                break
    except httpx.HTTPError:
        pass
    return bytes(data[:limit])


def _timeout_kind(error: httpx.TimeoutException) -> str:
    return {
        httpx.ConnectTimeout: "connecting took longer than the connect timeout",
        httpx.ReadTimeout: "no data came within the read timeout",
        httpx.WriteTimeout: "sending took longer than the read timeout",
        httpx.PoolTimeout: "no connection was free",
    }.get(type(error), str(error) or type(error).__name__)


def _describe(error: Exception) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


register(TaskType(name=REQUEST, properties=RequestProperties, kind="runnable", run=run_request,
                  aliases=("io.kestra.plugin.fs.http.Request",),
                  title="Send an HTTP request"))
register(TaskType(name=DOWNLOAD, properties=DownloadProperties, kind="runnable", run=run_download,
                  aliases=("io.kestra.plugin.fs.http.Download",),
                  title="Download a file over HTTP"))
