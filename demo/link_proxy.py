"""A loopback TCP proxy the demo cuts and restores: an edge device's link.

Each edge agent's remote_write goes through one. ``cut()`` closes the open
connections and refuses new ones (accepted, then closed at once, like a
dropped uplink the device retries against); ``restore()`` forwards again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class LinkProxy:
    def __init__(self, listen_port: int, target_port: int, name: str = "link") -> None:
        self.name = name
        self.target = ("127.0.0.1", target_port)
        self._server = socket.create_server(("127.0.0.1", listen_port))
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.changed_at = time.time()
        self._thread = threading.Thread(target=self._accept, name=f"demo-proxy-{name}", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.getsockname()[1])

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def cut(self) -> None:
        self._up.clear()
        self.changed_at = time.time()
        with self._lock:
            for conn in list(self._open):
                _close(conn)
            self._open.clear()

    def restore(self) -> None:
        self._up.set()
        self.changed_at = time.time()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        _close(self._server)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._up.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data or not self._up.is_set():
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                _close(s)
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
