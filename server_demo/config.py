"""Configuration of the HTTP and WebSocket endpoints.

:class:`StreamableHttpServerConfig` mirrors the seeds' config of the same name
(session id generator, JSON responses, event store, session hooks) and adds
the limits every public endpoint needs. The three demo endpoints are three
configs: :func:`stateful_sse`, :func:`stateful_json`, :func:`stateless_json`.
:class:`EncryptionConfig` is ``/ws/encrypted``'s key.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from pyodide_transport.envelope import DEFAULT_SALT, derive_key, resolve_key
from pyodide_transport.wire import DEFAULT_MAX_MESSAGE_SIZE

from .sse.event_store import EventStore, InMemoryEventStore

__all__ = [
    "DEFAULT_ALLOWED_HOSTS",
    "DEFAULT_ALLOWED_ORIGINS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEMO_PASSPHRASE",
    "EncryptionConfig",
    "SecurityConfig",
    "StreamableHttpServerConfig",
    "new_session_id",
    "stateful_json",
    "stateful_sse",
    "stateless_json",
]

DEFAULT_MAX_MESSAGE_BYTES: Final = DEFAULT_MAX_MESSAGE_SIZE
"""One message's limit, shared with the client (:data:`pyodide_transport.wire.DEFAULT_MAX_MESSAGE_SIZE`, 4 MiB).

It bounds a POST body, a stdio line and a WebSocket frame.
"""

DEFAULT_ALLOWED_ORIGINS: tuple[str, ...] = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
"""Loopback origins on any port; ``*`` stands for any port (or none)."""

DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("127.0.0.1:*", "localhost:*", "[::1]:*")
"""Loopback ``Host`` values on any port: the DNS-rebinding guard."""


DEMO_PASSPHRASE: Final = "pyodide-transport demo passphrase (not a secret)"
"""``/ws/encrypted``'s passphrase when none is configured: a DEMO value, public, so anyone can read such traffic."""


@dataclass
class EncryptionConfig:
    """``/ws/encrypted``: every frame an AES-256-GCM envelope (:mod:`pyodide_transport.envelope`).

    Attributes:
        passphrase: Derived with PBKDF2-HMAC-SHA256 and ``salt`` (ignored when ``key`` is given).
        key: A raw 32-byte key instead.
        salt: The PBKDF2 salt; clients must use the same.
        on_wire: Sees every raw frame, ``("in" | "out", frame)`` (a test hook: proves no plaintext on the wire).
    """

    passphrase: str | None = DEMO_PASSPHRASE
    key: bytes | None = None
    salt: bytes = DEFAULT_SALT
    on_wire: Callable[[str, str], None] | None = None
    _derived: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def derived_key(self) -> bytes:
        """The 32-byte key (a passphrase is derived once, here).

        Raises:
            ValueError: A key not 32 bytes long, or neither a key nor a passphrase.
        """
        if self._derived is None:
            raw = resolve_key(self.key, None if self.key is not None else self.passphrase)
            self._derived = raw if raw is not None else derive_key(self.passphrase or "", self.salt)
        return self._derived


def new_session_id() -> str:
    """A session id with 256 random bits, URL-safe and visible ASCII."""
    return secrets.token_urlsafe(32)


@dataclass
class SecurityConfig:
    """Who may talk to the server: browser origins (CORS) and Host names (DNS rebinding).

    Requests without an ``Origin`` header (non-browser clients) are allowed.
    An empty ``allowed_hosts`` disables the Host check.
    """

    allowed_origins: tuple[str, ...] = DEFAULT_ALLOWED_ORIGINS
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS


@dataclass
class StreamableHttpServerConfig:
    """One Streamable HTTP endpoint's behaviour.

    Attributes:
        session_id_generator: Makes session ids; ``None`` makes the endpoint stateless.
        json_response: Answer requests with ``application/json`` instead of SSE.
        event_store: Keeps SSE events for resumption (``Last-Event-ID``); ``None`` disables it.
        on_session_initialized: Called with the new session id after ``initialize``.
        on_session_closed: Called with the session id when it ends (DELETE, expiry, shutdown).
        max_body_bytes: Larger POST bodies get 413.
        max_sessions: More concurrent sessions get 503.
        session_idle_timeout: Seconds without requests or open streams before a session expires.
        retry_ms: The SSE ``retry`` hint sent with the priming event.
        security: Origin and Host rules.
        clock: Monotonic seconds; injectable so tests can expire sessions without sleeping.
    """

    session_id_generator: Callable[[], str] | None = new_session_id
    json_response: bool = False
    event_store: EventStore | None = field(default_factory=InMemoryEventStore)
    on_session_initialized: Callable[[str], None] | None = None
    on_session_closed: Callable[[str], None] | None = None
    max_body_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_sessions: int = 1000
    session_idle_timeout: float = 30 * 60
    retry_ms: int = 1000
    security: SecurityConfig = field(default_factory=SecurityConfig)
    clock: Callable[[], float] = time.monotonic

    @property
    def stateful(self) -> bool:
        """Whether the endpoint keeps sessions."""
        return self.session_id_generator is not None


def stateful_sse(**overrides: object) -> StreamableHttpServerConfig:
    """``/mcp``: sessions, SSE responses, resumable event store, standalone GET stream."""
    return StreamableHttpServerConfig(**overrides)  # type: ignore[arg-type]


def stateful_json(**overrides: object) -> StreamableHttpServerConfig:
    """``/mcp/json``: sessions, JSON responses."""
    values: dict[str, object] = {"json_response": True, "event_store": None, **overrides}
    return StreamableHttpServerConfig(**values)  # type: ignore[arg-type]


def stateless_json(**overrides: object) -> StreamableHttpServerConfig:
    """``/mcp/stateless``: no sessions, no GET stream, JSON responses."""
    values: dict[str, object] = {"session_id_generator": None, "json_response": True, "event_store": None}
    return StreamableHttpServerConfig(**{**values, **overrides})  # type: ignore[arg-type]
