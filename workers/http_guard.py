"""Where HTTP tasks may connect: the guard against server-side request forgery (SSRF).

A flow author chooses the URLs an HTTP task calls, and the worker calls them from inside the
operator's network: without a guard, `uri: http://169.254.169.254/…` reads the cloud metadata
service, `http://localhost:6379/` talks to Redis, `http://10.0.0.5/admin` reaches what a firewall
keeps from the outside. With HARRIER_HTTP_DENY_PRIVATE on, only globally routable addresses may
be reached (docs/tasks.md, "Which addresses HTTP tasks may reach").

The check happens where the connection is made, not on the URL's text:

- the host is resolved once, every address it resolves to is checked, and the socket connects to
  that very checked address (never to the name again), so a DNS answer that changes between
  the check and the connection (DNS rebinding) cannot slip a private address in; the URL's host
  still goes in the Host header, TLS's SNI and the certificate check;
- every connection goes through it, so every redirect is checked as its connection is made;
- however the address was written in the URL — `2130706433`, `0x7f.1`, `0177.0.0.1`,
  `[::ffff:127.0.0.1]` — what is checked is the address the resolver gives back.

The sockets an attempt opened are kept so that a kill or a timeout (RunContext.stop_requested)
can shut them down at once: a read blocked on a slow server ends now, not at its read timeout.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses to connect to, as text. The default asks the system's resolver;
# tests give their own to play DNS.
Resolver = Callable[[str, int], list[str]]


class DestinationRefused(Exception):
    """A connection the guard refused; the message names the host and why."""


class ConnectionsAborted(Exception):
    """The attempt was asked to stop (kill, timeout): no new connection is made."""


# IPv6 ranges that carry an IPv4 address the network may turn back into IPv4: NAT64 (RFC 6052,
# RFC 8215) translates 64:ff9b::10.0.0.1 to 10.0.0.1; 6to4 (RFC 3056) embeds one in 2002::/16.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
# ::a.b.c.d, the deprecated IPv4-compatible form (RFC 4291 §2.5.5.1); :: and ::1 are in it too.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)


def refusal(ip: IPAddress) -> str | None:
    """Why `ip` is not a public destination, or None when it is one."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        if mapped is not None:
            reason = refusal(mapped)
            return f"an IPv4-mapped IPv6 address of {mapped}, {reason}" if reason else None
        for network in _NAT64:
            if ip in network:
                embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
                reason = refusal(embedded)
                return f"a NAT64 address of {embedded}, {reason}" if reason else None
        if ip in _SIX_TO_FOUR:
            embedded = ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)
            reason = refusal(embedded)
            return f"a 6to4 address of {embedded}, {reason}" if reason else None
        if ip in _IPV4_COMPATIBLE and not ip.is_unspecified and not ip.is_loopback:
            return "an IPv4-compatible IPv6 address (deprecated, not routable)"
        if ip.is_site_local:
            return "a site-local address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:  # Python counts multicast as global
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "an address that is not globally routable"
    return None


@dataclass(frozen=True)
class Policy:
    """What the guard lets through. `allow` lists networks reachable even when private (an
    internal API the operator means flows to call)."""

    deny_private: bool = False
    allow: tuple[Network, ...] = ()

    def check(self, ip: IPAddress) -> str | None:
        """Why a connection to `ip` is refused, or None when it is allowed."""
        if not self.deny_private:
            return None
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        if any(candidate in network for candidate in candidates for network in self.allow
               if candidate.version == network.version):
            return None
        return refusal(ip)


def parse_networks(text: str | Iterable[str]) -> tuple[Network, ...]:
    """`10.1.2.0/24, 192.168.1.7, fd00::/8` → networks; an entry that is not one is an error."""
    items = text.split(",") if isinstance(text, str) else list(text)
    networks = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"HARRIER_HTTP_ALLOW_NETWORKS: {item!r} is not an IP address or network") from None
    return tuple(networks)


def policy_from_settings() -> Policy:
    """The policy the settings give (read at run time: workers may import this before Django)."""
    from django.conf import settings

    return Policy(
        deny_private=bool(getattr(settings, "HARRIER_HTTP_DENY_PRIVATE", False)),
        allow=parse_networks(getattr(settings, "HARRIER_HTTP_ALLOW_NETWORKS", "") or ""),
    )


