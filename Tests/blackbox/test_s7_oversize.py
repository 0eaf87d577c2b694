"""S7 abuse.oversize: over-limit bodies, batches, records, strings, JSON depth and width, headers
and WebSocket messages each get a clear error, quickly, with nothing half-applied.

Limits (GET /api/info): body 5 MiB, 1,000 ops per push, record 256 KiB, title 4,096 characters,
URL 16 KiB, JSON depth 32, WebSocket message 1 MiB.
"""

import base64
import json
import os
import socket
import threading
import time

import pytest
import requests
from websockets.sync.client import connect

from conftest import SCALE, parse_http, raw_http, register
from wsraw import Closed, RawWebSocket

MiB = 1024 * 1024


@pytest.fixture
def user(server):
    return register(server)


def request_head(user, method: str, path: str, extra: str) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {user.token}\r\n"
            f"Content-Type: application/json\r\n{extra}\r\n").encode()


def assert_error(status: int, body: bytes, want_status: int, want_code: str):
    assert status == want_status, f"{status} {body[:300]!r}"
    assert json.loads(body)["error"]["code"] == want_code


def test_info_advertises_the_limits(server):
    limits = requests.get(server.url + "/api/info", timeout=10).json()["limits"]
    assert limits["maxBodyBytes"] == 5 * MiB
    assert limits["maxOpsPerPush"] == 1000
    assert limits["maxRecordBytes"] == 256 * 1024
    assert limits["maxWebSocketMessageBytes"] == MiB
    assert limits["maxJSONDepth"] == 32


@pytest.mark.parametrize("declared", [5 * MiB + 1, 100 * MiB])
def test_declared_oversize_body_is_refused_before_it_is_sent(server, user, declared):
    rss = server.rss_kib()
    seq = user.seq()
    started = time.monotonic()
    answer = raw_http(server, request_head(user, "POST", "/api/sync/push", f"Content-Length: {declared}\r\n") + b"{")
    elapsed = time.monotonic() - started
    status, headers, body = parse_http(answer)
    assert_error(status, body, 413, "PAYLOAD_TOO_LARGE")
    assert headers.get("x-content-type-options") == "nosniff"
    assert elapsed < 0.5, f"413 took {elapsed:.2f}s"
    assert server.rss_kib() - rss < 5 * 1024, "the server buffered the refused body"
    assert user.seq() == seq


def test_streamed_oversize_body_is_cut_at_the_limit(server, user):
    seq = user.seq()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    sock.sendall(request_head(user, "POST", "/api/sync/push", "Transfer-Encoding: chunked\r\n"))
    sent = 0
    chunk = b" " * 65536
    answer = b""
    sock.settimeout(0.001)
    try:
        while sent < 64 * MiB:
            try:
                sock.sendall(b"10000\r\n" + chunk + b"\r\n")
                sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break
            try:
                answer += sock.recv(65536)
                if answer:
                    break
            except socket.timeout:
                pass
        sock.settimeout(10)
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}}"):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        sock.close()
    print(f"S7: streamed {sent} bytes before the answer {answer[:40]!r}")
    if answer:
        status, _, body = parse_http(answer)
        assert_error(status, body, 413, "PAYLOAD_TOO_LARGE")
    # else: the server closed while our bytes were in flight and the kernel reset the connection,
    # which can drop its 413 before we read it (no lingering close); the cut itself is checked below.
    assert sent <= 16 * MiB, f"the server read {sent} bytes of a streamed body before refusing it"
    assert user.seq() == seq


def test_full_oversize_push_body_is_refused_and_nothing_is_applied(user):
    seq = user.seq()
    ops = [{"opId": f"big{j}", "type": "create", "collection": "notes", "id": f"big{j}",
            "data": {"pad": "x" * (200 * 1024)}} for j in range(30)]
    response = user.post("/api/sync/push", {"operations": ops})
    assert response.status_code == 413 and response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert user.seq() == seq
    assert user.get("/api/records/notes/big0").status_code == 404


