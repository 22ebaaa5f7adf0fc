#!/usr/bin/env python3
"""Generates alerts/sqlite-ops.rules.test.yml, the promtool unit tests of every alert in
alerts/sqlite-ops.rules.yml: it fires above its threshold (with the expected labels and
annotations), stays quiet below it, and waits for its `for`.

Inputs are chosen so that Prometheus's template functions give round text; the expected
annotations are the rule's templates rendered for those values. Run after changing the rules:
`python3 scripts/alert_tests.py`; tests/alerts.rs runs `promtool test rules` on the result.
"""
import pathlib
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
RULES = ROOT / "alerts" / "sqlite-ops.rules.yml"
OUT = ROOT / "alerts" / "sqlite-ops.rules.test.yml"

# alert -> (input series builder(level), {severity: (firing input, value text)}, quiet input,
#           minutes to evaluate at, minutes at which the `for` still holds it back or None)
# An input is a list of (series, values).
DB = '{db="app"}'


PINNED = '{db="app",holder="litestream"}'


def series(metric, values, labels=DB):
    return {"series": metric + labels, "values": values}


CASES = {
    "SQLiteDatabaseDown": {
        "fire": {"critical": ([series("sqlite_up", "0x30")], None)},
        "quiet": [series("sqlite_up", "1x30")],
        "held": 0,
    },
    "SQLiteWriteRateHigh": {
        "fire": {"warning": ([series("sqlite_write_transactions_total", "0+36000x30")], "600.0/s")},
        "quiet": [series("sqlite_write_transactions_total", "0+24000x30")],
        # rate() ramps up from the counter's start (120/s per minute): above 500 from 5m, so
        # pending from 5m and firing from 15m with for: 10m.
        "held": 14,
    },
    "SQLiteDatabaseLarge": {
        "fire": {
            "warning": ([series("sqlite_database_size_bytes", "60e9x30")], "60GB"),
            "critical": ([series("sqlite_database_size_bytes", "120e9x30")], "120GB"),
        },
        "quiet": [series("sqlite_database_size_bytes", "40e9x30")],
    },
    "SQLiteTeamOutgrown": {
        "fire": {"warning": ([series("sqlite_declared_backend_engineers", "5x30")], "5")},
        "quiet": [series("sqlite_declared_backend_engineers", "3x30")],
    },
    "SQLiteMultiRegion": {
        "fire": {"critical": ([series("sqlite_declared_regions", "2x30")], "2")},
        "quiet": [series("sqlite_declared_regions", "1x30")],
    },
    "SQLiteWriterSaturated": {
        "fire": {"warning": ([series("sqlite_write_lock_held_seconds_total", "0+42x30")], "70%")},
        "quiet": [series("sqlite_write_lock_held_seconds_total", "0+18x30")],
        # Above 0.5 from 4m (0.14 per minute of ramp): firing from 14m with for: 10m.
        "held": 13,
    },
    "SQLiteReplicationLag": {
        "fire": {
            "warning": ([series("sqlite_litestream_replication_lag_seconds", "30x30", '{db="app",replica="s3"}')], "30s"),
            "critical": ([series("sqlite_litestream_replication_lag_seconds", "90x30", '{db="app",replica="s3"}')], "1m 30s"),
        },
        "quiet": [series("sqlite_litestream_replication_lag_seconds", "5x30", '{db="app",replica="s3"}')],
    },
    "SQLiteReplicaUnreachable": {
        "fire": {"warning": ([series("sqlite_litestream_up", "0x30", '{db="app",replica="s3"}'),
                              series("sqlite_litestream_up", "1x30", '{db="app",replica="file"}')], "0")},
        "quiet": [series("sqlite_litestream_up", "1x30", '{db="app",replica="s3"}')],
        "held": 0,
    },
    "SQLiteWalLarge": {
        "fire": {"warning": ([series("sqlite_wal_size_bytes", "2147483648x30")], "2.147GB")},
        "quiet": [series("sqlite_wal_size_bytes", "1000000x30")],
    },
    "SQLiteCheckpointStarved": {
        "fire": {"warning": ([series("sqlite_checkpoint_starved_seconds", "400x30")], "6m 40s")},
        "quiet": [series("sqlite_checkpoint_starved_seconds", "20x30")],
    },
    "SQLiteSnapshotPinned": {
        "fire": {"warning": ([series("sqlite_snapshot_pinned_seconds", "400x30", PINNED)], "6m 40s")},
        "quiet": [series("sqlite_snapshot_pinned_seconds", "0x30", '{db="app",holder="none"}')],
        "labels": {"holder": "litestream"},
    },
    "SQLiteFilesystemLowSpace": {
        "fire": {
            "warning": ([series("sqlite_filesystem_free_bytes", "8x30"), series("sqlite_filesystem_size_bytes", "100x30")], "8%"),
            "critical": ([series("sqlite_filesystem_free_bytes", "3x30"), series("sqlite_filesystem_size_bytes", "100x30")], "3%"),
        },
        "quiet": [series("sqlite_filesystem_free_bytes", "50x30"), series("sqlite_filesystem_size_bytes", "100x30")],
    },
    "SQLiteLongWriteTransaction": {
        "fire": {"warning": ([series("sqlite_write_lock_longest_hold_seconds", "7x30")], "7s")},
        "quiet": [series("sqlite_write_lock_longest_hold_seconds", "1x30")],
    },
    "SQLiteMultipleWriters": {
        "fire": {"warning": ([series("sqlite_writer_processes", "2x30")], "2")},
        "quiet": [series("sqlite_writer_processes", "1x30")],
    },
}

