//! Sign-in throttling: failed attempts are counted per account and per client
//! address within a sliding window; past the limit, attempts are refused
//! before any password is checked.
//!
//! The counters live in this process. With several server nodes each node
//! counts on its own, which still bounds guessing to limit × nodes.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

/// Limits for sign-in attempts.
pub struct LoginLimiter {
    max_per_account: u32,
    max_per_address: u32,
    window: Duration,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

/// Past this many tracked keys, stale ones are swept on the next failure.
const SWEEP_AT: usize = 10_000;

impl LoginLimiter {
    pub fn new(max_per_account: u32, max_per_address: u32, window: Duration) -> Self {
        LoginLimiter {
            max_per_account,
            max_per_address,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, address: IpAddr) -> [Key; 2] {
        [Key::Account(account.to_lowercase()), Key::Address(address)]
    }

    /// `Err(wait)` when this account or address must wait before trying again.
    pub fn check(&self, account: &str, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = Duration::ZERO;
        for key in Self::keys(account, address) {
            let max = match key {
                Key::Account(_) => self.max_per_account,
                Key::Address(_) => self.max_per_address,
            } as usize;
            if let Some(times) = map.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    times.pop_front();
                }
                if times.len() >= max {
                    if let Some(oldest) = times.front() {
                        wait = wait.max(self.window - now.duration_since(*oldest));
                    }
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    pub fn record_failure(&self, account: &str, address: IpAddr, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SWEEP_AT {
            let window = self.window;
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        for key in Self::keys(account, address) {
            map.entry(key).or_default().push_back(now);
        }
    }

    /// A successful sign-in clears the account's failures (not the address's).
    pub fn record_success(&self, account: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&Key::Account(account.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn account_is_blocked_after_max_failures_then_released() {
        let l = LoginLimiter::new(3, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check("Ann", A, t0).unwrap();
            l.record_failure("Ann", A, t0);
        }
        let wait = l.check("ann", B, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        l.check("bob", A, t0).unwrap();
        l.check("ann", A, t0 + Duration::from_secs(60)).unwrap();
    }

    #[test]
    fn address_is_blocked_across_accounts() {
        let l = LoginLimiter::new(100, 2, Duration::from_secs(60));
        let t0 = Instant::now();
        l.record_failure("a", A, t0);
        l.record_failure("b", A, t0);
        assert!(l.check("c", A, t0).is_err());
        l.check("c", B, t0).unwrap();
    }

    #[test]
    fn success_clears_the_account() {
        let l = LoginLimiter::new(2, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        l.record_failure("a", A, t0);
        l.record_success("a");
        l.record_failure("a", A, t0);
        l.check("a", A, t0).unwrap();
    }
}
