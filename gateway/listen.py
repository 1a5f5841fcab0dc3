"""A listening socket per worker of ``serve --workers N``, so that the kernel spreads the connections.

uvicorn's workers share one listening socket, and the worker that is idle when connections arrive
accepts all of them. A client that opens its keep-alive connections while the other worker is
still busy (a burst of lists just ended) has every connection on one worker, and the server runs
at one worker's speed for as long as they stay open: in ``make bench``, all 32 of wrk's
connections on one of two workers, 2,800 gets/s instead of 7,500, whenever a run followed another
on the same server. With ``SO_REUSEPORT`` each worker listens on a socket of its own, bound to the
same address, and Linux hashes each new connection to one of them whatever the workers are doing.

The parent binds first, with ``SO_REUSEPORT`` and without listening: that reserves the port, and a
port another program holds fails there, once, with a clear message. Each worker, before uvicorn
listens, binds a socket of its own and puts it in place of the one it inherited (``dup2`` onto the
same descriptor). Elsewhere (macOS, where ``SO_REUSEPORT`` does not balance; Windows) the workers
share the parent's socket as before.
"""

from __future__ import annotations

import os
import socket
import sys

__all__ = ("ADDRESS_ENV", "balanced", "bind_reserved", "take_own_socket")

ADDRESS_ENV = "BRIDGEHEAD_WORKER_LISTEN"
"""Set by the parent: the address its reserved socket is bound to, for each worker to bind as well."""


def balanced() -> bool:
    """Whether workers get a socket each here: Linux balances ``SO_REUSEPORT`` sockets, others do not."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def bind_reserved(host: str, port: int) -> socket.socket:
    """The parent's socket: bound with ``SO_REUSEPORT``, never listening, inherited by the workers.

    Sets ``ADDRESS_ENV`` for them. Raises ``OSError`` when the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = _reusing(family)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    os.environ[ADDRESS_ENV] = _address(sock)
    return sock


def take_own_socket() -> bool:
    """In a worker: put a socket of its own, bound to the parent's address, in place of the inherited one.

    Returns whether it did: False outside a worker of a balanced ``serve --workers N``, or when the
    inherited socket is not found (the workers then share it, as uvicorn does).
    """
    wanted = os.environ.get(ADDRESS_ENV)
    if not wanted or not balanced():
        return False
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            probe = socket.socket(fileno=fd)
        except OSError:  # not a socket, or the descriptor listdir itself used
            continue
        try:
            if (
                probe.type != socket.SOCK_STREAM
                or probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                or not probe.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
                or _address(probe) != wanted
            ):
                continue
            own = _reusing(probe.family)
            try:
                own.bind(probe.getsockname())
                os.dup2(own.fileno(), fd)  # uvicorn's socket object now stands for this worker's own socket
            finally:
                own.close()
            return True
        except OSError:
            continue
        finally:
            probe.detach()  # the descriptor stays open: it is uvicorn's
    return False


def _reusing(family: socket.AddressFamily) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{int(sock.family)}|{host}|{port}"
