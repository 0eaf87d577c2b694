"""R4 idem.lost-response: the server applies a write, the answer is lost, the client retries.

A fault proxy (faultproxy.py) forwards the request, reads the server's answer and closes the
client's connection instead of forwarding it. The retry with the same opId must return the
original result (`duplicate`, `originalStatus`, the same version, record and error) and change
nothing. Also: a reused opId with another payload is refused and the first effect stays; 50
concurrent sends of one op have exactly one effect.
"""

import json
import threading
import time

import pytest
import requests
from websockets.sync.client import connect

from conftest import register, scaled
from faultproxy import DROP_HEADERS, FaultProxy, split_response


@pytest.fixture
def proxy(server):
    fault = FaultProxy(server.port).start()
    yield fault
    fault.stop()


def lose_answer(api, proxy, method: str, path: str, body: dict) -> tuple[int, dict, dict]:
    """Sends through the proxy, which drops the answer; returns the answer the client never saw."""
    before = len(proxy.dropped)
    with pytest.raises(requests.ConnectionError):
        requests.request(method, proxy.url + path, json=body, timeout=30,
                         headers={"Authorization": f"Bearer {api.token}", **DROP_HEADERS})
    assert len(proxy.dropped) == before + 1, "the proxy did not see the server's answer"
    status, headers, raw = split_response(proxy.dropped[-1])
    return status, headers, json.loads(raw)


def admitted(send) -> tuple[int, dict, dict]:
    """Sends until the server admits the request: a 429 (the per-user API rate, 6,000 requests a
    minute after a burst of 1,000) applied nothing, so wait its Retry-After and send again, as a
    client must. The loop below makes two requests an iteration, and a fast server answers them
    quicker than the rate allows."""
    for _ in range(20):
        status, headers, body = send()
        if status != 429:
            return status, headers, body
        time.sleep(float(headers.get("retry-after", "1")))
    raise AssertionError("still rate limited after 20 waits")


def random_batch(rng, i: int, live: set, dead: set) -> list[dict]:
    ops = []
    for j in range(rng.choice([1, 1, 1, 2, 3, 5])):
        op_id = f"op-{i}-{j}"
        roll = rng.random()
        if roll < 0.35 or not live:
            rid = f"r{i}-{j}"
            ops.append({"opId": op_id, "type": "create", "collection": "notes", "id": rid,
                        "data": {"i": i, "j": j}})
            live.add(rid)
        elif roll < 0.55:
            rid = rng.choice(sorted(live))
            ops.append({"opId": op_id, "type": "update", "collection": "notes", "id": rid,
                        "patch": {"edit": f"{i}.{j}", "gone": None}})
        elif roll < 0.65:
            rid = rng.choice(sorted(live))
            ops.append({"opId": op_id, "type": "delete", "collection": "notes", "id": rid})
            live.discard(rid)
            dead.add(rid)
        elif roll < 0.75 and dead:
            rid = rng.choice(sorted(dead))
            ops.append({"opId": op_id, "type": "upsert", "collection": "notes", "id": rid, "data": {"back": i}})
            dead.discard(rid)
            live.add(rid)
        elif roll < 0.85:
            ops.append({"opId": op_id, "type": "create", "collection": "bookmarks", "id": f"bk{i}-{j}",
                        "data": {"title": f"bk {i}", "url": f"https://example.com/{i}/{j}"}, "parentId": "toolbar",
                        "index": 0})
        elif roll < 0.93:
            # Rejected (never succeeds): remembered and replayed like any result.
            ops.append({"opId": op_id, "type": "update", "collection": "notes", "id": f"missing-{i}",
                        "patch": {"x": 1}})
        else:
            rid = rng.choice(sorted(live))
            ops.append({"opId": op_id, "type": "update", "collection": "notes", "id": rid,
                        "patch": {"stale": i}, "expectedVersion": 1})
    return ops