def test_more_than_max_ops_is_refused_whole(user):
    seq = user.seq()
    ops = [{"opId": f"o{j}", "type": "create", "collection": "notes", "id": f"n{j}", "data": {}} for j in range(1001)]
    response = user.post("/api/sync/push", {"operations": ops})
    assert response.status_code == 413 and response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE", response.text
    assert user.seq() == seq
    assert user.get("/api/records/notes/n0").status_code == 404
    # The seed routes have the same limit.
    events = [{"id": f"e{j}", "type": "create", "bookmarkId": f"b{j}", "data": {"title": "t", "url": "https://e.example"}}
              for j in range(1001)]
    assert user.post("/api/bookmarks/sync", {"changes": events}).status_code == 413
    operations = [{"id": f"q{j}", "type": "create", "entity": "book", "entityId": f"k{j}", "data": {}} for j in range(1001)]
    assert user.post("/api/sync/operations", {"operations": operations}).status_code == 413
    assert user.seq() == seq
    # Exactly the limit is fine.
    ok = user.push(ops[:1000])
    assert {r["status"] for r in ok["results"]} == {"applied"}


def test_oversize_record(user):
    big = {"pad": "x" * (256 * 1024)}
    seq = user.seq()
    response = user.post("/api/records/notes", {"id": "r1", "data": big})
    assert response.status_code == 413 and response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert user.put("/api/records/notes/r1", {"data": big}).status_code == 413
    assert user.seq() == seq
    # In a push: that op is rejected, the others apply; atomic: nothing applies.
    ops = [{"opId": "ok1", "type": "create", "collection": "notes", "id": "ok1", "data": {}},
           {"opId": "big", "type": "create", "collection": "notes", "id": "big", "data": big}]
    atomic = user.push(ops, atomic=True)
    assert atomic["committed"] is False and user.seq() == seq
    result = user.push(ops)
    assert [r["status"] for r in result["results"]] == ["applied", "rejected"]
    assert result["results"][1]["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert user.get("/api/records/notes/big").status_code == 404


@pytest.mark.parametrize("field,value", [
    pytest.param("title", "t" * 4097, id="title-4097"),
    pytest.param("url", "https://e.example/" + "a" * (16 * 1024), id="url-over-16KiB"),
    pytest.param("notes", "n" * (64 * 1024 + 1), id="notes-over-64KiB"),
    pytest.param("tags", [f"t{j}" for j in range(101)], id="101-tags"),
    pytest.param("tags", ["x" * 101], id="tag-101-chars"),
    pytest.param("favicon", "data:image/png;base64," + "A" * 65536, id="favicon-over-64KiB"),
])
def test_over_long_fields_are_refused(user, field, value):
    seq = user.seq()
    body = {"title": "ok", "url": "https://ok.example/", field: value}
    response = user.post("/api/bookmarks", body)
    assert response.status_code == 400, f"{field}: {response.status_code} {response.text[:200]}"
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["details"]["field"] == field, error
    assert user.seq() == seq


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [33, 10_000, 100_000])
def test_deep_json_is_refused_quickly(user, depth):
    seq = user.seq()
    body = '{"operations": [{"opId": "d", "type": "create", "collection": "notes", "id": "d", "data": {"x": ' + \
           nested(depth) + "}}]}"
    started = time.monotonic()
    response = user.request("POST", "/api/sync/push", data=body, headers={"Content-Type": "application/json"})
    elapsed = time.monotonic() - started
    assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR", response.text[:300]
    assert elapsed < 0.5, f"depth {depth} took {elapsed:.2f}s"
    assert user.seq() == seq


def test_json_within_the_depth_limit_is_accepted(user):
    response = user.post("/api/records/notes", {"id": "deep", "data": {"x": json.loads(nested(20))}})
    assert response.status_code == 201, response.text


