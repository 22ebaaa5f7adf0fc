#!/usr/bin/env python3
"""Drives SQLite connections in a separate process for sqlite-ops tests.

Python's sqlite3 module links the system SQLite (a different build from the bundled one in
rusqlite), and a separate process keeps the application's POSIX locks apart from the monitor's.

Protocol: one command per line on stdin, one reply line on stdout ("ok [values]" or "err msg").
  open NAME PATH [PRAGMA=VALUE ...]   open a connection (autocommit), apply pragmas in order
  exec NAME SQL...                    run one statement, reply with the first row if any
  commit NAME N                       N write transactions, each one INSERT into t
  begin_write NAME                    BEGIN IMMEDIATE and one INSERT, left open
  begin_read NAME                     BEGIN and a SELECT: pins a snapshot until `end`
  end NAME                            COMMIT whatever is open
  duty NAME HOLD_MS IDLE_MS TOTAL_MS  write transactions holding the write lock HOLD_MS each,
                                      IDLE_MS apart, for TOTAL_MS; reply "count least most":
                                      the seconds the lock was held, at least and at most
  checkpoint NAME MODE                PRAGMA wal_checkpoint(MODE), reply "busy log checkpointed"
  close NAME                          close the connection
  drop_locks PATH                     open and close a descriptor of PATH: POSIX drops every
                                      lock this process holds on it, SQLite's included (a bug
                                      applications make; the monitor must not miscount it)
  pid                                 this process's pid
  quit
"""
import sqlite3

from line_protocol import serve

conns = {}


def handle(words):
    cmd = words[0]
    if cmd == "pid":
        import os
        return str(os.getpid())
    if cmd == "version":
        return sqlite3.sqlite_version
    if cmd == "drop_locks":
        import os
        os.close(os.open(words[1], os.O_RDONLY))
        return ""
    name = words[1]
    if cmd == "open":
        c = sqlite3.connect(words[2], isolation_level=None, timeout=10)
        for pragma in words[3:]:
            key, _, value = pragma.partition("=")
            c.execute(f"PRAGMA {key}={value}").fetchall()
        c.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
        conns[name] = c
        return ""
    c = conns[name]
    if cmd == "exec":
        row = c.execute(" ".join(words[2:])).fetchone()
        return " ".join(str(v) for v in row) if row else ""
    if cmd == "commit":
        for _ in range(int(words[2])):
            c.execute("INSERT INTO t(v) VALUES (hex(randomblob(16)))")
        return ""
    if cmd == "begin_write":
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t(v) VALUES ('held')")
        return ""
    if cmd == "begin_read":
        c.execute("BEGIN")
        return str(c.execute("SELECT count(*) FROM t").fetchone()[0])
    if cmd == "end":
        c.execute("COMMIT")
        return ""
    if cmd == "duty":
        import time
        hold, idle, total = (int(w) / 1000 for w in words[2:5])
        end, n, least, most = time.monotonic() + total, 0, 0.0, 0.0
        while time.monotonic() < end:
            before = time.monotonic()
            c.execute("BEGIN IMMEDIATE")
            taken = time.monotonic()
            c.execute("INSERT INTO t(v) VALUES ('duty')")
            time.sleep(hold)
            releasing = time.monotonic()
            c.execute("COMMIT")
            released = time.monotonic()
            # The lock is taken inside BEGIN and released inside COMMIT: held at least from
            # BEGIN's return to COMMIT's call, at most from BEGIN's call to COMMIT's return.
            least += releasing - taken
            most += released - before
            n += 1
            time.sleep(idle)
        return f"{n} {least:.6f} {most:.6f}"
    if cmd == "checkpoint":
        row = c.execute(f"PRAGMA wal_checkpoint({words[2]})").fetchone()
        return " ".join(str(v) for v in row)
    if cmd == "close":
        conns.pop(name).close()
        return ""
    raise ValueError(f"unknown command {cmd}")


serve(handle)
