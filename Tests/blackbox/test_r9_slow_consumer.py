"""R9 ws.slow-consumer: one WebSocket that never reads while another device writes a lot.

- The stalled socket (a raw socket with a 4 KiB receive buffer that stops reading after
  `auth_success`) overflows its outbox: the server drops its queue and sends `resync` (or closes
  it); `cairn_websocket_outbox_dropped_messages` counts it.
- The healthy sockets, on the same profile and on another user's, keep getting every change as
  `sync_incremental`: none is missing, none gets `resync`, and their p99 notify latency stays
  within the bar (docs/reliability.md) and close to a baseline run without the stalled socket.
- Server memory stays bounded (RSS growth ≤ 64 MiB).
- When the stalled client reads again and sends `sync_request` from the last version it applied,
  it catches up with 0 missing changes.
"""

import json
import statistics
import threading
import time

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import metric, register, scaled
from wsraw import Closed, RawWebSocket


class Receiver(threading.Thread):
    """A healthy subscriber: reads continuously and notes when each version arrived."""

    def __init__(self, server, token: str, name: str):
        super().__init__(name=name, daemon=True)
        self.ws = connect(f"{server.ws_url}/api/sync/ws?clientId={name}", open_timeout=20, max_size=None,
                          additional_headers={"Authorization": f"Bearer {token}"})
        hello = json.loads(self.ws.recv(10))
        assert hello["type"] == "auth_success", hello
        self.arrivals: dict[int, float] = {}
        self.types: dict[str, int] = {}
        self.stop = threading.Event()
        self.error: Exception | None = None

    def run(self):
        try:
            while not self.stop.is_set():
                try:
                    raw = self.ws.recv(0.2)
                except TimeoutError:
                    continue
                now = time.monotonic()
                message = json.loads(raw)
                self.types[message["type"]] = self.types.get(message["type"], 0) + 1
                if message["type"] == "sync_incremental":
                    for event in message["events"]:
                        self.arrivals.setdefault(event["syncVersion"], now)
        except ConnectionClosed as error:
            if not self.stop.is_set():
                self.error = error
        finally:
            self.ws.close()


class Writer(threading.Thread):
    """Another device: pushes to the stalled user (big records) and to the other user (small)."""

    def __init__(self, server, targets: list, duration: float, rate: float, start_index: int):
        super().__init__(name="writer", daemon=True)
        self.server, self.targets, self.duration, self.rate = server, targets, duration, rate
        self.index = start_index
        self.acks: dict[str, dict[int, float]] = {api.user["id"]: {} for api, _ in targets}
        self.failures: list[str] = []

    def run(self):
        session = requests.Session()
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < self.duration:
            for api, pad in self.targets:
                ops = [{"opId": f"w{self.index}-{j}", "type": "upsert", "collection": "feed",
                        "id": f"r{self.index}-{j}", "data": {"pad": "x" * pad, "n": self.index}} for j in range(10)]
                self.index += 1
                response = session.post(self.server.url + "/api/sync/push", json={"operations": ops, "clientId": "writer"},
                                        headers={"Authorization": f"Bearer {api.token}"}, timeout=30)
                now = time.monotonic()
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                    continue
                for result in response.json()["results"]:
                    self.acks[api.user["id"]][result["version"]] = now
            n += 1
            delay = started + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def latencies(receivers, acks: dict[int, float]) -> list[float]:
    out = []
    for receiver in receivers:
        for version, acked in acks.items():
            if version in receiver.arrivals:
                out.append(max(0.0, receiver.arrivals[version] - acked))
    return out


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else (values[0] if values else 0.0)


