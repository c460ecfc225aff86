"""A small TCP load balancer for the scale-out tests: round-robin over backends, one backend per connection.

``python balancer.py LISTEN_PORT BACKEND_PORT [BACKEND_PORT...]`` (all on 127.0.0.1). A backend that refuses the
connection is skipped for that connection (the next one is tried), as a balancer's health handling would;
bytes are piped both ways until either side closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys


class RoundRobin:
    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self._next = itertools.cycle(range(len(backends)))

    async def open_backend(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.backends)):
            port = self.backends[next(self._next)]
            try:
                return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout=2.0)
            except (OSError, TimeoutError):
                continue
        return None

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        backend = await self.open_backend()
        if backend is None:
            client_writer.close()
            return
        backend_reader, backend_writer = backend

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    writer.close()

        await asyncio.gather(pipe(client_reader, backend_writer), pipe(backend_reader, client_writer))


async def main(listen: int, backends: list[int]) -> None:
    balancer = RoundRobin(backends)
    server = await asyncio.start_server(balancer.handle, "127.0.0.1", listen, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), [int(p) for p in sys.argv[2:]]))