def test_push_retry_after_lost_answer_returns_the_original_result(server, proxy, rng):
    api = register(server)
    live, dead = set(), set()
    iterations = scaled(1000, 20000)
    cursor = api.seq()
    for i in range(iterations):
        ops = random_batch(rng, i, live, dead)
        body = {"operations": ops, "atomic": False, "clientId": "r4"}
        status, _, original = admitted(lambda: lose_answer(api, proxy, "POST", "/api/sync/push", body))
        assert status == 200, original

        def resend():
            response = api.post("/api/sync/push", body)
            return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.json()

        status, _, retry = admitted(resend)
        assert status == 200, retry
        assert retry["committed"] is True
        assert retry["cursor"] == original["cursor"], f"iteration {i}: the retry moved the sequence"
        for first, again in zip(original["results"], retry["results"], strict=True):
            assert again["status"] == "duplicate", f"iteration {i}: {again}"
            assert again["originalStatus"] == first["status"], f"iteration {i}: {first} vs {again}"
            for key in ("opId", "collection", "id", "version", "record", "error", "affected"):
                assert again.get(key) == first.get(key), f"iteration {i}: {key}: {first} vs {again}"
        assert original["cursor"] >= cursor
        cursor = original["cursor"]
    # Nothing but the originals took effect: the sequence is where the last original left it,
    # and every live record is there exactly once.
    assert api.seq() == cursor
    changes, _ = api.pull_all(collections="notes")
    ids = [c["id"] for c in changes]
    assert len(ids) == len(set(ids))
    assert {c["id"] for c in changes if not c["deleted"]} == live
    assert not api.five_xx


def test_rest_writes_retried_after_lost_answer_replay_the_first_outcome(server, proxy):
    api = register(server)
    created = api.post("/api/bookmarks", {"title": "Folder", "isFolder": True, "parentId": "toolbar"}).json()
    writes = [
        ("POST", "/api/records/notes", {"data": {"t": 1}, "opId": "rest-1"}),
        ("POST", "/api/records/notes", {"id": "n1", "data": {"t": 1}, "opId": "rest-2"}),
        ("PATCH", "/api/records/notes/n1", {"data": {"t": 2, "u": True}, "opId": "rest-3"}),
        ("PUT", "/api/records/notes/n1", {"data": {"only": 3}, "opId": "rest-4"}),
        ("PUT", "/api/records/notes/n2", {"data": {"new": 1}, "opId": "rest-5"}),
        ("POST", "/api/bookmarks", {"title": "Lost", "url": "https://lost.example/", "opId": "rest-6"}),
        ("POST", "/api/bookmarks", {"title": "In folder", "url": "https://lost.example/2", "opId": "rest-7",
                                    "parentId": created["id"]}),
        ("PATCH", f"/api/bookmarks/{created['id']}", {"title": "Renamed", "opId": "rest-8"}),
        ("PATCH", "/api/records/notes/does-not-exist", {"data": {"x": 1}, "opId": "rest-9"}),
    ]
    for method, path, body in writes:
        status, _, original = lose_answer(api, proxy, method, path, body)
        seq = api.seq()
        retry = api.request(method, path, json=body)
        assert retry.status_code == status, f"{method} {path}: first {status} {original}, retry {retry.status_code} {retry.text}"
        assert retry.json() == original, f"{method} {path}: the retry's body differs from the lost one"
        assert api.seq() == seq, f"{method} {path}: the retry changed something"
    # The bookmark created without an id exists once (no second copy from the retry).
    listing = api.get("/api/bookmarks").json()["bookmarks"]
    assert [b["url"] for b in listing].count("https://lost.example/") == 1
    # A bookmark move (POST /move) is also exactly once.
    mover = api.post("/api/bookmarks", {"title": "M", "url": "https://m.example/", "parentId": "menu"}).json()
    body = {"parentId": created["id"], "index": 0, "opId": "rest-move"}
    status, _, original = lose_answer(api, proxy, "POST", f"/api/bookmarks/{mover['id']}/move", body)
    seq = api.seq()
    retry = api.post(f"/api/bookmarks/{mover['id']}/move", body)
    assert (retry.status_code, retry.json()) == (status, original)
    assert api.seq() == seq
    assert not api.five_xx


