#!/bin/bash
# What Prometheus pays for each metrics: choice (issue 19, BENCHMARKS.md "Fleet"): the release
# daemon over every *.db in DIR, scraped every 5 s by a real Prometheus for 90 s; prints the
# samples per scrape, Prometheus's head series and RSS, the scrape duration and the daemon's RSS.
# Usage: scripts/prometheus_cost.sh DIR   (cargo build --release first; needs prometheus)
set -u
DIR=${1:?usage: $0 DIR_OF_DATABASES}
BIN=$(dirname "$0")/../target/release/sqlite-ops
for g in "[all]" "[health]" "[]"; do
  d=$(mktemp -d)
  printf "poll_interval: 1s\nmetrics: %s\nthresholds:\n  filesystem_free: {warning: 'off', critical: 'off'}\ndatabases:\n  - glob: %s/*.db\n" "$g" "$DIR" > "$d/c.yml"
  "$BIN" run --config "$d/c.yml" --web.listen-address 127.0.0.1:19940 > "$d/daemon.log" 2>&1 &
  dp=$!
  cat > "$d/prom.yml" <<P
global: {scrape_interval: 5s, scrape_timeout: 4s}
scrape_configs:
  - job_name: sqlite-ops
    static_configs: [{targets: ['127.0.0.1:19940']}]
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:19941']}]
P
  sleep 5
  prometheus --config.file="$d/prom.yml" --storage.tsdb.path="$d/data" --web.listen-address=127.0.0.1:19941 > "$d/prom.log" 2>&1 &
  pp=$!
  sleep 90
  q() { curl -s --max-time 10 "127.0.0.1:19941/api/v1/query" --data-urlencode "query=$1" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'; }
  echo "$g head_series=$(q prometheus_tsdb_head_series) prom_rss_mib=$(q 'process_resident_memory_bytes{job="prometheus"}/2^20') scrape_s=$(q 'scrape_duration_seconds{job="sqlite-ops"}') samples=$(q 'scrape_samples_scraped{job="sqlite-ops"}') daemon_rss_kib=$(awk '/VmRSS/{print $2}' /proc/$dp/status)"
  kill $pp $dp; wait $pp $dp 2>/dev/null
  rm -rf "$d"
done
