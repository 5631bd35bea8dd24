"""The listening socket for servers bastion starts itself (`guard serve`, the demo's model).

They bind before uvicorn starts, so port 0 works and the announced URL already
accepts connections. The socket must name its protocol: asyncio turns Nagle's
algorithm off (TCP_NODELAY) only on sockets whose `proto` is IPPROTO_TCP, and
accepted sockets inherit it from the listener. Without it, a response written
in two parts waits for the client's delayed ACK: about 40 ms per request on
Linux, which capped the proxy at ~20 requests/s per connection.
"""

from __future__ import annotations

import socket

__all__ = ["listen"]


def listen(host: str, port: int, *, backlog: int = 256) -> socket.socket:
    """A bound, listening TCP socket; raises OSError when the address is taken or invalid."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
