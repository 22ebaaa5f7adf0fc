//! The daemon's own process, as every Prometheus exporter exposes it: `process_*` with the names,
//! units and meanings of client_golang's process collector, read from /proc at scrape time.

use super::fleet::Sink;

/// Adds the process series of this process with `add(name, labels, value)`. They have the names,
/// units and meanings of client_golang's process collector so that dashboards and mixins made
/// for other exporters work unchanged. Read from /proc (through `procfs`) at scrape time; a
/// figure that cannot be read is left out, never a failed scrape.
pub fn add(add: &mut Sink<'_, '_>) {
    let Ok(me) = procfs::process::Process::myself() else {
        return;
    };
    if let Ok(stat) = me.stat() {
        let ticks = procfs::ticks_per_second() as f64;
        // Seconds as a float, to the clock tick (10 ms), not whole seconds: a sidecar using a
        // few percent of a core would otherwise move its counter once a minute.
        add(
            "process_cpu_seconds_total",
            &[],
            (stat.utime + stat.stime) as f64 / ticks,
        );
        add("process_virtual_memory_bytes", &[], stat.vsize as f64);
        add(
            "process_resident_memory_bytes",
            &[],
            (stat.rss * procfs::page_size()) as f64,
        );
        if let Ok(boot) = procfs::boot_time_secs() {
            add(
                "process_start_time_seconds",
                &[],
                boot as f64 + stat.starttime as f64 / ticks,
            );
        }
        add("process_threads", &[], stat.num_threads as f64);
    }
    if let Ok(n) = me.fd_count() {
        add("process_open_fds", &[], n as f64);
    }
    if let Ok(limits) = me.limits() {
        if let procfs::process::LimitValue::Value(n) = limits.max_open_files.soft_limit {
            add("process_max_fds", &[], n as f64);
        }
    }
}
