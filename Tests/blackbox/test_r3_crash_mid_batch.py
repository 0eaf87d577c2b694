"""R3 crash.mid-batch: kill -9 while a push batch is in flight, restart, retry the same opIds.

Invariants checked after every kill:
- the batch is all-or-nothing in the server's op log, records and change log (a push is one
  transaction, atomic or not);
- `PRAGMA integrity_check` is `ok`;
- a batch whose 200 reached the client is there in full (acknowledged = durable);
- after the retry with the same opIds each op is applied exactly once (`duplicate` with
  `originalStatus` for a batch that had committed, `applied` for one that had not), and the first
  push after the restart answers within 2 s.
"""

import threading
import time

import pytest
import requests

from conftest import register, scaled

SIZES = [1, 2, 10, 50, 200, 500]


def batch_ops(i: int, size: int, kind: str) -> list[dict]:
    if kind == "records":
        return [{"opId": f"i{i}-op{j}", "type": "create", "collection": "r3", "id": f"i{i}-{j}",
                 "data": {"batch": i, "n": j, "pad": "x" * 200}} for j in range(size)]
    ops = [{"opId": f"i{i}-op0", "type": "create", "collection": "bookmarks", "id": f"i{i}-0",
            "data": {"title": f"batch {i}", "isFolder": True}, "parentId": "toolbar"}]
    for j in range(1, size):
        ops.append({"opId": f"i{i}-op{j}", "type": "create", "collection": "bookmarks", "id": f"i{i}-{j}",
                    "data": {"title": f"b {i}.{j}", "url": f"https://example.com/{i}/{j}", "tags": ["r3"]},
                    "parentId": f"i{i}-0"})
    return ops


def batch_state(server, i: int) -> dict:
    con = server.db()
    try:
        like = f"i{i}-%"
        return {
            "ops": con.execute("SELECT count(*) FROM applied_ops WHERE op_id LIKE ?", (like,)).fetchone()[0],
            "records": con.execute("SELECT count(*) FROM records WHERE id LIKE ? AND collection IN ('r3','bookmarks')",
                                   (like,)).fetchone()[0],
            # The pushing device, kept on each record its batch wrote.
            "device": con.execute("SELECT count(*) FROM records WHERE id LIKE ? AND collection IN ('r3','bookmarks') AND client_id = 'r3'",
                                  (like,)).fetchone()[0],
        }
    finally:
        con.close()


