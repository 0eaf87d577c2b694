"""S8 inject.sql: injection payloads in every kind of string input: stored fields (round trip
exactly), ids and collection names (refused or not found), query parameters (search, cursors,
profiles, timestamps), header-borne ids, e-mails at sign-in.

Oracles: no 5xx; stored values come back byte for byte; a search returns only the caller's
bookmarks and only ones that contain every query word as a literal prefix (operators,
wildcards and quotes are not interpreted); another user's canary never appears; sign-in with
LIKE wildcards or SQL in the e-mail never succeeds; the schema (sqlite_master) and the other
user's data are unchanged at the end.
"""

import hashlib
import re
import unicodedata
import urllib.parse

import pytest
import requests

from conftest import register

PAYLOADS = [
    "'", "''", '"', "`", "' OR '1'='1", "' OR 1=1 --", '" OR "1"="1', "'; DROP TABLE records; --",
    "1; DELETE FROM users", "' UNION SELECT email, password_hash FROM users --", "admin'--", "') OR ('a'='a",
    "'||(SELECT email FROM users LIMIT 1)||'", "%", "_", "%%", "%' OR '%'='", "a%", "\\", "\\'", "a\u0000b",
    "\u02bc OR \u02bc1\u02bc=\u02bc1", "\uff07 OR 1=1 --", "$.data", "json_extract(data, '$.x')", "*", "a*",
    "NEAR(alpha bravo)", "title:alpha", '"unbalanced', "alpha OR zulu", "NOT alpha", "alpha AND", "^alpha", "-alpha",
    "{title url}:alpha", "(", ")", "9223372036854775808", "-9223372036854775809", "1e309", "NaN", "0x7fffffff",
    "randomblob(1000000000)", "/*", "*/", "--", ";", "char(65)", "%00", "../../etc/passwd", "{{7*7}}", "${7*7}",
    "x' AND 1=(SELECT COUNT(*) FROM sqlite_master) --", "canary", "secret", "victim",
]
CANARY = "zq-canary-7f3a"          # only in the victim's data; no payload contains it
# Payloads that hit a known 500 on search (pinned by test_search_with_a_nul_byte_is_not_a_500).
SEARCH_500 = {p for p in PAYLOADS if "\u0000" in p}
WORD = re.compile(r"\w+", re.UNICODE)


# Thousands of probes as one user: the per-user API rate is waited out, not failed on.
pytestmark = pytest.mark.usefixtures("paced_api")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import CairnServer
    server = CairnServer(tmp_path_factory.mktemp("s8"), "s8").start()
    victim = register(server, email="victim@example.com")
    attacker = register(server, email="attacker@example.com")
    canaries = []
    for k in range(5):
        body = victim.post("/api/bookmarks", {"title": f"{CANARY} alpha bravo secret {k}",
                                             "url": f"https://{CANARY}.example/{k}", "tags": [CANARY, "alpha"],
                                             "notes": f"{CANARY} alpha OR zulu"}).json()
        canaries.append(body)
    victim.post("/api/records/notes", {"id": "canary", "data": {"secret": CANARY}})
    victim.post("/items", {"type": "text", "content": CANARY, "sync_id": "canary"})
    victim.post("/api/profiles", {"name": "canary-profile"})
    attacker.post("/api/bookmarks", {"title": "kangaroo facts", "url": "https://a.example/k"})
    attacker.post("/api/bookmarks", {"title": "alpha bravo", "url": "https://a.example/ab"})
    attacker.post("/api/bookmarks", {"title": "zulu only", "url": "https://a.example/z"})
    con = server.db()
    schema = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    con.close()
    yield {"server": server, "victim": victim, "attacker": attacker, "canaries": canaries,
           "schema": hashlib.sha256(repr(schema).encode()).hexdigest()}
    server.kill9()


def no_canary(response: requests.Response, where: str):
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    text = response.text.lower()
    assert CANARY not in text, f"{where}: another user's data leaked: {response.text[:300]}"
    assert "victim@example.com" not in text, f"{where}: another user's e-mail leaked"


def fts_tokens(text: str) -> list[str]:
    return [t.lower() for t in WORD.findall(unicodedata.normalize("NFKC", text or ""))]


