#!/usr/bin/env bash
# Compares the /metrics of two sqlite-ops binaries on the same fixed files (a refactor's proof
# that nothing a scrape shows changed): `scripts/metrics_diff.sh OLD_BIN NEW_BIN`. Each watches
# the same WAL, rollback, broken, missing and glob-matched databases for 3 s; the two scrapes
# must hold the same lines in the same order, HELP and TYPE included, with the same values, but
# for the series that measure the world as it moves (free disk, the daemon's own process, poll
# durations, and the fleet ratio drawn from free disk). Exit 1 on any other difference.
set -euo pipefail
old=$(realpath "$1"); new=$(realpath "$2")
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
python3 - "$dir" <<'PY'
import sqlite3, sys, os, shutil
d = sys.argv[1]
c = sqlite3.connect(f"{d}/app.db"); c.execute("pragma journal_mode=wal"); c.execute("create table t(x)")
c.executemany("insert into t values(?)", [(i,) for i in range(1000)]); c.commit(); c.close()
r = sqlite3.connect(f"{d}/legacy.db"); r.execute("create table a(b)"); r.execute("insert into a values(1)"); r.commit(); r.close()
open(f"{d}/broken.db", "wb").write(b"not a database at all" * 100)
os.makedirs(f"{d}/t"); shutil.copy(f"{d}/legacy.db", f"{d}/t/one.db"); shutil.copy(f"{d}/legacy.db", f"{d}/t/two.db")
PY
cat > "$dir/cfg.yaml" <<YML
databases:
  - {path: $dir/app.db, name: app}
  - {path: $dir/legacy.db, name: legacy}
  - {path: $dir/broken.db, name: broken}
  - {path: $dir/missing.db, name: missing}
  - glob: $dir/t/*.db
team: {backend_engineers: 5, regions: 2}
YML
scrape() {
  local bin=$1 out=$2 addr="$dir/addr.$2"
  "$bin" run --config "$dir/cfg.yaml" --web.listen-address 127.0.0.1:0 --web.address-file "$addr" \
    --poll-interval 200ms >"$dir/log.$2" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do [ -s "$addr" ] && break; sleep 0.1; done
  sleep 3
  curl -sf --max-time 10 "http://$(cat "$addr")/metrics" >"$dir/$out.prom"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
scrape "$old" old
scrape "$new" new
moving='^(process_resident_memory_bytes|process_virtual_memory_bytes|process_start_time_seconds|process_cpu_seconds_total|process_open_fds|sqlite_filesystem_free_bytes|sqlite_filesystem_avail_bytes|sqlite_fleet_threshold_nearest_ratio|sqlite_ops_poll_duration_seconds)[{ ]'
keys() { sed -E 's/ [^ ]+$//' "$1"; }
steady() { grep -Ev "$moving" "$1"; }
if ! diff <(keys "$dir/old.prom") <(keys "$dir/new.prom"); then
  echo "metrics_diff: the series, their order or their HELP/TYPE differ"; exit 1
fi
if ! diff <(steady "$dir/old.prom") <(steady "$dir/new.prom"); then
  echo "metrics_diff: values differ outside the series that measure the world"; exit 1
fi
echo "metrics_diff: $(grep -c . "$dir/new.prom") lines, the same series in the same order; values equal but for $(diff "$dir/old.prom" "$dir/new.prom" | grep -c '^>' || true) lines of moving series"
