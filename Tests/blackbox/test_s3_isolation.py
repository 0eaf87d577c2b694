"""S3 authz.isolation: nothing of user B reaches user A, over every route, every WebSocket message
and the server log.

User B owns data in every kind of store the API has (bookmarks and folders, records, profiles,
API keys, seed 001 entities and queued operations, seed 002 workspaces, cards, todos, events and
view settings, seed 004 items and profiles), every piece of it carrying the canary string CANARY,
and B's e-mail, password, tokens, API key and WebSocket ticket are secrets. Then user A:

- calls every route of /openapi.json with A's own credentials (a token, then an API key), with B's
  ids in every path parameter and B's profile in every `profile`/`workspaceId` query, and once
  more with an id that exists nowhere, of the same shape. Oracles: no 5xx; an answer to B's id is
  byte-identical to the answer to the id that does not exist (the echoed id aside), so it is no
  existence oracle either; no response carries a canary, a secret of B, or any of B's ids that A
  did not send itself;
- writes with B's ids (updates, deletes, moves into B's folder, pushes and seed operations naming
  B's records): B's data is unchanged at the end (every one of B's lists and pulls is compared
  before and after) and B's sequence has not moved;
- opens WebSockets (header, ticket and in-band auth) while B writes over HTTP and over B's own
  socket, asks for B's profile on the upgrade and in band, and sends every client message type
  with B's ids: no message A receives carries a canary, a secret or an unsent id of B;
- reads the server log (run at `debug`): it holds none of either user's passwords, access or
  refresh tokens, API key secrets or tickets, none of the server's secrets, no e-mail address and
  no canary (docs/security.md, "Logs": what a log line may contain).
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import Api, register

# Thousands of requests as one user: the per-user API rate is waited out, not failed on.
pytestmark = pytest.mark.usefixtures("paced_api")

CANARY = "qx-canary-5e1d"            # B's data only; never sent by A
FAKE_PREFIX = "zz-nowhere-"


def ids_in(value, out: set):
    """Every string under an `id`-like key of a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and (key == "id" or key.endswith("Id") or key.endswith("_id")):
                out.add(item)
            ids_in(item, out)
    elif isinstance(value, list):
        for item in value:
            ids_in(item, out)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import CairnServer
    # The auth routes are swept too: their per-address limit is lifted (S6 tests it).
    server = CairnServer(tmp_path_factory.mktemp("s3"), "s3", log_level="debug",
                         env={"CAIRN_AUTH_RATE_LIMIT": "100000"}).start()
    b_email = f"{CANARY}-b@example.com"
    b = register(server, email=b_email, password=f"{CANARY} pw B !")
    a = register(server, email="alice-s3@example.com", password="alice's own password")
    b_ids: set[str] = set()

    def made(response: requests.Response, what: str) -> dict:
        assert response.status_code in (200, 201, 204), f"B {what}: {response.status_code} {response.text[:300]}"
        body = response.json() if response.content else {}
        ids_in(body, b_ids)
        return body

    me = made(b.get("/api/me"), "me")
    default = next(p for p in me["profiles"] if p["name"] == "default")["id"]
    ids = {"profile": default, "user": b.user["id"]}
    folder = made(b.post("/api/bookmarks", {"title": f"{CANARY} folder", "isFolder": True, "parentId": "toolbar"}), "folder")
    bookmark = made(b.post("/api/bookmarks", {"title": f"{CANARY} title", "url": f"https://{CANARY}.example/page",
                                              "notes": f"{CANARY} notes", "tags": [CANARY], "parentId": folder["id"]}),
                    "bookmark")
    ids["folder"], ids["bookmark"] = folder["id"], bookmark["id"]
    made(b.post("/api/records/notes", {"id": f"{CANARY}-rec", "data": {"secret": CANARY}, "opId": f"{CANARY}-op1"}), "record")
    made(b.post("/api/sync/push", {"operations": [{"opId": f"{CANARY}-op2", "type": "create", "collection": "notes",
                                                   "id": f"{CANARY}-rec2", "data": {"secret": CANARY}}]}), "push")
    ids["record"] = f"{CANARY}-rec"
    second = made(b.post("/api/profiles", {"name": f"{CANARY}-profile"}), "profile")
    ids["profile2"] = second["id"]
    key = made(b.post("/api/keys", {"name": f"{CANARY} key"}), "key")
    ids["key"] = key["key"]["id"]
    ticket = made(b.post("/api/auth/ws-ticket"), "ticket")["ticket"]
    workspace = made(b.post("/api/workspaces", {"name": f"{CANARY} workspace"}), "workspace")
    ids["workspace"] = workspace["workspace"]["id"]
    for route in ("cards", "collections", "todos", "events"):
        body = made(b.post(f"/api/{route}", {"id": f"{CANARY}-{route}", "title": CANARY, "name": CANARY,
                                             "content": CANARY, "workspaceId": default}), route)
        ids[route] = body[route[:-1]]["id"]
    made(b.put(f"/api/view-settings?workspaceId={default}", {"viewKey": f"{CANARY}-view", "layout": CANARY}), "view")
    item = made(b.post("/items", {"type": "text", "content": CANARY, "tags": [CANARY], "sync_id": f"{CANARY}-item"}), "item")
    ids["item"] = item.get("id") or item.get("item", {}).get("id")
    made(b.post("/profiles", {"name": f"{CANARY}-p4"}), "seed 004 profile")
    made(b.post("/api/sync/queue", {"type": "create", "entity": "book", "entityId": f"{CANARY}-book",
                                    "data": {"title": CANARY}}), "queue")
    made(b.post("/api/sync/operations", {"operations": [{"id": f"{CANARY}-s1op", "type": "create", "entity": "book",
                                                         "entityId": f"{CANARY}-book2", "data": {"title": CANARY},
                                                         "timestamp": "2026-01-01T00:00:00Z"}]}), "operations")
    b_ids |= set(ids.values())
    b_ids = {i for i in b_ids if i and len(i) >= 6 and i not in ("toolbar", "default", "menu", "unfiled", "mobile")}
    # Built-in folder ids and the like are shared names, not B's; ids A also has are not B's either.
    a_ids = ids_in(a.get("/api/bookmarks").json(), set()) | ids_in(a.get("/api/me").json(), set())
    b_ids -= a_ids
    a_key = a.post("/api/keys", {"name": "alice key"}).json()
    secrets = {
        "B password": b.password, "B access token": b.token, "B refresh token": b.refresh_token,
        "B API key": key["secret"], "B API key secret part": key_secret_part(key["secret"]),
        "B ticket": ticket, "B e-mail": b_email,
    }
    yield {"server": server, "a": a, "b": b, "ids": ids, "b_ids": b_ids, "secrets": secrets,
           "a_key": a_key["secret"], "b_key": key["secret"], "snapshot": snapshot(b)}
    server.kill9()


