"""R5 durability.restart+witness: acknowledged writes survive kill -9; the database is WAL with
synchronous=FULL (boot check); an fsync of the WAL completes before each push is acknowledged;
a failed fsync is never acknowledged.
"""

import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import register, scaled, wait_until


def wal_header(server) -> tuple[int, int]:
    """File format read/write versions: (2, 2) is WAL, (1, 1) a rollback journal."""
    with open(server.db_path, "rb") as db:
        header = db.read(100)
    return header[18], header[19]


def test_acknowledged_writes_survive_kill9(cairn, rng):
    server = cairn()
    api = register(server)
    cycles, per_cycle, writers = scaled(10, 50), scaled(200, 1000), 4
    expected: dict[str, dict] = {}     # id -> data of the last acknowledged write
    total_acked = 0
    for cycle in range(cycles):
        kill_at = rng.randint(per_cycle // 4, per_cycle - 1)
        lock = threading.Lock()
        acked = {"n": 0}
        in_flight: dict[int, tuple[str, dict]] = {}
        stop = threading.Event()

        def writer(w: int):
            session = requests.Session()
            mine = [rid for rid in expected if rid.startswith(f"w{w}-")]
            for k in range(per_cycle):
                if stop.is_set():
                    return
                if mine and rng.random() < 0.3:
                    rid = rng.choice(mine)
                else:
                    rid = f"w{w}-c{cycle}-{k}"
                    mine.append(rid)
                body = {"data": {"cycle": cycle, "k": k, "w": w}, "opId": f"{rid}-{cycle}-{k}"}
                in_flight[w] = (rid, body)
                try:
                    response = session.put(f"{server.url}/api/records/dur/{rid}", json=body, timeout=30,
                                           headers={"Authorization": f"Bearer {api.token}"})
                except requests.RequestException:
                    return
                if response.status_code not in (200, 201):
                    in_flight[w] = ("error", {"status": response.status_code, "text": response.text})
                    return
                with lock:
                    expected[rid] = body["data"]
                    del in_flight[w]
                    acked["n"] += 1
                    if acked["n"] >= kill_at:
                        stop.set()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        stop.wait(120)
        server.kill9()
        for t in threads:
            t.join(30)
        errors = [v for v in in_flight.values() if v[0] == "error"]
        assert not errors, f"cycle {cycle}: a write failed before the kill: {errors}"
        total_acked += acked["n"]
        assert server.integrity_check() == "ok"
        server.start()
        # Every acknowledged write is there, with its value, unless a write in flight on the same
        # id may have landed too.
        stored = {}
        since = 0
        while True:
            page = api.get("/api/records/dur", params={"since": since, "limit": 5000}).json()
            stored.update({r["id"]: r["data"] for r in page["records"]})
            since = page["cursor"]
            if not page["hasMore"]:
                break
        flight = {rid: body["data"] for rid, body in in_flight.values()}
        missing = [rid for rid, data in expected.items()
                   if stored.get(rid) != data and stored.get(rid) != flight.get(rid, object())]
        assert not missing, f"cycle {cycle}: {len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        # Retrying the writes that were in flight applies each exactly once.
        for rid, body in in_flight.values():
            retry = api.put(f"/api/records/dur/{rid}", body)
            assert retry.status_code in (200, 201), retry.text
            assert retry.json()["data"] == body["data"]
            expected[rid] = body["data"]
    assert total_acked >= cycles


def test_database_is_wal_and_a_rollback_journal_database_is_not_served_as_is(cairn):
    server = cairn()
    api = register(server)
    assert api.post("/api/records/notes", {"id": "n1", "data": {"v": 1}}).status_code == 201
    assert wal_header(server) == (2, 2), "cairn.sqlite is not in WAL mode"
    assert server.stop() == 0
    con = server.db()
    assert con.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    con.close()
    assert wal_header(server) == (1, 1)
    # The boot check: either the server refuses to start, or it starts in WAL (with FULL, which
    # the fsync witness below checks) and the data is intact.
    proc = server.spawn()
    deadline = time.monotonic() + 20
    listening = False
    while time.monotonic() < deadline and not listening:
        listening = "Cairn listening on" in server.log_text().split("==== start #2")[-1]
        if not listening and proc.poll() is not None:
            break
        time.sleep(0.02)
    if not listening:
        assert proc.poll() not in (None, 0), "the server neither listened nor refused to start"
        return
    server.kill9()
    server.start()
    assert wal_header(server) == (2, 2), "the server runs on a database that is not in WAL mode"
    api2 = register(server)
    assert api2.token
    login = api.post("/api/auth/login", {"email": api.email, "password": api.password}, auth=False)
    assert login.status_code == 200
    api.token = login.json()["token"]
    assert api.get("/api/records/notes/n1").json()["data"] == {"v": 1}


needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")


@needs_strace
def test_fsync_of_the_wal_completes_before_each_push_is_acknowledged(cairn, tmp_path):
    trace = tmp_path / "strace.txt"
    server = cairn(wrapper=["strace", "-f", "-qq", "-y", "-s", "24", "-o", str(trace),
                            "-e", "trace=fsync,fdatasync,write,writev,sendmsg,sendto"])
    api = register(server)
    pushes = scaled(100, 200)
    for i in range(pushes):
        api.push([{"opId": f"s{i}", "type": "create", "collection": "notes", "id": f"s{i}", "data": {"i": i}}])
    server.stop()
    synced = False
    witnessed = 0
    unwitnessed = []
    for line in trace.read_text(errors="replace").splitlines():
        if re.search(r"f(data)?sync\(\d+<[^>]*cairn\.sqlite-wal>\)\s*=\s*0", line) or (
                "resumed>" in line and "sync" in line and line.rstrip().endswith("= 0")):
            synced = True
        elif re.search(r"(writev?|sendmsg|sendto)\(\d+<(socket|TCP)", line) and "HTTP/1.1 200" in line \
                and '{\\"changes\\"' in line:
            if synced:
                witnessed += 1
            else:
                unwitnessed.append(line[:200])
            synced = False
    assert not unwitnessed, f"push answers written with no WAL fsync since the previous one: {unwitnessed[:3]}"
    assert witnessed == pushes, f"found {witnessed} push answers in the trace, expected {pushes}"


@needs_strace
def test_a_failed_fsync_is_not_acknowledged_and_the_retry_is_exactly_once(cairn, tmp_path):
    server = cairn()
    api = register(server)
    api.push([{"opId": "before", "type": "create", "collection": "notes", "id": "before", "data": {}}])
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-p", str(server.pid), "-o", str(tmp_path / "inject.txt"),
                               "-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:error=EIO"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)   # strace attaches to every thread
        op = {"opId": "eio", "type": "create", "collection": "notes", "id": "eio", "data": {"v": 1}}
        response = api.post("/api/sync/push", {"operations": [op]})
        assert response.status_code >= 500, f"a push whose fsync failed was acknowledged: {response.status_code} {response.text}"
        assert "INJECTED" in (tmp_path / "inject.txt").read_text()
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(20)
    assert server.alive()
    server.kill9()
    assert server.integrity_check() == "ok"
    server.start()
    retry = api.push([op])
    assert retry["results"][0]["status"] in ("applied", "duplicate")
    changes, _ = api.pull_all(collections="notes")
    assert sorted(c["id"] for c in changes) == ["before", "eio"]
    api.five_xx.clear()
