"""The SSRF guard of the HTTP tasks (workers/http_guard.py): which addresses it refuses, that it
checks what the resolver answers (however the URL spells the address), that it connects to the
address it checked, and that every redirect goes through it.

Loopback has two roles here: 127.0.0.1 is the "private" address to refuse, and 127.0.0.2 (also
loopback on Linux, where every 127/8 address reaches this machine) stands for a public server: the
policy lets it through by HARRIER_HTTP_ALLOW_NETWORKS' mechanism, so a test server can play an
allowed destination without any real public address.
"""

from __future__ import annotations

import ipaddress

import pytest

from tests.httpserver import LocalServer
from workers.context import RunContext, TaskFailure
from workers.http_guard import GuardedBackend, Policy, parse_networks, refusal
from workers.registry import get
from workers.tasktypes.http import Exchange, RequestProperties

REQUEST = "io.kestra.plugin.core.http.Request"
DENY = Policy(deny_private=True)
PUBLIC_STAND_IN = Policy(deny_private=True, allow=parse_networks("127.0.0.2/32"))


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("100.64.0.1", "shared"),
    ("255.255.255.255", "private"),
    ("240.0.0.1", ""),
    ("192.0.2.10", ""),  # documentation
    ("198.18.0.1", ""),  # benchmarking
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("ff02::1", "multicast"),
    ("fec0::1", "site-local"),
    ("2001:db8::1", ""),
    ("::ffff:127.0.0.1", "IPv4-mapped IPv6 address of 127.0.0.1, a loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped IPv6 address of 10.0.0.1, a private"),
    ("::ffff:169.254.169.254", "link-local"),
    ("64:ff9b::7f00:1", "NAT64 address of 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 address of 169.254.169.254"),
    ("2002:7f00:1::", "6to4 address of 127.0.0.1"),
    ("2002:c0a8:101::1", "6to4 address of 192.168.1.1"),
    ("::7f00:1", "IPv4-compatible"),
    ("::a00:1", "IPv4-compatible"),
])
def test_non_public_addresses_are_refused_with_the_reason(address, reason):
    found = refusal(ipaddress.ip_address(address))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4007:80f::200e",
    "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
])
def test_public_addresses_pass(address):
    assert refusal(ipaddress.ip_address(address)) is None


def test_the_policy_lets_everything_through_when_off_and_its_networks_when_on():
    loopback = ipaddress.ip_address("127.0.0.1")
    assert Policy().check(loopback) is None
    assert DENY.check(loopback) == "a loopback address"
    assert PUBLIC_STAND_IN.check(ipaddress.ip_address("127.0.0.2")) is None
    assert PUBLIC_STAND_IN.check(ipaddress.ip_address("::ffff:127.0.0.2")) is None
    assert PUBLIC_STAND_IN.check(loopback) == "a loopback address"


def test_allowed_networks_are_read_from_text_and_a_bad_entry_is_named():
    assert parse_networks(" 10.1.0.0/16, 192.168.1.7 ,fd00::/8,") == (
        ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("192.168.1.7/32"), ipaddress.ip_network("fd00::/8"))
    with pytest.raises(ValueError, match="'intranet' is not an IP address or network"):
        parse_networks("intranet")


# --- through real requests to a local server ------------------------------------------------------

def job(task: dict) -> dict:
    return {"v": 1, "executionId": "e1", "taskRunId": "r1", "attempt": 1, "task": task, "context": {},
            "namespace": "company.team", "flowId": "f"}


def request(uri: str, backend: GuardedBackend, **properties) -> dict:
    """Run a Request task's exchange with the given backend; its outputs, or TaskFailure."""
    task = {"id": "call", "type": REQUEST, "uri": uri, **properties}
    props = RequestProperties.model_validate(task)
    ctx = RunContext(job(task), lambda batch: None)
    with Exchange(props, ctx, backend=backend) as exchange:
        response = exchange.send()
        exchange.check_status(response)
        body = response.read().decode()
        response.close()
    return {"code": response.status_code, "body": body, "url": str(response.request.url)}


@pytest.fixture
def server():
    with LocalServer("127.0.0.1") as running:
        yield running


@pytest.fixture
def public_server():
    """The stand-in for a public server (see the module's docstring)."""
    with LocalServer("127.0.0.2") as running:
        yield running


def test_with_the_guard_off_loopback_is_reached(server):
    assert request(server.url("/echo"), GuardedBackend(Policy()))["code"] == 200


@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "2130706433", "0x7f000001", "0x7f.1", "127.1", "017700000001",
    "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
])
def test_loopback_is_refused_however_it_is_spelled(server, host):
    with pytest.raises(TaskFailure) as failure:
        request(f"http://{host}:{server.port}/echo", GuardedBackend(DENY))
    message = str(failure.value)
    assert f"http://{host}:{server.port}/echo".lower() in message.lower()  # the URL, as requested
    assert "refused" in message and "loopback" in message and "HARRIER_HTTP_DENY_PRIVATE" in message
    assert server.requests == []


def test_a_spelling_the_url_parser_refuses_never_connects(server):
    with pytest.raises(TaskFailure, match="is not a valid URL"):
        request(f"http://0177.0.0.1:{server.port}/echo", GuardedBackend(DENY))
    assert server.requests == []


def test_an_allowed_network_is_reached(public_server):
    assert request(public_server.url("/echo"), GuardedBackend(PUBLIC_STAND_IN))["code"] == 200


