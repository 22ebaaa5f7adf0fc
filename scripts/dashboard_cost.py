#!/usr/bin/env python3
"""What the dashboards ask a Prometheus for on a large host (issue 37, BENCHMARKS.md "Fleet"):
the release daemon over every *.db in DIR (`metrics:` as given, default [health]), scraped every
5 s by a real Prometheus; once it holds a minute of scrapes, evaluates each dashboard's `db`
variable and then every panel query as Grafana would send it with "All" selected, and prints the
most series any panel returns, against the same queries with every database (`db=~".*"`).

Usage: cargo build --release; python3 scripts/dashboard_cost.py DIR [METRICS]
Needs Debian's prometheus. Network traffic stays on 127.0.0.1.
"""
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "sqlite-ops"
DAEMON, PROM = "127.0.0.1:19950", "127.0.0.1:19951"


def query(q, timeout=60):
    url = f"http://{PROM}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)["data"]["result"]


def wait(what, check, deadline):
    end = time.time() + deadline
    while time.time() < end:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(2)
    sys.exit(f"timed out waiting for {what}")


def substitute(expr, db):
    return (expr.replace("$job", ".*").replace("$instance", ".*")
            .replace("$db", db).replace("$__rate_interval", "20s"))


def cost(board, dbs_regex):
    """(most series of one panel, its title) with $db = dbs_regex."""
    worst = (0, "")
    for p in board["panels"]:
        for t in p.get("targets", []):
            n = len(query(substitute(t["expr"], dbs_regex)))
            worst = max(worst, (n, p["title"]))
    return worst


def main():
    folder = sys.argv[1]
    metrics = sys.argv[2] if len(sys.argv) > 2 else "[health]"
    n = len(list(pathlib.Path(folder).glob("*.db")))
    with tempfile.TemporaryDirectory() as d:
        cfg = pathlib.Path(d) / "c.yml"
        cfg.write_text(f"poll_interval: 1s\nmetrics: {metrics}\ndatabases:\n  - glob: {folder}/*.db\n")
        (pathlib.Path(d) / "p.yml").write_text(
            "global: {scrape_interval: 5s, scrape_timeout: 4s}\n"
            f"scrape_configs:\n  - job_name: sqlite-ops\n    static_configs: [{{targets: ['{DAEMON}']}}]\n")
        daemon = subprocess.Popen([str(BIN), "run", "--config", str(cfg), "--web.listen-address", DAEMON],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        prom = subprocess.Popen(["prometheus", f"--config.file={d}/p.yml", f"--storage.tsdb.path={d}/data",
                                 f"--web.listen-address={PROM}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait("a minute of scrapes", lambda: float(query(
                'count_over_time(sqlite_ops_build_info[2m])')[0]["value"][1]) >= 12, 300)
            for name in ["overview", "fleet"]:
                board = json.loads((ROOT / "dashboards" / f"sqlite-ops-{name}.json").read_text())
                var = next(v for v in board["templating"]["list"] if v["name"] == "db")
                inner = re.fullmatch(r"query_result\((.*)\)", var["query"]["query"]).group(1)
                listed = [s["metric"]["db"] for s in query(substitute(inner, ".*"))]
                all_regex = "(" + "|".join(re.escape(x) for x in listed) + ")"
                bounded, title = cost(board, all_regex)
                every, every_title = cost(board, ".*")
                print(f"| {name} | {n} | {metrics} | {len(listed)} | {bounded} ({title}) | {every} ({every_title}) |")
        finally:
            for p in (daemon, prom):
                os.killpg(p.pid, signal.SIGTERM)
                p.wait()


if __name__ == "__main__":
    main()
