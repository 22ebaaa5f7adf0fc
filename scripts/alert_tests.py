#!/usr/bin/env python3
"""Writes alerts/sqlite-ops.rules.test.yml: promtool unit tests of every alert in
alerts/sqlite-ops.rules.yml, each just above and at (or just below) its threshold, and around its
`for`.

The expected alerts and their texts are written out here, literally, for the inputs chosen:
nothing is rendered from the rules' own templates, so a change to a threshold, a `for`, a label
or a sentence fails `promtool test rules` until this file says the same. Run after changing the
tests: `python3 scripts/alert_tests.py`; tests/alerts.rs runs promtool on the result and checks
that every alert has a case above and a case at its threshold.
"""
import pathlib
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "alerts" / "sqlite-ops.rules.test.yml"
RUNBOOK = "https://github.com/sqlite-ops/sqlite-ops/blob/main/docs/runbooks.md#"


# Every series as Prometheus scrapes it from one host: with job and instance.
HOST = 'job="sqlite-ops",instance="h1:9934"'

# The default thresholds, as the daemon exports them (sqlite_threshold without db), written out
# here: every case's inputs carry its alert's, as a daemon with the default config would.
THRESHOLDS = {
    "SQLiteDatabaseDown": {"critical": 1},
    "SQLiteWriteRateHigh": {"warning": 500},
    "SQLiteDatabaseLarge": {"info": 50e9, "warning": 100e9},
    "SQLiteTeamOutgrown": {"info": 3},
    "SQLiteMultiRegion": {"info": 1},
    "SQLiteWriterSaturated": {"warning": 0.5},
    "SQLiteReplicationLag": {"warning": 10, "critical": 60},
    "SQLiteReplicaUnreachable": {"warning": 1},
    "SQLiteWalLarge": {"warning": 1e9},
    "SQLiteCheckpointStarved": {"warning": 300},
    "SQLiteSnapshotPinned": {"warning": 300},
    "SQLiteFilesystemLowSpace": {"warning": 0.1, "critical": 0.05},
    "SQLiteLongWriteTransaction": {"warning": 5},
    "SQLiteMultipleWriters": {"warning": 1},
    "SQLiteRestoreDrillFailed": {"critical": 1},
    "SQLiteReplicaChainBroken": {"critical": 1},
    "SQLiteLitestreamLocalStateGrowing": {"warning": 100e6},
    "SQLiteLitestreamCompactionStalled": {"warning": 3},
    "SQLiteLitestreamSnapshotStale": {"warning": 2},
    "SQLiteRestoreDrillStale": {"warning": 2},
    "SQLiteRestoreSlow": {"warning": 3600},
}


# Each rule's `for:` in minutes, written out: a case checks the minute before it (quiet) and the
# minute it is reached (firing). 30s rules fire at the first evaluation after 30 s, 1m here.
FOR = {
    "SQLiteDatabaseDown": 1, "SQLiteWriteRateHigh": 10, "SQLiteDatabaseLarge": 15,
    "SQLiteTeamOutgrown": 15, "SQLiteMultiRegion": 15, "SQLiteWriterSaturated": 10,
    "SQLiteReplicationLag": 1, "SQLiteReplicaUnreachable": 1, "SQLiteWalLarge": 5,
    "SQLiteCheckpointStarved": 1, "SQLiteSnapshotPinned": 1, "SQLiteFilesystemLowSpace": 10,
    "SQLiteLongWriteTransaction": 1, "SQLiteMultipleWriters": 1, "SQLiteRestoreDrillFailed": 1,
    "SQLiteReplicaChainBroken": 1, "SQLiteLitestreamLocalStateGrowing": 10,
    "SQLiteLitestreamCompactionStalled": 10, "SQLiteLitestreamSnapshotStale": 10,
    "SQLiteRestoreDrillStale": 5, "SQLiteRestoreSlow": 15,
    "SQLiteOpsDown": 2, "SQLiteOpsFallingBehind": 5, "SQLiteOpsOutOfDescriptors": 1,
    "SQLiteOpsHostSilent": 1,
}


def after_for(name, alerts, start=0):
    """Quiet the minute before the rule's `for` is reached, `alerts` once it is; the condition
    holds from minute `start`."""
    return [(start + FOR[name] - 1, []), (start + FOR[name], alerts)]


def quiet(name, start=0):
    """Nothing fires even once the rule's `for` has passed (counted from minute `start`)."""
    return [(start + FOR[name] + 1, [])]


def series(metric, values, labels='{db="app"}'):
    """A series of host h1 (labels gain job and instance unless they name their own)."""
    if "instance=" not in labels:
        labels = "{" + HOST + "," + labels[1:]
    return {"series": metric + labels, "values": values}


