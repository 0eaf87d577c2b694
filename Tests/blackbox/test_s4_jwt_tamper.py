"""S4 auth.jwt-tamper: forged, tampered, expired and malformed credentials are refused everywhere.

Each case is tried on an HTTP route (`GET /api/me`: 401 with exactly the uniform body), on the
WebSocket upgrade (`Authorization` header: no 101; the plain `GET /api/sync/ws` answers the
uniform 401) and in band (`auth` message: `auth_error`, then close 1008). Tokens that must be
refused for their claims are signed with the server's real key (read from its secrets.json), so
the claim checks themselves are tested, not just the signature; two control cases prove that the
minted tokens are otherwise valid.
"""

import base64
import hashlib
import json
import os
import time

import pytest
import requests

from conftest import (UNAUTHORIZED_BODY, b64url, b64url_json, jwt_parts, mint_jwt, register, signing_key)
from wsraw import Closed, RawWebSocket


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    from conftest import CairnServer
    server = CairnServer(tmp_path_factory.mktemp("s4"), "s4").start()
    try:
        victim = register(server)
        other = register(server)
        key_response = victim.post("/api/keys", {"name": "k"})
        assert key_response.status_code == 201
        header, payload, signature = jwt_parts(victim.token)
        yield {"server": server, "victim": victim, "other": other, "key": signing_key(server), "header": header,
               "payload": payload, "signature": signature, "api_key": key_response.json()["secret"]}
    finally:
        server.kill9()


def fresh_claims(c) -> dict:
    now = int(time.time())
    claims = dict(c["payload"])
    claims.update(iat=now, nbf=now, exp=now + 600, jti=os.urandom(8).hex())
    return claims


def signed(c, header_changes=None, claim_changes=None, drop_header=(), drop_claims=(), key=None,
           digest=hashlib.sha256) -> str:
    header = {**c["header"], **(header_changes or {})}
    for name in drop_header:
        header.pop(name, None)
    claims = {**fresh_claims(c), **(claim_changes or {})}
    for name in drop_claims:
        claims.pop(name, None)
    return mint_jwt(header, claims, c["key"] if key is None else key, digest)


def resegment(c, header=None, payload=None, signature=None) -> str:
    h = b64url_json({**c["header"], **(header or {})})
    p = b64url_json(payload if payload is not None else c["payload"])
    return f"{h}.{p}.{c['signature'] if signature is None else signature}"


def flip_bit(segment: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return b64url(bytes(raw))


# name -> builds the Authorization header value (or None: send no header)
CASES = {
    "alg none, empty signature": lambda c: "Bearer " + resegment(c, {"alg": "none"}, signature=""),
    "alg None": lambda c: "Bearer " + resegment(c, {"alg": "None"}, signature=""),
    "alg NONE": lambda c: "Bearer " + resegment(c, {"alg": "NONE"}, signature=""),
    "alg none, original signature": lambda c: "Bearer " + resegment(c, {"alg": "none"}),
    "alg HS512 signed with the key": lambda c: "Bearer " + signed(c, {"alg": "HS512"}, digest=hashlib.sha512),
    "alg HS384 signed with the key": lambda c: "Bearer " + signed(c, {"alg": "HS384"}, digest=hashlib.sha384),
    "alg RS256, HMAC signature (confusion)": lambda c: "Bearer " + signed(c, {"alg": "RS256"}),
    "alg RS256, original signature": lambda c: "Bearer " + resegment(c, {"alg": "RS256"}),
    "alg ES256, original signature": lambda c: "Bearer " + resegment(c, {"alg": "ES256"}),
    "empty signature": lambda c: "Bearer " + resegment(c, signature=""),
    "flipped payload bit": lambda c: "Bearer " + ".".join(
        [c["victim"].token.split(".")[0], flip_bit(c["victim"].token.split(".")[1]), c["signature"]]),
    "flipped signature bit": lambda c: "Bearer " + resegment(c, signature=flip_bit(c["signature"])),
    "sub changed, original signature": lambda c: "Bearer " + resegment(
        c, payload={**c["payload"], "sub": c["other"].user["id"]}),
    "expired an hour ago": lambda c: "Bearer " + signed(c, claim_changes={"exp": int(time.time()) - 3600}),
    "expired 2 s past the 30 s leeway": lambda c: "Bearer " + signed(c, claim_changes={"exp": int(time.time()) - 32}),
    "nbf in the future": lambda c: "Bearer " + signed(c, claim_changes={"nbf": int(time.time()) + 3600}),
    "iat in the future": lambda c: "Bearer " + signed(c, claim_changes={"iat": int(time.time()) + 3600}),
    "wrong iss": lambda c: "Bearer " + signed(c, claim_changes={"iss": "evil"}),
    "wrong aud": lambda c: "Bearer " + signed(c, claim_changes={"aud": "other-api"}),
    "aud list without ours": lambda c: "Bearer " + signed(c, claim_changes={"aud": ["other-api"]}),
    "typ refresh": lambda c: "Bearer " + signed(c, claim_changes={"typ": "refresh"}),
    "no typ claim": lambda c: "Bearer " + signed(c, drop_claims=("typ",)),
    "no exp claim": lambda c: "Bearer " + signed(c, drop_claims=("exp",)),
    "no sub claim": lambda c: "Bearer " + signed(c, drop_claims=("sub",)),
    "exp as a string": lambda c: "Bearer " + signed(c, claim_changes={"exp": str(int(time.time()) + 600)}),
    "sub of no user": lambda c: "Bearer " + signed(c, claim_changes={"sub": "00000000-0000-0000-0000-000000000000"}),
    "unknown kid": lambda c: "Bearer " + signed(c, {"kid": "other-key"}),
    "kid path traversal, empty key": lambda c: "Bearer " + signed(c, {"kid": "../../../../../../dev/null"}, key=b""),
    "kid path traversal, real key": lambda c: "Bearer " + signed(c, {"kid": "../../../../../../dev/null"}),
    "kid with a quote": lambda c: "Bearer " + signed(c, {"kid": "x' OR '1'='1"}),
    "no kid": lambda c: "Bearer " + signed(c, drop_header=("kid",)),
    "jku header": lambda c: "Bearer " + signed(c, {"jku": "https://evil.example/jwks.json"}),
    "x5u header": lambda c: "Bearer " + signed(c, {"x5u": "https://evil.example/cert.pem"}),
    "embedded jwk header": lambda c: "Bearer " + signed(
        c, {"jwk": {"kty": "oct", "k": b64url(b"attacker-key")}}, key=b"attacker-key"),
    "crit header": lambda c: "Bearer " + signed(c, {"crit": ["exp"]}),
    "header typ not JWT": lambda c: "Bearer " + signed(c, {"typ": "at+jwt"}),
    "no header typ": lambda c: "Bearer " + signed(c, drop_header=("typ",)),
    "another deployment's key": lambda c: "Bearer " + signed(c, key=os.urandom(32)),
    "truncated": lambda c: "Bearer " + c["victim"].token[:-5],
    "two segments": lambda c: "Bearer " + ".".join(c["victim"].token.split(".")[:2]),
    "four segments": lambda c: "Bearer " + c["victim"].token + ".AAAA",
    "trailing dot": lambda c: "Bearer " + c["victim"].token + ".",
    "64 KiB token, signed": lambda c: "Bearer " + signed(c, claim_changes={"pad": "x" * 47_500}),
    "non-base64url characters": lambda c: "Bearer " + c["victim"].token.replace("-", "+").replace("_", "/") + "==",
    "space inside the token": lambda c: "Bearer " + c["victim"].token[:20] + " " + c["victim"].token[20:],
    "header not JSON": lambda c: "Bearer " + b64url(b"{not json") + "." + c["victim"].token.split(".", 1)[1],
    "payload not JSON, signed": lambda c: "Bearer " + _sign_raw(c, b64url_json(c["header"]) + "." + b64url(b"[1,2")),
    "refresh token as access token": lambda c: "Bearer " + c["victim"].refresh_token,
    "forged API key": lambda c: "Bearer ck_AAAAAAAA_" + "A" * 43,
    "API key with a changed secret": lambda c: "Bearer " + c["api_key"][:-4] + ("AAAA" if not c["api_key"].endswith("AAAA") else "BBBB"),
    "literal null": lambda c: "Bearer null",
    "empty bearer": lambda c: "Bearer ",
    "bearer without token": lambda c: "Bearer",
    "Basic scheme": lambda c: "Basic " + base64.b64encode(f"{c['victim'].email}:correct horse battery".encode()).decode(),
    "Token scheme, valid token": lambda c: "Token " + c["victim"].token,
    "no scheme, valid token": lambda c: c["victim"].token,
    "no Authorization header": lambda c: None,
}
# Cases without a bearer token: the upgrade may open an unauthenticated socket (which must then
# authenticate in band), and the in-band `auth` message has no token string to take from them.
SCHEME_CASES = {"Basic scheme", "Token scheme, valid token", "no scheme, valid token", "no Authorization header",
                "bearer without token", "empty bearer"}
KNOWN_DEFECTS: dict[str, str] = {}


def cases(names):
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[name]))
            if name in KNOWN_DEFECTS else name for name in names]