def test_search_is_literal_and_scoped(world):
    attacker = world["attacker"]
    control = attacker.get("/api/bookmarks/search", params={"q": "kanga"})
    assert control.status_code == 200 and [b["title"] for b in control.json()["results"]] == ["kangaroo facts"]
    own_ids = {b["id"] for b in attacker.get("/api/bookmarks").json()["bookmarks"]}
    for payload in PAYLOADS:
        if payload in SEARCH_500:
            continue
        response = attacker.get("/api/bookmarks/search", params={"q": payload})
        no_canary(response, f"search {payload!r}")
        if response.status_code == 400:
            assert response.json()["error"]["code"] == "VALIDATION_ERROR"
            continue
        assert response.status_code == 200
        words = fts_tokens(payload)[:16]
        for hit in response.json()["results"]:
            assert hit["id"] in own_ids, f"search {payload!r} returned a bookmark that is not the caller's"
            tokens = fts_tokens(" ".join([hit["title"], hit.get("url") or "", " ".join(hit["tags"]), hit.get("notes") or ""]))
            for word in words:
                assert any(t.startswith(word) for t in tokens), \
                    f"search {payload!r} matched {hit['title']!r} without the word {word!r}: operators were interpreted"
        if not words:
            assert response.json()["total"] == 0, f"search {payload!r} (no words) matched {response.json()['total']}"


def test_stored_strings_round_trip_exactly(world):
    attacker = world["attacker"]
    for n, payload in enumerate(PAYLOADS):
        title = f"t {payload} end"
        created = attacker.post("/api/bookmarks", {"title": title, "tags": [payload[:100] or "x"], "notes": payload,
                                                   "url": "https://e.example/?q=" + urllib.parse.quote(payload),
                                                   "parentId": "toolbar", "id": f"inj-{n}"})
        no_canary(created, f"roundtrip bookmark {payload!r}")
        if created.status_code == 400:
            continue
        assert created.status_code == 201, created.text
        got = attacker.get(f"/api/bookmarks/inj-{n}").json()
        assert got["title"] == title and got["notes"] == payload
        if payload.strip():
            assert got["tags"] == [payload[:100].strip()]
        record = attacker.put(f"/api/records/inj/r{n}", {"data": {"s": payload, payload: 1}})
        assert record.status_code == 201, record.text
        assert attacker.get(f"/api/records/inj/r{n}").json()["data"] == {"s": payload, payload: 1}
        item = attacker.post("/items", {"type": "text", "content": payload, "sync_id": f"it{n}", "tags": ["x"]})
        no_canary(item, f"roundtrip item {payload!r}")
        if item.status_code in (200, 201):
            assert attacker.get(f"/items/it{n}").json()["item"]["content"] == payload
        key = attacker.post("/api/keys", {"name": payload})
        no_canary(key, f"roundtrip key {payload!r}")
        if key.status_code == 201:
            assert key.json()["key"]["name"] == payload
        view = attacker.put("/api/view-settings", {"viewKey": payload, "layout": payload})
        no_canary(view, f"roundtrip view {payload!r}")
        if view.status_code in (200, 201):
            # %20 for spaces: `+` is not decoded (pinned by test_plus_in_a_query_string_is_a_space)
            listed = attacker.get("/api/view-settings?viewKey=" + urllib.parse.quote(payload, safe="")).json()["viewSettings"]
            assert [v["layout"] for v in listed] == [payload], listed


def test_ids_collections_and_profile_names_in_paths(world):
    attacker = world["attacker"]
    for payload in PAYLOADS:
        quoted = urllib.parse.quote(payload, safe="")
        for path in (f"/api/records/notes/{quoted}", f"/api/records/{quoted}", f"/api/records/{quoted}/canary",
                     f"/api/bookmarks/{quoted}", f"/api/profiles/{quoted}", f"/api/cards/{quoted}", f"/items/{quoted}",
                     f"/items/since/{quoted}", f"/api/keys/{quoted}", f"/api/workspaces/{quoted}"):
            method = "DELETE" if path.startswith("/api/keys/") else "GET"
            response = attacker.request(method, path)
            no_canary(response, f"{method} {path}")
            if response.status_code == 200:
                # Only where the payload is a valid collection name or a timestamp-free listing.
                assert path.startswith(("/api/records/", "/items/since/")), f"{method} {path}: 200"
                if path.startswith("/api/records/"):
                    assert response.json()["records"] == []
            else:
                assert response.status_code in (400, 404), f"{method} {path}: {response.status_code}"