def thresholds(name, host=HOST):
    return [{"series": f'sqlite_threshold{{alert="{name}",severity="{sev}",{host}}}', "values": f"{v}x30"}
            for sev, v in THRESHOLDS[name].items()]


def alert(name, severity, summary, description, **labels):
    return {
        "exp_labels": {"severity": severity, "db": "app", "job": "sqlite-ops", "instance": "h1:9934", **labels},
        "exp_annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": RUNBOOK + name.lower(),
        },
    }


TESTS = []


def case(name, title, inputs, checks):
    """checks: [(eval minutes, [expected alerts])]; an empty list expects no alert."""
    TESTS.append({
        "name": f"{name} {title}",
        "interval": "1m",
        "input_series": inputs + thresholds(name),
        "alert_rule_test": [
            {"eval_time": f"{m}m", "alertname": name, "exp_alerts": exp} for m, exp in checks
        ],
    })


# SQLiteWriteRateHigh: rate(...[5m]) > 500 for 10m. rate() ramps up over the first 5 minutes
# of a counter that starts at 0 (4/5 of the slope at 4m), so the condition holds from 5m: pending
# from 5m, firing from 15m.
N = "SQLiteWriteRateHigh"
case(N, "fires just above 500/s, not before its for", [series("sqlite_write_transactions_total", "0+30030x30")], after_for(N, start=5, alerts=[alert(N, "warning",
                "SQLite database app on h1:9934 sustains more write transactions than one writer should: plan the move to Postgres",
                "app on h1:9934 commits 500.5/s write transactions (rate over 5m), above 500.0/s for 10m. SQLite serializes writers; at this rate lock contention is measurable and growth has no headroom.")]))
case(N, "stays quiet just below 500/s", [series("sqlite_write_transactions_total", "0+29970x30")], quiet(N, start=5))

N = "SQLiteWriterSaturated"
case(N, "fires just above 50%, not before its for", [series("sqlite_write_lock_held_seconds_total", "0+30.6x30")], after_for(N, start=5, alerts=[alert(N, "warning",
                "The write lock of app on h1:9934 is held 51% of the time: writers queue",
                "SQLite's write lock on app on h1:9934 was held 51% of the time over 5m, above 50% for 10m. Writers wait on each other; latency grows before throughput does.")]))
case(N, "stays quiet just below 50%", [series("sqlite_write_lock_held_seconds_total", "0+29.4x30")], quiet(N, start=5))

N = "SQLiteDatabaseLarge"
LARGE = "Backups, restores, VACUUM and schema changes grow with the file; past this size the production guide moves to Postgres."
case(N, "fires at info just above 50 GB", [series("sqlite_database_size_bytes", "50.1e9x30")], after_for(N, [alert(N, "info", "SQLite database app on h1:9934 is larger than 50GB: plan the move to Postgres",
               f"The database file of app on h1:9934 is 50.1GB, above 50GB. {LARGE}")]))
case(N, "stays quiet at exactly 50 GB", [series("sqlite_database_size_bytes", "50e9x30")], quiet(N))
case(N, "fires at info only at exactly 100 GB", [series("sqlite_database_size_bytes", "100e9x30")], after_for(N, [alert(N, "info", "SQLite database app on h1:9934 is larger than 50GB: plan the move to Postgres",
               f"The database file of app on h1:9934 is 100GB, above 50GB. {LARGE}")]))
case(N, "fires at both levels just above 100 GB", [series("sqlite_database_size_bytes", "100.1e9x30")], after_for(N, [alert(N, "info", "SQLite database app on h1:9934 is larger than 50GB: plan the move to Postgres",
               f"The database file of app on h1:9934 is 100.1GB, above 50GB. {LARGE}"),
         alert(N, "warning", "SQLite database app on h1:9934 is larger than 100GB: plan the move to Postgres",
               f"The database file of app on h1:9934 is 100.1GB, above 100GB. {LARGE}")]))

# Two hosts with a database of the same name: each is judged by its own host's thresholds (h2
# exports a level of its own for its app), and the alert names its host.
H2 = 'job="sqlite-ops",instance="h2:9934"'
case(N, "judges each host's app by that host's threshold", [
    series("sqlite_database_size_bytes", "45e9x30"),
    series("sqlite_database_size_bytes", "45e9x30", "{db=\"app\"," + H2 + "}"),
    *thresholds(N, H2),
    {"series": 'sqlite_threshold{alert="SQLiteDatabaseLarge",severity="info",db="app",' + H2 + '}', "values": "40e9x30"}], after_for(N, [alert(N, "info", "SQLite database app on h2:9934 is larger than 40GB: plan the move to Postgres",
               f"The database file of app on h2:9934 is 45GB, above 40GB. {LARGE}", instance="h2:9934")]))
