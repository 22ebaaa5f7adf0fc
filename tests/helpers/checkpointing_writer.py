"""An application writing to a WAL database and checkpointing it, for migrate-check's test.

Usage: checkpointing_writer.py DB STOP_FILE
Commits a small insert every 2 ms; after every 10 commits runs PRAGMA wal_checkpoint(PASSIVE)
and prints "ckpt <unix time> <busy> <wal frames> <frames checkpointed> <wal bytes>". A
checkpoint is complete when every frame of the WAL was copied back, which a reader holding an
old snapshot prevents. Stops when STOP_FILE exists.
"""
import os
import sqlite3
import sys
import time

db, stop = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA wal_autocheckpoint=0")  # ours below, so each is observed
conn.execute("CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, at REAL, body TEXT)")
print("ready", flush=True)
n = 0
while not os.path.exists(stop):
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO events(at, body) VALUES (?, ?)", (time.time(), "x" * 200))
    conn.execute("COMMIT")
    n += 1
    if n % 10 == 0:
        busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        size = os.path.getsize(db + "-wal")
        print(f"ckpt {time.time():.6f} {busy} {log} {done} {size}", flush=True)
    time.sleep(0.002)
