//! HTTP basic auth against bcrypt hashes (exporter-toolkit's `basic_auth_users`).

use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

/// Remembered successful checks; the set is emptied when full (a bound, not an LRU: there are
/// few distinct scrapers).
const CACHE_LIMIT: usize = 1024;

/// The users and their bcrypt hashes, and the successful checks remembered.
///
/// bcrypt is slow on purpose (tens of ms at cost 10), and Prometheus sends the same credentials
/// on every scrape, so a successful check is remembered: by a SHA-256 of user, password and hash,
/// never the password itself. A changed hash (a reload) therefore misses the cache. Unknown users
/// cost one bcrypt too, so timing does not tell which user names exist.
pub struct BasicAuth {
    /// Checks run at once, at most one per core: a flood of wrong passwords (each a bcrypt)
    /// queues here instead of taking every core from the poller.
    pub slots: tokio::sync::Semaphore,
    users: BTreeMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
    /// A hash of nothing anyone knows, checked for unknown users.
    decoy: String,
}

impl BasicAuth {
    pub fn new(users: BTreeMap<String, String>) -> BasicAuth {
        // The decoy costs what a real user's check costs.
        let cost = users
            .values()
            .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let decoy = bcrypt::hash(b"sqlite-ops decoy", cost).unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        BasicAuth {
            slots: tokio::sync::Semaphore::new(cores),
            users,
            verified: Mutex::new(HashSet::new()),
            decoy,
        }
    }

    /// Whether the `Authorization` header value grants access. Blocking: may run bcrypt.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(decode) else {
            return false;
        };
        let (hash, known) = match self.users.get(&user) {
            Some(h) => (h.as_str(), true),
            None => (self.decoy.as_str(), false),
        };
        let key: [u8; 32] = {
            let mut d = Sha256::new();
            for part in [user.as_bytes(), b"\0", &password, b"\0", hash.as_bytes()] {
                d.update(part);
            }
            d.finalize().into()
        };
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if known && verified.contains(&key) {
            return true;
        }
        drop(verified);
        let ok = bcrypt::verify(&password, hash).unwrap_or(false) && known;
        if ok {
            verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= CACHE_LIMIT {
                verified.clear();
            }
            verified.insert(key);
        }
        ok
    }
}

/// `Basic base64(user:password)` into its parts. The password stays bytes: bcrypt takes bytes,
/// and a password need not be UTF-8.
pub fn decode(header: &[u8]) -> Option<(String, Vec<u8>)> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = raw.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(raw[..colon].to_vec()).ok()?;
    Some((user, raw[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
        .into_bytes()
    }

    #[test]
    fn decodes_basic_credentials_and_nothing_else() {
        assert_eq!(
            decode(&header("alice", "pa:ss")),
            Some(("alice".into(), b"pa:ss".to_vec()))
        );
        assert_eq!(decode(b"Bearer abc"), None);
        assert_eq!(decode(b"Basic !!!"), None);
        assert_eq!(decode(b"Basic YWxpY2U="), None, "no colon");
    }

    #[test]
    fn only_the_right_password_of_a_known_user_passes_and_is_remembered() {
        // Cost 4 keeps the test fast; `$2y$` is what htpasswd writes.
        let hash = bcrypt::hash("s3cret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let auth = BasicAuth::new(BTreeMap::from([("alice".to_string(), hash)]));
        assert!(auth.allows(Some(&header("alice", "s3cret"))));
        assert_eq!(auth.verified.lock().unwrap().len(), 1);
        assert!(
            auth.allows(Some(&header("alice", "s3cret"))),
            "from the cache"
        );
        assert!(!auth.allows(Some(&header("alice", "wrong"))));
        assert!(!auth.allows(Some(&header("bob", "s3cret"))));
        assert!(!auth.allows(Some(b"Basic YWxpY2U=")));
        assert!(!auth.allows(None));
        assert_eq!(auth.verified.lock().unwrap().len(), 1);
    }
}
