"""``EncryptedTransport``: end-to-end AES-256-GCM over any other transport.

Wraps a :class:`~pyodide_transport.transport.Transport`: every message it sends becomes one
encrypted envelope notification (the wire format of :mod:`pyodide_transport.envelope`), and every
message it receives must be one::

    from pyodide_transport import Client, EncryptedTransport, WebSocketTransport

    inner = WebSocketTransport("ws://127.0.0.1:8000/ws/encrypted", ping_interval=None, auto_reconnect=False)
    async with Client(EncryptedTransport(inner, passphrase="…", salt=b"…")) as client:
        await client.call_tool("echo", {"message": "only the server reads this"})

The AES-GCM primitive is WebCrypto (``crypto.subtle``) under Pyodide and ``cryptography`` in CPython
(the ``cpython`` extra); a passphrase goes through PBKDF2-HMAC-SHA256 (WebCrypto's in a browser), once,
on first use. An envelope that is tampered with, replayed, reordered, truncated, sealed under another
key or for the other direction, or a plaintext message, is raised from :meth:`receive` as
:class:`~pyodide_transport.errors.EnvelopeError`: the session reports it and reads on (see
:mod:`pyodide_transport.errors`), so a forged message never reaches the session.

The inner transport must carry every message through ``send``/``receive`` and stay one connection:
give a ``WebSocketTransport`` ``ping_interval=None`` (its keep-alive pings would travel in clear, and
an encrypted endpoint refuses them) and ``auto_reconnect=False`` (the envelope counters belong to one
connection). Over Streamable HTTP the envelope hides the payload but not the ``Mcp-Method`` headers.
"""

from __future__ import annotations

import asyncio
import sys

from .envelope import (
    AEAD,
    DEFAULT_SALT,
    ENVELOPE_METHOD,
    PBKDF2_ITERATIONS,
    EnvelopeCore,
    Opening,
    Role,
    derive_key,
    resolve_key,
)
from .errors import RemoteProtocolError
from .messages import (
    JSONRPCNotification,
    TransportMessage,
    decode_message,
    encode_message,
    make_notification,
    message_to_obj,
)
from .transport import Transport

__all__ = ["EncryptedTransport", "EnvelopeCodec", "default_aead", "derive_key_async"]


def default_aead(key: bytes) -> AEAD:
    """This platform's AES-256-GCM: WebCrypto under Pyodide, ``cryptography`` elsewhere."""
    if sys.platform == "emscripten":
        from ._browser import WebCryptoAEAD

        return WebCryptoAEAD(key)
    from .cpython import CryptographyAEAD

    return CryptographyAEAD(key)


async def derive_key_async(passphrase: str, salt: bytes = DEFAULT_SALT, iterations: int = PBKDF2_ITERATIONS) -> bytes:
    """:func:`~pyodide_transport.envelope.derive_key` without blocking the event loop.

    WebCrypto's PBKDF2 under Pyodide, ``hashlib`` in a worker thread elsewhere; the same bytes.
    """
    if not passphrase:
        raise ValueError("the passphrase is empty")
    if sys.platform == "emscripten":
        from ._browser import webcrypto_pbkdf2

        return await webcrypto_pbkdf2(passphrase.encode(), salt, iterations)
    return await asyncio.to_thread(derive_key, passphrase, salt, iterations)


