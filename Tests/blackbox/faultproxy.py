"""A small asyncio TCP proxy that can lose the server's answer after the server has applied it.

A request that carries the header `X-Fault: drop-response` is forwarded to the server as is; the
server's answer is read (and kept in `dropped`, so a test can compare the retry with the original
outcome) but never forwarded: the client connection is aborted instead. Every other byte passes
through unchanged.
"""

from __future__ import annotations

import asyncio
import re
import threading

MARKER = b"x-fault: drop-response"
DROP_HEADERS = {"X-Fault": "drop-response", "Connection": "close"}


class FaultProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.target_host = host
        self.target_port = target_port
        self.port = 0
        self.dropped: list[bytes] = []   # the full answers that never reached the client
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)
        self._ready = threading.Event()
        self._server = None

    # -- lifecycle

    def start(self) -> "FaultProxy":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    # -- forwarding

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        state = {"drop": False, "tail": b""}

        async def client_to_server():
            try:
                while True:
                    data = await client_reader.read(65536)
                    if not data:
                        break
                    window = (state["tail"] + data).lower()
                    if MARKER in window:
                        state["drop"] = True
                    state["tail"] = window[-len(MARKER):]
                    upstream_writer.write(data)
                    await upstream_writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                try:
                    upstream_writer.write_eof()
                except (OSError, RuntimeError):
                    pass

        async def server_to_client():
            try:
                while True:
                    data = await upstream_reader.read(65536)
                    if not data:
                        break
                    if state["drop"]:
                        answer = data
                        while not _complete(answer):
                            more = await asyncio.wait_for(upstream_reader.read(65536), 30)
                            if not more:
                                break
                            answer += more
                        self.dropped.append(answer)
                        client_writer.transport.abort()
                        upstream_writer.close()
                        return
                    client_writer.write(data)
                    await client_writer.drain()
            except (ConnectionError, OSError, asyncio.TimeoutError):
                pass
            finally:
                try:
                    client_writer.close()
                except (OSError, RuntimeError):
                    pass

        await asyncio.gather(client_to_server(), server_to_client(), return_exceptions=True)
        try:
            upstream_writer.close()
        except (OSError, RuntimeError):
            pass


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    return bool(match) and len(body) >= int(match.group(1))


def split_response(data: bytes) -> tuple[int, dict, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body
