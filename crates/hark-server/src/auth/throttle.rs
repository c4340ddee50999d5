//! Sign-in throttling: attempts are counted per email and per client IP over a sliding window;
//! past the limit, sign-in answers 429 until the oldest attempt leaves the window.
//!
//! An attempt is counted as a failure before its password is checked, under the same lock as
//! the limit check, and forgiven when it succeeds. Checking and counting in two steps would let
//! many concurrent guesses all pass the check during the slow hash.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AuthError;

pub struct Throttle {
    max_per_email: u32,
    max_per_ip: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

fn email_key(email: &str) -> String {
    format!("email:{email}")
}

fn ip_key(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

impl Throttle {
    pub fn new(max_per_email: u32, max_per_ip: u32, window: Duration) -> Throttle {
        Throttle {
            max_per_email,
            max_per_ip,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses when the email or the IP has used up its attempts; otherwise counts this one.
    pub fn attempt(&self, email: &str, ip: IpAddr) -> Result<(), AuthError> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Keep the map from growing without bound under a spray of distinct emails.
        if failures.len() > 100_000 {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        let keys = [
            (email_key(email), self.max_per_email),
            (ip_key(ip), self.max_per_ip),
        ];
        for (key, max) in &keys {
            let Some(times) = failures.get_mut(key) else {
                continue;
            };
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                times.pop_front();
            }
            if times.len() >= *max as usize {
                let oldest = times.front().copied().unwrap_or(now);
                let retry_after = self
                    .window
                    .saturating_sub(now.duration_since(oldest))
                    .as_secs()
                    .max(1);
                return Err(AuthError::Throttled { retry_after });
            }
        }
        for (key, _) in keys {
            failures.entry(key).or_default().push_back(now);
        }
        Ok(())
    }

    /// Forgives a successful attempt: the email starts afresh, the IP gets its attempt back.
    pub fn succeeded(&self, email: &str, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&email_key(email));
        if let Some(times) = failures.get_mut(&ip_key(ip)) {
            times.pop_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_and_forgets_on_success() {
        let throttle = Throttle::new(2, 10, Duration::from_secs(60));
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(throttle.attempt("a@x.io", ip).is_ok());
        assert!(throttle.attempt("a@x.io", ip).is_ok());
        assert!(matches!(
            throttle.attempt("a@x.io", ip),
            Err(AuthError::Throttled { .. })
        ));
        assert!(
            throttle.attempt("b@x.io", ip).is_ok(),
            "other emails from the same IP still pass"
        );
        throttle.succeeded("a@x.io", ip);
        assert!(throttle.attempt("a@x.io", ip).is_ok());
    }

    #[test]
    fn limits_an_ip_across_emails() {
        let throttle = Throttle::new(100, 3, Duration::from_secs(60));
        let ip: IpAddr = [10, 0, 0, 1].into();
        for n in 0..3 {
            assert!(throttle.attempt(&format!("u{n}@x.io"), ip).is_ok());
        }
        assert!(matches!(
            throttle.attempt("new@x.io", ip),
            Err(AuthError::Throttled { .. })
        ));
    }

    #[test]
    fn concurrent_attempts_cannot_exceed_the_limit() {
        let throttle = std::sync::Arc::new(Throttle::new(5, 1000, Duration::from_secs(60)));
        let ip: IpAddr = [10, 0, 0, 2].into();
        let admitted: usize = (0..50)
            .map(|_| {
                let throttle = throttle.clone();
                std::thread::spawn(move || throttle.attempt("a@x.io", ip).is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| usize::from(t.join().unwrap_or(false)))
            .sum();
        assert_eq!(admitted, 5);
    }
}
