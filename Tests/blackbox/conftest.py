"""Black-box harness: every test drives a real `cairn serve` process over HTTP and WebSocket.

Environment:
  CAIRN_BINARY      the server executable (default: <repo>/.build/debug/cairn)
  BLACKBOX_SCALE    `ci` (default) or `release` (the soak sizes of docs/reliability.md)
  BLACKBOX_SEED     replay a run: the seed is printed in the header and on every failure
  BLACKBOX_KEEP     keep the servers' data directories and logs (printed at the end)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
SCALE = os.environ.get("BLACKBOX_SCALE", "ci").strip().lower() or "ci"
if SCALE not in ("ci", "release"):
    raise SystemExit(f"BLACKBOX_SCALE must be ci or release, not {SCALE!r}")
SEED = int(os.environ.get("BLACKBOX_SEED") or random.SystemRandom().randrange(1, 2**31))
LISTEN_RE = re.compile(rb"Cairn listening on (http://[0-9.]+:(\d+))")
UNAUTHORIZED_BODY = {"error": {"code": "UNAUTHORIZED", "message": "Authentication required"}}


def binary() -> str:
    raw = os.environ.get("CAIRN_BINARY") or ".build/debug/cairn"
    path = Path(raw)
    if not path.is_absolute():
        path = REPO / path
    return str(path)


def scaled(ci, release):
    """The CI size or the release (soak) size of a loop."""
    return release if SCALE == "release" else ci


def pytest_report_header(config):
    return [f"cairn binary: {binary()}", f"BLACKBOX_SCALE={SCALE} BLACKBOX_SEED={SEED}"]


def pytest_configure(config):
    if not Path(binary()).exists():
        raise pytest.UsageError(f"no cairn binary at {binary()} (build it, or set CAIRN_BINARY)")


# --------------------------------------------------------------------------------------------
# The server process


class CairnServer:
    """One `cairn serve` process on a data directory; can be killed (-9) and restarted on it."""

    def __init__(self, workdir: Path, name: str, args: Iterable[str] = (), env: dict | None = None,
                 data_dir: Path | None = None, log_level: str = "notice", wrapper: list[str] | None = None):
        self.name = name
        self.data_dir = Path(data_dir or workdir / f"{name}-data")
        self.log_path = workdir / f"{name}.log"
        self.args = list(args)
        self.env = dict(env or {})
        self.log_level = log_level
        self.wrapper = list(wrapper or [])
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.port = 0
        self.starts = 0
        self.expected_dead = True

    # -- lifecycle

    def command(self) -> list[str]:
        return self.wrapper + [binary(), "serve", "--port", "0", "--data-dir", str(self.data_dir),
                               "--log-level", self.log_level] + self.args

    def spawn(self) -> subprocess.Popen:
        """Starts the process without waiting for it to listen (for boot-failure tests)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
        env["CAIRN_BCRYPT_COST"] = "4"
        env.update(self.env)
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start #{self.starts + 1}: {' '.join(self.command())}\n".encode())
            self._log_offset = log.tell()
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        return self.proc

    def start(self, timeout: float = 30.0) -> "CairnServer":
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                match = LISTEN_RE.search(log.read())
            if match:
                self.url = match.group(1).decode()
                self.port = int(match.group(2))
                self.expected_dead = False
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"cairn exited with {self.proc.returncode} before listening:\n{self.log_tail()}")
            time.sleep(0.01)
        self.kill9()
        raise RuntimeError(f"cairn did not listen within {timeout}s:\n{self.log_tail()}")

    def kill9(self) -> None:
        self.expected_dead = True
        if self.proc and self.proc.poll() is None:
            if self.wrapper:
                # Kill the server itself first: a killed tracer would leave it running detached.
                for child in self._children():
                    try:
                        os.kill(child, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def _children(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def stop(self, timeout: float = 15.0) -> int | None:
        """Graceful stop (SIGTERM), falling back to SIGKILL; returns the exit status."""
        self.expected_dead = True
        if self.proc and self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.returncode if self.proc else None

    def restart(self) -> "CairnServer":
        self.kill9()
        return self.start()

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)

    # -- observation

    @property
    def pid(self) -> int:
        """The server's process id (under a wrapper such as strace, the wrapped child's)."""
        if self.wrapper:
            children = self._children()
            return children[0] if children else self.proc.pid
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):]

    @property
    def db_path(self) -> Path:
        return self.data_dir / "cairn.sqlite"

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def db(self) -> sqlite3.Connection:
        """A connection to the server's database (read it while the server is stopped, or read-only)."""
        return sqlite3.connect(str(self.db_path), timeout=30)

    def integrity_check(self) -> str:
        con = self.db()
        try:
            return ",".join(row[0] for row in con.execute("PRAGMA integrity_check").fetchall())
        finally:
            con.close()

    def secrets(self) -> dict:
        return json.loads((self.data_dir / "secrets.json").read_text())


@pytest.fixture
def cairn(request, tmp_path_factory):
    """Factory: `cairn(args=[...], env={...}, start=True)` → a CairnServer; all are killed at teardown."""
    workdir = tmp_path_factory.mktemp("cairn")
    servers: list[CairnServer] = []
    request.node._cairn_servers = servers

    def make(args: Iterable[str] = (), env: dict | None = None, start: bool = True, name: str | None = None,
             **kw) -> CairnServer:
        server = CairnServer(workdir, name or f"s{len(servers)}", args=args, env=env, **kw)
        servers.append(server)
        if start:
            server.start()
        return server

    yield make
    crashed = [s for s in servers if not s.expected_dead and not s.alive()]
    for server in servers:
        server.kill9()
    if crashed:
        tails = "\n".join(f"--- {s.name} (exit {s.proc.returncode})\n{s.log_tail()}" for s in crashed)
        pytest.fail(f"cairn died unexpectedly during the test:\n{tails}", pytrace=False)