def test_wide_json_is_handled_quickly(user):
    seq = user.seq()
    # Bounds are generous for a debug build (the bar's 200 ms is for a release build); they catch
    # super-linear parsing, not constant factors.
    wide = {f"k{j:06d}": j for j in range(100_000)}        # ~1.8 MB: over the record limit
    started = time.monotonic()
    response = user.post("/api/records/notes", {"id": "wide", "data": wide})
    assert response.status_code == 413, response.text[:300]
    elapsed = time.monotonic() - started
    print(f"S7: a 10^5-key record answered 413 in {elapsed:.2f}s")
    assert elapsed < 5
    # 10^5 unknown top-level keys in a push body (under 5 MiB) are ignored or refused, quickly.
    body = {f"junk{j}": j for j in range(100_000)}
    body["operations"] = [{"opId": "w", "type": "create", "collection": "notes", "id": "w", "data": {}}]
    started = time.monotonic()
    response = user.post("/api/sync/push", body)
    assert response.status_code in (200, 400, 413), response.text[:300]
    assert time.monotonic() - started < 5
    wide_array = {"operations": [], "pad": list(range(400_000))}
    response = user.post("/api/sync/push", wide_array)
    assert response.status_code < 500
    assert user.seq() <= seq + 1


# Request heads (request line + header fields) are limited to 64 KiB: more is 431
# HEADERS_TOO_LARGE and the connection is closed (docs/security.md). Before the fix a 64 KiB header
# was accepted and one over ~80 KiB got no answer with the connection held open past 90 s.

def big_header_request(size: int, path: str = "/healthz") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".encode() + b"a" * size + b"\r\n\r\n"


def assert_431(answer: bytes, started: float):
    status, headers, body = parse_http(answer)
    assert status == 431, answer[:200]
    assert json.loads(body)["error"]["code"] == "HEADERS_TOO_LARGE"
    assert headers.get("connection") == "close"
    assert headers.get("x-content-type-options") == "nosniff" and headers.get("x-request-id")
    assert time.monotonic() - started < 2


def closed_after(sock: socket.socket, timeout: float) -> bool:
    """Reads until the server closes (True) or `timeout` passes with the connection open (False)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


@pytest.mark.parametrize("size", [64 * 1024, 100 * 1024, 1024 * 1024], ids=["64KiB", "100KiB", "1MiB"])
def test_huge_headers_get_431_and_a_close(server, size):
    started = time.monotonic()
    assert_431(raw_http(server, big_header_request(size), read_timeout=5), started)


def test_many_small_headers_over_64_kib_get_431(server):
    fields = b"".join(b"X-F%05d: %s\r\n" % (i, b"v" * 100) for i in range(700))
    started = time.monotonic()
    assert_431(raw_http(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + b"\r\n"), started)


def test_a_head_dripped_in_small_writes_is_counted_whole(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    started = time.monotonic()
    try:
        data = big_header_request(70 * 1024)
        try:
            for i in range(0, len(data), 1000):
                sock.sendall(data[i:i + 1000])
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        assert_431(answer, started)
    finally:
        sock.close()


def test_a_head_just_under_64_kib_is_served(server):
    status, _, _ = parse_http(raw_http(server, big_header_request(60 * 1024), read_timeout=5))
    assert status == 200


def test_keep_alive_bodies_are_not_counted_as_headers_and_later_heads_are(server, user):
    """On one connection: a 1 MiB body, then a normal request, then an oversize head: the body
    does not count towards any head, and the third request still gets 431."""
    body = json.dumps({"operations": [{"opId": f"k{i}", "type": "create", "collection": "notes", "id": f"k{i}",
                                       "data": {"pad": "p" * 1000}} for i in range(900)]}).encode()
    assert len(body) > 900 * 1000
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        reader = sock.makefile("rb")

        def response():
            status_line = reader.readline()
            length = 0
            while True:
                line = reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            return int(status_line.split()[1]), reader.read(length)

        sock.sendall(request_head(user, "POST", "/api/sync/push", f"Content-Length: {len(body)}\r\n") + body)
        status, answer = response()
        assert status == 200, answer[:300]
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert response()[0] == 200
        sock.sendall(big_header_request(80 * 1024))
        status, answer = response()
        assert status == 431 and json.loads(answer)["error"]["code"] == "HEADERS_TOO_LARGE"
    finally:
        sock.close()


def test_pipelined_requests_are_all_answered(server):
    requests_ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 20
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(requests_)
        data = b""
        while data.count(b"HTTP/1.1 200") < 20:
            chunk = sock.recv(65536)
            assert chunk, data[-300:]
            data += chunk
    finally:
        sock.close()


@pytest.mark.parametrize("junk", [b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                                  b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(100) + b"\r\n\r\n"],
                         ids=["not-http", "bad-header-line", "tls-hello"])
def test_a_malformed_first_request_is_answered_or_closed_quickly(server, junk):
    """A parse error in a connection's first request (while the WebSocket upgrade is undecided)
    used to leave the connection open with no answer."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(junk)
        assert closed_after(sock, 5), "the connection is still open 5 s after a malformed request"
    finally:
        sock.close()
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