def test_the_connection_goes_to_the_address_that_was_checked(public_server):
    """A DNS answer that changes after the check (rebinding) is never asked for: the name is
    resolved once, and the socket connects to that checked address with the name kept in Host."""
    answers = iter([["127.0.0.2"], ["127.0.0.1"]])
    asked = []

    def rebinding_resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    backend = GuardedBackend(PUBLIC_STAND_IN, resolve=rebinding_resolver)
    outcome = request(f"http://api.example.test:{public_server.port}/echo", backend)
    assert outcome["code"] == 200
    assert asked == ["api.example.test"]
    assert public_server.requests[0][2]["Host"] == f"api.example.test:{public_server.port}"


def test_a_name_with_any_private_address_is_refused_naming_it(public_server):
    backend = GuardedBackend(PUBLIC_STAND_IN, resolve=lambda host, port: ["127.0.0.2", "10.0.0.7"])
    with pytest.raises(TaskFailure, match=r"api\.example\.test resolves to 10\.0\.0\.7, a private address"):
        request(f"http://api.example.test:{public_server.port}/echo", backend)
    assert public_server.requests == []


def test_a_name_that_does_not_resolve_fails_naming_it():
    def nowhere(host: str, port: int) -> list[str]:
        import socket

        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(TaskFailure, match=r"http://nowhere\.test/ failed: .*nowhere\.test cannot be resolved"):
        request("http://nowhere.test/", GuardedBackend(DENY, resolve=nowhere))


def test_a_redirect_from_an_allowed_server_to_loopback_is_refused(public_server, server):
    start = public_server.url(f"/redirect/302?to={server.url('/echo')}")
    with pytest.raises(TaskFailure) as failure:
        request(start, GuardedBackend(PUBLIC_STAND_IN))
    message = str(failure.value)
    assert f"{server.url('/echo')} is refused (redirected from {start})" in message
    assert "127.0.0.1 is a loopback address" in message
    assert len(public_server.requests) == 1 and server.requests == []


def test_a_redirect_through_a_name_that_resolves_privately_is_refused(public_server):
    """The first hop is allowed; the Location names a host whose answer is private."""
    answers = {"api.example.test": ["127.0.0.2"], "internal.example.test": ["169.254.169.254"]}
    backend = GuardedBackend(PUBLIC_STAND_IN, resolve=lambda host, port: answers[host])
    target = "http://internal.example.test/latest/meta-data/"
    with pytest.raises(TaskFailure, match="internal.example.test resolves to 169.254.169.254, a link-local address"):
        request(f"http://api.example.test:{public_server.port}/redirect/307?to={target}", backend)


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:6379/_INFO"])
def test_a_redirect_to_another_scheme_is_refused(server, target):
    start = server.url(f"/redirect/302?to={target}")
    with pytest.raises(TaskFailure, match="only http and https URLs can be requested"):
        request(start, GuardedBackend(Policy()))


@pytest.mark.parametrize("uri", ["file:///etc/passwd", "ftp://example.com/", "gopher://127.0.0.1/", "localhost/x"])
def test_only_http_and_https_urls_are_requested(uri):
    with pytest.raises(TaskFailure, match="only http and https URLs|not a valid URL"):
        request(uri, GuardedBackend(Policy()))


def test_the_guard_reads_the_setting(settings):
    from workers.http_guard import policy_from_settings

    settings.HARRIER_HTTP_DENY_PRIVATE = True
    settings.HARRIER_HTTP_ALLOW_NETWORKS = "10.0.0.0/8"
    assert policy_from_settings() == Policy(True, (ipaddress.ip_network("10.0.0.0/8"),))
    settings.HARRIER_HTTP_DENY_PRIVATE = False
    assert policy_from_settings().deny_private is False


def test_the_task_types_are_registered_with_kestras_old_names():
    assert get("io.kestra.plugin.fs.http.Request") is get(REQUEST)
    assert get("io.kestra.plugin.fs.http.Download") is get("io.kestra.plugin.core.http.Download")


# --- TLS: the name stays the name ---------------------------------------------------------------

def self_signed(name: str) -> tuple[bytes, bytes]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                   .sign(key, hashes.SHA256()))
    return (certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS stand-in for a public server, recording the server name (SNI) clients ask for."""
    import ssl

    certificate, key = self_signed("api.example.test")
    (tmp_path / "cert.pem").write_bytes(certificate)
    (tmp_path / "key.pem").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    with LocalServer("127.0.0.2", tls=context) as running:
        running.server_names = names
        yield running


def test_https_to_a_checked_address_keeps_the_name_for_sni_and_the_certificate(tls_server):
    backend = GuardedBackend(PUBLIC_STAND_IN, resolve=lambda host, port: ["127.0.0.2"])
    url = f"https://api.example.test:{tls_server.port}/echo"
    # The certificate is checked against the name (and, self-signed, refused) ...
    with pytest.raises(TaskFailure, match=f"GET {url} failed: .*CERTIFICATE_VERIFY_FAILED"):
        request(url, backend)
    # ... and the name is what the server is asked for, though the socket went to 127.0.0.2.
    outcome = request(url, GuardedBackend(PUBLIC_STAND_IN, resolve=lambda host, port: ["127.0.0.2"]),
                      options={"ssl": {"insecureTrustAllCertificates": True}})
    assert outcome["code"] == 200
    assert tls_server.server_names and set(tls_server.server_names) == {"api.example.test"}
    assert tls_server.requests[0][2]["Host"] == f"api.example.test:{tls_server.port}"
