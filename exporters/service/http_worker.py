"""A gunicorn gthread worker that gives a thread only to a request already read whole.

gunicorn's gthread worker hands a connection to a thread as soon as a byte
arrives; the thread then blocks on the socket until the headers and the body
are in. Twelve clients that send their headers (or a promised body) slowly
therefore hold every thread, and ``/metrics`` stops answering. Here the main
loop does the TLS handshake and reads the request head and body without
blocking, under two deadlines (``header_timeout`` from the first byte wanted,
``body_timeout`` from the end of the head); only a complete request goes to
the thread pool, which then reads it from memory. A client past a deadline
gets 408 and is closed; a head over ``max_head_bytes`` gets 431, a body over
``max_body_bytes`` 413, neither read further.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

from modelmon.exporters.service.request_framing import (
    BUSY,
    READY,
    WAIT,
    Framing,
    ReadLimits,
    response,
    scan,
    too_large,
)

__all__ = ["ReadFirstWorker", "ReadLimits", "worker_class"]


@dataclass
class _Pending:
    buf: bytearray
    deadline: float
    handshaking: bool = False
    head_seen: bool = False
    continued: bool = False
    eof: bool = False
    registered: bool = False
    framing: Framing = field(default_factory=Framing)


# How long a closed connection waits for the client's FIN before the socket is
# dropped (gunicorn's close_graceful default), and how much it drains meanwhile.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 64 * 1024


class _TimedReads:
    """The parser's view of the socket: reads never block longer than ``timeout``.

    The request is in memory when a thread starts on it; this only bounds the
    case where gunicorn's parser wants more than the scan above judged complete.
    """

    def __init__(self, sock: Any, timeout: float) -> None:
        self._sock = sock
        self._timeout = timeout

    def recv(self, size: int) -> bytes:
        current = self._sock.gettimeout()
        if current is None or current > self._timeout:
            self._sock.settimeout(self._timeout)
        data: bytes = self._sock.recv(size)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class ReadFirstWorker(ThreadWorker):
    """gthread, with requests read on the main loop (see the module docstring)."""

    limits: ClassVar[ReadLimits] = ReadLimits()
    #: Returns the server SSLContext (None: plain HTTP).
    tls_context: ClassVar[Callable[[], ssl.SSLContext] | None] = None
    #: Checks a handshaken client (client_allowed_sans); False closes it.
    peer_check: ClassVar[Callable[[ssl.SSLSocket], bool] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading: dict[TConn, _Pending] = {}
        self._lingering: dict[TConn, tuple[float, int]] = {}
        self._buffered = 0

    def enqueue_req(self, conn: TConn) -> None:
        if getattr(conn, "modelmon_ready", False):
            conn.modelmon_ready = False  # type: ignore[attr-defined]
            super().enqueue_req(conn)
            return
        self._start_reading(conn)

    def _start_reading(self, conn: TConn) -> None:
        parser: Any = conn.parser  # an HTTP/1 RequestParser: HTTP/2 is never offered
        buffered = parser.unreader.take_buffered() if parser is not None else b""
        pending = _Pending(bytearray(buffered), time.monotonic() + self.limits.header_timeout)
        conn.sock.setblocking(False)
        tls_context = type(self).tls_context
        if tls_context is not None and not isinstance(conn.sock, ssl.SSLSocket):
            try:
                conn.sock = tls_context().wrap_socket(conn.sock, server_side=True,
                                                      do_handshake_on_connect=False)
            except (ssl.SSLError, OSError):
                self.nr_conns -= 1
                conn.close()
                return
            pending.handshaking = True
        self._reading[conn] = pending
        self._buffered += len(pending.buf)
        # A kept-alive connection comes here because it is readable: the whole
        # request is often in already, and needs no poller round trip.
        self._advance(conn, pending)
        if conn in self._reading:
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
            pending.registered = True

    def _on_readable(self, conn: TConn, _fileobj: object) -> None:
        pending = self._reading.get(conn)
        if pending is not None:
            self._advance(conn, pending)

    def _advance(self, conn: TConn, p: _Pending) -> None:
        sock: Any = conn.sock  # an SSLSocket when TLS is on
        if p.handshaking:
            try:
                sock.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except (ssl.SSLError, OSError) as exc:
                self.log.debug("TLS handshake with %s failed: %s", conn.client, exc)
                self._drop(conn)
                return
            p.handshaking = False
            check = type(self).peer_check
            if check is not None and not check(sock):
                self.log.warning("closing the connection of %s: its client certificate has "
                                 "none of tls_server_config.client_allowed_sans", conn.client)
                self._drop(conn)
                return
        cap = self.limits.max_head_bytes + self.limits.max_body_bytes + 65536
        while len(p.buf) <= cap:
            try:
                chunk = sock.recv(65536)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                    ssl.SSLWantWriteError):
                break
            except (ssl.SSLError, OSError):
                self._drop(conn)
                return
            if not chunk:
                p.eof = True
                break
            p.buf += chunk
            self._buffered += len(chunk)
            if self._buffered > self.limits.max_buffered_bytes:
                self.log.warning("answering 503 to %s: unfinished requests hold more than "
                                 "%d bytes", conn.client, self.limits.max_buffered_bytes)
                self._drop(conn, BUSY)
                return
        verdict, head_end = scan(p.buf, self.limits, p.framing)
        if verdict == WAIT and len(p.buf) > cap:
            verdict = too_large(self.limits.max_body_bytes)  # framing that never ends
        if head_end >= 0 and not p.head_seen:
            p.head_seen = True
            p.deadline = time.monotonic() + self.limits.body_timeout
        if verdict == READY:
            self._hand_over(conn, p)
        elif isinstance(verdict, bytes):
            self._drop(conn, verdict)
        elif p.eof:
            self._drop(conn)
        elif head_end >= 0 and not p.continued and b"100-continue" in bytes(
                p.buf[:head_end]).lower():
            # The client waits for this before sending its body (curl does, 1 s).
            p.continued = True
            self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")

    def _send(self, conn: TConn, data: bytes) -> None:
        try:
            conn.sock.send(data)
        except (ssl.SSLError, OSError):
            pass  # the connection closes anyway; nothing to tell a client that is gone

    def _forget(self, conn: TConn) -> None:
        pending = self._reading.pop(conn, None)
        if pending is not None:
            self._buffered -= len(pending.buf)
        if pending is not None and pending.registered:
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass

    def _drop(self, conn: TConn, answer: bytes | None = None) -> None:
        self._forget(conn)
        if answer is not None:
            self._send(conn, answer)
        self.nr_conns -= 1
        conn.close()

    def _hand_over(self, conn: TConn, p: _Pending) -> None:
        self._forget(conn)
        if conn.parser is None:
            conn.parser = http.get_parser(
                self.cfg, _TimedReads(conn.sock, self.limits.body_timeout), conn.client)
        parser: Any = conn.parser
        parser.unreader.unread(bytes(p.buf))
        # The parser exists and TLS is up: TConn.init() has nothing left to do.
        conn.initialized = True
        conn.modelmon_ready = True  # type: ignore[attr-defined]
        self.enqueue_req(conn)

    def finish_request(self, conn: TConn, fs: Any) -> None:
        try:
            closing = not fs.cancelled() and fs.result() is False
        except Exception:
            closing = False
        if not closing:
            super().finish_request(conn, fs)
            return
        # gunicorn lingers for the client's FIN with a blocking recv on this,
        # the main loop: a client that never closes stalled every other
        # connection for 2 s. Linger on the poller instead.
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ,
                                 partial(self._on_linger_readable, conn))
        except (OSError, ValueError, KeyError):
            self.nr_conns -= 1
            conn.close()
            return
        self._lingering[conn] = (time.monotonic() + _LINGER_SECONDS, 0)

    def _on_linger_readable(self, conn: TConn, _fileobj: object) -> None:
        deadline, drained = self._lingering[conn]
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return
        except OSError:
            data = b""
        drained += len(data)
        if data and drained < _LINGER_BYTES:
            self._lingering[conn] = (deadline, drained)
            return
        self._end_linger(conn)

    def _end_linger(self, conn: TConn) -> None:
        del self._lingering[conn]
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, (deadline, _) in list(self._lingering.items()):
            if now > deadline or not self.alive:
                self._end_linger(conn)
        for conn, p in list(self._reading.items()):
            if not self.alive:
                self._drop(conn)
            elif now > p.deadline:
                self._drop(conn, None if p.handshaking or not p.buf else response(
                    "408 Request Timeout", "text/plain", b"request not received in time\n"))

    def handle_request(self, req: Any, conn: TConn) -> bool:
        # A client that does not read its answer must not hold the thread.
        conn.sock.settimeout(self.limits.write_timeout)
        result: bool = super().handle_request(req, conn)
        return result


def worker_class(limits: ReadLimits, tls_context: Callable[[], ssl.SSLContext] | None = None,
                 peer_check: Callable[[ssl.SSLSocket], bool] | None = None,
                 ) -> type[ReadFirstWorker]:
    """A ReadFirstWorker bound to these settings (gunicorn takes a class)."""
    return type("ModelmonWorker", (ReadFirstWorker,), {
        "limits": limits,
        "tls_context": staticmethod(tls_context) if tls_context else None,
        "peer_check": staticmethod(peer_check) if peer_check else None,
    })