case(N, "turned off for one database by its host", [
    series("sqlite_database_size_bytes", "60e9x30"),
    {"series": 'sqlite_threshold{alert="SQLiteDatabaseLarge",severity="info",db="app",' + HOST + '}', "values": "+Inf+0x30"}], quiet(N))

N = "SQLiteTeamOutgrown"
case(N, "fires at 4 engineers", [series("sqlite_declared_backend_engineers", "4x30")], after_for(N, [alert(N, "info", "More backend engineers work on app on h1:9934 than one SQLite writer suits",
               "The config declares 4 backend engineers for app on h1:9934, above 3. Several teams shipping migrations and write paths against one single-writer database is where the production guide moves to Postgres.")]))
case(N, "stays quiet at 3 engineers", [series("sqlite_declared_backend_engineers", "3x30")], quiet(N))

N = "SQLiteMultiRegion"
case(N, "fires at 2 regions", [series("sqlite_declared_regions", "2x30")], after_for(N, [alert(N, "info", "app on h1:9934 is declared to serve several regions; SQLite is single-node",
               "The config declares 2 regions for app on h1:9934, above 1. SQLite has one writer on one machine: writes from other regions cross the network, and failover is a restore.")]))
case(N, "stays quiet at 1 region", [series("sqlite_declared_regions", "1x30")], quiet(N))

N = "SQLiteDatabaseDown"
case(N, "fires after 1m down, not before", [series("sqlite_up", "0x30")], after_for(N, [alert(N, "critical", "SQLite database app on h1:9934 cannot be read",
               "sqlite-ops has not been able to read the database file or header of app on h1:9934 for 1m. The file, its directory or its permissions changed, or it is not an SQLite database. The error is on /api/v1/status and counted in sqlite_ops_poll_errors_total.")]))
case(N, "stays quiet while up", [series("sqlite_up", "1x30")], quiet(N))

N = "SQLiteReplicationLag"
LAG = "Writes go on and the replica does not advance: Litestream stopped, or cannot reach its replica. A restore now would lose those commits."
S3 = '{db="app",replica="s3"}'
case(N, "fires at warning just above 10s", [series("sqlite_litestream_replication_lag_seconds", "10.5x30", S3)], after_for(N, [alert(N, "warning", "Litestream replication of app on h1:9934 is 10.5s behind",
               f"The oldest commit to app on h1:9934 that its Litestream replica does not hold has waited 10.5s, above 10s. {LAG}")]))
case(N, "stays quiet at exactly 10s", [series("sqlite_litestream_replication_lag_seconds", "10x30", S3)], quiet(N))
case(N, "fires at warning only at exactly 1m", [series("sqlite_litestream_replication_lag_seconds", "60x30", S3)], after_for(N, [alert(N, "warning", "Litestream replication of app on h1:9934 is 1m 0s behind",
               f"The oldest commit to app on h1:9934 that its Litestream replica does not hold has waited 1m 0s, above 10s. {LAG}")]))
case(N, "fires at both levels at 61s, the worst replica deciding",
     [series("sqlite_litestream_replication_lag_seconds", "61x30", S3),
      series("sqlite_litestream_replication_lag_seconds", "1x30", '{db="app",replica="file"}')], after_for(N, [alert(N, "warning", "Litestream replication of app on h1:9934 is 1m 1s behind",
               f"The oldest commit to app on h1:9934 that its Litestream replica does not hold has waited 1m 1s, above 10s. {LAG}"),
         alert(N, "critical", "Litestream replication of app on h1:9934 is 1m 1s behind",
               f"The oldest commit to app on h1:9934 that its Litestream replica does not hold has waited 1m 1s, above 1m 0s. {LAG}")]))

N = "SQLiteReplicaUnreachable"
case(N, "fires after 1m with one replica of two down, not before",
     [series("sqlite_litestream_up", "0x30", S3), series("sqlite_litestream_up", "1x30", '{db="app",replica="file"}')], after_for(N, [alert(N, "warning", "A Litestream replica of app on h1:9934 cannot be read, or is empty",
               "sqlite-ops could not read a Litestream replica of app on h1:9934 for 1m, or found nothing replicated there: the bucket or directory is unreachable, the credentials are wrong, or the replica's path is not where Litestream writes. Replication lag cannot be measured meanwhile.")]))
case(N, "stays quiet with every replica up", [series("sqlite_litestream_up", "1x30", S3)], quiet(N))