class EnvelopeCodec:
    """Seals and opens one connection's messages: an :class:`~pyodide_transport.envelope.EnvelopeCore` and a key.

    Used by :class:`EncryptedTransport` (messages) and by the demo server's ``/ws/encrypted``
    (frames). Sealing is serialized, so envelopes reach the wire in counter order as long as the
    caller sends each one before sealing the next (:meth:`seal_text` under the caller's send lock).

    Args:
        role: ``"client"`` or ``"server"``.
        key: The 32-byte key; or
        passphrase: A passphrase, derived on first use with ``salt`` and ``iterations``.
        aead: An AES-256-GCM adapter to use instead of :func:`default_aead` (then no key).
    """

    def __init__(
        self,
        role: Role,
        *,
        key: bytes | None = None,
        passphrase: str | None = None,
        salt: bytes = DEFAULT_SALT,
        iterations: int = PBKDF2_ITERATIONS,
        aead: AEAD | None = None,
    ) -> None:
        if aead is None:
            resolve_key(key, passphrase)
        elif key is not None or passphrase is not None:
            raise ValueError("give aead= or a key, not both")
        self.core = EnvelopeCore(role)
        self._aead = aead
        self._key = key
        self._passphrase = passphrase
        self._salt = salt
        self._iterations = iterations
        self._ready: asyncio.Future[AEAD] | None = None
        self._receiving = asyncio.Lock()

    async def cipher(self) -> AEAD:
        """The AEAD, deriving the key first if needed (once, however many callers wait)."""
        if self._aead is not None:
            return self._aead
        if self._ready is None:
            self._ready = asyncio.ensure_future(self._make())
        aead = await asyncio.shield(self._ready)
        self._aead = aead
        return aead

    async def _make(self) -> AEAD:
        key = self._key
        if key is None:
            assert self._passphrase is not None
            key = await derive_key_async(self._passphrase, self._salt, self._iterations)
        self._key = self._passphrase = None
        return default_aead(key)

    async def seal_text(self, text: str) -> str:
        """The envelope (compact JSON text) of one JSON-RPC message's text. Call it under a send lock."""
        return encode_message(await self.seal_payload(text.encode()))

    async def seal_payload(self, payload: bytes) -> JSONRPCNotification:
        """The envelope notification of one JSON-RPC message's UTF-8 text."""
        aead = await self.cipher()
        sealing = self.core.sealing(payload)
        sealed = await aead.seal(sealing.nonce, sealing.plaintext, sealing.aad)
        obj = self.core.envelope(sealing, sealed)
        return make_notification(obj["method"], obj["params"])

    async def open_text(self, frame: str | bytes) -> bytes:
        """The JSON-RPC text inside one envelope frame.

        Raises:
            EnvelopeError: Not an envelope, or it does not open (tampered, replayed, another key, …).
        """
        return await self._open(self.core.opening_text(frame))

    async def open_message(self, message: TransportMessage) -> TransportMessage:
        """The message inside one envelope message.

        Raises:
            EnvelopeError: Not an envelope, or it does not open.
            RemoteProtocolError: It opened, but holds no valid JSON-RPC message (the peer's bug).
        """
        if isinstance(message, JSONRPCNotification) and message.method == ENVELOPE_METHOD:
            obj: object = {"jsonrpc": "2.0", "method": message.method, "params": message.params}
        else:
            obj = message_to_obj(message)
        payload = await self._open(self.core.opening(obj))
        try:
            return decode_message(payload)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(f"the envelope opened but holds no valid message: {exc}") from None

    async def _open(self, opening: Opening) -> bytes:
        aead = await self.cipher()
        async with self._receiving:  # counters are checked in arrival order
            plaintext = await aead.open(opening.nonce, opening.ciphertext, opening.aad)
            return self.core.accept(plaintext)


class EncryptedTransport:
    """A :class:`~pyodide_transport.transport.Transport` that seals every message (see the module docstring).

    Args:
        inner: The transport that carries the envelopes (a ``WebSocketTransport``, an in-memory pair, …).
        key: A 32-byte AES-256-GCM key; or
        passphrase: A passphrase (PBKDF2-HMAC-SHA256 with ``salt``; both ends need the same salt).
        salt: The PBKDF2 salt (default :data:`~pyodide_transport.envelope.DEFAULT_SALT`, public: pick your own).
        role: ``"client"`` (default) or ``"server"``: which direction this end seals.
        iterations: PBKDF2 iterations (default 200,000).
        aead: An AES-256-GCM adapter instead of the platform's (then no key or passphrase).

    Raises:
        ValueError: Not exactly one of ``key`` / ``passphrase`` / ``aead``, or a key not 32 bytes long.
    """

    def __init__(
        self,
        inner: Transport,
        *,
        key: bytes | None = None,
        passphrase: str | None = None,
        salt: bytes = DEFAULT_SALT,
        role: Role = "client",
        iterations: int = PBKDF2_ITERATIONS,
        aead: AEAD | None = None,
    ) -> None:
        self.inner = inner
        self.transport_type = f"encrypted+{inner.transport_type}"
        self.codec = EnvelopeCodec(role, key=key, passphrase=passphrase, salt=salt, iterations=iterations, aead=aead)
        self._sending = asyncio.Lock()

    async def send(self, message: TransportMessage) -> None:
        """Seal ``message`` and send its envelope through the inner transport (in counter order)."""
        payload = encode_message(message).encode()
        await self.codec.cipher()  # derive the key outside the lock
        async with self._sending:
            envelope = await self.codec.seal_payload(payload)
            await self.inner.send(envelope)

    async def receive(self) -> TransportMessage:
        """Open the next envelope.

        Raises:
            EnvelopeError: The message was no envelope, or did not open; raised once, the next call reads on.
            TransportError: Whatever the inner transport raises, unchanged.
        """
        return await self.codec.open_message(await self.inner.receive())

    async def close(self) -> None:
        """Close the inner transport."""
        await self.inner.close()

    def is_connected(self) -> bool:
        """Whether the inner transport is connected."""
        return self.inner.is_connected()
