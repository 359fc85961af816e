//! Native platform services.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now; `-1` for a clock before 1970, which every store then refuses as a bad clock
/// (rather than taking it for 1970 and expiring, or reviving, everything).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(-1, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Fills `dest` from the operating system's CSPRNG (a system call costs well under a microsecond here).
pub fn random(dest: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::fill(dest)
}