N = "SQLiteWalLarge"
case(N, "fires one byte above 1 GB", [series("sqlite_wal_size_bytes", "1000000001x30")], after_for(N, [alert(N, "warning", "The WAL of app on h1:9934 has grown past 1GB",
               "The -wal file of app on h1:9934 is 1GB, above 1GB. Checkpoints are not resetting it: a long reader, a checkpoint-starved writer or wal_autocheckpoint=0. Reads slow down as the WAL grows.")]))
case(N, "stays quiet at exactly 1 GB", [series("sqlite_wal_size_bytes", "1000000000x30")], quiet(N))

N = "SQLiteCheckpointStarved"
case(N, "fires one second above 5m", [series("sqlite_checkpoint_starved_seconds", "301x30")], after_for(N, [alert(N, "warning", "Checkpoints of app on h1:9934 have made no progress for 5m 1s while writes go on",
               "More frames than wal_autocheckpoint have waited in the WAL of app on h1:9934 for 5m 1s without a checkpoint making progress while writes went on, above 5m 0s. The WAL grows without bound until one can: a reader pins an old snapshot, the checkpointer stopped (Litestream frozen, wal_autocheckpoint=0), or it cannot keep up. Frames waiting on an idle database are not counted.")]))
case(N, "stays quiet at exactly 5m", [series("sqlite_checkpoint_starved_seconds", "300x30")], quiet(N))

N = "SQLiteSnapshotPinned"
case(N, "fires one second above 5m, naming the holder and how long it has pinned", [
    series("sqlite_snapshot_pinned_seconds", "301x30", '{db="app",holder="litestream"}'),
    series("sqlite_oldest_snapshot_age_seconds", "720x30")], after_for(N, [alert(N, "warning", "A reader of app on h1:9934 (litestream) has pinned its snapshot for 12m 0s, holding a due checkpoint back for 5m 1s",
               "A read transaction of a process with role litestream has kept its snapshot of app on h1:9934 for 12m 0s while newer commits came, and has stopped a due checkpoint from copying past it for 5m 1s while writes went on, above 5m 0s: the WAL grows without bound until it ends. The second clock starts when a checkpoint falls due (more frames waiting than wal_autocheckpoint), which at a few commits a second takes minutes. Litestream's own guard on an idle or healthy database is not counted; a frozen Litestream is.",
               )]))
case(N, "stays quiet at exactly 5m", [series("sqlite_snapshot_pinned_seconds", "300x30", '{db="app",holder="application"}')], quiet(N))

N = "SQLiteFilesystemLowSpace"
FULL = "A full disk fails every write, and a checkpoint or VACUUM needs room to run. One alert per filesystem, however many databases it holds."


def disk(free, dbs=("app",), mount="/data"):
    """Every database of `dbs` on the filesystem mounted at `mount`, with `free` of 100 bytes."""
    out = []
    for db in dbs:
        labels = f'{{db="{db}",mountpoint="{mount}"}}'
        out += [series("sqlite_filesystem_free_bytes", f"{free}x30", labels),
                series("sqlite_filesystem_size_bytes", "100x30", labels)]
    return out


def low(severity, free, below, mount="/data"):
    """The disk alert: about the filesystem (mountpoint), no database."""
    a = alert(N, severity, f"The filesystem at {mount} on h1:9934 has {free} free",
              f"The filesystem at {mount} on h1:9934, which holds watched SQLite databases, has {free} of its space free, below {below}. {FULL}",
              mountpoint=mount)
    del a["exp_labels"]["db"]
    return a


case(N, "fires at warning just below 10% free", disk(9.9), after_for(N, [low("warning", "9.9%", "10%")]))
case(N, "stays quiet at exactly 10% free", disk(10), quiet(N))
case(N, "fires at warning only at exactly 5% free", disk(5), after_for(N, [low("warning", "5%", "10%")]))
case(N, "fires at both levels just below 5% free", disk(4.9), after_for(N, [low("warning", "4.9%", "10%"), low("critical", "4.9%", "5%")]))
# Three tenants on one volume and one on another: one alert per filesystem, not per database.
case(N, "fires once per filesystem, not once per database",
     disk(8, ("t1", "t2", "t3")) + disk(50, ("solo",), "/other"),
     after_for(N, [low("warning", "8%", "10%")]))

N = "SQLiteLongWriteTransaction"
case(N, "fires just above 5s", [series("sqlite_write_lock_longest_hold_seconds", "5.1x30")], after_for(N, [alert(N, "warning", "A write transaction on app on h1:9934 held the lock for 5.1s",
               "One process held the write lock of app on h1:9934 for 5.1s within the last minute, above 5s (the guide's busy_timeout): every other writer got SQLITE_BUSY meanwhile. Keep write transactions short and do no I/O inside them.")]))
