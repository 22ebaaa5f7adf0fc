//! The process's open-file budget: a reserve of the descriptor limit kept for everything else,
//! the rest for watched files ([`acquire`]); when it runs short, quiet databases give theirs
//! back between polls ([`should_release`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// The least kept for everything but watched files.
pub const MIN_RESERVE: u64 = 64;
/// The most kept: beyond this, more databases are worth more than more HTTP connections.
pub const MAX_RESERVE: u64 = 1024;

/// The limit and how it is shared.
///
/// A watched file keeps its descriptor between polls (see `file`), so enough databases would
/// take every descriptor the process may open, and the HTTP server could then accept no
/// connection: the host would vanish from Prometheus and a liveness probe would restart the
/// daemon in a loop. So a reserve of the limit is kept for everything else (HTTP connections,
/// Alertmanager, Litestream's replicas, the short reads of `/proc`), and watched files may take
/// only what is left. Within that, descriptors are kept where they pay: when they run short,
/// quiet databases give theirs back after each poll and open them again at the next
/// ([`should_release`]), so ten thousand databases are all polled under a limit of 4,096. Only
/// a limit below the reserve, what is open at start and one database's three files leaves
/// databases down (all of a database's files or none: [`is_exhausted`]), with an error that
/// names the limit and how to raise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// RLIMIT_NOFILE (the soft limit, already raised to the hard one).
    pub limit: u64,
    /// Descriptors open when the plan was made (standard streams, the runtime, the listener).
    pub in_use: u64,
    /// Kept for everything but watched files.
    pub reserve: u64,
    /// What watched files may hold at once.
    pub for_files: u64,
}

impl Plan {
    /// A quarter of the limit is kept, within [`MIN_RESERVE`] and [`MAX_RESERVE`]. Pure.
    pub fn new(limit: u64, in_use: u64) -> Plan {
        let reserve = (limit / 4).clamp(MIN_RESERVE, MAX_RESERVE);
        Plan {
            limit,
            in_use,
            reserve,
            for_files: limit.saturating_sub(in_use + reserve),
        }
    }

    /// HTTP connections served at once: half the reserve, so that the rest of it (Alertmanager,
    /// Litestream, /proc) still has room while every connection is open.
    pub fn http_connections(&self) -> usize {
        (self.reserve / 2) as usize
    }

    /// What to tell the operator when a file is refused.
    pub fn exhausted_message(&self) -> String {
        format!(
            "no file descriptor left for it: sqlite-ops may open {} files (RLIMIT_NOFILE) and keeps {} for HTTP, Alertmanager and Litestream; the other watched files hold the remaining {}. Raise the limit: LimitNOFILE= in the systemd unit, `ulimit -n` in the shell that starts it, or the container runtime's nofile ulimit (a WAL database needs up to 3 while it is polled)",
            self.limit, self.reserve, self.for_files
        )
    }
}

struct Budget {
    plan: Plan,
    held: AtomicU64,
    /// Watched files refused a descriptor since start.
    refused: AtomicU64,
    /// Databases that gave their descriptors back after a poll, since start.
    released: AtomicU64,
    /// Whether the first refusal has been logged (once per process, not per poll).
    logged: AtomicBool,
}

static BUDGET: OnceLock<Budget> = OnceLock::new();

/// The limit as it is now, and the descriptors open now.
pub fn current() -> std::io::Result<(u64, u64)> {
    // SAFETY: getrlimit writes the struct we pass.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let in_use = std::fs::read_dir("/proc/self/fd")?.count() as u64;
    Ok((lim.rlim_cur, in_use))
}

/// Makes the budget from the current limit; the first call wins (the limit does not change
/// while the daemon runs). Returns the plan in force.
///
/// The budget is process-wide because the limit (RLIMIT_NOFILE) is. Until this is called (by
/// `run`), it is unlimited: `check` and library users open what they need.
pub fn configure() -> std::io::Result<Plan> {
    // A reload asks again: the answer stands, and counting /proc/self/fd (every watched file
    // by then) would be work for nothing.
    if let Some(b) = BUDGET.get() {
        return Ok(b.plan);
    }
    let (limit, in_use) = current()?;
    let budget = BUDGET.get_or_init(|| Budget {
        plan: Plan::new(limit, in_use),
        held: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        released: AtomicU64::new(0),
        logged: AtomicBool::new(false),
    });
    Ok(budget.plan)
}

