//! Sign-in throttling: failures are counted per email and per client IP over a sliding window;
//! past the limit, sign-in answers 429 until the oldest failure leaves the window.

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

impl Throttle {
    pub fn new(max_per_email: u32, max_per_ip: u32, window: Duration) -> Throttle {
        Throttle {
            max_per_email,
            max_per_ip,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(email: &str, ip: IpAddr) -> [String; 2] {
        [format!("email:{email}"), format!("ip:{ip}")]
    }

    /// Refuses when either the email or the IP has used up its failures.
    pub fn check(&self, email: &str, ip: IpAddr) -> Result<(), AuthError> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let [by_email, by_ip] = Self::keys(email, ip);
        for (key, max) in [(by_email, self.max_per_email), (by_ip, self.max_per_ip)] {
            let Some(times) = failures.get_mut(&key) else {
                continue;
            };
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                times.pop_front();
            }
            if times.len() >= max as usize {
                let oldest = times.front().copied().unwrap_or(now);
                let retry_after = self
                    .window
                    .saturating_sub(now.duration_since(oldest))
                    .as_secs()
                    .max(1);
                return Err(AuthError::Throttled { retry_after });
            }
        }
        Ok(())
    }

    pub fn failed(&self, email: &str, ip: IpAddr) {
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
        for key in Self::keys(email, ip) {
            failures.entry(key).or_default().push_back(now);
        }
    }

    pub fn succeeded(&self, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&format!("email:{email}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_and_forgets_on_success() {
        let throttle = Throttle::new(2, 10, Duration::from_secs(60));
        let ip: IpAddr = [127, 0, 0, 1].into();
        throttle.failed("a@x.io", ip);
        assert!(throttle.check("a@x.io", ip).is_ok());
        throttle.failed("a@x.io", ip);
        assert!(matches!(
            throttle.check("a@x.io", ip),
            Err(AuthError::Throttled { .. })
        ));
        assert!(
            throttle.check("b@x.io", ip).is_ok(),
            "other emails from the same IP still pass"
        );
        throttle.succeeded("a@x.io");
        assert!(throttle.check("a@x.io", ip).is_ok());
    }

    #[test]
    fn limits_an_ip_across_emails() {
        let throttle = Throttle::new(100, 3, Duration::from_secs(60));
        let ip: IpAddr = [10, 0, 0, 1].into();
        for n in 0..3 {
            throttle.failed(&format!("u{n}@x.io"), ip);
        }
        assert!(matches!(
            throttle.check("new@x.io", ip),
            Err(AuthError::Throttled { .. })
        ));
    }
}