case(N, "stays quiet at exactly 5s", [series("sqlite_write_lock_longest_hold_seconds", "5x30")], quiet(N))

N = "SQLiteMultipleWriters"
case(N, "fires at 2 writers", [series("sqlite_writer_processes", "2x30")], after_for(N, [alert(N, "warning", "2 application processes wrote to app on h1:9934 within a minute",
               "2 distinct application processes held the write lock of app on h1:9934 within the last minute, above 1 (Litestream and configured replicators are not counted). The guide routes every mutation through one write connection; several writers contend and get SQLITE_BUSY.")]))
case(N, "stays quiet at 1 writer", [series("sqlite_writer_processes", "1x30")], quiet(N))

FILE = '{db="app",replica="file"}'
N = "SQLiteRestoreDrillFailed"
case(N, "fires when the last drill failed", [series("sqlite_restore_drill_success", "0x30", FILE)], after_for(N, [alert(N, "critical", "The last restore drill of app on h1:9934 failed: its backup does not restore",
               "sqlite-ops restored app on h1:9934 from its Litestream replica with litestream restore and the copy failed: Litestream's own error, the integrity check, or rows missing against the live database (the reason is on /api/v1/status and in the log). A restore in a disaster would fail the same way.")]))
case(N, "stays quiet when it succeeded", [series("sqlite_restore_drill_success", "1x30", FILE)], quiet(N))

N = "SQLiteReplicaChainBroken"
case(N, "fires when one replica's chain has a gap", [series("sqlite_litestream_chain_intact", "0x30", S3),
                                                   series("sqlite_litestream_chain_intact", "1x30", FILE)],
     after_for(N, [alert(N, "critical", "The Litestream replica of app on h1:9934 would not restore: its chain of LTX files is broken",
                         "A restore of app on h1:9934 from its Litestream replica would stop partway: a file of its chain is missing or damaged (the daemon's /api/v1/status names it). litestream restore refuses such a replica (\"non-contiguous ltx files\" from 0.5, \"missing WAL index\" from 0.3, or a file it cannot decode), so the backup does not restore until the file is back whole or a newer snapshot starts past it. Found from the replica's listing and its files' headers, between restore drills.")]))
case(N, "stays quiet while every chain is whole", [series("sqlite_litestream_chain_intact", "1x30", S3)], quiet(N))

N = "SQLiteLitestreamLocalStateGrowing"
DB = '{db="app"}'
case(N, "fires at 150 MB kept past their time", [series("sqlite_litestream_local_overdue_bytes", "150e6x30", DB)],
     after_for(N, [alert(N, "warning", "Litestream keeps 150MB on local disk for app on h1:9934 that it should have removed",
                         "Litestream's local state of app on h1:9934 holds 150MB of change files it should have removed, above 100MB: it went on writing newer ones for more than twice l0-retention + the level-1 interval + the check interval after they could go. While this lasts, the local state grows with every commit until the disk is full (Litestream #784, #1104, #1197): uploads fail, compaction stalls, or retention does not run.")]))
case(N, "stays quiet at exactly 100 MB, and for a large local state kept in time",
     [series("sqlite_litestream_local_overdue_bytes", "100e6x30", DB), series("sqlite_litestream_local_bytes", "5e9x30", DB)], quiet(N))

N = "SQLiteLitestreamCompactionStalled"
L1, L2 = '{db="app",replica="file",level="1"}', '{db="app",replica="file",level="2"}'
case(N, "fires when level 2 has waited 4 of its intervals",
     [series("sqlite_litestream_compaction_lag_seconds", "1200x30", L2), series("sqlite_litestream_compaction_interval_seconds", "300x30", L2),
      series("sqlite_litestream_compaction_lag_seconds", "20x30", L1), series("sqlite_litestream_compaction_interval_seconds", "30x30", L1)],
     after_for(N, [alert(N, "warning", "Litestream has not compacted level 2 of the replica of app on h1:9934 for 4 of its intervals",
                         "The oldest change that level 2 of the Litestream replica of app on h1:9934 lacks has waited 4 of that level's intervals in the level below, above 3: compaction has stalled (Litestream's log says \"compaction failed\"). Restores read ever more small files, and level-0 files, kept until level 1 holds them, pile up in the replica and on local disk.")]))
case(N, "stays quiet at 3 intervals, however long they are",
     [series("sqlite_litestream_compaction_lag_seconds", "10800x30", '{db="app",replica="file",level="3"}'),
      series("sqlite_litestream_compaction_interval_seconds", "3600x30", '{db="app",replica="file",level="3"}')], quiet(N))