def test_kill9_mid_batch_is_all_or_nothing_and_retry_is_exactly_once(cairn, rng):
    server = cairn()
    api = register(server)
    # Measure how long a push of each size takes, so the kill lands inside the push.
    duration = {}
    for n, size in enumerate(SIZES):
        ops = [{"opId": f"warm{n}-{j}", "type": "create", "collection": "warm", "id": f"w{n}-{j}",
                "data": {"pad": "x" * 200}} for j in range(size)]
        started = time.monotonic()
        api.push(ops)
        duration[size] = time.monotonic() - started

    iterations = scaled(100, 2000)
    outcomes = {"committed": 0, "lost": 0}
    for i in range(iterations):
        size = rng.choice(SIZES)
        kind = rng.choice(["records", "bookmarks"])
        atomic = rng.random() < 0.75
        ops = batch_ops(i, size, kind)
        answer: dict = {}

        def send():
            try:
                response = requests.post(server.url + "/api/sync/push", timeout=30,
                                         headers={"Authorization": f"Bearer {api.token}"},
                                         json={"operations": ops, "atomic": atomic, "clientId": "r3"})
                answer["status"] = response.status_code
                answer["body"] = response.json() if response.status_code == 200 else response.text
            except requests.RequestException as error:
                answer["error"] = repr(error)

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(rng.uniform(0, duration[size] * 1.2))
        server.kill9()
        sender.join(30)
        assert not sender.is_alive()
        assert answer.get("status") in (None, 200), f"iteration {i}: push answered {answer}"

        assert server.integrity_check() == "ok", f"iteration {i}: integrity_check failed"
        state = batch_state(server, i)
        assert state["ops"] in (0, size), f"iteration {i}: partial batch in applied_ops: {state} of {size}"
        assert state["records"] in (0, size), f"iteration {i}: partial batch in records: {state} of {size}"
        assert state["device"] in (0, size), f"iteration {i}: partial batch in the records' device: {state} of {size}"
        assert len(set(state.values())) == 1, f"iteration {i}: op log and data disagree: {state}"
        acknowledged = answer.get("status") == 200 and answer["body"]["committed"]
        if acknowledged:
            assert state["ops"] == size, f"iteration {i}: acknowledged batch lost after kill -9: {state}"
        committed = state["ops"] == size
        outcomes["committed" if committed else "lost"] += 1

        restarted = time.monotonic()
        server.start()
        probe = api.push([{"opId": f"probe{i}", "type": "upsert", "collection": "probe", "id": "p", "data": {"i": i}}])
        elapsed = time.monotonic() - restarted
        assert probe["results"][0]["status"] == "applied"
        assert elapsed <= 2.0, f"iteration {i}: restart + first push took {elapsed:.2f}s"
        retry = api.push(ops, atomic=atomic, clientId="r3")
        assert retry["committed"] is True
        statuses = {r["status"] for r in retry["results"]}
        if committed:
            assert statuses == {"duplicate"}, f"iteration {i}: retry of a committed batch: {retry['results'][:3]}"
            assert {r.get("originalStatus") for r in retry["results"]} == {"applied"}
        else:
            assert statuses == {"applied"}, f"iteration {i}: retry of a lost batch: {retry['results'][:3]}"
        if acknowledged:
            first = {r["opId"]: r.get("version") for r in answer["body"]["results"]}
            again = {r["opId"]: r.get("version") for r in retry["results"]}
            assert first == again, f"iteration {i}: duplicate results differ from the acknowledged ones"
        state = batch_state(server, i)
        assert state == {"ops": size, "records": size, "device": size}, f"iteration {i}: after retry {state}"

    # The API agrees with the database: each record once, versions unique, cursor = sequence.
    changes, cursor = api.pull_all(collections="r3,bookmarks")
    ids = [(c["collection"], c["id"]) for c in changes]
    assert len(ids) == len(set(ids))
    versions = [c["version"] for c in changes]
    assert versions == sorted(versions) and len(versions) == len(set(versions))
    assert cursor == api.seq()
    con = server.db()
    try:
        seq, max_change = con.execute(
            "SELECT p.seq, (SELECT max(version) FROM records r WHERE r.profile_id = p.id) FROM profiles p "
            "WHERE p.name = 'default'").fetchone()
    finally:
        con.close()
    assert seq == max_change == cursor
    print(f"R3: {iterations} kills, outcomes {outcomes}")


def test_atomic_batch_rolls_back_completely_and_can_be_resent(server):
    api = register(server)
    before = api.seq()
    ops = [{"opId": f"a-{j}", "type": "create", "collection": "notes", "id": f"a{j}", "data": {"n": j}}
           for j in range(5)]
    bad = ops[:3] + [{"opId": "a-bad", "type": "update", "collection": "notes", "id": "missing",
                      "patch": {"x": 1}}] + ops[3:]
    result = api.push(bad, atomic=True)
    assert result["committed"] is False
    by_op = {r["opId"]: r for r in result["results"]}
    assert by_op["a-bad"]["status"] == "rejected"
    for op in ops:
        assert by_op[op["opId"]]["status"] == "rejected"
        assert by_op[op["opId"]]["error"]["code"] == "SYNC_FAILED"
    assert api.seq() == before
    assert api.get("/api/records/notes/a0").status_code == 404
    again = api.push(ops, atomic=True)
    assert again["committed"] is True
    assert [r["status"] for r in again["results"]] == ["applied"] * 5
    assert api.seq() == before + 5