@pytest.fixture
def server(cairn) -> CairnServer:
    return cairn()


@pytest.fixture
def rng(request) -> random.Random:
    return random.Random(f"{SEED}:{request.node.nodeid}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in getattr(item, "_cairn_servers", []):
            report.sections.append((f"cairn log {server.name} ({server.log_path})", server.log_tail()))
        report.sections.append(("replay", f"BLACKBOX_SEED={SEED} BLACKBOX_SCALE={SCALE} "
                                          f"scripts/blackbox '{item.nodeid}'"))


# --------------------------------------------------------------------------------------------
# HTTP client


class Api:
    """A user's HTTP client against a CairnServer (follows the server across restarts)."""

    # A suite that sends thousands of API requests as one user (not a rate-limit test) sets this:
    # a 429 of the per-user API rate is then waited out (Retry-After) and the request sent again,
    # as a client must. Auth routes (their own limits, tested as such) are never retried.
    wait_out_api_rate = False

    def __init__(self, server: CairnServer, token: str | None = None, refresh: str | None = None,
                 user: dict | None = None, email: str | None = None, password: str | None = None,
                 headers: dict | None = None):
        self.server = server
        self.token = token
        self.refresh_token = refresh
        self.user = user or {}
        self.email = email
        self.password = password
        self.session = requests.Session()
        self.headers = dict(headers or {})
        self.five_xx: list[str] = []

    def url(self, path: str) -> str:
        return self.server.url + path

    def request(self, method: str, path: str, *, auth: bool = True, headers: dict | None = None,
                timeout: float = 30, **kw) -> requests.Response:
        hdrs = dict(self.headers)
        if auth and self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        hdrs.update(headers or {})
        response = self.session.request(method, self.url(path), headers=hdrs, timeout=timeout, **kw)
        for _ in range(20):
            if not (self.wait_out_api_rate and response.status_code == 429 and not path.startswith("/api/auth")):
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))
            response = self.session.request(method, self.url(path), headers=hdrs, timeout=timeout, **kw)
        if response.status_code >= 500:
            self.five_xx.append(f"{method} {path} -> {response.status_code} {response.text[:300]}")
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, json=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, json=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- sync helpers

    def push(self, operations: list[dict], *, atomic: bool = False, expect: int = 200, **extra) -> dict:
        body = {"operations": operations, "atomic": atomic, **extra}
        response = self.post("/api/sync/push", body)
        assert response.status_code == expect, f"push -> {response.status_code} {response.text[:500]}"
        return response.json()

    def pull_all(self, since: int = 0, collections: str | None = None, limit: int = 1000) -> tuple[list[dict], int]:
        changes: list[dict] = []
        for _ in range(10_000):
            params = {"since": since, "limit": limit}
            if collections:
                params["collections"] = collections
            response = self.get("/api/sync/pull", params=params)
            assert response.status_code == 200, response.text[:500]
            page = response.json()
            changes.extend(page["changes"])
            since = page["cursor"]
            if not page["hasMore"]:
                return changes, since
        raise AssertionError("pull did not end")

    def seq(self, profile: str = "default") -> int:
        response = self.get("/api/me")
        assert response.status_code == 200, response.text
        for p in response.json()["profiles"]:
            if p["name"] == profile or p["id"] == profile:
                return p["syncVersion"]
        raise KeyError(profile)


def register(server: CairnServer, email: str | None = None, password: str = "correct horse battery",
             headers: dict | None = None) -> Api:
    email = email or f"u-{uuid.uuid4().hex[:12]}@example.com"
    api = Api(server, email=email, password=password, headers=headers)
    response = api.post("/api/auth/register", {"email": email, "password": password}, auth=False)
    assert response.status_code == 201, f"register -> {response.status_code} {response.text[:300]}"
    body = response.json()
    api.token, api.refresh_token, api.user = body["token"], body["refreshToken"], body["user"]
    return api


# --------------------------------------------------------------------------------------------
# JWT minting (the suite reads the server's own key from <data-dir>/secrets.json)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_json(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload)), signature


def mint_jwt(header: dict, payload: dict, key: bytes | None, digest=hashlib.sha256) -> str:
    signing_input = f"{b64url_json(header)}.{b64url_json(payload)}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def signing_key(server: CairnServer) -> bytes:
    return base64.b64decode(server.secrets()["jwtSigningKey"])


# --------------------------------------------------------------------------------------------
# Raw sockets


def raw_http(server: CairnServer, data: bytes, *, read_timeout: float = 10.0, max_bytes: int = 1 << 20,
             sndbuf: int | None = None) -> bytes:
    """Sends raw bytes, returns whatever the server answers until it closes or goes quiet."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=read_timeout)
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        total = 0
        while total < max_bytes:
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if _complete_http_response(b"".join(chunks)):
                break
        return b"".join(chunks)
    finally:
        sock.close()


def _complete_http_response(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if match:
        return len(body) >= int(match.group(1))
    return False


def parse_http(data: bytes) -> tuple[int, dict, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers, body


def wait_until(predicate, timeout: float, interval: float = 0.02, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def metric(server: CairnServer, name: str) -> float:
    text = requests.get(server.url + "/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (len(line) == len(name) or line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def paced_api():
    """For modules that send thousands of requests as one user: wait out the per-user API rate
    (Retry-After) instead of failing on a 429. A faster server answers them quicker than the rate
    allows; the rate itself is tested by S6."""
    Api.wait_out_api_rate = True
    yield
    Api.wait_out_api_rate = False