N = "SQLiteLitestreamSnapshotStale"
case(N, "fires when the oldest change no snapshot holds has waited 3 days of a daily snapshot",
     [series("sqlite_litestream_snapshot_lag_seconds", "259200x30", FILE), series("sqlite_litestream_snapshot_interval_seconds", "86400x30", FILE)],
     after_for(N, [alert(N, "warning", "The newest Litestream snapshot of app on h1:9934 lacks changes 3 snapshot intervals old",
                         "The oldest change to app on h1:9934 that no Litestream snapshot holds has waited 3 snapshot intervals in its replica, above 2: snapshots are not being written (Litestream's log says \"compaction failed\" at level 9). A restore replays every file since the newest snapshot, slower the longer this lasts, and retention keeps everything since.")]))
case(N, "stays quiet at one interval (a change just after a snapshot waits for the next)",
     [series("sqlite_litestream_snapshot_lag_seconds", "86400x30", FILE), series("sqlite_litestream_snapshot_interval_seconds", "86400x30", FILE)], quiet(N))

N = "SQLiteRestoreDrillStale"
case(N, "fires at 3 daily intervals without a success",
     [series("sqlite_restore_drill_stale_seconds", "259200x30", FILE), series("sqlite_restore_drill_interval_seconds", "86400x30", FILE)], after_for(N, [alert(N, "warning", "No restore drill of app on h1:9934 has succeeded for 3 drill intervals",
               "No restore drill of app on h1:9934 has succeeded for 3 of its intervals, above 2: drills fail, or are refused (no room in the scratch folder, no usable Litestream binary; sqlite_restore_drill_skipped and the log say why). Nobody knows whether the backup restores.")]))
case(N, "stays quiet at exactly 2 intervals",
     [series("sqlite_restore_drill_stale_seconds", "172800x30", FILE), series("sqlite_restore_drill_interval_seconds", "86400x30", FILE)], quiet(N))

N = "SQLiteRestoreSlow"
case(N, "fires when a successful restore took one second over 1h",
     [series("sqlite_restore_drill_duration_seconds", "3601x30", FILE), series("sqlite_restore_drill_success", "1x30", FILE)], after_for(N, [alert(N, "warning", "Restoring app on h1:9934 from its backup takes 1h 0m 1s: plan the move to Postgres",
               "The last successful restore drill of app on h1:9934 took 1h 0m 1s, restore and checks, above 1h 0m 0s. This is the production guide's real reason behind its size limit: a restore this long is an outage this long.")]))
case(N, "stays quiet at exactly 1h, and for a failed drill however long",
     [series("sqlite_restore_drill_duration_seconds", "3600x30", FILE), series("sqlite_restore_drill_success", "1x30", FILE),
      series("sqlite_restore_drill_duration_seconds", "7200x30", '{db="other",replica="file"}'), series("sqlite_restore_drill_success", "0x30", '{db="other",replica="file"}')], quiet(N))



# The alerts about sqlite-ops itself: from its own series (and Prometheus' up), no thresholds,
# one alert per process (job and instance, no db).
def itself(name, severity, summary, description, **labels):
    return {
        "exp_labels": {"severity": severity, "job": "sqlite-ops", "instance": "h1:9934", **labels},
        "exp_annotations": {"summary": summary, "description": description, "runbook_url": RUNBOOK + name.lower()},
    }


def itself_case(name, title, inputs, checks):
    TESTS.append({
        "name": f"{name} {title}",
        "interval": "1m",
        "input_series": inputs,
        "alert_rule_test": [
            {"eval_time": f"{m}m", "alertname": name, "exp_alerts": exp} for m, exp in checks
        ],
    })


N = "SQLiteOpsDown"
DOWN = ("Prometheus has not scraped sqlite-ops at {i} (job {j}) for 2m: the process is down, restarting, or its port is "
        "unreachable. Until it answers, none of that host's databases is watched, its own alerts are neither sent nor resolved, "
        "and its sqlite_* series go stale.")
itself_case(N, "fires when its scrape fails for 2m, as the README's job or a PodMonitor's",
            [series("up", "0x30", "{}"), {"series": 'up{job="monitoring/sqlite-ops",instance="10.0.0.7:9934"}', "values": "0x30"}],
            after_for(N, [itself(N, "critical", "sqlite-ops on h1:9934 cannot be scraped: its databases are not watched", DOWN.format(i="h1:9934", j="sqlite-ops")),
                          itself(N, "critical", "sqlite-ops on 10.0.0.7:9934 cannot be scraped: its databases are not watched",
                                 DOWN.format(i="10.0.0.7:9934", j="monitoring/sqlite-ops"), job="monitoring/sqlite-ops", instance="10.0.0.7:9934")]))
