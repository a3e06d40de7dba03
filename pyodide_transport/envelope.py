"""The encrypted envelope: the wire format :class:`~pyodide_transport.encrypted.EncryptedTransport` speaks.

Sans-I/O: this module frames, counts and checks; the AES-256-GCM primitive itself comes from an
:class:`AEAD` adapter (``cryptography`` in :mod:`pyodide_transport.cpython`, WebCrypto in
:mod:`pyodide_transport._browser`), and randomness from an injectable ``randbytes``.

Every message travels as one JSON-RPC notification::

    {"jsonrpc": "2.0", "method": "encrypted", "params": {"data": BASE64(nonce || ciphertext || tag)}}

* ``nonce``: 12 random bytes, fresh for every message (safe for far more messages than a session sends;
  NIST's bound for random GCM nonces is 2**32 messages per key).
* ``ciphertext || tag``: AES-256-GCM of the *sealed plaintext* ``counter(8, big-endian) || JSON``, the
  JSON being the UTF-8 text of the real JSON-RPC message; the tag is 16 bytes.
* AAD: ``b"pyodide-transport/v1 client->server"`` or ``b"pyodide-transport/v1 server->client"``, so a
  message cannot be reflected back to its sender: the sender's own direction does not open it.
* ``counter``: per direction, 1, 2, 3, … A receiver accepts only a counter greater than the last one
  it accepted, so a replayed or reordered envelope is refused. Counters are per connection (one
  :class:`EnvelopeCore` per side); they do not survive a reconnect, and nothing stops a whole
  recorded connection from being replayed to a fresh server (that needs a handshake with a server
  nonce, which this format does not have).

Keys are 32 raw bytes, or come from a passphrase through PBKDF2-HMAC-SHA256
(:func:`derive_key`: :data:`PBKDF2_ITERATIONS` iterations, the given salt; both sides must use the
same salt). Every refusal is an :class:`~pyodide_transport.errors.EnvelopeError` saying what was wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from .errors import EnvelopeError, LocalProtocolError

__all__ = [
    "AEAD",
    "AUTHENTICATION_FAILED",
    "COUNTER_SIZE",
    "DEFAULT_SALT",
    "ENVELOPE_METHOD",
    "KEY_SIZE",
    "NONCE_SIZE",
    "PBKDF2_ITERATIONS",
    "TAG_SIZE",
    "EnvelopeCore",
    "Opening",
    "Role",
    "Sealing",
    "derive_key",
    "direction_aad",
    "envelope_obj",
    "is_envelope",
    "pbkdf2_sha256",
    "resolve_key",
]

Role = Literal["client", "server"]
"""Which end of the connection a core serves: it seals its own direction and opens the other."""

ENVELOPE_METHOD: Final = "encrypted"
"""The JSON-RPC method of every envelope notification."""

PROTOCOL: Final = "pyodide-transport/v1"
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
KEY_SIZE: Final = 32
COUNTER_SIZE: Final = 8
_MAX_COUNTER: Final = 2**64 - 1

PBKDF2_ITERATIONS: Final = 200_000
"""PBKDF2-HMAC-SHA256 iterations for a passphrase (about 0.1 s in CPython; WebCrypto in a browser)."""

DEFAULT_SALT: Final = b"pyodide-transport/v1 passphrase salt"
"""The salt used when none is given. Public and fixed: give each deployment a salt of its own."""


AUTHENTICATION_FAILED: Final = (
    "the envelope does not authenticate: tampered with, sealed under another key or for the other direction"
)
"""The message of the ``EnvelopeError`` an :class:`AEAD` adapter raises when a tag does not verify."""


def direction_aad(sender: Role) -> bytes:
    """The associated data of messages ``sender`` seals (binds the direction)."""
    return f"{PROTOCOL} {'client->server' if sender == 'client' else 'server->client'}".encode()


# --- keys -----------------------------------------------------------------------------------------


def pbkdf2_sha256(password: bytes, salt: bytes, iterations: int, length: int = KEY_SIZE) -> bytes:
    """PBKDF2-HMAC-SHA256 (RFC 8018): ``hashlib.pbkdf2_hmac`` where it exists, else a pure-Python loop.

    Pyodide's ``hashlib`` has no ``pbkdf2_hmac`` (it needs OpenSSL); the loop below gives the same
    bytes, in about a second for 200,000 iterations there. In a browser prefer WebCrypto's PBKDF2
    (:func:`pyodide_transport._browser.webcrypto_pbkdf2`), which is what ``EncryptedTransport`` uses.
    """
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    native = getattr(hashlib, "pbkdf2_hmac", None)
    if native is not None:
        return native("sha256", password, salt, iterations, length)  # type: ignore[no-any-return]
    key = hashlib.sha256(password).digest() if len(password) > 64 else password
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def prf(data: bytes) -> bytes:
        i = inner.copy()
        i.update(data)
        o = outer.copy()
        o.update(i.digest())
        return o.digest()

    out = b""
    block = 1
    while len(out) < length:
        u = prf(salt + block.to_bytes(4, "big"))
        acc = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            u = prf(u)
            acc ^= int.from_bytes(u, "big")
        out += acc.to_bytes(32, "big")
        block += 1
    return out[:length]


def derive_key(passphrase: str, salt: bytes = DEFAULT_SALT, iterations: int = PBKDF2_ITERATIONS) -> bytes:
    """The 32-byte key of ``passphrase`` (PBKDF2-HMAC-SHA256 of its UTF-8 bytes with ``salt``)."""
    if not passphrase:
        raise ValueError("the passphrase is empty")
    return pbkdf2_sha256(passphrase.encode(), salt, iterations)


def resolve_key(key: bytes | None, passphrase: str | None) -> bytes | None:
    """Check that exactly one of ``key`` / ``passphrase`` is given; the raw key, or ``None`` (derive it).

    Raises:
        ValueError: Both or neither were given, or the key is not 32 bytes.
    """
    if (key is None) == (passphrase is None):
        raise ValueError("give exactly one of key= (32 bytes) or passphrase=")
    if key is not None and len(key) != KEY_SIZE:
        raise ValueError(f"an AES-256-GCM key is {KEY_SIZE} bytes, got {len(key)}")
    if passphrase is not None and not passphrase:
        raise ValueError("the passphrase is empty")
    return key


# --- the AEAD primitive (an adapter) --------------------------------------------------------------


class AEAD(Protocol):
    """AES-256-GCM under one key; async because WebCrypto is promise-based."""

    async def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt and authenticate: ``ciphertext || tag``."""
        ...

    async def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Check and decrypt ``ciphertext || tag``; raise ``EnvelopeError`` when it does not authenticate."""
        ...


# --- framing and counters -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sealing:
    """What to hand :meth:`AEAD.seal` for one outgoing message."""

    nonce: bytes
    plaintext: bytes
    aad: bytes


@dataclass(frozen=True, slots=True)
class Opening:
    """What to hand :meth:`AEAD.open` for one incoming envelope."""

    nonce: bytes
    ciphertext: bytes
    aad: bytes


def envelope_obj(nonce: bytes, sealed: bytes) -> dict[str, Any]:
    """The envelope notification (as a JSON-ready dict) carrying ``nonce || sealed``."""
    data = base64.b64encode(nonce + sealed).decode("ascii")
    return {"jsonrpc": "2.0", "method": ENVELOPE_METHOD, "params": {"data": data}}


def is_envelope(obj: object) -> bool:
    """Whether ``obj`` (a decoded JSON value) has the envelope's shape (not whether it opens)."""
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0" or obj.get("method") != ENVELOPE_METHOD:
        return False
    params = obj.get("params")
    return "id" not in obj and isinstance(params, dict) and isinstance(params.get("data"), str)