def test_query_parameters(world):
    attacker = world["attacker"]
    victim_profile = "canary-profile"
    for payload in PAYLOADS + [victim_profile]:
        checks = [
            ("/api/bookmarks", {"profile": payload}), ("/api/bookmarks", {"format": payload}),
            ("/api/bookmarks", {"includeDeleted": payload}), ("/api/sync/pull", {"since": payload}),
            ("/api/sync/pull", {"limit": payload}), ("/api/sync/pull", {"collections": payload}),
            ("/api/sync/pull", {"cursors": f"{payload}:0"}), ("/api/sync/pull", {"cursors": f"notes:{payload}"}),
            ("/api/sync/pull", {"profile": payload}), ("/api/records/notes", {"since": payload}),
            ("/api/sync/changes", {"since": payload}), ("/api/cards", {"workspaceId": payload}),
            ("/api/sync/delta", {"since": payload}), ("/api/bookmarks/search", {"q": "alpha", "limit": payload}),
            ("/api/bookmarks/search", {"q": "alpha", "offset": payload}), ("/api/bookmarks/export", {"format": payload}),
            ("/items", {"profile": payload}), ("/api/sync/conflicts", {"limit": payload}),
        ]
        for path, params in checks:
            response = attacker.get(path, params=params)
            no_canary(response, f"GET {path} {params}")
            if "profile" in params or "workspaceId" in params:
                assert response.status_code in (400, 404), f"GET {path} {params}: {response.status_code}"
    assert not attacker.five_xx, attacker.five_xx


def test_client_ids_and_op_ids(world):
    attacker = world["attacker"]
    for n, payload in enumerate(PAYLOADS):
        if "\u0000" in payload:
            continue   # NUL truncation is pinned by test_strings_with_a_nul_are_not_truncated
        # %20 for spaces: `+` is not decoded (pinned by test_plus_in_a_query_string_is_a_space)
        pulled = attacker.get("/api/sync/pull?since=0&limit=1&clientId=" + urllib.parse.quote(payload, safe=""))
        no_canary(pulled, f"pull clientId {payload!r}")
        op_id = f"{payload}-{n}"
        pushed = attacker.post("/api/sync/push", {"clientId": payload, "operations": [
            {"opId": op_id, "type": "upsert", "collection": "ops", "id": f"o{n}", "data": {"p": payload}}]},
            headers={"X-Client-Id": payload.replace("\u0000", "") or "x"} if payload.isascii() else {})
        no_canary(pushed, f"push opId {payload!r}")
        assert pushed.status_code == 200, pushed.text
        again = attacker.post("/api/sync/push", {"clientId": payload, "operations": [
            {"opId": op_id, "type": "upsert", "collection": "ops", "id": f"o{n}", "data": {"p": payload}}]})
        assert again.json()["results"][0]["status"] == "duplicate"
    devices = attacker.get("/api/sync/status").json()["devices"]
    recorded = {d["clientId"] for d in devices}
    sent = {p for p in PAYLOADS if "\u0000" not in p}
    assert recorded <= sent, f"device ids not recorded as sent: {recorded - sent}"
    assert len(recorded) == min(100, len(sent)), f"{len(recorded)} devices recorded"


def test_sign_in_with_sql_or_wildcards_never_succeeds(world):
    server = world["server"]
    password = world["attacker"].password
    for email in ["' OR '1'='1", "' OR 1=1 --", "attacker@example.com' --", "%@example.com", "_ttacker@example.com",
                  "attacker@example.co_", "%", "attacker@%", "ATTACKER@EXAMPLE.COM' OR ''='"]:
        response = requests.post(server.url + "/api/auth/login", json={"email": email, "password": password}, timeout=10)
        assert response.status_code in (400, 401, 429), f"{email!r}: {response.status_code} {response.text}"
    quoted = register(server, email="o'brien+test@example.com")
    again = requests.post(server.url + "/api/auth/login", json={"email": "O'Brien+test@example.com",
                                                                "password": quoted.password}, timeout=10)
    assert again.status_code in (200, 429)


def test_profile_names(world):
    attacker = world["attacker"]
    for payload in PAYLOADS:
        created = attacker.post("/api/profiles", {"name": payload})
        no_canary(created, f"profile {payload!r}")
        if created.status_code != 201:
            assert created.status_code in (400, 409), created.text
            continue
        name = payload.strip()
        assert created.json()["name"] == name
        by_id = attacker.get("/api/profiles/" + created.json()["id"])
        assert by_id.status_code == 200 and by_id.json()["name"] == name
        if urllib.parse.quote(name, safe="") == name:
            # Names that need percent-encoding cannot be looked up by name: pinned by
            # test_percent_encoded_path_parameters_are_decoded.
            by_name = attacker.get("/api/profiles/" + name)
            assert by_name.status_code == 200 and by_name.json()["id"] == created.json()["id"], name
        listing = attacker.get("/api/bookmarks?profile=" + urllib.parse.quote(name, safe=""))
        assert listing.status_code == 200, f"?profile={name!r}: {listing.status_code}"
    names = [p["name"] for p in attacker.get("/api/profiles").json()["profiles"]]
    assert "canary-profile" not in names