/// The plan in force, if one was configured.
pub fn plan() -> Option<Plan> {
    BUDGET.get().map(|b| b.plan)
}

/// How the budget is used now, for the daemon's own series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub plan: Plan,
    /// Descriptors watched files hold now.
    pub held: u64,
    /// Watched files refused a descriptor since start (each poll of a database left down
    /// asks again).
    pub refused: u64,
    /// Databases that gave their descriptors back after a poll, since start.
    pub released: u64,
}

/// The budget's use now; `None` until one is configured (`check`, library users).
pub fn usage() -> Option<Usage> {
    BUDGET.get().map(|b| Usage {
        plan: b.plan,
        held: b.held.load(Ordering::Relaxed),
        refused: b.refused.load(Ordering::Relaxed),
        released: b.released.load(Ordering::Relaxed),
    })
}

/// A database gave its descriptors back after its poll ([`should_release`] said so).
pub fn note_release() {
    if let Some(b) = BUDGET.get() {
        b.released.fetch_add(1, Ordering::Relaxed);
    }
}

/// Descriptors one database needs while it is polled: the database, `-wal` and `-shm`.
pub const PER_DATABASE: u64 = 3;

/// Whether a database just polled should give its descriptors back until its next poll,
/// opening them again then: always once keeping them would leave no room to poll one more
/// database, and, for a quiet database, once watched files hold more than half the budget. So
/// many more databases than descriptors are all polled, and the busy ones keep theirs (their
/// write lock is sampled between polls). Never without a budget.
pub fn should_release(quiet: bool) -> bool {
    BUDGET.get().is_some_and(|b| {
        let held = b.held.load(Ordering::Relaxed);
        held + PER_DATABASE > b.plan.for_files || (quiet && held > b.plan.for_files / 2)
    })
}

/// One descriptor of the budget, given back when dropped (with the file it was taken for).
#[derive(Debug)]
pub struct Slot {
    counted: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.counted {
            if let Some(b) = BUDGET.get() {
                b.held.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// The budget is spent: no descriptor for one more watched file. The text says the limit and
/// how to raise it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Exhausted(String);

/// Whether `e` is [`acquire`]'s refusal: a database with any of its files refused is down,
/// never polled in part (without its `-shm`, commits would be counted in the WAL alone and
/// miss those already checkpointed).
pub fn is_exhausted(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Exhausted>())
}

/// A descriptor for a watched file, or an error that says the budget is spent and how to
/// raise the limit (logged the first time only).
pub fn acquire() -> std::io::Result<Slot> {
    let Some(b) = BUDGET.get() else {
        return Ok(Slot { counted: false });
    };
    let taken = b
        .held
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
            (held < b.plan.for_files).then_some(held + 1)
        });
    match taken {
        Ok(_) => Ok(Slot { counted: true }),
        Err(_) => {
            b.refused.fetch_add(1, Ordering::Relaxed);
            let message = b.plan.exhausted_message();
            if !b.logged.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    limit = b.plan.limit,
                    reserve = b.plan.reserve,
                    "databases left unwatched: {message}"
                );
            }
            Err(std::io::Error::other(Exhausted(message)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_is_kept_within_bounds() {
        let p = Plan::new(1024, 10);
        assert_eq!(
            (p.reserve, p.for_files, p.http_connections()),
            (256, 758, 128)
        );
        let p = Plan::new(100, 10);
        assert_eq!((p.reserve, p.for_files), (64, 26));
        let p = Plan::new(1 << 20, 10);
        assert_eq!(p.reserve, 1024);
        let p = Plan::new(50, 10);
        assert_eq!(p.for_files, 0, "below the reserve: no watched file at all");
        let m = Plan::new(1024, 10).exhausted_message();
        assert!(m.contains("1024") && m.contains("LimitNOFILE") && m.contains("ulimit -n"));
    }
}
