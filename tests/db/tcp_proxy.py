"""A loopback TCP proxy a test can cut, black-hole and restore: the database "goes away" without stopping it.

``cut()`` closes every proxied connection and answers new ones by closing them
at once (like a server that is down, or a firewall that rejects).
``black_hole()`` is the nastier outage: connections stay open and new ones are
accepted, but nothing is forwarded either way and nothing is closed — no RST,
no FIN — so a client sees a database that simply stops answering (a hung
server, a stateful firewall that dropped its entry, a VPN that went quiet).
Bytes sent meanwhile wait in the kernel, as TCP retransmissions would, and are
delivered when ``restore()`` forwards again. Only 127.0.0.1 is ever involved.
"""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ("TcpProxy",)


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1", *, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self._listener.getsockname()[1]
        self._up = True
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()

    def cut(self) -> None:
        with self._lock:
            self._up = False
            self._forwarding.set()  # pumps blocked by a black hole wake up and see their sockets closed
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def black_hole(self) -> None:
        """Accept, hold, never answer: every byte either way waits until ``restore()``."""
        with self._lock:
            self._up = True
            self._forwarding.clear()

    def restore(self) -> None:
        with self._lock:
            self._up = True
            self._forwarding.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                up = self._up
            if not up:
                client.close()
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        with self._lock:
            self._sockets.add(client)
        self._forwarding.wait()  # a connection made during a black hole hangs before it reaches the server
        if self._closed or not self._up:
            client.close()
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
            server.settimeout(None)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets.add(server)
        for source, target in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                self._forwarding.wait()
                chunk = source.recv(65536)
                if not chunk:
                    break
                self._forwarding.wait()  # read before the hole opened: hold it until restore
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
