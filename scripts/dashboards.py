#!/usr/bin/env python3
"""Generates the Grafana dashboards in dashboards/ (Grafana 10+ JSON model).

The dashboards are data; this script keeps their many panels consistent (datasource variable,
label filters, units, descriptions, thresholds from the rules' defaults). Edit here, then run
`python3 scripts/dashboards.py` and commit both; `--check` fails when the JSON is stale
(tests/dashboards.rs runs it).
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job",instance=~"$instance",db=~"$db"'
INST = 'job=~"$job",instance=~"$instance"'
GB = 1e9


def variables(with_db=True, worst=10):
    def query_var(name, label, query, multi=True, all_value=".*", regex=""):
        return {
            "name": name,
            "label": label,
            "type": "query",
            "datasource": DS,
            "query": {"query": query, "refId": f"{name}-var"},
            "definition": query,
            "refresh": 2,
            "multi": multi,
            "includeAll": True,
            "allValue": all_value,
            "allowCustomValue": True,
            "regex": regex,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
        }

    # Hosts and jobs from sqlite_ops_build_info: exported whatever `metrics:` says, so a fleet
    # exporting `metrics: []` still lists its hosts.
    out = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        },
        query_var("job", "Job", "label_values(sqlite_ops_build_info, job)"),
        query_var("instance", "Host (instance)", 'label_values(sqlite_ops_build_info{job=~"$job"}, instance)'),
    ]
    if with_db:
        # The databases nearest a threshold (sqlite_fleet_*, exported whatever `metrics:` says),
        # then any others (sqlite_up, at 0) up to `worst`: a small fleet lists every database, a
        # large one its worst, never all of them. "All" means these (no allValue, so Grafana
        # joins the listed names), and a panel draws at most `worst` databases' series on a host
        # of 10,000. Any other name can be typed into the box.
        out.append(query_var(
            "db", f"Database (nearest {worst} to a threshold; type any name)",
            f'query_result(topk({worst}, max by (db) (sqlite_fleet_threshold_nearest_ratio{{{INST}}}) or 0 * max by (db) (sqlite_up{{{INST}}})))',
            all_value=None, regex='/db="([^"]*)"/'))
    return out


class Board:
    def __init__(self):
        self.panels = []
        self.next_id = 1
        self.y = 0
        self.x = 0
        self.row_h = 0

    def row(self, title):
        if self.x:
            self.y += self.row_h
        self.x, self.row_h = 0, 0
        self.panels.append({
            "id": self._id(), "type": "row", "title": title, "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": [],
        })
        self.y += 1

    def _id(self):
        i = self.next_id
        self.next_id += 1
        return i

    def panel(self, kind, title, description, targets, unit, w=8, h=8, thresholds=None,
              options=None, field_overrides=None, min_=None, max_=None, transformations=None,
              links=None, mappings=None, base="green"):
        if self.x + w > 24:
            self.y += self.row_h
            self.x, self.row_h = 0, 0
        steps = [{"color": base, "value": None}]
        for value, color in thresholds or []:
            steps.append({"color": color, "value": value})
        defaults = {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}
        if min_ is not None:
            defaults["min"] = min_
        if max_ is not None:
            defaults["max"] = max_
        if mappings:
            defaults["mappings"] = mappings
        if kind == "timeseries":
            defaults["custom"] = {
                "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                "thresholdsStyle": {"mode": "line" if thresholds else "off"},
            }
            defaults["color"] = {"mode": "palette-classic"}
        else:
            defaults["color"] = {"mode": "thresholds"}
        p = {
            "id": self._id(),
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": defaults, "overrides": field_overrides or []},
            "options": options or {},
            "targets": [
                {
                    "datasource": DS,
                    "refId": chr(ord("A") + i),
                    "expr": expr,
                    "legendFormat": legend,
                    **({"instant": True, "format": "table"} if kind in ("table",) else {}),
                }
                for i, (expr, legend) in enumerate(targets)
            ],
        }
        if transformations:
            p["transformations"] = transformations
        if links:
            p["links"] = links
        self.panels.append(p)
        self.x += w
        self.row_h = max(self.row_h, h)


def dashboard(uid, title, description, panels, with_db=True, links=None, worst=10):
    return {
        "__inputs": [],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ],
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["sqlite", "sqlite-ops"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 38,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables(with_db, worst)},
        "annotations": {"list": []},
        "links": links or [],
        "panels": panels,
    }


def with_threshold(v, alert, op):
    """`v OP threshold`, where the threshold is the first level (of info, warning, critical) that
    sqlite-ops judges `v`'s database by: its own levels (sqlite_threshold with db) where its host
    exports them, else its host's global levels (the same series the rules of `sqlite-ops rules`
    read). The first level is the lowest for a figure that alerts above it, the highest for free
    space; a level that is off is absent (global) or infinite (per database), so it never wins.
    `v` carries job, instance and db."""
    agg = "max" if alert == "SQLiteFilesystemLowSpace" else "min"

    def t(db):
        return f'{agg} without (severity) (sqlite_threshold{{alert="{alert}",db{db}""}})'
    return (f'(({v}) {op} on(job, instance, db) group_left() {t("!=")}) or '
            f'(({v}) {op} on(job, instance) group_left() {t("=")} unless on(job, instance, db) {t("!=")})')


def overview():
    b = Board()
    L = "{{instance}} {{db}}"
    b.row("Health")
    b.panel("stat", "Databases up", "sqlite_up: 1 when the last poll could read the database file and header. 0 means missing, unreadable or not SQLite: see /api/v1/status for the error.",
            [(f"sqlite_up{{{SEL}}}", L)], "none", w=6, h=5, thresholds=[(1, "green")],
            mappings=[{"type": "value", "options": {"0": {"text": "DOWN", "color": "red"}, "1": {"text": "UP", "color": "green"}}}],
            options={"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}})
    b.panel("stat", "Alerts firing", "Alerts firing now, as sqlite-ops's own rule engine evaluates them (sqlite_alert). The same thresholds as the Prometheus rules in alerts/.",
            [(f"sum(sqlite_alert{{{SEL}}}) or vector(0)", "firing")], "none", w=6, h=5,
            thresholds=[(1, "red")], options={"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}})
    b.panel("table", "Firing alerts", "Each firing alert with its database and severity. The runbook for each is docs/runbooks.md#<alert in lower case>.",
            [(f"sqlite_alert{{{SEL}}} == 1", "")], "none", w=12, h=5,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True, "job": True}}}])
    b.panel("timeseries", "Litestream replication lag", "How long the oldest commit each Litestream replica does not hold has waited. Grows with wall time when Litestream stops or cannot reach its replica. Warning at 10 s, critical at 60 s.",
            [(f"sqlite_litestream_replication_lag_seconds{{{SEL}}}", "{{instance}} {{db}} {{replica}}")], "s", w=24, h=7,
            thresholds=[(10, "orange"), (60, "red")], min_=0)

    b.row("Migrate-to-Postgres signals")
    b.panel("timeseries", "Write transactions per second", "Committed write transactions per second, counted exactly from SQLite's own counters. The production guide plans the move to Postgres above 500/s sustained (the red line).",
            [(f"rate(sqlite_write_transactions_total{{{SEL}}}[$__rate_interval])", L)], "ops", w=8,
            thresholds=[(500, "red")], min_=0)
    b.panel("timeseries", "Database size", "Size of the database file. By default info above 50 GB (plan the move), warning above 100 GB: past these, backups, restores and VACUUM take too long for one file.",
            [(f"sqlite_database_size_bytes{{{SEL}}}", L)], "decbytes", w=8,
            thresholds=[(50 * GB, "orange"), (100 * GB, "red")], min_=0)
    b.panel("timeseries", "Writer utilisation", "Share of time SQLite's write lock was held (rate of sqlite_write_lock_held_seconds_total). Above 50% sustained, writers queue behind each other.",
            [(f"rate(sqlite_write_lock_held_seconds_total{{{SEL}}}[$__rate_interval])", L)], "percentunit", w=8,
            thresholds=[(0.5, "red")], min_=0, max_=1)
    b.panel("bargauge", "Write rate against its threshold", "The write rate over the last 5 minutes (the window of SQLiteWriteRateHigh) as a share of the write_tx_per_sec warning threshold this host's config sets for the database (sqlite_threshold; 500/s by default): 100% is the threshold.",
            [(with_threshold(f"increase(sqlite_write_transactions_total{{{SEL}}}[5m]) / 300", "SQLiteWriteRateHigh", "/"), L)], "percentunit", w=8, h=6,
            thresholds=[(0.7, "orange"), (1, "red")], min_=0, max_=1,
            options={"orientation": "horizontal", "displayMode": "gradient", "reduceOptions": {"calcs": ["lastNotNull"]}})
    b.panel("stat", "Time until the size threshold", "At the database's growth rate over the last 6 hours, how long until it passes the first database_size level this host's config sets for it (sqlite_threshold; 50 GB, info, by default). 0 once past it. No value for a database that does not grow, nor for one further than 24 hours away: four times the 6 hours of history read is as far as a forecast may reach (the status page's forecasts, from up to 7 days of history, reach further).",
            [(f"clamp_min(-({with_threshold(f'sqlite_database_size_bytes{{{SEL}}}', 'SQLiteDatabaseLarge', '-')}) / (deriv(sqlite_database_size_bytes{{{SEL}}}[6h]) > 0), 0) <= 86400", L)], "s", w=8, h=6,
            base="red", thresholds=[(6 * 3600, "orange")], options={"reduceOptions": {"calcs": ["lastNotNull"]}})
    b.panel("stat", "Declared team", "Backend engineers and regions as declared in sqlite-ops's config (team:). Above 3 engineers or 1 region, the production guide moves to Postgres.",
            [(f"sqlite_declared_backend_engineers{{{SEL}}}", "engineers {{db}}"), (f"sqlite_declared_regions{{{SEL}}}", "regions {{db}}")], "none", w=8, h=6,
            thresholds=[(4, "red")], options={"reduceOptions": {"calcs": ["lastNotNull"]}})

    b.row("WAL and checkpoints")
    b.panel("timeseries", "WAL size", "Size of the -wal file. It only shrinks when a checkpoint restarts it; above 1 GB, checkpoints are not keeping up.",
            [(f"sqlite_wal_size_bytes{{{SEL}}}", L)], "bytes", w=8, thresholds=[(10 ** 9, "orange")], min_=0)
    b.panel("timeseries", "Checkpoint lag (frames)", "WAL frames not yet copied back into the database (mxFrame - nBackfill). Readers must search the WAL for these pages.",
            [(f"sqlite_checkpoint_lag_frames{{{SEL}}}", L)], "none", w=8, min_=0)
    b.panel("timeseries", "Checkpoint starvation", "How long a due checkpoint (more frames waiting than wal_autocheckpoint) has made no progress while writes went on: above 5 minutes, SQLiteCheckpointStarved. 0 on an idle database, however old its waiting frames.",
            [(f"sqlite_checkpoint_starved_seconds{{{SEL}}}", L)], "s", w=8, thresholds=[(300, "orange")], min_=0)
    b.panel("timeseries", "Readers holding checkpoints back", "How long a reader has stopped a due checkpoint while writes went on, by the reader's role (application, litestream, ...): above 5 minutes, SQLiteSnapshotPinned. Litestream's guard on a healthy database stays at 0.",
            [(f"sqlite_snapshot_pinned_seconds{{{SEL}}}", "{{db}} {{holder}}")], "s", w=8, thresholds=[(300, "orange")], min_=0)
    b.panel("timeseries", "WAL resets", "Times the WAL restarted from its beginning (after a complete checkpoint), per interval.",
            [(f"increase(sqlite_wal_resets_total{{{SEL}}}[$__rate_interval])", L)], "none", w=8, min_=0)
    b.panel("timeseries", "Readers holding the WAL", "WAL read-lock slots held by open read transactions, and the processes holding the database's locks by role. Litestream holds one slot all the time, by design.",
            [(f"sqlite_wal_readers{{{SEL}}}", "slots {{db}}"), (f"sqlite_lock_holder_processes{{{SEL}}}", "{{db}} {{role}}")], "none", w=8, min_=0)
    b.panel("timeseries", "Longest write lock hold", "Longest single hold of the write lock in the last minute. Above 5 s (the guide's busy_timeout) other writers get SQLITE_BUSY.",
            [(f"sqlite_write_lock_longest_hold_seconds{{{SEL}}}", L), (f"sqlite_writer_processes{{{SEL}}}", "writers {{db}}")], "s", w=8,
            thresholds=[(5, "orange")], min_=0,
            field_overrides=[{"matcher": {"id": "byRegexp", "options": "writers.*"}, "properties": [{"id": "unit", "value": "none"}, {"id": "custom.axisPlacement", "value": "right"}]}])

    b.row("Litestream")
    b.panel("timeseries", "Replication lag per replica", "The oldest commit each replica does not hold, by replica.",
            [(f"sqlite_litestream_replication_lag_seconds{{{SEL}}}", "{{db}} {{replica}}")], "s", w=8,
            thresholds=[(10, "orange"), (60, "red")], min_=0)
    b.panel("timeseries", "Time since the replica's newest data", "Now minus the time up to which each replica holds every commit. Grows during quiet periods too: read it with the lag.",
            [(f"time() - sqlite_litestream_last_replicated_timestamp_seconds{{{SEL}}}", "{{db}} {{replica}}")], "s", w=8, min_=0)
    b.panel("stat", "Replicas readable", "1 when the last listing of each replica succeeded and found data; 0 when the bucket or directory cannot be read, or is empty.",
            [(f"sqlite_litestream_up{{{SEL}}}", "{{db}} {{replica}}")], "none", w=8,
            thresholds=[(1, "green")], mappings=[{"type": "value", "options": {"0": {"text": "DOWN", "color": "red"}, "1": {"text": "UP", "color": "green"}}}],
            options={"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}})

    b.panel("timeseries", "Litestream's local state", "Bytes Litestream keeps on local disk for each database (its meta directory), before and after upload. Bounded while it works: about l0-retention's worth of changes. Its slope is the growth rate.",
            [(f"sqlite_litestream_local_bytes{{{SEL}}}", L)], "bytes", w=12, min_=0)
    b.panel("timeseries", "Local files kept past their time", "Local change files Litestream should have removed: it went on writing newer ones for more than twice l0-retention + the level-1 interval + the check interval after they could go. 0 while uploads, compaction and retention run. SQLiteLitestreamLocalStateGrowing past 100 MB.",
            [(f"sqlite_litestream_local_overdue_bytes{{{SEL}}}", L)], "bytes", w=12,
            thresholds=[(100e6, "orange")], min_=0)

    b.panel("timeseries", "Replica storage by level", "Bytes each replica holds at each level (Litestream 0.5: 0-9, 9 the snapshots; 0.3: snapshots, wal), from the listing each read takes: the replica's growth, and whether retention keeps it in bounds.",
            [(f"sum by (instance, db, level) (sqlite_litestream_replica_bytes{{{SEL}}})", "{{db}} level {{level}}")], "bytes", w=12, min_=0)
    b.panel("timeseries", "Compaction and snapshots behind", "How many of its intervals the oldest change a level lacks has waited: up to 1 while Litestream compacts and snapshots; SQLiteLitestreamCompactionStalled past 3, SQLiteLitestreamSnapshotStale past 2.",
            [(f"sqlite_litestream_compaction_lag_seconds{{{SEL}}} / sqlite_litestream_compaction_interval_seconds{{{SEL}}}", "{{db}} level {{level}}"),
             (f"sqlite_litestream_snapshot_lag_seconds{{{SEL}}} / sqlite_litestream_snapshot_interval_seconds{{{SEL}}}", "{{db}} snapshots")], "none", w=12,
            thresholds=[(2, "orange")], min_=0)

    b.row("Restore drills")
    b.panel("stat", "Last restore drill", "Whether the last restore drill (litestream restore into a scratch folder, integrity_check, row counts) gave a sound copy. Only databases with restore_drill: configured.",
            [(f"sqlite_restore_drill_success{{{SEL}}}", "{{db}} {{replica}}")], "none", w=6,
            base="red", thresholds=[(1, "green")], mappings=[{"type": "value", "options": {"0": {"text": "FAILED", "color": "red"}, "1": {"text": "RESTORES", "color": "green"}}}],
            options={"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}})
    b.panel("timeseries", "Restore time", "How long each drill took, restore and checks: what a disaster restore would take. SQLiteRestoreSlow past 1h.",
            [(f"sqlite_restore_drill_duration_seconds{{{SEL}}}", "{{db}} {{replica}}")], "s", w=6,
            thresholds=[(3600, "orange")], min_=0)
    b.panel("timeseries", "Recovery point of the last drill", "How old the newest data in the last restored copy was when the replica was read: the data a restore then would have lost.",
            [(f"sqlite_restore_drill_data_age_seconds{{{SEL}}}", "{{db}} {{replica}}")], "s", w=6, min_=0)
    b.panel("stat", "Since the last successful drill", "Time since a restore drill last succeeded (or since drills began). SQLiteRestoreDrillStale past two intervals.",
            [(f"sqlite_restore_drill_stale_seconds{{{SEL}}}", "{{db}} {{replica}}")], "s", w=6,
            options={"reduceOptions": {"calcs": ["lastNotNull"]}})

    b.row("Disk")
    b.panel("timeseries", "Filesystem free", "Free share of the filesystem holding each database. Warning below 10%, critical below 5%.",
            [(f"sqlite_filesystem_free_bytes{{{SEL}}} / sqlite_filesystem_size_bytes{{{SEL}}}", L)], "percentunit", w=12,
            base="red", thresholds=[(0.05, "orange"), (0.10, "green")], min_=0, max_=1)
    b.panel("stat", "Time until the disk is full", "At the rate free space fell over the last 6 hours, how long until none is left. Very long when it is not falling.",
            [(f"sqlite_filesystem_free_bytes{{{SEL}}} / clamp_min(-deriv(sqlite_filesystem_free_bytes{{{SEL}}}[6h]), 1e-9)", L)], "s", w=12,
            base="red", thresholds=[(86400, "orange"), (7 * 86400, "green")], options={"reduceOptions": {"calcs": ["lastNotNull"]}})

    b.row("sqlite-ops itself")
    b.panel("timeseries", "Poll duration", "Wall time of the last poll of each database: a few stat, pread and fcntl calls, normally tens of microseconds.",
            [(f"sqlite_ops_poll_duration_seconds{{{SEL}}}", L)], "s", w=8, min_=0)
    b.panel("timeseries", "Probe errors", "Failed probes per second, by database and probe (database, header, wal, wal_index, locks, filesystem): the 10 highest.",
            [(f"topk(10, sum by (instance, db, probe) (rate(sqlite_ops_poll_errors_total{{{SEL}}}[$__rate_interval])))", "{{db}} {{probe}}")], "short", w=8, min_=0)
    b.panel("timeseries", "Notification delivery errors", "Failed POSTs to each Alertmanager and each webhook, and failed heartbeats, per second; sqlite-ops retries with backoff. Heartbeats held back while a critical alert fires are not errors (sqlite_ops_heartbeat_withheld).",
            [(f"rate(sqlite_ops_alertmanager_errors_total{{{INST}}}[$__rate_interval])", "{{alertmanager}}"),
             (f"rate(sqlite_ops_webhook_errors_total{{{INST}}}[$__rate_interval])", "webhook {{webhook}}"),
             (f"rate(sqlite_ops_heartbeat_errors_total{{{INST}}}[$__rate_interval])", "heartbeat")], "short", w=8, min_=0)
    b.panel("timeseries", "Poll cycles", "How long the last cycle of polling every database took, against poll_interval: a cycle longer than the interval is late (SQLiteOpsFallingBehind fires when most are, for 5m).",
            [(f"sqlite_ops_poll_cycle_duration_seconds{{{INST}}}", "last cycle {{instance}}"),
             (f"sqlite_ops_poll_interval_seconds{{{INST}}}", "poll_interval {{instance}}")], "s", w=6, min_=0)
    b.panel("timeseries", "File descriptors", "Descriptors watched files hold against what they may hold (the limit less a reserve for HTTP, Alertmanager and Litestream), and every descriptor open against the limit. Refusals (SQLiteOpsOutOfDescriptors) leave databases down.",
            [(f"sqlite_ops_descriptors_watched{{{INST}}}", "watched files {{instance}}"),
             (f"sqlite_ops_descriptors_watched_limit{{{INST}}}", "watched files may hold {{instance}}"),
             (f"process_open_fds{{{INST}}}", "open {{instance}}"),
             (f"process_max_fds{{{INST}}}", "limit {{instance}}"),
             (f"rate(sqlite_ops_descriptors_refused_total{{{INST}}}[$__rate_interval])", "refused/s {{instance}}")], "short", w=6, min_=0)
    b.panel("timeseries", "Memory", "Resident memory of sqlite-ops, and what the status page's history holds of it.",
            [(f"process_resident_memory_bytes{{{INST}}}", "resident {{instance}}"),
             (f"sqlite_ops_history_bytes{{{INST}}}", "history {{instance}}")], "bytes", w=6, min_=0)
    b.panel("timeseries", "CPU", "Share of one core sqlite-ops uses.",
            [(f"rate(process_cpu_seconds_total{{{INST}}}[$__rate_interval])", "{{instance}}")], "percentunit", w=6, min_=0)
    return dashboard("sqlite-ops-overview", "SQLite overview (sqlite-ops)",
                     "Health, migrate-to-Postgres signals, WAL and checkpoints, Litestream and disk for the SQLite databases sqlite-ops watches.",
                     b.panels, links=[{"title": "Fleet", "type": "link", "url": "/d/sqlite-ops-fleet/sqlite-fleet-sqlite-ops?${datasource:queryparam}", "icon": "dashboard", "keepTime": True}])


def fleet():
    b = Board()
    by = "max by (job, instance, db)"
    # Each signal as its value over the warning threshold this host's config sets for the
    # database (sqlite_threshold): 1 is the threshold, whatever the config says.
    signals = [
        ("writes", "Write rate / threshold", with_threshold(f'{by} (rate(sqlite_write_transactions_total{{{SEL}}}[$__rate_interval]))', "SQLiteWriteRateHigh", "/")),
        ("size", "Size / threshold", with_threshold(f'{by} (sqlite_database_size_bytes{{{SEL}}})', "SQLiteDatabaseLarge", "/")),
        ("writer", "Writer utilisation / threshold", with_threshold(f'{by} (rate(sqlite_write_lock_held_seconds_total{{{SEL}}}[$__rate_interval]))', "SQLiteWriterSaturated", "/")),
        ("wal", "WAL / threshold", with_threshold(f'{by} (sqlite_wal_size_bytes{{{SEL}}})', "SQLiteWalLarge", "/")),
        ("lag", "Replication lag / threshold", with_threshold(f'{by} (sqlite_litestream_replication_lag_seconds{{{SEL}}})', "SQLiteReplicationLag", "/")),
        # Free space alerts below its threshold: its nearness is the threshold over the free share.
        ("disk", "Disk: free threshold / free", with_threshold(f'{by} (sqlite_filesystem_size_bytes{{{SEL}}} / sqlite_filesystem_free_bytes{{{SEL}}})', "SQLiteFilesystemLowSpace", "*")),
    ]
    nearest = " or ".join(f'label_replace({expr}, "signal", "{name}", "", "")' for name, _, expr in signals)
    b.row("The databases nearest a threshold, nearest first")
    b.panel("table", "Databases by the signal nearest its threshold",
            "One row per database listed in Database (the 50 nearest a threshold by default, so a host of 10,000 draws 50 rows), from the per-database series (the health group gives writes, size, WAL and disk; locks and litestream add the writer and lag). Each signal is its value divided by the warning threshold this host's config sets for the database (sqlite_threshold; 1 = at the threshold); Nearest is the largest of them, and its signal column names which. Sorted by Nearest, so the database closest to an alert or to the move to Postgres is on top. Click a database for its overview.",
            [(f'topk by (job, instance, db) (1, {nearest})', "nearest")] + [(expr, name) for name, _, expr in signals]
            + [(f'{by} (sqlite_up{{{SEL}}})', "up")],
            "percentunit", w=24, h=16, thresholds=[(0.7, "orange"), (1, "red")],
            transformations=[
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {
                    "excludeByName": {"Time": True},
                    "renameByName": {"Value #A": "Nearest", **{f"Value #{chr(ord('B') + i)}": label for i, (_, label, _) in enumerate(signals)},
                                     f"Value #{chr(ord('B') + len(signals))}": "Up"},
                }},
                {"id": "sortBy", "options": {"sort": [{"field": "Nearest", "desc": True}]}},
            ],
            field_overrides=[
                {"matcher": {"id": "byName", "options": "db"}, "properties": [{"id": "links", "value": [{"title": "Overview of ${__data.fields.db}", "url": "/d/sqlite-ops-overview/sqlite-overview-sqlite-ops?${datasource:queryparam}&var-instance=${__data.fields.instance}&var-db=${__data.fields.db}&${__url_time_range}"}]}]},
                {"matcher": {"id": "byName", "options": "Up"}, "properties": [{"id": "unit", "value": "none"}]},
                {"matcher": {"id": "byName", "options": "Nearest"}, "properties": [{"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
            ])
    # The fleet series carry no db label (but the nearest): they work whatever metrics: groups
    # the databases export, down to none. These panels read the fleet's recording rules
    # (`sqlite-ops rules` prints them; docs/many-hosts.md): a few series per host, so a store
    # that many hosts write into answers each panel with one cheap query.
    fleet_sel = 'job=~"$job",instance=~"$instance"'

    def rec(name, label=None, value=None):
        extra = f',{label}="{value}"' if label else ""
        return f"instance:{name}:max{{{fleet_sel}{extra}}}"
    b.row("Fleet totals across the selected hosts (fleet series: any metrics: choice)")
    b.panel("stat", "Databases", "Databases watched on the selected hosts, and how many are down (sqlite_fleet_databases, recorded per host as instance:sqlite_fleet_databases:max).",
            [(f'sum({rec("sqlite_fleet_databases")})', "watched"), (f'sum({rec("sqlite_fleet_databases", "state", "down")}) or vector(0)', "down")], "none", w=6, h=5,
            options={"reduceOptions": {"calcs": ["lastNotNull"]}})
    b.panel("stat", "Alerts firing", "Alerts firing on the selected hosts, by severity (sqlite_fleet_alerts, recorded per host).",
            [(f'sum({rec("sqlite_fleet_alerts", "severity", sev)}) or vector(0)', sev) for sev in ("critical", "warning", "info")], "none", w=6, h=5,
            thresholds=[(1, "red")], options={"reduceOptions": {"calcs": ["lastNotNull"]}})
    b.panel("stat", "Write transactions per second", "All watched databases of the selected hosts together, over the last few seconds (sqlite_fleet_write_transactions_per_second, recorded per host).",
            [(f'sum({rec("sqlite_fleet_write_transactions_per_second")})', "total")], "ops", w=6, h=5,
            options={"reduceOptions": {"calcs": ["lastNotNull"]}})
    b.panel("stat", "Size", "Database and WAL files of the selected hosts together (sqlite_fleet_database_size_bytes, sqlite_fleet_wal_size_bytes, recorded per host).",
            [(f'sum({rec("sqlite_fleet_database_size_bytes")})', "databases"), (f'sum({rec("sqlite_fleet_wal_size_bytes")})', "WAL")], "bytes", w=6, h=5,
            options={"reduceOptions": {"calcs": ["lastNotNull"]}})
    host_link = {"title": "Overview of ${__data.fields.instance}", "url": "/d/sqlite-ops-overview/sqlite-overview-sqlite-ops?${datasource:queryparam}&var-job=${__data.fields.job}&var-instance=${__data.fields.instance}&${__url_time_range}"}
    hosts = [
        (f'sum by (job, instance) ({rec("sqlite_fleet_databases", "state", "up")})', "Up"),
        (f'sum by (job, instance) ({rec("sqlite_fleet_databases", "state", "down")})', "Down"),
        (f'sum by (job, instance) ({rec("sqlite_fleet_alerts", "severity", "critical")})', "Critical"),
        (f'sum by (job, instance) ({rec("sqlite_fleet_alerts", "severity", "warning")})', "Warning"),
        (f'max by (job, instance) ({rec("sqlite_fleet_threshold_nearest_ratio")})', "Nearest"),
        (f'{rec("sqlite_fleet_write_transactions_per_second")}', "Writes/s"),
        (f'{rec("sqlite_fleet_database_size_bytes")}', "Size"),
    ]
    b.panel("table", "Hosts, the one nearest a threshold first",
            "One row per host (instance): its databases up and down, the alerts firing there, how near its nearest database is to a threshold (1 = at it), its write rate and size; from the fleet's recording rules. A host that stopped sending leaves this table and fires SQLiteOpsHostSilent. Click a host for its overview.",
            [(expr, legend) for expr, legend in hosts], "none", w=24, h=8,
            transformations=[
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {
                    "excludeByName": {"Time": True},
                    "renameByName": {f"Value #{chr(ord('A') + i)}": legend for i, (_, legend) in enumerate(hosts)},
                }},
                {"id": "sortBy", "options": {"sort": [{"field": "Nearest", "desc": True}]}},
            ],
            field_overrides=[
                {"matcher": {"id": "byName", "options": "instance"}, "properties": [{"id": "links", "value": [host_link]}]},
                {"matcher": {"id": "byName", "options": "Nearest"}, "properties": [{"id": "unit", "value": "percentunit"}, {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                                                                                  {"id": "thresholds", "value": {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 0.7}, {"color": "red", "value": 1}]}}]},
                {"matcher": {"id": "byName", "options": "Critical"}, "properties": [{"id": "custom.cellOptions", "value": {"type": "color-background"}},
                                                                                    {"id": "thresholds", "value": {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}]}}]},
                {"matcher": {"id": "byName", "options": "Writes/s"}, "properties": [{"id": "unit", "value": "ops"}]},
                {"matcher": {"id": "byName", "options": "Size"}, "properties": [{"id": "unit", "value": "bytes"}]},
            ])
    b.panel("table", "Nearest each threshold, across the selected hosts (fleet series)",
            "The five databases nearest each alert's first threshold among all the selected hosts (each host exports its own five), from sqlite-ops's own thresholds: the value as a fraction of the threshold (1 = at it); instance says which host. Works when the databases export no series of their own (metrics: []). Click a database for its overview on its host.",
            [(f'topk by (alert) (5, {rec("sqlite_fleet_threshold_nearest_ratio")})', "nearest")],
            "percentunit", w=24, h=10, thresholds=[(0.7, "orange"), (1, "red")],
            transformations=[
                {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}, "renameByName": {"Value": "Nearest"}}},
                {"id": "sortBy", "options": {"sort": [{"field": "Nearest", "desc": True}]}},
            ],
            field_overrides=[
                {"matcher": {"id": "byName", "options": "db"}, "properties": [{"id": "links", "value": [{"title": "Overview of ${__data.fields.db}", "url": "/d/sqlite-ops-overview/sqlite-overview-sqlite-ops?${datasource:queryparam}&var-instance=${__data.fields.instance}&var-db=${__data.fields.db}&${__url_time_range}"}]}]},
                {"matcher": {"id": "byName", "options": "Nearest"}, "properties": [{"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
            ])
    return dashboard("sqlite-ops-fleet", "SQLite fleet (sqlite-ops)",
                     "The SQLite databases sqlite-ops watches nearest their thresholds (up to 50, from the fleet series; type any other name into Database), sorted by the signal nearest its threshold, with links to the overview; and the fleet's totals.",
                     b.panels, worst=50, links=[{"title": "Overview", "type": "link", "url": "/d/sqlite-ops-overview/sqlite-overview-sqlite-ops?${datasource:queryparam}", "icon": "dashboard", "keepTime": True}])


def main():
    outputs = {
        ROOT / "dashboards" / "sqlite-ops-overview.json": overview(),
        ROOT / "dashboards" / "sqlite-ops-fleet.json": fleet(),
    }
    stale = []
    for path, board in outputs.items():
        text = json.dumps(board, indent=2, sort_keys=False) + "\n"
        if "--check" in sys.argv:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
    if stale:
        sys.exit(f"stale: {', '.join(stale)}; run python3 scripts/dashboards.py")


if __name__ == "__main__":
    main()