def wait_all_delivered(receivers, acks: dict[int, float], timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(set(acks) <= set(r.arrivals) for r in receivers):
            return
        time.sleep(0.05)


def test_a_stalled_socket_gets_resync_and_does_not_slow_the_others(cairn):
    server = cairn()
    stalled_user, other = register(server), register(server)
    # The bar's 100 healthy subscribers, at CI size too: 98 on the other user's profile, 2 on the
    # stalled user's.
    n_other, n_same = 98, 2
    healthy_other = [Receiver(server, other.token, f"other{k}") for k in range(n_other)]
    healthy_same = [Receiver(server, stalled_user.token, f"same{k}") for k in range(n_same)]
    everyone = healthy_other + healthy_same
    for receiver in everyone:
        receiver.start()
    targets = [(stalled_user, 16 * 1024), (other, 200)]
    rate = 10.0   # pushes per second to each user, 10 records each: 200 changes/s

    # Phase A: baseline without the stalled socket.
    baseline = Writer(server, targets, scaled(4.0, 20.0), rate, 0)
    baseline.start()
    baseline.join()
    assert not baseline.failures, baseline.failures[:3]
    wait_all_delivered(everyone, {**baseline.acks[other.user["id"]]})
    base_lat = latencies(healthy_other, baseline.acks[other.user["id"]])

    # Phase B: the stalled socket is connected and never reads.
    stalled = RawWebSocket("127.0.0.1", server.port, "/api/sync/ws?clientId=stalled", rcvbuf=4096,
                           headers={"Authorization": f"Bearer {stalled_user.token}"})
    assert stalled.upgraded, stalled.status_line
    hello = stalled.recv_json()
    assert hello["type"] == "auth_success"
    applied = hello["syncVersion"]
    rss_before = server.rss_kib()
    dropped_before = metric(server, "cairn_websocket_outbox_dropped_messages")
    load = Writer(server, targets, scaled(60.0, 600.0), rate, baseline.index)
    load.start()
    rss_max = rss_before
    overflow_seen_at = None
    load_started = time.monotonic()
    while load.is_alive():
        rss_max = max(rss_max, server.rss_kib())
        if overflow_seen_at is None and metric(server, "cairn_websocket_outbox_dropped_messages") > dropped_before:
            overflow_seen_at = time.monotonic() - load_started
        time.sleep(0.25)
    load.join()
    assert not load.failures, load.failures[:3]
    wait_all_delivered(everyone, {**load.acks[other.user["id"]], **load.acks[stalled_user.user["id"]]})
    load_lat = latencies(healthy_other, load.acks[other.user["id"]])
    same_lat = latencies(healthy_same, load.acks[stalled_user.user["id"]])

    for receiver in everyone:
        receiver.stop.set()
    for receiver in everyone:
        receiver.join(10)
        assert receiver.error is None, f"{receiver.name}: {receiver.error}"
        assert "resync" not in receiver.types, f"{receiver.name} (a reading socket) got resync"
    # Every healthy socket got every change of its profile.
    for receiver in healthy_other:
        for writer in (baseline, load):
            missing = set(writer.acks[other.user["id"]]) - set(receiver.arrivals)
            assert not missing, f"{receiver.name} missed {len(missing)} changes"
    for receiver in healthy_same:
        missing = set(load.acks[stalled_user.user["id"]]) - set(receiver.arrivals)
        assert not missing, f"{receiver.name} missed {len(missing)} changes"

    # The stalled socket overflowed, and the server says so.
    assert overflow_seen_at is not None, "the stalled socket's outbox never overflowed"
    seen = set()
    got_resync = None
    try:
        while True:
            message = stalled.recv_json()
            if message["type"] == "resync":
                got_resync = message
                break
            if message["type"] == "sync_incremental":
                seen.update(e["bookmarkId"] for e in message["events"])
                applied = message["syncVersion"]
    except Closed as closed:
        if closed.code == 1001 and closed.reason == "Ping timeout":
            # The same ping timeout, when its close frame got through before the reset.
            assert time.monotonic() - load_started > 55, "the stalled socket was closed before its ping timeout"
        else:
            assert closed.code in (1008, 1013), f"stalled socket closed with {closed.code} {closed.reason}"
    except (BrokenPipeError, ConnectionResetError):
        # A socket that read nothing for more than two ping periods (30 s each) is dropped by the
        # server's ping timeout (docs/websocket.md, Heartbeat): at 60 s of load that is expected.
        assert time.monotonic() - load_started > 55, "the stalled socket was dropped before its ping timeout"
    caught_up = False
    if got_resync:
        assert got_resync["reason"] == "outbox overflow", got_resync
        # Catch-up from the last version it applied: 0 missing changes.
        try:
            stalled.send_json({"type": "sync_request", "lastSyncVersion": applied, "collections": ["feed"]})
            while True:
                message = stalled.recv_json()
                if message["type"] == "sync_incremental":
                    seen.update(e["bookmarkId"] for e in message["events"])
                elif message["type"] == "sync_complete":
                    break
            caught_up = True
        except (BrokenPipeError, ConnectionResetError, Closed):
            # Dropped by the ping timeout meanwhile (it read nothing for the whole load): the
            # client reconnects and catches up from the same version, as below.
            assert time.monotonic() - load_started > 55, "the stalled socket was dropped before its ping timeout"
    if not caught_up:
        stalled.close()
        catch_up = connect(f"{server.ws_url}/api/sync/ws?clientId=stalled", open_timeout=10, max_size=None,
                           additional_headers={"Authorization": f"Bearer {stalled_user.token}"})
        json.loads(catch_up.recv(10))
        catch_up.send(json.dumps({"type": "sync_request", "lastSyncVersion": applied, "collections": ["feed"]}))
        while True:
            message = json.loads(catch_up.recv(30))
            if message["type"] == "sync_incremental":
                seen.update(e["bookmarkId"] for e in message["events"])
            elif message["type"] == "sync_complete":
                break
        catch_up.close()
    stalled.close()
    changes, _ = stalled_user.pull_all(since=hello["syncVersion"], collections="feed")
    missing = {c["id"] for c in changes} - seen
    assert not missing, f"the stalled client's catch-up missed {len(missing)} changes"

    growth_mib = (rss_max - rss_before) / 1024
    report = (f"healthy p99 baseline {p99(base_lat) * 1000:.0f} ms, with stalled socket {p99(load_lat) * 1000:.0f} ms "
              f"(same profile {p99(same_lat) * 1000:.0f} ms); overflow after {overflow_seen_at:.1f}s; "
              f"RSS growth {growth_mib:.1f} MiB")
    print("R9:", report)
    assert growth_mib <= 64, report
    assert p99(load_lat) <= 0.25, report
    assert p99(load_lat) <= 1.2 * p99(base_lat) + 0.05, report