def checked_addresses(host: str, port: int, policy: Policy) -> list[str]:
    """Every address `host` resolves to, after checking each against `policy`: for clients that
    connect by themselves (a database driver, an S3 client) rather than through this module's
    transport. Raises DestinationRefused naming the host, the address and why."""
    try:
        addresses = system_resolve(host, port)
    except OSError as error:
        raise DestinationRefused(f"{host} cannot be resolved: {error}") from None
    for address in addresses:
        reason = policy.check(_as_ip(address))
        if reason:
            raise DestinationRefused(f"{host} ({address}) is refused: {reason}")
    return addresses


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _as_ip(text: str) -> IPAddress:
    # getaddrinfo may answer with a zone index (fe80::1%eth0)
    return ipaddress.ip_address(text.split("%", 1)[0])


class Connections:
    """The sockets one attempt opened, to shut them all down when the attempt must stop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self.aborted = False

    def add(self, sock: Any) -> None:
        with self._lock:
            if self.aborted:
                _shutdown(sock)
                raise ConnectionsAborted("the task was asked to stop")
            self._sockets.add(sock)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: Any) -> None:
    # socket.socket's own shutdown, also for an SSLSocket: it cuts the connection under a read
    # blocked in another thread, which then returns at once.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _TrackedStream(httpcore.NetworkStream):
    """A connection whose current socket (the TLS one after start_tls) is known to Connections."""

    def __init__(self, inner: httpcore.NetworkStream, connections: Connections) -> None:
        self._inner = inner
        self._connections = connections
        connections.add(inner.get_extra_info("socket"))

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _TrackedStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._connections)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend with the guard in front of every TCP connection."""

    def __init__(self, policy: Policy, connections: Connections | None = None,
                 resolve: Resolver = system_resolve) -> None:
        self.policy = policy
        self.connections = connections or Connections()
        self._resolve = resolve

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        if self.connections.aborted:
            raise ConnectionsAborted("the task was asked to stop")
        addresses = self._addresses(host, port, timeout)
        for address in addresses:
            reason = self.policy.check(_as_ip(address))
            if reason:
                shown = f"{host} is" if host == address else f"{host} resolves to {address},"
                raise DestinationRefused(f"{shown} {reason}; HARRIER_HTTP_DENY_PRIVATE forbids it "
                                         "(HARRIER_HTTP_ALLOW_NETWORKS can allow a network)")
        failure: Exception | None = None
        for address in addresses:  # each checked address in turn, never the name again
            try:
                stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
                continue
            return _TrackedStream(stream, self.connections)
        assert failure is not None
        raise failure

    def _addresses(self, host: str, port: int, timeout: float | None) -> list[str]:
        try:
            return [str(_as_ip(host))]
        except ValueError:
            pass
        # The resolver cannot be interrupted: it runs in a thread of its own while this one waits
        # for it, the connect timeout, or a stop.
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def resolve() -> None:
            try:
                outcome["addresses"] = self._resolve(host, port)
            except Exception as error:  # handed to the waiting thread
                outcome["error"] = error
            done.set()

        threading.Thread(target=resolve, name="harrier-http-resolve", daemon=True).start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done.wait(0.05):
            if self.connections.aborted:
                raise ConnectionsAborted("the task was asked to stop")
            if deadline is not None and time.monotonic() > deadline:
                raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout:g}s")
        if "error" in outcome:
            error = outcome["error"]
            if isinstance(error, socket.gaierror):
                raise httpcore.ConnectError(f"{host} cannot be resolved: {error.strerror or error}")
            raise error
        addresses = outcome["addresses"]
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        return addresses


def ssl_context(verify: bool) -> ssl.SSLContext:
    if verify:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose connections go through GuardedBackend."""

    def __init__(self, backend: GuardedBackend, verify: bool = True) -> None:
        super().__init__(trust_env=False)
        # httpx offers no way to give its connection pool a network backend: the pool it built is
        # replaced by one like it (as httpx 0.28 builds it) that has ours. The unit tests check
        # that connections do go through the backend, so an httpx upgrade that changes this fails
        # them.
        self._pool.close()
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context(verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )
