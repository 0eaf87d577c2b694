"""S1 fuzz.api: schemathesis against the server's own /openapi.json, with two identities.

Users A (alice) and B (bob) are registered and given data; B's data carries the canary string
CANARY. schemathesis (pinned in requirements.txt) then runs every phase (examples, coverage,
fuzzing, stateful) against every operation as A, with B declared as A's peer (Web Fuzzing Commons
auth file, `peers`) so that its `object_level_authorization` check replays A's reads as B.

Pass criterion (bar S1): 0 failures of `not_a_server_error`, `response_schema_conformance`,
`content_type_conformance`, `ignored_auth`, `use_after_free` and `object_level_authorization`;
0 responses slower than 2 s; and, read from the HAR record of the run, 0 responses to A that
contain B's canary, B's e-mail or any of B's credentials.

Sizes: CI `--max-examples 15` per operation and `--max-time 150`; release
`--max-examples 1000 --max-time 3600` (BLACKBOX_SCALE=release). The seed is the run's
BLACKBOX_SEED, printed in the header. The auth routes' per-address limit is lifted for this
server (CAIRN_AUTH_RATE_LIMIT) so that the fuzzer reaches their handlers instead of a 429.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SEED, register, scaled

CANARY = "sc-canary-91b2"
CHECKS = ["not_a_server_error", "response_schema_conformance", "content_type_conformance", "ignored_auth",
          "use_after_free", "object_level_authorization"]


def test_schemathesis_finds_no_server_error_schema_violation_or_cross_user_read(cairn, tmp_path):
    server = cairn(env={"CAIRN_AUTH_RATE_LIMIT": "100000"})
    alice = register(server, email="alice-s1@example.com", password="alice password s1")
    bob = register(server, email=f"{CANARY}@example.com", password=f"{CANARY} password")
    for user, mark in ((alice, "alice-data"), (bob, CANARY)):
        folder = user.post("/api/bookmarks", {"title": f"{mark} folder", "isFolder": True, "parentId": "toolbar"}).json()
        user.post("/api/bookmarks", {"title": f"{mark} title", "url": f"https://{mark}.example/", "parentId": folder["id"],
                                     "notes": mark, "tags": [mark]})
        user.post("/api/records/notes", {"id": f"{mark}-note", "data": {"text": mark}})
        user.post("/api/profiles", {"name": f"{mark}-profile"})
        user.post("/items", {"type": "text", "content": mark, "sync_id": f"{mark}-item"})
        user.post("/api/workspaces", {"name": f"{mark} workspace"})
        user.post("/api/keys", {"name": f"{mark} key"})
    bob_secrets = {"canary": CANARY, "B token": bob.token, "B refresh token": bob.refresh_token}

    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"schemaVersion": "0.1.0", "auth": [
        {"name": "alice", "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {alice.token}"}]},
        {"name": "bob", "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {bob.token}"}]},
    ]}))
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[auth.wfc]\npath = "{auth}"\nuser = "alice"\npeers = ["alice", "bob"]\n')
    har = tmp_path / "run.har"
    junit = tmp_path / "junit.xml"
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config), "run",
        server.url + "/openapi.json",
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(scaled(15, 1000)),
        "--max-time", str(scaled(150, 3600)),
        "--max-response-time", "2",
        "--seed", str(SEED),
        # One worker: schemathesis's workers are threads, and CPython 3.11's ast.parse (which
        # hypothesis calls to describe a filter) can fail with "SystemError: AST constructor
        # recursion depth mismatch" when two threads parse at once (cpython gh-106905).
        "--workers", "1",
        "--request-timeout", "10",
        "--suppress-health-check", "all",
        "--continue-on-failure",
        "--output-sanitize", "false",
        "--report", "har,junit", "--report-har-path", str(har), "--report-junit-path", str(junit),
        "--no-color",
    ]
    # Run in the test's directory: schemathesis keeps a cache (.schemathesis/) in its working directory.
    result = subprocess.run(command, capture_output=True, text=True, timeout=scaled(600, 7200), cwd=tmp_path,
                            env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    output = result.stdout + result.stderr
    print(output[-6000:])
    assert result.returncode == 0, f"schemathesis found failures (exit {result.returncode}):\n{output[-12000:]}"

    entries = sorted(json.loads(har.read_text())["log"]["entries"], key=lambda e: e["startedDateTime"])
    assert len(entries) >= scaled(1500, 20000), f"only {len(entries)} requests were made"
    # schemathesis harvests values from earlier responses (its peer probes read as B) and sends
    # them back as A: a canary-bearing string that A itself sent before (a key or profile it named
    # so) is A's own data when it comes back. Anything else of B's in a response to A is a leak.
    canary_token = re.compile(r"[\w.@-]*" + CANARY + r"[\w.@-]*")
    sent_by_alice: set[str] = set()
    leaks = []
    as_alice = 0
    for entry in entries:
        request = entry["request"]
        headers = {h["name"].lower(): h["value"] for h in request["headers"]}
        if headers.get("authorization") != f"Bearer {alice.token}":
            continue
        as_alice += 1
        sent = request["url"] + ((request.get("postData") or {}).get("text") or "")
        sent_by_alice.update(canary_token.findall(sent))
        body = (entry["response"].get("content") or {}).get("text") or ""
        text = body + json.dumps(entry["response"].get("headers", []))
        unexplained = set(canary_token.findall(text)) - sent_by_alice
        if unexplained:
            leaks.append(f"{request['method']} {request['url']}: {sorted(unexplained)} in {body[:200]}")
        for name, secret in bob_secrets.items():
            if name != "canary" and secret in text:
                leaks.append(f"{request['method']} {request['url']}: {name} in {body[:200]}")
    assert as_alice >= len(entries) // 2, (as_alice, len(entries))
    assert not leaks, "responses to A carried B's data:\n" + "\n".join(leaks[:20])
    assert server.alive()