VALUE_TEMPLATES = [
    '{{ $value | humanize }}B', '{{ $value | humanizeDuration }}', '{{ $value | humanizePercentage }}',
    '{{ $value | printf "%.1f" }}/s', '{{ $value | printf "%.0f" }}',
]


def render(text, value_text):
    text = text.replace("{{ $labels.db }}", "app").replace("{{ $labels.holder }}", "litestream")
    for t in VALUE_TEMPLATES:
        if t in text:
            assert value_text is not None, text
            text = text.replace(t, value_text)
    assert "{{" not in text, text
    return text


def main():
    rules = {}
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for r in group["rules"]:
            rules[(r["alert"], r["labels"]["severity"])] = r
    alerts = sorted({a for a, _ in rules})
    missing = set(alerts) ^ set(CASES)
    assert not missing, f"alerts without tests, or tests without alerts: {missing}"
    tests = []
    for alert in alerts:
        case = CASES[alert]
        for severity, (inputs, value_text) in case["fire"].items():
            # Which severities does this input breach? The critical input breaches warning too.
            expected = []
            for sev in ("warning", "critical"):
                if (alert, sev) not in rules:
                    continue
                if sev == "critical" and severity == "warning":
                    continue
                if sev == "warning" and severity == "critical" and (alert, "warning") in rules:
                    breached_value = value_text
                else:
                    breached_value = value_text
                r = rules[(alert, sev)]
                expected.append({
                    "exp_labels": {"severity": sev, "db": "app", **case.get("labels", {})},
                    "exp_annotations": {k: render(v, breached_value) for k, v in r["annotations"].items()},
                })
            test = {
                "name": f"{alert} fires at {severity}",
                "interval": "1m",
                "input_series": inputs,
                "alert_rule_test": [{"eval_time": "20m", "alertname": alert, "exp_alerts": expected}],
            }
            if case.get("held") is not None:
                test["alert_rule_test"].insert(0, {"eval_time": f"{case['held']}m", "alertname": alert, "exp_alerts": []})
                test["name"] += ", not before its for"
            tests.append(test)
        tests.append({
            "name": f"{alert} stays quiet below its threshold",
            "interval": "1m",
            "input_series": case["quiet"],
            "alert_rule_test": [{"eval_time": "20m", "alertname": alert, "exp_alerts": []}],
        })
    doc = {"rule_files": ["sqlite-ops.rules.yml"], "evaluation_interval": "1m", "tests": tests}
    header = ("# promtool unit tests of every alert, generated by scripts/alert_tests.py from\n"
              "# alerts/sqlite-ops.rules.yml. Run: promtool test rules alerts/sqlite-ops.rules.test.yml\n")
    OUT.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=1000))


if __name__ == "__main__":
    main()