class EnvelopeCore:
    """One side's counters and framing for one connection.

    ``seal``: :meth:`sealing` (assigns the next counter), then the adapter's ``seal``, then
    :meth:`envelope`. ``open``: :meth:`opening` (checks the shape), the adapter's ``open``, then
    :meth:`accept` (checks the counter). The caller keeps sealings in order up to the wire.

    Args:
        role: ``"client"`` or ``"server"``.
        randbytes: Source of nonces (default ``secrets.token_bytes``: ``crypto.getRandomValues`` in Pyodide).
    """

    def __init__(self, role: Role, *, randbytes: Callable[[int], bytes] = secrets.token_bytes) -> None:
        if role not in ("client", "server"):
            raise ValueError(f"role must be 'client' or 'server', got {role!r}")
        self.role: Role = role
        self.peer: Role = "server" if role == "client" else "client"
        self._randbytes = randbytes
        self.sent = 0
        """The counter of the last message sealed."""
        self.accepted = 0
        """The counter of the last message accepted."""

    def sealing(self, payload: bytes) -> Sealing:
        """Number ``payload`` (a JSON text, UTF-8) and pick its nonce.

        Raises:
            LocalProtocolError: The counter is exhausted (2**64 - 1 messages).
        """
        if self.sent >= _MAX_COUNTER:
            raise LocalProtocolError("the envelope counter is exhausted: open a new connection")
        self.sent += 1
        nonce = self._randbytes(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise LocalProtocolError(f"randbytes gave {len(nonce)} bytes, not {NONCE_SIZE}")
        return Sealing(nonce, self.sent.to_bytes(COUNTER_SIZE, "big") + payload, direction_aad(self.role))

    @staticmethod
    def envelope(sealing: Sealing, sealed: bytes) -> dict[str, Any]:
        """The envelope of a sealed message (see :func:`envelope_obj`)."""
        return envelope_obj(sealing.nonce, sealed)

    def opening(self, obj: object) -> Opening:
        """Check an incoming decoded JSON value is an envelope and split its data.

        Raises:
            EnvelopeError: Not an envelope, bad base64, or too short to hold a nonce and a tag.
        """
        if not is_envelope(obj):
            got = obj.get("method") if isinstance(obj, dict) else type(obj).__name__
            raise EnvelopeError(
                f'expected an encrypted envelope (a "{ENVELOPE_METHOD}" notification with params.data), '
                f"got {got!r}: is the peer sending plaintext?"
            )
        text: str = obj["params"]["data"]  # type: ignore[index]
        try:
            raw = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise EnvelopeError("the envelope's data is not valid base64") from None
        if len(raw) < NONCE_SIZE + TAG_SIZE:
            raise EnvelopeError(
                f"the envelope is truncated: {len(raw)} bytes, at least {NONCE_SIZE + TAG_SIZE} expected"
            )
        return Opening(raw[:NONCE_SIZE], raw[NONCE_SIZE:], direction_aad(self.peer))

    def opening_text(self, text: str | bytes) -> Opening:
        """:meth:`opening` of a JSON text (a WebSocket frame).

        Raises:
            EnvelopeError: Not JSON, or not an envelope.
        """
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            raise EnvelopeError("expected an encrypted envelope, got text that is not JSON") from None
        return self.opening(obj)

    def accept(self, plaintext: bytes) -> bytes:
        """Check the counter of an authenticated plaintext; return the JSON text inside.

        Raises:
            EnvelopeError: The counter is not greater than the last accepted (a replay or reordering),
                or the plaintext is too short to hold one.
        """
        if len(plaintext) < COUNTER_SIZE:
            raise EnvelopeError("the sealed message is truncated: no counter")
        counter = int.from_bytes(plaintext[:COUNTER_SIZE], "big")
        if counter <= self.accepted:
            raise EnvelopeError(
                f"envelope {counter} refused: {self.accepted} was accepted already (replayed or reordered)"
            )
        self.accepted = counter
        return plaintext[COUNTER_SIZE:]