def _sign_raw(c, signing_input: str) -> str:
    import hmac
    return signing_input + "." + b64url(hmac.new(c["key"], signing_input.encode(), hashlib.sha256).digest())


def headers_for(value):
    return {} if value is None else {"Authorization": value}


def test_control_tokens_are_accepted(ctx):
    """The real token and one minted with the server's key are accepted: the forgeries below differ
    from a valid credential only by what each case changes."""
    server = ctx["server"]
    for value in ("Bearer " + ctx["victim"].token, "Bearer " + signed(ctx), "Bearer " + ctx["api_key"]):
        response = requests.get(server.url + "/api/me", headers={"Authorization": value}, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["user"]["id"] == ctx["victim"].user["id"]
        ws = RawWebSocket("127.0.0.1", server.port, "/api/sync/ws", headers={"Authorization": value})
        assert ws.upgraded, ws.status_line
        assert ws.recv_json()["type"] == "auth_success"
        ws.close()
    ws = RawWebSocket("127.0.0.1", server.port, "/api/sync/ws")
    assert ws.recv_json()["type"] == "auth_required"
    ws.send_json({"type": "auth", "token": signed(ctx)})
    assert ws.recv_json()["type"] == "auth_success"
    ws.close()


@pytest.mark.parametrize("case", cases(CASES))
def test_http_route_refuses(ctx, case):
    value = CASES[case](ctx)
    response = requests.get(ctx["server"].url + "/api/me", headers=headers_for(value), timeout=10)
    assert response.status_code == 401, f"{case}: {response.status_code} {response.text[:200]}"
    assert response.json() == UNAUTHORIZED_BODY


@pytest.mark.parametrize("case", cases(CASES))
def test_websocket_upgrade_refuses(ctx, case):
    server = ctx["server"]
    value = CASES[case](ctx)
    ws = RawWebSocket("127.0.0.1", server.port, "/api/sync/ws", headers=headers_for(value))
    try:
        if case in SCHEME_CASES and ws.upgraded:
            # No bearer credential: the socket opens unauthenticated and must authenticate in band.
            assert ws.recv_json()["type"] == "auth_required"
            ws.send_json({"type": "sync_request", "lastSyncVersion": 0})
            answer = ws.recv_json()
            assert answer["type"] == "error" and answer["code"] == "UNAUTHORIZED", answer
            return
        assert not ws.upgraded, f"{case}: upgraded with a bad credential"
        assert ws.status in (400, 401, 403), ws.status_line
    finally:
        ws.close()
    plain = requests.get(server.url + "/api/sync/ws", headers=headers_for(value), timeout=10)
    assert plain.status_code == 401, f"{case}: plain GET answered {plain.status_code} {plain.text[:200]}"
    assert plain.json() == UNAUTHORIZED_BODY


@pytest.mark.parametrize("case", cases(c for c in CASES if c not in SCHEME_CASES))
def test_websocket_in_band_auth_refuses(ctx, case):
    value = CASES[case](ctx)
    token = value.split(" ", 1)[1] if " " in value else value
    ws = RawWebSocket("127.0.0.1", ctx["server"].port, "/api/sync/ws")
    try:
        assert ws.recv_json()["type"] == "auth_required"
        ws.send_json({"type": "auth", "token": token})
        answer = ws.recv_json()
        assert answer["type"] == "auth_error", f"{case}: {answer}"
        with pytest.raises(Closed) as closed:
            ws.recv_json()
        assert closed.value.code == 1008, f"{case}: closed with {closed.value.code}"
    finally:
        ws.close()


@pytest.mark.parametrize("param", ["token", "access_token"])
def test_token_in_the_query_string_is_ignored(ctx, param):
    server = ctx["server"]
    token = ctx["victim"].token
    response = requests.get(server.url + "/api/me", params={param: token}, timeout=10)
    assert response.status_code == 401 and response.json() == UNAUTHORIZED_BODY
    ws = RawWebSocket("127.0.0.1", server.port, f"/api/sync/ws?{param}={token}")
    try:
        assert ws.upgraded
        assert ws.recv_json()["type"] == "auth_required", "a token in the URL authenticated the socket"
    finally:
        ws.close()


def test_every_refusal_has_the_same_body_and_no_5xx(ctx):
    """Across all cases the 401 bodies are byte-identical (no oracle on why a token failed)."""
    bodies = set()
    for case, build in CASES.items():
        if case in KNOWN_DEFECTS:
            continue
        response = requests.get(ctx["server"].url + "/api/sync/pull", headers=headers_for(build(ctx)), timeout=10)
        assert response.status_code == 401, f"{case}: {response.status_code}"
        bodies.add(response.content)
    assert len(bodies) == 1, bodies