def key_secret_part(key: str) -> str:
    """The 43 secret characters of an API key, `ck_<8 visible>_<43 secret>`. Both parts are
    base64url and may hold `_` themselves, so splitting at the last `_` could leave a few
    characters that a random token then contains by chance (a flaky finding, seen once)."""
    assert key.startswith("ck_") and len(key) == 3 + 8 + 1 + 43 and key[11] == "_", key
    return key[12:]


def snapshot(b: Api) -> dict:
    """Everything B can read: compared before and after A's attempts."""
    out = {}
    for path in ("/api/bookmarks", "/api/profiles", "/api/keys", "/api/workspaces", "/items", "/profiles",
                 "/api/sync/pending", "/api/records/notes?includeDeleted=true", "/api/sync/conflicts"):
        response = b.get(path)
        out[path] = (response.status_code, strip_volatile(response.json() if response.content else None))
    out["pull"] = b.pull_all()[0]
    out["seq"] = b.seq()
    return out


VOLATILE = {"serverTime", "lastUsedAt", "generatedAt", "now", "devices", "lastSeenAt"}


def strip_volatile(value):
    if isinstance(value, dict):
        return {k: strip_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [strip_volatile(v) for v in value]
    return value


class Leaks:
    """Collects every place where A saw something of B's."""

    def __init__(self, world):
        self.world = world
        self.found: list[str] = []
        self.checked = 0

    def check(self, text: str, sent: str, where: str):
        self.checked += 1
        # What A sent may come back (an echoed id or name): A knew it already.
        for echoed in sorted(set(re.findall(r"[\w.@-]*" + CANARY + r"[\w.@-]*", sent)), key=len, reverse=True):
            text = text.replace(echoed, "<sent>")
        lowered = text.lower()
        if CANARY in lowered:
            self.found.append(f"{where}: canary: {text[:200]}")
        for name, secret in self.world["secrets"].items():
            if secret.lower() in lowered and secret.lower() not in sent.lower():
                self.found.append(f"{where}: {name}")
        for bid in self.world["b_ids"]:
            if bid in text and bid not in sent:
                self.found.append(f"{where}: B's id {bid}: {text[:200]}")

    def assert_none(self):
        assert not self.found, "\n".join(self.found[:30])


def routes(server) -> list[tuple[str, str]]:
    spec = requests.get(server.url + "/openapi.json", timeout=10).json()
    out = []
    for path, ops in spec["paths"].items():
        for method in ops:
            if method in ("get", "post", "put", "patch", "delete") and path != "/api/sync/ws":
                out.append((method.upper(), path))
    assert len(out) > 50
    # Reads first: a write with B's id legitimately creates A's own object of that id (ids are
    # scoped by user), which a later read would find.
    return sorted(out, key=lambda route: route[0] != "GET")


def b_id_for(path: str, ids: dict) -> str:
    for prefix, kind in (("/api/bookmarks", "bookmark"), ("/api/profiles", "profile2"), ("/api/records", "record"),
                         ("/api/keys", "key"), ("/api/workspaces", "workspace"), ("/api/cards", "cards"),
                         ("/api/collections", "collections"), ("/api/todos", "todos"), ("/api/events", "events"),
                         ("/items", "item"), ("/profiles", "profile2")):
        if path.startswith(prefix):
            return ids[kind]
    return ids["profile"]


def fake_like(real: str) -> str:
    """An id that exists nowhere, of the same length and alphabet class."""
    fake = (FAKE_PREFIX + uuid.uuid4().hex * 3)[:max(len(real), len(FAKE_PREFIX) + 4)]
    if re.fullmatch(r"[0-9a-fA-F-]{36}", real):
        fake = str(uuid.uuid4())
    return fake


def bodies_for(method: str, path: str, target: str, ids: dict) -> list:
    if method in ("GET", "DELETE"):
        return [None]
    return [
        {},
        {"title": "a-title", "name": "a-unique", "data": {"a": 1}, "parentId": target, "newParentId": target,
         "id": target, "workspaceId": target, "profile": target, "content": "a-content", "type": "text",
         "viewKey": "a-unique", "tags": ["a"], "entity": "book", "entityId": target,
         "operations": [{"opId": f"a-{uuid.uuid4().hex[:8]}", "type": "update", "collection": "notes", "id": target,
                         "data": {"a": 1}},
                        {"id": f"a-{uuid.uuid4().hex[:8]}", "type": "update", "entity": "book", "entityId": target,
                         "data": {"a": 1}, "timestamp": "2026-01-01T00:00:00Z"}],
         "operationIds": [target], "refreshToken": "rt_x.y"},
    ]


def normalise(text: str, *values: str) -> str:
    for value in values:
        text = text.replace(value, "<ID>")
    return re.sub(r'"(requestId|serverTime|now)":"[^"]*"', '"\\1":""', text)


def sweep(world, client: Api, label: str, leaks: Leaks, reads: bool):
    server, ids = world["server"], world["ids"]
    oracle_failures = []
    for method, template in routes(server):
        if (method == "GET") != reads:
            continue
        if template in ("/api/auth/logout",):
            continue  # would end A's session; covered by S5
        target = b_id_for(template, ids)
        for profile_value in (None, ids["profile"], ids["profile2"], f"{CANARY}-profile"):
            query = ""
            if profile_value:
                query = f"?profile={profile_value}&workspaceId={profile_value}"
            fake = fake_like(target)
            fake_profile = fake_like(profile_value) if profile_value else None
            for body in bodies_for(method, template, target, ids):
                answers = []
                for the_id, the_profile in ((target, profile_value), (fake, fake_profile)):
                    path = (template.replace("{collection}", "notes").replace("{timestamp}", "0")
                            .replace("{id}", the_id))
                    q = query.replace(profile_value, the_profile) if profile_value else ""
                    sent_body = (json.dumps(body).replace(target, the_id).replace("a-unique", uuid.uuid4().hex[:12])
                                 if body is not None else "")
                    response = client.request(method, path + q, data=sent_body if body is not None else None,
                                              headers={"Content-Type": "application/json"})
                    where = f"{label} {method} {path}{q} body={sent_body[:80]}"
                    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
                    leaks.check(response.text + json.dumps(dict(response.headers)), path + q + sent_body, where)
                    answers.append((response.status_code, response.text, the_id, the_profile, where))
                (s1, t1, i1, p1, w1), (s2, t2, i2, p2, _) = answers
                # A read must answer B's id exactly as an id that exists nowhere. A write may differ
                # because of A's own earlier writes; it is compared when both are refused.
                if (method == "GET" and (s1 >= 400 or s2 >= 400)) or (s1 >= 400 and s2 >= 400):
                    n1 = normalise(t1, *(v for v in (i1, p1) if v))
                    n2 = normalise(t2, *(v for v in (i2, p2) if v))
                    if (s1, n1) != (s2, n2):
                        oracle_failures.append(f"{w1}: B's id -> {s1} {t1[:150]} | unknown id -> {s2} {t2[:150]}")
    assert not oracle_failures, "B's ids answer differently from ids that do not exist:\n" + "\n".join(oracle_failures[:20])


def test_every_route_with_b_ids_and_profiles_reveals_nothing(world):
    leaks = Leaks(world)
    a_key = Api(world["server"], token=world["a_key"])
    for reads in (True, False):
        sweep(world, world["a"], "A(token)", leaks, reads)
        sweep(world, a_key, "A(api key)", leaks, reads)
    leaks.assert_none()
    assert leaks.checked > 500, leaks.checked
    assert snapshot(world["b"]) == world["snapshot"], "A changed B's data"


def test_b_credentials_and_tickets_do_not_cross(world):
    """B's refresh token and API key used by A are just B's credentials: they work only as B, and
    A's own token with B's key id, profile or ticket gets nothing."""
    server, ids = world["server"], world["ids"]
    leaks = Leaks(world)
    a = world["a"]
    for path in (f"/api/keys/{ids['key']}",):
        response = a.delete(path)
        assert response.status_code == 404
        leaks.check(response.text, path, f"DELETE {path}")
    response = a.post("/api/keys", {"name": "scoped to B", "profile": ids["profile"]})
    assert response.status_code == 404, response.text
    leaks.check(response.text, ids["profile"], "create key scoped to B's profile")
    leaks.assert_none()
    keys = world["b"].get("/api/keys").json()["keys"]
    assert any(k["id"] == ids["key"] for k in keys)


def ws_messages(ws, seconds: float) -> list[str]:
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            out.append(ws.recv(max(0.05, deadline - time.monotonic())))
        except (TimeoutError, ConnectionClosed):
            break
    return out


def test_websockets_carry_nothing_of_b(world):
    server, ids, a, b = world["server"], world["ids"], world["a"], world["b"]
    leaks = Leaks(world)
    ws_url = server.ws_url + "/api/sync/ws"

    # The upgrade for B's profile, with A's token, is refused exactly like a missing profile.
    answers = []
    for profile in (ids["profile"], fake_like(ids["profile"])):
        response = requests.get(server.url + f"/api/sync/ws?profile={profile}", timeout=10,
                                headers={"Authorization": f"Bearer {a.token}", "Connection": "Upgrade",
                                         "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                         "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode()})
        leaks.check(response.text, profile, f"upgrade profile={profile}")
        answers.append((response.status_code, normalise(response.text, profile)))
    assert answers[0] == answers[1] and answers[0][0] != 101, answers

    a_ticket = a.post("/api/auth/ws-ticket").json()["ticket"]
    sockets = [
        ("header", connect(ws_url, additional_headers={"Authorization": f"Bearer {a.token}"}, open_timeout=10)),
        ("ticket", connect(ws_url + f"?ticket={a_ticket}", open_timeout=10)),
        ("api key", connect(ws_url, additional_headers={"Authorization": f"Bearer {world['a_key']}"}, open_timeout=10)),
    ]
    in_band = connect(ws_url, open_timeout=10)
    assert json.loads(in_band.recv(10))["type"] == "auth_required"
    in_band.send(json.dumps({"type": "auth", "token": a.token, "profile": ids["profile"]}))
    refused = [json.loads(m) for m in ws_messages(in_band, 2)]
    assert refused and refused[0]["type"] == "auth_error", refused
    for message in refused:
        leaks.check(json.dumps(message), ids["profile"], "in-band auth for B's profile")
    in_band.close()

    b_socket = connect(ws_url, additional_headers={"Authorization": f"Bearer {b.token}"}, open_timeout=10)
    sent_by_a = ""
    received: list[tuple[str, str]] = []
    try:
        for name, ws in sockets:
            received.extend((name, m) for m in ws_messages(ws, 0.5))
        # Every client message type, naming B's things.
        messages = [
            {"type": "sync_request", "lastSyncVersion": 0},
            {"type": "sync_request", "lastSyncVersion": 0, "collections": ["notes", "bookmarks"]},
            {"type": "bookmark_create", "opId": "a-ws-1", "data": {"title": "a", "url": "https://a.example/",
                                                                   "parentId": ids["folder"]}},
            {"type": "bookmark_update", "opId": "a-ws-2", "id": ids["bookmark"], "data": {"title": "a"}},
            {"type": "bookmark_delete", "opId": "a-ws-3", "id": ids["bookmark"], "expectedVersion": 1},
            {"type": "bookmark_move", "opId": "a-ws-4", "id": ids["bookmark"], "newParentId": ids["folder"], "newIndex": 0},
            {"type": "bookmark_move", "opId": "a-ws-5", "id": ids["folder"], "newParentId": "toolbar"},
            {"type": "push", "operations": [
                {"opId": "a-ws-6", "type": "update", "collection": "notes", "id": ids["record"], "patch": {"a": 1}},
                {"opId": "a-ws-7", "type": "delete", "collection": "notes", "id": ids["record"]},
                {"opId": f"{CANARY}-op1", "type": "create", "collection": "notes", "id": "a-own", "data": {}}]},
            {"type": "ping"},
            {"type": "no_such_type", "id": ids["bookmark"]},
        ]
        for message in messages:
            text = json.dumps(message)
            sent_by_a += text
            for _, ws in sockets:
                ws.send(text)
        # B writes over HTTP and over its own socket while A listens.
        b.post("/api/bookmarks", {"title": f"{CANARY} live", "url": f"https://{CANARY}.example/live"})
        b.push([{"opId": f"{CANARY}-live-{uuid.uuid4().hex[:6]}", "type": "create", "collection": "notes",
                 "id": f"{CANARY}-live", "data": {"secret": CANARY}}])
        b.post("/items", {"type": "text", "content": f"{CANARY} live item"})
        b_socket.send(json.dumps({"type": "bookmark_create", "opId": f"{CANARY}-ws", "data": {"title": CANARY,
                                                                                               "url": f"https://{CANARY}.example/ws"}}))
        for name, ws in sockets:
            received.extend((name, m) for m in ws_messages(ws, 2.0))
    finally:
        for _, ws in sockets:
            ws.close()
        b_socket.close()
    assert len(received) >= 3 * len(messages), len(received)
    types = {json.loads(m)["type"] for _, m in received}
    assert {"auth_success", "sync_complete", "pong", "error"} <= types, types
    for name, message in received:
        leaks.check(message, sent_by_a, f"A's socket ({name})")
    leaks.assert_none()


# What a log line may contain (docs/security.md "Logs"): the method, the route template, status,
# duration, request id, user and profile ids, error types, counts. Never: passwords, tokens,
# refresh tokens, API key secrets, tickets, the server's secrets, e-mail addresses, headers,
# bodies, query strings, concrete paths (they hold user-chosen ids), record data.

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
CREDENTIAL = re.compile(r"\b(rt|ck|wst)_[A-Za-z0-9]|\beyJ[A-Za-z0-9_-]{10,}")


def test_the_log_holds_no_secrets_and_no_user_data(world):
    server, a = world["server"], world["a"]
    # Exercise the failure paths too: wrong passwords, bad tokens, refused refreshes, a ticket
    # and an API key in the query string, a reused refresh token.
    requests.post(server.url + "/api/auth/login", json={"email": a.email, "password": "wrong-" + a.password}, timeout=10)
    requests.post(server.url + "/api/auth/login", json={"email": "nobody-s3@example.com", "password": a.password}, timeout=10)
    requests.get(server.url + f"/api/me?token={a.token}&api_key={world['a_key']}", timeout=10)
    requests.get(server.url + "/api/me", headers={"Authorization": f"Bearer {a.token}x"}, timeout=10)
    old = a.refresh_token
    rotated = requests.post(server.url + "/api/auth/refresh", json={"refreshToken": old}, timeout=10).json()
    time.sleep(0.1)
    requests.post(server.url + "/api/auth/refresh", json={"refreshToken": rotated["refreshToken"]}, timeout=10)
    requests.post(server.url + "/api/auth/refresh", json={"refreshToken": old}, timeout=10)  # reuse: family revoked
    requests.post(server.url + "/api/auth/register", json={"email": f"{CANARY}-new@example.com", "password": f"{CANARY} pw"}, timeout=10)
    secrets = dict(world["secrets"])
    secrets.update({"A password": a.password, "A token": a.token, "A refresh token": old,
                    "A rotated refresh token": rotated["refreshToken"], "A API key": world["a_key"],
                    "A API key secret part": key_secret_part(world["a_key"])})
    for name, value in server.secrets().items():
        if isinstance(value, str) and len(value) >= 16:
            secrets[f"server secret {name}"] = value
    log = server.log_text()
    assert "request" in log and len(log.splitlines()) > 100, "the log at debug should have request lines"
    problems = [name for name, secret in secrets.items() if secret and secret in log]
    for line in log.splitlines():
        if CANARY in line.lower():
            problems.append(f"canary in: {line[:200]}")
        if EMAIL.search(line):
            problems.append(f"e-mail in: {line[:200]}")
        if "Bearer" in line or CREDENTIAL.search(line):
            problems.append(f"credential-looking text in: {line[:200]}")
    assert not problems, "\n".join(problems[:20])
