#!/usr/bin/env python3
"""An application built the way the production guide says, for sqlite-ops tests of the
guide's stack: one write connection and a pool of four read-only connections, each with the
guide's PRAGMAs, in its own process with Python's sqlite3 (the system SQLite, another build
from sqlite-ops's bundled one).

Usage: guide_app.py DB. Commands on stdin, one per line; each is answered by one line on
stdout, "ok [values]" or "err message":
  rate N            commit N write transactions a second from now on (0: idle)
  hold_read         reader 0 begins a read transaction and keeps it open until release_read
  release_read      ends it
  hold_write MS     the writer begins a write transaction and holds the lock MS milliseconds
                    (answered once it holds the lock)
  commits           write transactions committed so far (the application's own count)
  pid               this process's pid
  quit
"""
import os
import queue
import sqlite3
import sys
import threading
import time

from line_protocol import reply, serve

PRAGMAS = [
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "busy_timeout=5000",
    "foreign_keys=ON",
    "cache_size=-20000",
    "mmap_size=268435456",
    "wal_autocheckpoint=1000",
    "temp_store=MEMORY",
]
READERS = 4

db = sys.argv[1]
lock = threading.Lock()
state = {"rate": 0.0, "commits": 0, "stop": False}
writer_jobs = queue.Queue()


def connect(read_only):
    if read_only:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None,
                            check_same_thread=False, timeout=5)
    else:
        c = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=5)
    for p in PRAGMAS:
        if read_only and p.startswith("journal_mode"):
            continue
        c.execute(f"PRAGMA {p}").fetchall()
    return c


writer = connect(False)
writer.execute("CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, at REAL, body TEXT)")
readers = [connect(True) for _ in range(READERS)]


def write_one():
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO events(at, body) VALUES (?, hex(randomblob(48)))", (time.time(),))
    writer.execute("COMMIT")
    with lock:
        state["commits"] += 1


def writer_loop():
    next_at = time.monotonic()
    while not state["stop"]:
        try:
            job = writer_jobs.get_nowait()
        except queue.Empty:
            job = None
        if job is not None:
            job()
            next_at = time.monotonic()
            continue
        rate = state["rate"]
        if rate <= 0:
            time.sleep(0.01)
            next_at = time.monotonic()
            continue
        now = time.monotonic()
        if now < next_at:
            time.sleep(min(next_at - now, 0.01))
            continue
        write_one()
        # Catch up after a stall, but never by more than a second's worth.
        next_at = max(next_at + 1.0 / rate, now - 1.0)


held = threading.Event()


def reader_loop(i):
    c = readers[i]
    while not state["stop"]:
        if i == 0 and held.is_set():
            time.sleep(0.01)
            continue
        c.execute("SELECT max(id), count(*) FROM events WHERE id > (SELECT max(id) FROM events) - 100").fetchall()
        time.sleep(0.02)


def hold_write(ms, answered):
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO events(at, body) VALUES (?, 'held')", (time.time(),))
    answered.put("ok")
    time.sleep(ms / 1000)
    writer.execute("COMMIT")
    with lock:
        state["commits"] += 1


def handle(words):
    cmd = words[0]
    if cmd == "rate":
        state["rate"] = float(words[1])
        return ""
    if cmd == "hold_read":
        held.set()
        time.sleep(0.05)  # let reader 0 finish its current statement
        readers[0].execute("BEGIN")
        readers[0].execute("SELECT count(*) FROM events").fetchall()
        return ""
    if cmd == "release_read":
        readers[0].execute("COMMIT")
        held.clear()
        return ""
    if cmd == "hold_write":
        answered = queue.Queue()
        writer_jobs.put(lambda: hold_write(int(words[1]), answered))
        return answered.get(timeout=30) and ""
    if cmd == "commits":
        with lock:
            return str(state["commits"])
    if cmd == "pid":
        return str(os.getpid())
    raise ValueError(f"unknown command {cmd}")


threads = [threading.Thread(target=writer_loop, daemon=True)]
threads += [threading.Thread(target=reader_loop, args=(i,), daemon=True) for i in range(READERS)]
for t in threads:
    t.start()
reply("ready")
serve(handle)
state["stop"] = True
for t in threads:
    t.join(timeout=5)