def test_nothing_changed_underneath(world):
    """Runs last in this module: the schema and the victim's data are as they were."""
    server, victim = world["server"], world["victim"]
    con = server.db()
    schema = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    users = con.execute("SELECT count(*) FROM users").fetchone()[0]
    con.close()
    assert hashlib.sha256(repr(schema).encode()).hexdigest() == world["schema"], "the schema changed"
    assert users in (3, 4)   # victim, attacker, o'brien (+1 if the NUL e-mail test registered)
    for canary in world["canaries"]:
        now = victim.get(f"/api/bookmarks/{canary['id']}").json()
        assert now["title"] == canary["title"] and now["syncVersion"] == canary["syncVersion"]
    assert victim.get("/api/records/notes/canary").json()["data"] == {"secret": CANARY}


def test_search_with_a_nul_byte_is_not_a_500(world):
    for q in ("a\u0000b", "\u0000"):
        response = world["attacker"].get("/api/bookmarks/search", params={"q": q})
        assert response.status_code in (200, 400), f"{q!r}: {response.status_code} {response.text}"
    world["attacker"].five_xx.clear()


def test_plus_in_a_query_string_is_a_space(world):
    attacker = world["attacker"]
    assert attacker.post("/api/profiles", {"name": "My Work"}).status_code == 201
    assert attacker.get("/api/bookmarks?profile=My%20Work").status_code == 200
    assert attacker.put("/api/view-settings", {"viewKey": "library grid view", "layout": "grid"}).status_code == 201
    assert len(attacker.get("/api/view-settings?viewKey=library%20grid%20view").json()["viewSettings"]) == 1
    assert attacker.get("/api/bookmarks?profile=My+Work").status_code == 200
    assert len(attacker.get("/api/view-settings?viewKey=library+grid+view").json()["viewSettings"]) == 1


def test_percent_encoded_path_parameters_are_decoded(world):
    attacker = world["attacker"]
    assert attacker.post("/api/profiles", {"name": "Path Work"}).status_code == 201
    created = attacker.put("/api/records/notes/a%3Ab", {"data": {"v": 1}})
    assert created.status_code == 201, created.text
    assert attacker.get("/api/records/notes/a:b").status_code == 200
    assert attacker.get("/api/profiles/Path%20Work").status_code == 200


def test_sign_in_email_with_a_nul_is_refused(cairn):
    server = cairn(args=["--trusted-proxy", "127.0.0.1"])
    api = register(server, email="nul@example.com", headers={"X-Forwarded-For": "10.9.0.1"})
    # The control: 10 failures per (e-mail, address), then 429.
    codes = [requests.post(server.url + "/api/auth/login", json={"email": api.email, "password": "wrong-password"},
                           headers={"X-Forwarded-For": "10.9.0.2"}, timeout=10).status_code for _ in range(12)]
    assert codes[-1] == 429, codes
    codes = [requests.post(server.url + "/api/auth/login", json={"email": f"{api.email}\u0000{k}", "password": "wrong-password"},
                           headers={"X-Forwarded-For": "10.9.0.3"}, timeout=10).status_code for k in range(12)]
    assert codes[-1] in (400, 429), f"NUL-suffixed e-mails escape the failed-sign-in limit: {codes}"
    ok = requests.post(server.url + "/api/auth/login", json={"email": f"{api.email}\u0000junk", "password": api.password},
                       headers={"X-Forwarded-For": "10.9.0.4"}, timeout=10)
    assert ok.status_code in (400, 401), f"signed in with a NUL-suffixed e-mail: {ok.status_code}"


def test_strings_with_a_nul_are_refused_never_truncated(server):
    # A NUL would cut a string bound to SQL: every request text carrying one is refused whole
    api = register(server)
    for op_id in ("x\u0000one", "x\u0000two"):
        refused = api.post("/api/sync/push", {"operations": [{"opId": op_id, "type": "create", "collection": "nul", "id": "n1", "data": {}}]})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "VALIDATION_ERROR", refused.text
    assert api.get("/api/sync/pull?since=0&collections=nul").json()["changes"] == []
    key = api.post("/api/keys", {"name": "k\u0000hidden"})
    assert key.status_code == 400, key.text
    assert api.get("/api/keys").json()["keys"] == []
    assert api.get("/api/sync/pull?since=0&clientId=a%00b").status_code == 400
    assert api.get("/api/sync/status").json()["devices"] == []
