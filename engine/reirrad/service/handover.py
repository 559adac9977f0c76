"""A uvicorn server that listens on no socket of its own: it serves the connections its parent accepted and handed
over (``reirrad serve --workers N`` on Linux; the parent side is ``reirrad.cli.serve._serve_workers``).

Each connection arrives as a file descriptor in one message on a Unix ``SOCK_SEQPACKET`` pair (SCM_RIGHTS). The
server wraps it in the same HTTP protocol uvicorn gives the connections it accepts itself, with the same state: the
concurrency limit, the keep-alive timeout and the graceful shutdown (which waits for the open connections) apply
unchanged. The end of the pair (the parent gone) stops the server.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import uvicorn

__all__ = ["HandedServer"]

log = logging.getLogger("reirrad.service")


class HandedServer(uvicorn.Server):
    """``uvicorn.Server`` fed by ``channel`` instead of a listening socket."""

    def __init__(self, channel: socket.socket, app: Any, **options: Any) -> None:
        super().__init__(uvicorn.Config(app, **options))
        self.channel = channel
        self._tasks: set[asyncio.Task[Any]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan, no listening socket
        loop = asyncio.get_running_loop()
        config = self.config

        def protocol() -> asyncio.Protocol:
            # what uvicorn's startup gives each connection it accepts: its HTTP protocol, with this server's state
            made: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )
            return made

        self.channel.setblocking(False)
        loop.add_reader(self.channel.fileno(), self._take, loop, protocol)

    def _take(self, loop: asyncio.AbstractEventLoop, protocol: Any) -> None:
        """One handed-over connection (the reader fires again while more wait)."""
        try:
            message, fds, _, _ = socket.recv_fds(self.channel, 1, 1)
        except BlockingIOError:
            return
        except OSError as exc:
            log.error("the parent's channel failed (%s); stopping", exc.strerror)
            message, fds = b"", []
        if not message and not fds:  # the parent is gone: serve what is open, take nothing new
            loop.remove_reader(self.channel.fileno())
            self.should_exit = True
            return
        for fd in fds:
            connection = socket.socket(fileno=fd)
            task = loop.create_task(loop.connect_accepted_socket(protocol, connection))
            self._tasks.add(task)  # held until done: the loop keeps only a weak reference
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # the client left before it was served
            log.info("a handed-over connection could not be taken up: %s", task.exception())
