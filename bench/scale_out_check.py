"""Correctness half of bench/scale-out.sh: two replicas on one PostgreSQL.

1. Writers on both replicas at once create people with unique names; every
   creation a replica acknowledged (201) must then exist exactly once, read
   back through the *other* replica, and nothing else may appear.
2. Imports staged on one replica and committed through the other become
   background jobs that either replica's workers may claim; each must run
   exactly once (one claim: `attempts` = 1, `done`) and import its rows once.

Usage: python3 bench/scale_out_check.py URL_A URL_B TOKEN ORG [WRITES_PER_WORKER]
Prints a summary; exits 1 when anything was lost, doubled or failed.
"""

import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

A, B, TOKEN, ORG = sys.argv[1:5]
PER_WORKER = int(sys.argv[5]) if len(sys.argv) > 5 else 100
WORKERS_PER_REPLICA = 4
IMPORTS_PER_REPLICA = 5
ROWS_PER_IMPORT = 20
RUN = "so" + uuid.uuid4().hex[:10]  # one search word shared by this run's people


def call(base, method, path, body=None, raw=None, ctype="application/json"):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("authorization", "Bearer " + TOKEN)
    if data is not None:
        req.add_header("content-type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, e.read()[:300]


def list_run_people(base, word):
    """Every person whose words include `word`, paging with the cursor."""
    found, cursor = [], None
    while True:
        path = f"/api/v1/orgs/{ORG}/people?q={word}&limit=200" + (f"&cursor={cursor}" if cursor else "")
        s, page = call(base, "GET", path)
        assert s == 200, (s, page)
        found += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return found


failures = []

# ---- 1. concurrent creations through both replicas
acked = []  # (id, given_name, replica)
errors = []
lock = threading.Lock()


def writer(base, label, w):
    for i in range(PER_WORKER):
        given = f"{label}w{w}n{i}"
        s, p = call(base, "POST", f"/api/v1/orgs/{ORG}/people", {"given_name": given, "family_name": RUN})
        with lock:
            if s == 201:
                acked.append((p["id"], given, label))
            else:
                errors.append((label, s, p))


t0 = time.time()
threads = [
    threading.Thread(target=writer, args=(base, label, w))
    for base, label in ((A, "a"), (B, "b"))
    for w in range(WORKERS_PER_REPLICA)
]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.time() - t0
print(f"creations: {len(acked)} acknowledged, {len(errors)} refused, {len(threads)} writers on 2 replicas, "
      f"{elapsed:.1f} s ({len(acked) / elapsed:.0f} writes/s)")
if errors:
    failures.append(f"{len(errors)} creations refused: {errors[:3]}")

# Read back through the replica that did NOT write each person.
stored = list_run_people(B, RUN) + []
by_id = {}
for p in stored:
    by_id.setdefault(p["id"], []).append(p)
names = [p["given_name"] for p in stored]
missing = [a for a in acked if a[0] not in by_id]
doubled_ids = [i for i, ps in by_id.items() if len(ps) > 1]
doubled_names = sorted({n for n in names if names.count(n) > 1})
unacknowledged = [p for p in stored if p["id"] not in {a[0] for a in acked}]
print(f"read back through replica b: {len(stored)} people; missing {len(missing)}, listed twice {len(doubled_ids)}, "
      f"same name twice {len(doubled_names)}, not acknowledged {len(unacknowledged)}")
cross_ok = 0
for pid, _, label in acked[:: max(1, len(acked) // 50)]:
    other = B if label == "a" else A
    s, _ = call(other, "GET", f"/api/v1/orgs/{ORG}/people/{pid}")
    cross_ok += s == 200
    if s != 200:
        failures.append(f"person {pid} written through {label} answers {s} on the other replica")
print(f"spot check: {cross_ok} people read at once from the other replica")
if missing:
    failures.append(f"{len(missing)} acknowledged creations are missing: {missing[:3]}")
if doubled_ids or doubled_names:
    failures.append(f"served twice: ids {doubled_ids[:3]}, names {doubled_names[:3]}")
if unacknowledged:
    failures.append(f"{len(unacknowledged)} people nobody acknowledged: {unacknowledged[:3]}")

# ---- 2. background jobs enqueued through both replicas run exactly once
s, before = call(A, "GET", "/api/v1/admin/jobs?limit=500")
assert s == 200, (s, before)
known = {j["id"] for j in before}
imports = []  # (import id, word)
for stage, commit, label in ((A, B, "a"), (B, A, "b")):
    for k in range(IMPORTS_PER_REPLICA):
        word = f"{RUN}i{label}{k}"
        rows = "\n".join(f"{word}r{r};{word}" for r in range(ROWS_PER_IMPORT))
        boundary = "----shrooms" + uuid.uuid4().hex
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\npeople\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{word}.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\nPrénom;Nom\n{rows}\n\r\n--{boundary}--\r\n"
        ).encode()
        s, imp = call(stage, "POST", f"/api/v1/orgs/{ORG}/imports", raw=body,
                      ctype=f"multipart/form-data; boundary={boundary}")
        assert s in (200, 201) and imp["error_count"] == 0, (s, imp)
        s, r = call(commit, "POST", f"/api/v1/orgs/{ORG}/imports/{imp['id']}/commit")
        assert s in (200, 202, 204), (s, r)
        imports.append((imp["id"], word))
deadline = time.time() + 120
pending = {i for i, _ in imports}
while pending and time.time() < deadline:
    for iid in list(pending):
        s, v = call(A if len(pending) % 2 else B, "GET", f"/api/v1/orgs/{ORG}/imports/{iid}")
        if v["status"] in ("done", "failed"):
            pending.discard(iid)
            if v["status"] != "done" or v["rows_done"] != ROWS_PER_IMPORT:
                failures.append(f"import {iid}: {v['status']}, {v['rows_done']} rows, {v.get('message')}")
    time.sleep(0.2)
if pending:
    failures.append(f"{len(pending)} imports did not finish within 120 s")
counts = [len(list_run_people(A, word)) for _, word in imports]
s, after = call(A, "GET", "/api/v1/admin/jobs?limit=500")
jobs = [j for j in after if j["id"] not in known and j["name"] == "core.import.run"]
claimed_twice = [j for j in jobs if j["attempts"] != 1 or j["status"] != "done"]
print(f"jobs: {len(imports)} imports staged on one replica and committed through the other; "
      f"{len(jobs)} import jobs, {sum(j['status'] == 'done' for j in jobs)} done, "
      f"{len(claimed_twice)} claimed more than once or not done; rows per import {sorted(set(counts))}")
if len(jobs) != len(imports):
    failures.append(f"{len(jobs)} import jobs for {len(imports)} imports")
if claimed_twice:
    failures.append(f"jobs claimed more than once or not done: {claimed_twice[:3]}")
if any(c != ROWS_PER_IMPORT for c in counts):
    failures.append(f"imported rows per import: {counts} (expected {ROWS_PER_IMPORT} each)")

if failures:
    print("FAILED:\n- " + "\n- ".join(failures))
    sys.exit(1)
print("correct: nothing lost, nothing served twice, every job ran once")
