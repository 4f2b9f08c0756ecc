"""A loopback TCP proxy in front of a real Prefect server that can go down like the server would.

Clients (HTTP and the events websocket alike) point ``PREFECT_API_URL`` at the proxy; bytes pass
through unchanged. ``down()`` cuts every open connection and stops listening, so a new connection is
refused (``ConnectError``) exactly as when the server process is gone; ``up()`` listens again on the
same port. Hand-written: a few dozen lines of sockets, where a proxy package would add a dependency for
one test.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

from tasks.core.prefect_server import free_port


@dataclass
class OutageProxy:
    upstream_port: int
    port: int = field(default_factory=free_port)
    refused_since: float | None = None
    outages: list[tuple[float, float]] = field(default_factory=list)  # (down at, up at), monotonic
    _listener: socket.socket | None = None
    _conns: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        if self.refused_since is not None:
            self.outages.append((self.refused_since, time.monotonic()))
            self.refused_since = None
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        self.refused_since = time.monotonic()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            _close(conn)

    def close(self) -> None:
        self.down()
        self.refused_since = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