itself_case(N, "stays quiet while it is scraped, and for another job down",
            [series("up", "1x30", "{}"), {"series": 'up{job="node",instance="h1:9100"}', "values": "0x30"}], quiet(N))

N = "SQLiteOpsFallingBehind"
itself_case(N, "fires when two cycles in three are late",
            [series("sqlite_ops_poll_cycles_total", "0+60x30", "{}"), series("sqlite_ops_poll_cycles_late_total", "0+40x30", "{}")],
            after_for(N, start=1, alerts=[itself(N, "warning", "sqlite-ops on h1:9934 falls behind: most poll cycles take longer than its poll_interval",
                      "66.67% of the poll cycles of sqlite-ops on h1:9934 over 5m took longer than its poll_interval, above half, for 5m: every database is polled less often than configured, so commits, lock holders and lags are seen late and short ones missed. sqlite_ops_poll_cycle_duration_seconds against sqlite_ops_poll_interval_seconds says by how much.")]))
itself_case(N, "stays quiet at exactly half, and when no cycle runs at all",
            [series("sqlite_ops_poll_cycles_total", "0+60x30", "{}"), series("sqlite_ops_poll_cycles_late_total", "0+30x30", "{}"),
             series("sqlite_ops_poll_cycles_total", "5x30", '{instance="h2:9934"}'), series("sqlite_ops_poll_cycles_late_total", "5x30", '{instance="h2:9934"}')], quiet(N, start=1))

N = "SQLiteOpsOutOfDescriptors"
OUT_OF = ("sqlite-ops on h1:9934 was refused file descriptors for watched files within the last 2m, for 1m: its open-file limit leaves "
          "too few for the databases it watches, so some are down (sqlite_up 0, the error names the limit) until the limit is raised "
          "(LimitNOFILE= in systemd, ulimit -n, the container's nofile ulimit).")
itself_case(N, "fires while files are refused, and resolves 2m after the last refusal",
            [series("sqlite_ops_descriptors_refused_total", "0+3x5 15x25", "{}")],
            after_for(N, start=1, alerts=[itself(N, "critical", "sqlite-ops on h1:9934 has no file descriptor left for some databases: they are not watched", OUT_OF)])
            + [(8, [])])
itself_case(N, "stays quiet while none is refused", [series("sqlite_ops_descriptors_refused_total", "0x30", "{}")], quiet(N))

N = "SQLiteOpsHostSilent"
SILENT = ("The series of sqlite-ops on {i} (job sqlite-ops) stopped arriving at least 1m ago, though it sent them within the last day: "
          "the daemon stopped, or its host, its scraper or the network between them is down. None of that host's databases is watched "
          "from here. The alert stays until its series arrive again, or until the host has been silent for a whole day and is no longer known.")
BUILD = "sqlite_ops_build_info"
# h1 is scraped until minute 10 and then marked stale (its scrape failed, as when the daemon
# stops); h2's sender dies at minute 10 too, with no stale mark: its series last the store's
# 5m lookback; h3 goes on; h1 comes back at minute 20.
itself_case(N, "fires for a host whose series stop, after its stale mark or the lookback, and resolves when they arrive again",
            [series(BUILD, "1x10 stale _x8 1x10", '{version="1"}'), series(BUILD, "1x10", '{job="sqlite-ops",instance="h2:9934",version="1"}'),
             series(BUILD, "1x30", '{job="sqlite-ops",instance="h3:9934",version="1"}')],
            [(11, []), (12, [itself(N, "critical", "sqlite-ops on h1:9934 has gone silent: its series stopped arriving", SILENT.format(i="h1:9934"))]),
             (17, [itself(N, "critical", "sqlite-ops on h1:9934 has gone silent: its series stopped arriving", SILENT.format(i="h1:9934")),
                   itself(N, "critical", "sqlite-ops on h2:9934 has gone silent: its series stopped arriving", SILENT.format(i="h2:9934"), instance="h2:9934")]),
             (22, [itself(N, "critical", "sqlite-ops on h2:9934 has gone silent: its series stopped arriving", SILENT.format(i="h2:9934"), instance="h2:9934")])])
itself_case(N, "stays quiet while every host sends, across an upgrade that changes the version label",
            [series(BUILD, "1x10 stale", '{version="1"}'), series(BUILD, "_x10 1x20", '{version="2"}'),
             series(BUILD, "1x30", '{job="sqlite-ops",instance="h2:9934",version="1"}')], quiet(N, start=10))


