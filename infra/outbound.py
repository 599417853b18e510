"""The one outbound HTTP client (CIMD documents, JWKS, upstream identity providers, webhook deliveries),
hardened against SSRF.

- The host is resolved once; every address must be public, and the socket's actual peer is
  checked again right after connect, so a DNS answer that changes between checks (rebinding)
  cannot steer us to a private, loopback, link-local or cloud-metadata address.
- No redirects are followed (a 3xx is returned as is, and callers refuse it).
- At most `max_bytes` of body are read; more is an error, not a truncation.
- One deadline bounds resolve + connect + TLS + every read.

The address guard is relaxed only by `settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES` (tests set it
explicitly, and a system check warns when it is on outside DEBUG). `settings.OUTBOUND_CA_BUNDLE`
names extra trusted CA certificates (tests trust their own local TLS server through it).
"""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

from django.conf import settings

DEFAULT_MAX_BYTES = 5 * 1024
DEFAULT_TIMEOUT = 5.0
USER_AGENT = "mcpauth (+client-metadata-fetcher)"
NOT_ALLOWED = "the address is not allowed"
TIMED_OUT = "the server did not answer in time"


class OutboundError(Exception):
    """The fetch was refused or failed. The message is for logs only, never for clients; `reason`
    is safe to show a person: it names what went wrong without addresses, bodies or error texts
    (a refused private address is "the address is not allowed", never the address itself)."""

    def __init__(self, message: str, *, reason: str = "the fetch failed"):
        super().__init__(message)
        self.reason = reason


@dataclass
class OutboundResponse:
    status: int
    headers: Message
    body: bytes

    def read(self, amount: int | None = None) -> bytes:
        """File-like access for readers written against urllib3 responses."""
        return self.body if amount is None else self.body[:amount]


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the low 32 bits are an IPv4 address


def _routable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable unicast (`is_global` alone lets multicast such as 224.0.0.1 through)."""
    return ip.is_global and not ip.is_multicast


def address_allowed(ip: str) -> bool:
    """Globally routable unicast only. IPv6 forms that carry an IPv4 address (mapped, 6to4,
    Teredo, NAT64) are judged by that address too, so an AAAA record cannot smuggle an internal
    IPv4 (say the cloud-metadata 169.254.169.254) past the check."""
    if settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES:
        return True
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if not _routable(address):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if address in NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(_routable(part) for part in embedded if part is not None)
    return True


def get(url: str, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float | None = None,
        headers: dict[str, str] | None = None, schemes: tuple[str, ...] = ("https",)) -> OutboundResponse:
    """GET `url` under every guard above; raises `OutboundError` for any refusal or failure."""
    return request("GET", url, max_bytes=max_bytes, timeout=timeout, headers=headers, schemes=schemes)


def post(url: str, body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float | None = None,
         headers: dict[str, str] | None = None, schemes: tuple[str, ...] = ("https",)) -> OutboundResponse:
    """POST `body` to `url` (an upstream token endpoint, a webhook delivery) under the same guards as `get`."""
    return request("POST", url, body, max_bytes=max_bytes, timeout=timeout, headers=headers, schemes=schemes)


def request(method: str, url: str, body: bytes | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES,
            timeout: float | None = None, headers: dict[str, str] | None = None,
            schemes: tuple[str, ...] = ("https",)) -> OutboundResponse:
    parts = _check_url(url, schemes)
    deadline = time.monotonic() + (timeout or getattr(settings, "OUTBOUND_TIMEOUT_SECONDS", DEFAULT_TIMEOUT))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    sock = _connect(parts.hostname or "", port, deadline)
    try:
        if parts.scheme == "https":
            sock = _tls_context().wrap_socket(sock, server_hostname=parts.hostname)
        return _exchange(sock, parts, method, body, headers or {}, max_bytes, deadline)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        raise OutboundError(f"fetch failed: {exc.__class__.__name__}: {exc}", reason=_failure_reason(exc)) from None
    finally:
        sock.close()


def _failure_reason(exc: BaseException | None) -> str:
    """Safe words for a connection or TLS failure (the exception's own text may name addresses)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "the server's TLS certificate could not be verified"
    if isinstance(exc, ssl.SSLError):
        return "the TLS handshake failed"
    if isinstance(exc, TimeoutError):
        return TIMED_OUT
    if isinstance(exc, ConnectionRefusedError):
        return "the server refused the connection"
    if isinstance(exc, http.client.HTTPException):
        return "the server's answer was not valid HTTP"
    return "the server could not be reached"


def _check_url(url: str, schemes: tuple[str, ...]):
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise OutboundError("malformed URL", reason="the URL is malformed") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise OutboundError("URL scheme or host not allowed", reason=f"the URL must be {' or '.join(schemes)} with a host")
    if parts.username is not None or parts.password is not None:
        raise OutboundError("URL carries credentials", reason="the URL carries user information")
    return parts


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutboundError("timed out", reason=TIMED_OUT)
    return left


def _resolve(host: str, port: int) -> list[tuple]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError(f"could not resolve host: {exc}", reason="the host name could not be resolved") from None
    refused = [info[4][0] for info in infos if not address_allowed(info[4][0])]
    if refused or not infos:
        # One private answer refuses the host: a mixed answer must not smuggle a connection in.
        raise OutboundError(f"host resolves to a non-public address ({refused[:1]})", reason=NOT_ALLOWED)
    return infos


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    last: Exception | None = None
    for family, socktype, proto, _, address in _resolve(host, port):
        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(address)
            peer = sock.getpeername()[0]
            if not address_allowed(peer):  # checked on the connected socket itself
                raise OutboundError(f"connected to a non-public address ({peer})", reason=NOT_ALLOWED)
            return sock
        except OutboundError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    raise OutboundError(f"could not connect: {last}", reason=_failure_reason(last))


def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    bundle = getattr(settings, "OUTBOUND_CA_BUNDLE", "")
    if bundle:
        context.load_verify_locations(cafile=bundle)
    return context


class _Connection(http.client.HTTPConnection):
    """http.client over a socket we connected and checked ourselves (it never dials on its own)."""

    def __init__(self, sock: socket.socket, host: str):
        super().__init__(host)
        self.sock = sock

    def connect(self) -> None:
        raise OutboundError("the connection was closed")


def _exchange(sock: socket.socket, parts, method: str, body: bytes | None, headers: dict[str, str],
              max_bytes: int, deadline: float) -> OutboundResponse:
    connection = _Connection(sock, parts.netloc)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sock.settimeout(_remaining(deadline))
    connection.request(method, path, body=body, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity",
                                                         "Connection": "close", **headers})
    response = connection.getresponse()
    received = b""
    while len(received) <= max_bytes:
        sock.settimeout(_remaining(deadline))  # one deadline for the whole body, not per read
        chunk = response.read1(max_bytes + 1 - len(received)) if hasattr(response, "read1") else b""
        if not chunk:
            break
        received += chunk
    if len(received) > max_bytes:
        raise OutboundError(f"response larger than {max_bytes} bytes", reason=f"the response is larger than {max_bytes} bytes")
    return OutboundResponse(status=response.status, headers=response.msg, body=received)