def test_reused_op_id_with_another_payload_is_refused_and_the_first_effect_stays(server):
    api = register(server)
    first = api.push([{"opId": "same", "type": "create", "collection": "notes", "id": "n1", "data": {"v": 1}}])
    seq = api.seq()
    second = api.push([{"opId": "same", "type": "create", "collection": "notes", "id": "n1", "data": {"v": 2}}])
    result = second["results"][0]
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "IDEMPOTENCY_MISMATCH"
    assert api.get("/api/records/notes/n1").json()["data"] == {"v": 1}
    assert api.seq() == seq
    # Same on REST: 409, and the first outcome stays.
    assert api.post("/api/records/notes", {"id": "n2", "data": {"v": 1}, "opId": "rest"}).status_code == 201
    clash = api.post("/api/records/notes", {"id": "n2", "data": {"v": 2}, "opId": "rest"})
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "IDEMPOTENCY_MISMATCH"
    assert api.get("/api/records/notes/n2").json()["data"] == {"v": 1}
    # Key order and whitespace do not matter: the same op re-encoded is a duplicate.
    again = api.request("POST", "/api/sync/push", data=json.dumps(
        {"operations": [{"data": {"v": 1}, "id": "n1", "collection": "notes", "type": "create", "opId": "same"}]},
        indent=3), headers={"Content-Type": "application/json"})
    assert again.json()["results"][0]["status"] == "duplicate"
    assert first["results"][0]["version"] == again.json()["results"][0]["version"]


def concurrently(count: int, send) -> list:
    barrier = threading.Barrier(count)
    answers: list = [None] * count

    def run(k):
        barrier.wait(10)
        try:
            answers[k] = send(k)
        except Exception as error:  # noqa: BLE001 - reported by the assertions
            answers[k] = error

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def test_fifty_concurrent_sends_of_one_push_op_have_one_effect(server):
    api = register(server)
    seq = api.seq()
    op = {"opId": "c-1", "type": "create", "collection": "notes", "id": "c1", "data": {"once": True}}
    headers = {"Authorization": f"Bearer {api.token}"}
    answers = concurrently(50, lambda k: requests.post(server.url + "/api/sync/push", headers=headers, timeout=60,
                                                       json={"operations": [op], "clientId": f"dev{k}"}))
    assert all(isinstance(a, requests.Response) for a in answers), [a for a in answers if not isinstance(a, requests.Response)]
    assert [a.status_code for a in answers] == [200] * 50, [a.text for a in answers if a.status_code != 200][:3]
    results = [a.json()["results"][0] for a in answers]
    statuses = sorted(r["status"] for r in results)
    assert statuses == ["applied"] + ["duplicate"] * 49
    assert {r["version"] for r in results} == {seq + 1}
    assert api.seq() == seq + 1
    changes, _ = api.pull_all(collections="notes")
    assert [c["id"] for c in changes] == ["c1"]


def test_fifty_concurrent_sends_of_one_rest_write_have_one_effect(server):
    api = register(server)
    seq = api.seq()
    headers = {"Authorization": f"Bearer {api.token}"}
    body = {"title": "Once", "url": "https://once.example/", "opId": "rest-c", "parentId": "toolbar"}
    answers = concurrently(50, lambda k: requests.post(server.url + "/api/bookmarks", json=body, headers=headers,
                                                       timeout=60))
    assert all(isinstance(a, requests.Response) for a in answers)
    codes = sorted(a.status_code for a in answers)
    assert all(c in (200, 201) for c in codes), codes
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1, f"{len(ids)} different bookmarks from one opId"
    assert {a.json()["syncVersion"] for a in answers} == {seq + 1}
    assert api.seq() == seq + 1


def test_websocket_write_resent_after_a_dropped_connection_is_a_duplicate(server):
    api = register(server)
    headers = {"Authorization": f"Bearer {api.token}"}
    message = {"type": "bookmark_create", "opId": "ws-1",
               "data": {"id": "wsb", "title": "WS", "url": "https://ws.example/", "parentId": "toolbar"}}
    with connect(server.ws_url + "/api/sync/ws?clientId=a", additional_headers=headers, open_timeout=10) as ws:
        assert json.loads(ws.recv(10))["type"] == "auth_success"
        ws.send(json.dumps(message))
        first = json.loads(ws.recv(10))
    assert first["type"] == "bookmark_ack" and first["status"] == "applied", first
    seq = api.seq()
    with connect(server.ws_url + "/api/sync/ws?clientId=a", additional_headers=headers, open_timeout=10) as ws:
        assert json.loads(ws.recv(10))["type"] == "auth_success"
        ws.send(json.dumps(message))
        again = json.loads(ws.recv(10))
    assert again["type"] == "bookmark_ack" and again["status"] == "duplicate", again
    assert again["syncVersion"] == first["syncVersion"]
    assert api.seq() == seq