# A short idle timeout (--idle-timeout 2) lets CI check what the 65-second tests below check at the
# default of 60 s: a head must be complete within the idle timeout of the connection opening (or of
# its first byte, for later requests on a kept-alive connection), however slowly it drips in.

@pytest.fixture
def short_idle(cairn):
    return cairn(args=["--idle-timeout", "2"])


def test_a_silent_connection_is_closed_after_the_idle_timeout(short_idle):
    sock = socket.create_connection(("127.0.0.1", short_idle.port))
    started = time.monotonic()
    assert closed_after(sock, 6)
    assert 1.5 <= time.monotonic() - started <= 4
    sock.close()


def test_a_half_sent_head_is_answered_408_and_closed(short_idle):
    sock = socket.create_connection(("127.0.0.1", short_idle.port))
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    sock.settimeout(6)
    answer = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert 1.5 <= time.monotonic() - started <= 4


def test_a_head_dripping_one_byte_at_a_time_is_closed(short_idle):
    """Slowloris: a byte every 0.25 s never lets the connection go idle, but the head never ends."""
    sock = socket.create_connection(("127.0.0.1", short_idle.port))
    started = time.monotonic()
    closed = False
    try:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 100:
            sock.sendall(bytes([byte]))
            time.sleep(0.25)
            if time.monotonic() - started > 8:
                break
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    closed = closed or closed_after(sock, 1)
    sock.close()
    assert closed and time.monotonic() - started <= 6, f"still open after {time.monotonic() - started:.1f}s"


def test_a_stalled_second_head_on_a_kept_alive_connection_is_closed(short_idle):
    sock = socket.create_connection(("127.0.0.1", short_idle.port))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    sock.settimeout(5)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    time.sleep(1)  # within the idle timeout: the connection is still usable
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    assert closed_after(sock, 6)
    assert time.monotonic() - started <= 4
    sock.close()


def test_a_busy_connection_is_not_cut_by_the_head_timeout(short_idle):
    """Complete requests one after another for longer than the timeout keep the connection."""
    session = requests.Session()
    started = time.monotonic()
    while time.monotonic() - started < 5:
        assert session.get(short_idle.url + "/healthz", timeout=5).status_code == 200
        time.sleep(0.5)


def test_server_still_serves_after_the_abuse(server, user):
    # Runs the heavy cases back to back on one server, then checks it is healthy.
    raw_http(server, request_head(user, "POST", "/api/sync/push", f"Content-Length: {100 * MiB}\r\n"))
    user.request("POST", "/api/sync/push", data=nested(50_000), headers={"Content-Type": "application/json"})
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(server.url + "/readyz", timeout=5).status_code == 200
    assert user.post("/api/records/notes", {"id": "after", "data": {}}).status_code == 201


