"""S6 abuse.rate-limit: the limits docs/security.md promises, from the outside.

- Per client address on every `/api/auth/*` route (register, login, refresh, logout together):
  60 a minute with a burst of 20. Request 21 of a burst is 429 `RATE_LIMITED` with an integer
  `Retry-After`; waiting that long lets the next one through.
- Failed sign-ins per (e-mail, client address): 10 (burst) then 10 a minute. An attacker using
  them up from one address does not lock the account's owner out of their own address.
- Per user on the API: burst 1,000, then 6,000 a minute; one user's flood does not slow another.
- WebSocket: 50 messages a second per connection (burst 200); the excess gets `error`
  `RATE_LIMITED` and the socket stays open.
- `X-Forwarded-For` is ignored unless the TCP peer is a `--trusted-proxy`; behind one, the address
  the proxy appended (the last one) is the client's.

Different client addresses are real: Linux routes all of 127.0.0.0/8 to the loopback, so a client
socket bound to 127.0.0.2 reaches a server on 127.0.0.1 from another address.
"""

import http.client
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from websockets.sync.client import connect

from conftest import register, scaled

AUTH_BURST = 20
FAILURE_BURST = 10


def call(server, method: str, path: str, body=None, source: str = "127.0.0.1", headers: dict | None = None):
    """One request from `source`; returns (status, headers, parsed body or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30, source_address=(source, 0))
    try:
        payload = None if body is None else json.dumps(body)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=payload, headers=hdrs)
        response = conn.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed
    finally:
        conn.close()


def assert_429(status, headers, body, where: str = ""):
    assert status == 429, f"{where}: {status} {body}"
    assert body["error"]["code"] == "RATE_LIMITED", body
    retry = headers.get("retry-after")
    assert retry is not None and retry.isdigit() and 1 <= int(retry) <= 60, f"{where}: Retry-After {retry!r}"
    return int(retry)


def wrong_login(server, source: str, email: str | None = None, headers=None):
    """A failed sign-in; a fresh unknown e-mail each time unless one is given (so that only the
    per-address bucket is drawn from, not the per-(e-mail, address) failure bucket)."""
    email = email or f"nobody-{uuid.uuid4().hex[:10]}@example.com"
    return call(server, "POST", "/api/auth/login", {"email": email, "password": "wrong password!"},
                source=source, headers=headers)


def burst_until_429(server, source: str, send, limit: int = 200):
    """Sends until the first 429; returns (requests allowed before it, seconds taken, the 429)."""
    started = time.monotonic()
    for allowed in range(limit):
        status, headers, body = send(server, source)
        assert status < 500, body
        if status == 429:
            return allowed, time.monotonic() - started, (status, headers, body)
    raise AssertionError(f"no 429 from {source} after {limit} requests")


def assert_burst_size(allowed: int, elapsed: float, burst: int, per_second: float):
    # The bucket refills while the burst is sent: at most one more per elapsed refill period.
    assert burst <= allowed <= burst + int(elapsed * per_second) + 1, (allowed, elapsed)


# ---------------------------------------------------------------------------------------------
# Per address on /api/auth/*


def test_auth_routes_share_one_bucket_per_address_and_answer_429_with_retry_after(server):
    allowed, elapsed, first = burst_until_429(server, "127.0.0.2", wrong_login)
    assert_burst_size(allowed, elapsed, AUTH_BURST, 1.0)
    assert_429(*first, "login")
    # Every auth route draws from the same empty bucket.
    for path, body in (("/api/auth/register", {"email": "new@example.com", "password": "long enough pw"}),
                       ("/api/auth/login", {"email": "a@example.com", "password": "long enough pw"}),
                       ("/api/auth/refresh", {"refreshToken": "rt_nope.nope"}),
                       ("/api/auth/logout", {"refreshToken": "rt_nope.nope"})):
        assert_429(*call(server, "POST", path, body, source="127.0.0.2"), path)
    # Nothing was registered by the refused request.
    status, _, _ = call(server, "POST", "/api/auth/login", {"email": "new@example.com", "password": "long enough pw"},
                        source="127.0.0.3")
    assert status == 401


def test_registration_flood_is_limited_and_refresh_from_the_same_address_too(server):
    def reg(s, ip):
        return call(s, "POST", "/api/auth/register", {"email": f"r{uuid.uuid4().hex[:8]}@example.com",
                                                      "password": "long enough pw"}, source=ip)
    allowed, elapsed, first = burst_until_429(server, "127.0.0.4", reg)
    assert_burst_size(allowed, elapsed, AUTH_BURST, 1.0)
    assert_429(*first, "register")
    # A user who registered elsewhere refreshes fine from its own address, not from the flooded one.
    user = register(server)
    assert_429(*call(server, "POST", "/api/auth/refresh", {"refreshToken": user.refresh_token}, source="127.0.0.4"))
    status, _, body = call(server, "POST", "/api/auth/refresh", {"refreshToken": user.refresh_token}, source="127.0.0.5")
    assert status == 200, body


def test_refresh_flood_is_limited(server):
    user = register(server)
    tokens = [user.refresh_token]

    def refresh(s, ip):
        status, headers, body = call(s, "POST", "/api/auth/refresh", {"refreshToken": tokens[-1]}, source=ip)
        if status == 200:
            tokens.append(body["refreshToken"])
        return status, headers, body
    allowed, elapsed, first = burst_until_429(server, "127.0.0.6", refresh)
    assert_burst_size(allowed, elapsed, AUTH_BURST, 1.0)
    assert_429(*first, "refresh")
    assert len(tokens) == allowed + 1  # every allowed refresh rotated


def test_the_limit_resets_after_retry_after(server):
    burst_until_429(server, "127.0.0.7", wrong_login)
    retry = assert_429(*wrong_login(server, "127.0.0.7"))
    assert retry <= 2  # 60 a minute: one token a second
    time.sleep(retry + 0.2)
    status, _, body = wrong_login(server, "127.0.0.7")
    assert status == 401, body
    # Refilled by one only: the next is refused again.
    assert_429(*wrong_login(server, "127.0.0.7"))
    # After a full window (20 s refills the burst of 20 at one a second) a full burst passes.
    time.sleep(AUTH_BURST + 1)
    allowed, elapsed, _ = burst_until_429(server, "127.0.0.7", wrong_login)
    assert_burst_size(allowed, elapsed, AUTH_BURST, 1.0)


def test_a_flooded_address_does_not_lock_out_another(server):
    victim = register(server)
    stop = threading.Event()
    refused = []

    def flood():
        while not stop.is_set():
            status, _, _ = wrong_login(server, "127.0.0.8", victim.email)
            if status == 429:
                refused.append(1)

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        for _ in range(5):
            status, _, body = call(server, "POST", "/api/auth/login", {"email": victim.email, "password": victim.password},
                                   source="127.0.0.9")
            assert status == 200, body
            status, _, body = call(server, "POST", "/api/auth/refresh", {"refreshToken": victim.refresh_token},
                                   source="127.0.0.9")
            assert status == 200, body
            victim.refresh_token = body["refreshToken"]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert refused, "the flood was never limited"


# ---------------------------------------------------------------------------------------------
# Failed sign-ins per (e-mail, address)


def test_failed_sign_ins_are_limited_per_account_and_address_without_locking_the_owner_out(server):
    victim = register(server)
    other = register(server)
    for i in range(FAILURE_BURST):
        status, _, body = wrong_login(server, "127.0.0.10", victim.email)
        assert status == 401, (i, body)
    # Eleventh: refused before the password is even looked at, the right one included.
    retry = assert_429(*wrong_login(server, "127.0.0.10", victim.email))
    assert 1 <= retry <= 7  # 10 a minute: one every 6 s
    assert_429(*call(server, "POST", "/api/auth/login", {"email": victim.email, "password": victim.password},
                      source="127.0.0.10"))
    # The e-mail is normalised: case and surrounding spaces do not make a new bucket.
    assert_429(*wrong_login(server, "127.0.0.10", "  " + victim.email.upper() + " "))
    # The owner, from their own address, signs in; another account from the attacker's address
    # gets an honest 401 (the address's own bucket still has room).
    status, _, body = call(server, "POST", "/api/auth/login", {"email": victim.email, "password": victim.password},
                           source="127.0.0.11")
    assert status == 200, body
    status, _, _ = wrong_login(server, "127.0.0.10", other.email)
    assert status == 401
    # After Retry-After the attacker's address may try once more.
    time.sleep(retry + 0.2)
    status, _, _ = wrong_login(server, "127.0.0.10", victim.email)
    assert status == 401
    assert_429(*wrong_login(server, "127.0.0.10", victim.email))


def test_successful_sign_ins_do_not_use_up_the_failure_bucket(server):
    user = register(server)
    for _ in range(FAILURE_BURST + 5):
        status, _, body = call(server, "POST", "/api/auth/login", {"email": user.email, "password": user.password},
                               source="127.0.0.12")
        assert status == 200, body


# ---------------------------------------------------------------------------------------------
# X-Forwarded-For


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(server):
    def spoofing(s, ip):
        fake = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
        return wrong_login(s, ip, headers={"X-Forwarded-For": fake, "X-Real-IP": fake, "Forwarded": f"for={fake}"})
    allowed, elapsed, first = burst_until_429(server, "127.0.0.13", spoofing)
    assert_burst_size(allowed, elapsed, AUTH_BURST, 1.0)
    assert_429(*first)


def test_behind_a_trusted_proxy_the_appended_address_is_the_client(cairn):
    server = cairn(args=["--trusted-proxy", "127.0.0.20"])
    proxy = "127.0.0.20"

    def via_proxy(client, spoofed_prefix=""):
        chain = f"{spoofed_prefix}{client}"
        return lambda s, ip: wrong_login(s, ip, headers={"X-Forwarded-For": chain})

    allowed, elapsed, first = burst_until_429(server, proxy, via_proxy("203.0.113.1"))
    assert_burst_size(allowed, elapsed, AUTH_BURST, 1.0)
    assert_429(*first)
    # A client that puts a fake address in front of its own (the proxy appends the real one) is
    # still the address the proxy saw.
    assert_429(*via_proxy("203.0.113.1", "198.51.100.7, ")(server, proxy))
    # Another client behind the same proxy has its own bucket.
    status, _, _ = via_proxy("203.0.113.2")(server, proxy)
    assert status == 401
    # The proxy's own requests without the header are the proxy's address: a bucket of their own.
    status, _, _ = wrong_login(server, proxy)
    assert status == 401
    # A peer that is not the trusted proxy cannot choose its address with the header.
    allowed, _, _ = burst_until_429(server, "127.0.0.21", via_proxy("203.0.113.3"))
    status, _, _ = wrong_login(server, "127.0.0.22", headers={"X-Forwarded-For": "127.0.0.21"})
    assert status == 401


# ---------------------------------------------------------------------------------------------
# Per user on the API


def test_per_user_api_limit(server):
    greedy = register(server)
    other = register(server)
    stop = threading.Event()
    lock = threading.Lock()
    results: list[tuple[int, str | None]] = []
    first_429 = []
    started = time.monotonic()

    def hammer():
        while not stop.is_set() and len(results) < 20_000:
            response = greedy.get("/api/me")
            with lock:
                results.append((response.status_code, response.headers.get("Retry-After")))
                if response.status_code == 429 and not first_429:
                    first_429.append((len(results) - 1, time.monotonic() - started))
                    stop.set()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert first_429, f"no 429 after {len(results)} requests in {time.monotonic() - started:.1f}s"
    index, elapsed = first_429[0]
    allowed = sum(1 for status, _ in results[:index] if status == 200)
    assert {status for status, _ in results} <= {200, 429}
    # Burst 1,000, plus 100 a second refilled while the requests ran.
    assert 1000 <= allowed <= 1000 + 100 * elapsed + 20, (allowed, elapsed)
    for status, retry in results:
        if status == 429:
            assert retry is not None and retry.isdigit() and int(retry) >= 1
    # Another user is not affected.
    assert other.get("/api/me").status_code == 200


# ---------------------------------------------------------------------------------------------
# WebSocket messages


def flood(ws, count: int, read_while_sending: bool = False) -> tuple[int, int]:
    """Sends `count` pings back to back; returns (pongs, RATE_LIMITED errors) received."""
    if read_while_sending:
        sender = threading.Thread(target=lambda: [ws.send(json.dumps({"type": "ping"})) for _ in range(count)])
        sender.start()
    else:
        for _ in range(count):
            ws.send(json.dumps({"type": "ping"}))
    pongs = limited = 0
    deadline = time.monotonic() + 15
    while pongs + limited < count and time.monotonic() < deadline:
        message = json.loads(ws.recv(max(0.1, deadline - time.monotonic())))
        if message["type"] == "pong":
            pongs += 1
        elif message["type"] == "error" and message["code"] == "RATE_LIMITED":
            limited += 1
    if read_while_sending:
        sender.join()
    return pongs, limited


def test_websocket_message_flood_gets_rate_limited_errors_and_the_socket_stays_open(server):
    user = register(server)
    with connect(server.ws_url + "/api/sync/ws", additional_headers={"Authorization": f"Bearer {user.token}"},
                 open_timeout=10, max_size=None) as ws:
        assert json.loads(ws.recv(10))["type"] == "auth_success"
        # The client reads while it sends (the flood without reading is the test below).
        pongs, limited = flood(ws, 300, read_while_sending=True)
        assert pongs + limited == 300, (pongs, limited)
        # Burst 200 at 50 a second, and at most 64 messages waiting to be handled: part of a
        # back-to-back flood is refused, at least the 64 that fit in flight are served (an
        # optimized server reads faster than it answers, so it refuses more "in flight").
        assert 64 <= pongs < 300 and limited > 0, (pongs, limited)
        time.sleep(1.5)
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(10))["type"] == "pong"


def test_websocket_floods_never_close_1011_or_go_unanswered(server):
    user = register(server)
    for _ in range(scaled(15, 100)):
        with connect(server.ws_url + "/api/sync/ws", additional_headers={"Authorization": f"Bearer {user.token}"},
                     open_timeout=10, max_size=None) as ws:
            assert json.loads(ws.recv(10))["type"] == "auth_success"
            pongs, limited = flood(ws, 400)
            assert pongs + limited == 400, (pongs, limited)
