"""A minimal blocking WebSocket client on a raw socket, for what a library hides: a reader that
really stops reading (small receive buffer, TCP window fills), hand-made frames (oversize,
fragmented, invalid UTF-8) and the exact close code.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct


class Closed(Exception):
    def __init__(self, code: int | None, reason: str):
        super().__init__(f"closed {code} {reason!r}")
        self.code = code
        self.reason = reason


class RawWebSocket:
    def __init__(self, host: str, port: int, path: str, headers: dict | None = None, rcvbuf: int | None = None,
                 timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        self.status = int(self.status_line.split()[1]) if self.status_line.startswith("HTTP/") else 0
        self.closed: Closed | None = None

    @property
    def upgraded(self) -> bool:
        return self.status == 101

    # -- reading

    def _read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise Closed(None, "connection closed without a close frame")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = self._read_exact(2)
        fin, opcode, masked, length = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
        if length == 126:
            length = struct.unpack(">H", self._read_exact(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._read_exact(8))[0]
        mask = self._read_exact(4) if masked else None
        payload = self._read_exact(length)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return fin, opcode, payload

    def recv(self) -> str:
        """The next text message (answers pings; raises Closed on a close frame)."""
        parts: list[bytes] = []
        while True:
            fin, opcode, payload = self.read_frame()
            if opcode == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                self.closed = Closed(code, payload[2:].decode("utf-8", "replace"))
                raise self.closed
            if opcode == 0x9:
                self.send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if fin:
                return b"".join(parts).decode("utf-8")

    def recv_json(self) -> dict:
        return json.loads(self.recv())

    # -- writing

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True, send_at_most: int | None = None) -> None:
        """Sends one masked frame. With `send_at_most`, the header announces the whole payload but
        only that many payload bytes are sent (a peer that refuses the frame by its announced
        length answers without waiting for the rest)."""
        header = bytes([(0x80 if fin else 0) | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", length)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if length < 1 << 16 else _mask_fast(payload, mask)
        if send_at_most is not None:
            masked = masked[:send_at_most]
        self.sock.sendall(header + mask + masked)

    def send_text(self, text: str) -> None:
        self.send_frame(0x1, text.encode())

    def send_json(self, obj: dict) -> None:
        self.send_text(json.dumps(obj))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _mask_fast(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