# ---------------------------------------------------------------------------------------------
# WebSocket


def ws_open(server, user) -> RawWebSocket:
    ws = RawWebSocket("127.0.0.1", server.port, "/api/sync/ws?clientId=big",
                      headers={"Authorization": f"Bearer {user.token}"}, timeout=20)
    assert ws.upgraded, ws.status_line
    assert ws.recv_json()["type"] == "auth_success"
    return ws


def expect_close(ws: RawWebSocket, code: int):
    with pytest.raises(Closed) as closed:
        for _ in range(10):
            ws.recv()
    assert closed.value.code == code, f"closed with {closed.value.code} {closed.value.reason!r}, expected {code}"


def push_message(pad: int) -> str:
    return json.dumps({"type": "push", "operations": [
        {"opId": f"p{pad}", "type": "create", "collection": "notes", "id": f"p{pad}", "data": {"pad": "x" * pad}}]})


def test_websocket_message_over_1_mib_closes_1009(server, user):
    seq = user.seq()
    ws = ws_open(server, user)
    try:
        # The server refuses the frame by the length in its header and closes at once; sending
        # all of the megabyte raced that close (a reset while still sending, seen in CI). The
        # first 64 KiB are enough: the answer must come without the rest.
        ws.send_frame(0x1, push_message(MiB + 10).encode(), send_at_most=64 * 1024)
        expect_close(ws, 1009)
    finally:
        ws.close()
    assert user.seq() == seq


def test_fragmented_websocket_message_over_1_mib_closes_1009(server, user):
    seq = user.seq()
    ws = ws_open(server, user)
    try:
        text = push_message(MiB + 10).encode()
        third = len(text) // 3
        ws.send_frame(0x1, text[:third], fin=False)
        ws.send_frame(0x0, text[third:2 * third], fin=False)
        ws.send_frame(0x0, text[2 * third:], fin=True)
        expect_close(ws, 1009)
    finally:
        ws.close()
    assert user.seq() == seq


def test_websocket_message_just_under_the_limit_is_handled(server, user):
    ws = ws_open(server, user)
    try:
        ws.send_text(push_message(300 * 1024))
        answer = ws.recv_json()
        assert answer["type"] == "push_result", answer
        assert answer["results"][0]["status"] == "rejected"
        assert answer["results"][0]["error"]["code"] == "PAYLOAD_TOO_LARGE"
        ws.send_json({"type": "ping"})
        assert ws.recv_json()["type"] == "pong"
    finally:
        ws.close()


def test_websocket_bad_messages_get_an_error_and_the_socket_stays_open(server, user):
    ws = ws_open(server, user)
    try:
        ws.send_frame(0x2, b"\x00\x01binary")
        answer = ws.recv_json()
        assert answer["type"] == "error" and answer["code"] == "VALIDATION_ERROR", answer
        ws.send_text('{"type": "push", "operations": ' + nested(10_000) + "}")
        answer = ws.recv_json()
        assert answer["type"] == "error" and answer["code"] == "VALIDATION_ERROR", answer
        ops = [{"opId": f"w{j}", "type": "create", "collection": "notes", "id": f"w{j}", "data": {}} for j in range(1001)]
        ws.send_json({"type": "push", "operations": ops})
        answer = ws.recv_json()
        assert answer["type"] == "error" and answer["code"] == "PAYLOAD_TOO_LARGE", answer
        ws.send_text("{not json")
        answer = ws.recv_json()
        assert answer["type"] == "error" and answer["code"] == "VALIDATION_ERROR", answer
        ws.send_json({"type": "self_destruct"})
        answer = ws.recv_json()
        assert answer["type"] == "error" and answer["code"] == "UNKNOWN_MESSAGE_TYPE", answer
        ws.send_json({"type": "ping"})
        assert ws.recv_json()["type"] == "pong"
    finally:
        ws.close()
    assert user.get("/api/records/notes/w0").status_code == 404


