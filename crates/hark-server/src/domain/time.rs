//! Instants as microseconds since the Unix epoch: one integer that sorts and compares the same
//! in every database.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    fn from_datetime(t: OffsetDateTime) -> Self {
        Self((t.unix_timestamp_nanos() / 1000) as i64)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// `duration` from now.
    pub fn after(duration: std::time::Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self(Self::now().0.saturating_add(micros))
    }

    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1_000_000)))
    }

    /// RFC 3339 in UTC with microsecond precision, e.g. `2026-11-23T15:02:03.123456Z`: exact,
    /// so an instant read from one answer filters the next.
    pub fn to_rfc3339(self) -> String {
        let t = OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        t.format(&format).unwrap_or_default()
    }

    /// Parses any RFC 3339 instant (any offset).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .map(Self::from_datetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_microseconds_in_utc() {
        let t = Timestamp::parse_rfc3339("2026-11-23T16:02:03.123456+01:00").expect("valid");
        assert_eq!(t.to_rfc3339(), "2026-11-23T15:02:03.123456Z");
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
        assert!(Timestamp::parse_rfc3339("2026-13-01T00:00:00Z").is_none());
    }
}
