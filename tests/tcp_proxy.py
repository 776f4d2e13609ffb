"""A TCP proxy the tests control: put it between a worker and a server to cut the connection.

It runs its own event loop in a thread, so the test's loop can block or sleep freely. While
``cut()`` is in force, every open connection is reset and new ones are refused (the listening
socket is closed, so a client sees "connection refused", as when the server is down);
``restore()`` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

__all__ = ["TcpProxy"]

CHUNK = 65536
#: struct linger {on, 0 s}: close() sends an RST instead of a FIN.
LINGER_ZERO = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; see the module docstring."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)  # type: ignore[arg-type]

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>`` the clients connect to."""
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until :meth:`restore`."""
        self._call(self._close())

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self._call(self._listen())

    @contextmanager
    def outage(self) -> Iterator[None]:
        """Cut for the duration of the ``with`` block."""
        self.cut()
        try:
            yield
        finally:
            self.restore()

    async def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self._server = await asyncio.start_server(self._handle, sock=sock)
        self.port = sock.getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            _reset(writer)
        self._open.clear()

    async def _shutdown(self) -> None:
        """Close everything, connections still being set up included, before the loop stops."""
        await self._close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await asyncio.sleep(0)  # the transports' connection_lost callbacks close their sockets

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(client_w)  # a cut while the server side is being reached resets it too
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            self._open.discard(client_w)
            _reset(client_w)
            return
        except asyncio.CancelledError:
            _reset(client_w)
            raise
        if client_w not in self._open:  # cut meanwhile
            _reset(server_w)
            return
        self._open.add(server_w)
        await asyncio.gather(
            _pipe(client_r, server_w), _pipe(server_r, client_w), return_exceptions=True
        )
        for writer in (client_w, server_w):
            self._open.discard(writer)
            _reset(writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with suppress(OSError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close at once with an RST (SO_LINGER 0), as a crashed peer or a cut network does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
    writer.transport.abort()