def test_websocket_invalid_utf8_closes_1007(server, user):
    ws = ws_open(server, user)
    try:
        ws.sock.settimeout(5)
        ws.send_frame(0x1, b"\xff\xfe\xfd")
        expect_close(ws, 1007)
    finally:
        ws.close()


def test_websocket_invalid_utf8_inside_json_does_not_wedge_the_socket(server, user):
    ws = ws_open(server, user)
    try:
        ws.sock.settimeout(5)
        ws.send_frame(0x1, b'{"type": "ping", "x": "\xff\xfe"}')
        try:
            ws.send_json({"type": "ping"})
            answer = ws.recv_json()
        except Closed as closed:
            assert closed.code == 1007, f"closed with {closed.code}"
            return
        except TimeoutError:
            raise AssertionError("the socket answers nothing after a frame with invalid UTF-8 (no close, no pong)")
        assert answer["type"] in ("error", "pong"), answer
    finally:
        ws.close()


def test_websocket_compression_is_not_a_decompression_bomb(server, user):
    key = base64.b64encode(os.urandom(16)).decode()
    head = (f"GET /api/sync/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {user.token}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(4096)
    finally:
        sock.close()
    status, headers, _ = parse_http(answer)
    assert status == 101
    if "permessage-deflate" not in headers.get("sec-websocket-extensions", ""):
        return   # no compression negotiated: nothing can inflate past the limit
    # Negotiated: a small compressed message inflating past 1 MiB must close the socket (1009).
    with connect(server.ws_url + "/api/sync/ws", additional_headers={"Authorization": f"Bearer {user.token}"},
                 compression="deflate", max_size=None) as ws:
        ws.recv(10)
        ws.send(push_message(8 * MiB))
        with pytest.raises(Exception):
            for _ in range(5):
                ws.recv(10)
        assert ws.close_code == 1009


# ---------------------------------------------------------------------------------------------
# Idle and slow connections (65 s of waiting: release size, or BLACKBOX_SLOW=1)

slow = pytest.mark.skipif(SCALE != "release" and os.environ.get("BLACKBOX_SLOW") != "1",
                          reason="waits 65 s: runs at BLACKBOX_SCALE=release or with BLACKBOX_SLOW=1")


@pytest.fixture(scope="module")
def idle_connections(tmp_path_factory):
    """Opens an idle connection and one that sent half a request line's headers, waits 65 s."""
    from conftest import CairnServer
    server = CairnServer(tmp_path_factory.mktemp("idle"), "idle").start()
    idle = socket.create_connection(("127.0.0.1", server.port))
    partial = socket.create_connection(("127.0.0.1", server.port))
    partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.monotonic()
    results = {}
    for name, sock in (("idle", idle), ("partial", partial)):
        sock.settimeout(max(0.1, started + 65 - time.monotonic()))
        try:
            data = sock.recv(4096)
            results[name] = ("closed" if not data else "answered", time.monotonic() - started, data[:100])
        except socket.timeout:
            results[name] = ("open", time.monotonic() - started, b"")
        except ConnectionResetError:
            results[name] = ("closed", time.monotonic() - started, b"")
        sock.close()
    yield results
    server.kill9()


@slow
def test_an_idle_connection_is_closed_after_60_s(idle_connections):
    state, elapsed, _ = idle_connections["idle"]
    assert state == "closed" and elapsed <= 65, idle_connections["idle"]


@slow
def test_a_connection_stuck_in_its_headers_is_closed_after_60_s(idle_connections):
    state, elapsed, data = idle_connections["partial"]
    assert state in ("closed", "answered") and elapsed <= 65, idle_connections["partial"]
