//! Restart back-off, as Docker does it: 100 ms, doubling at each restart up to a cap, and back to
//! the start once an instance has stayed up long enough.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub cap: Duration,
    /// An instance that ran at least this long starts the back-off over.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            cap: Duration::from_secs(60),
            reset_after: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before the next start, given the previous delay (`None` before the first
    /// restart) and how long the last run lasted.
    pub fn next(&self, previous: Option<Duration>, ran_for: Duration) -> Duration {
        match previous {
            Some(p) if ran_for < self.reset_after => (p * 2).min(self.cap),
            _ => self.initial,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets_after_a_long_run() {
        let b = Backoff::default();
        let short = Duration::from_millis(5);
        let mut d = b.next(None, short);
        let mut seen = vec![d];
        for _ in 0..12 {
            d = b.next(Some(d), short);
            seen.push(d);
        }
        assert_eq!(seen[..4], [100, 200, 400, 800].map(Duration::from_millis));
        assert_eq!(*seen.last().unwrap(), Duration::from_secs(60));
        assert_eq!(
            b.next(Some(d), Duration::from_secs(10)),
            Duration::from_millis(100)
        );
    }
}