# The fleet's recording rules: hosts counted once whatever number of senders, summed across hosts.
def fleet(instance, replica, up, down, size, nearest):
    labels = f'job="sqlite-ops",instance="{instance}",replica="{replica}"'
    return [
        {"series": f'sqlite_fleet_databases{{{labels},state="up"}}', "values": f"{up}x5"},
        {"series": f'sqlite_fleet_databases{{{labels},state="down"}}', "values": f"{down}x5"},
        {"series": f'sqlite_fleet_database_size_bytes{{{labels}}}', "values": f"{size}x5"},
        {"series": f'sqlite_ops_build_info{{{labels},version="1"}}', "values": "1x5"},
    ] + [{"series": f'sqlite_fleet_threshold_nearest_ratio{{{labels},alert="SQLiteDatabaseLarge",db="{db}"}}', "values": f"{r}x5"}
         for db, r in nearest]


def recorded(expr, samples):
    return {"expr": expr, "eval_time": "4m", "exp_samples": [{"labels": l, "value": v} for l, v in samples]}


J = '{job="sqlite-ops"'
TESTS.append({
    "name": "The fleet's recording rules count a host once whatever its senders, and sum across hosts",
    "interval": "1m",
    # h1 is written by two agents (replica a and b), h2 by one.
    "input_series": fleet("h1:9934", "a", 9, 1, 1000, [("t1", 0.5), ("t2", 0.9)])
    + fleet("h1:9934", "b", 9, 1, 1000, [("t1", 0.5), ("t2", 0.9)])
    + fleet("h2:9934", "a", 20, 0, 3000, [("t1", 0.7)]),
    "promql_expr_test": [
        recorded('instance:sqlite_fleet_databases:max{state="up"}',
                 [(f'instance:sqlite_fleet_databases:max{J},instance="h1:9934",state="up"}}', 9),
                  (f'instance:sqlite_fleet_databases:max{J},instance="h2:9934",state="up"}}', 20)]),
        recorded("job:sqlite_fleet_databases:sum",
                 [(f'job:sqlite_fleet_databases:sum{J},state="down"}}', 1), (f'job:sqlite_fleet_databases:sum{J},state="up"}}', 29)]),
        recorded("job:sqlite_fleet_database_size_bytes:sum", [(f"job:sqlite_fleet_database_size_bytes:sum{J}}}", 4000)]),
        recorded("job:sqlite_ops_hosts:count", [(f"job:sqlite_ops_hosts:count{J}}}", 2)]),
        recorded("job:sqlite_fleet_threshold_nearest_ratio:top5",
                 [(f'job:sqlite_fleet_threshold_nearest_ratio:top5{J},instance="{i}",alert="SQLiteDatabaseLarge",db="{d}"}}', v)
                  for i, d, v in [("h1:9934", "t2", 0.9), ("h2:9934", "t1", 0.7), ("h1:9934", "t1", 0.5)]]),
    ],
})


# A host whose series arrive twice (two senders told apart by `replica`): its alerts arrive once
# per sender, and every other host is judged as before (the thresholds are taken one per host:
# two of them used to fail every rule at every evaluation, for every host).
def sent_by(instance, replica):
    return f'job="sqlite-ops",instance="{instance}",replica="{replica}"'


TESTS.append({
    "name": "A host sent twice pages once per sender, and the others as before",
    "interval": "1m",
    "input_series": [
        {"series": f'sqlite_threshold{{{sent_by(i, r)},alert="SQLiteDatabaseLarge",severity="warning",db=""}}', "values": "100e9x30"}
        for i, r in [("h1:9934", "a"), ("h1:9934", "b"), ("h2:9934", "a")]
    ] + [
        {"series": f'sqlite_database_size_bytes{{{sent_by(i, r)},db="app"}}', "values": "150e9x30"}
        for i, r in [("h1:9934", "a"), ("h1:9934", "b"), ("h2:9934", "a")]
    ],
    "promql_expr_test": [{
        "expr": 'count by (instance) (ALERTS{alertname="SQLiteDatabaseLarge",alertstate="firing",severity="warning"})',
        "eval_time": "20m",
        "exp_samples": [{"labels": '{instance="h1:9934"}', "value": 2}, {"labels": '{instance="h2:9934"}', "value": 1}],
    }],
})


def main():
    doc = {"rule_files": ["sqlite-ops.rules.yml"], "evaluation_interval": "1m", "tests": TESTS}
    header = ("# promtool unit tests of every alert, written by scripts/alert_tests.py (expected texts\n"
              "# written there, not rendered from the rules). Run: promtool test rules alerts/sqlite-ops.rules.test.yml\n")
    OUT.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=1000))


if __name__ == "__main__":
    main()
