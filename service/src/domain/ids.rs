//! Identifiers the service assigns: a prefix and 16 lowercase hex digits.
//!
//! Task (`t_`) and run (`r_`) ids are *ordered*: a millisecond timestamp in the high 48 bits and
//! a counter in the low 16, strictly increasing within the process and started above every id
//! already stored. New rows then land at the end of their indexes instead of on a random page,
//! which roughly halves the pages a group commit writes. Claim tokens, session and subscription
//! ids stay random ([`fresh`]): a claim token is a bearer credential and must not be guessable.

use std::sync::atomic::{AtomicU64, Ordering};

use super::error::Error;
use crate::clock;

/// Prefix of task ids.
pub const TASK: &str = "t_";
/// Prefix of run ids.
pub const RUN: &str = "r_";
/// Prefix of attachment ids (ordered).
pub const ATTACHMENT: &str = "a_";
/// Prefix of claim tokens.
pub const CLAIM: &str = "c_";
/// Prefix of session ids.
pub const SESSION: &str = "s_";
/// Prefix of notification subscription ids.
pub const SUBSCRIPTION: &str = "n_";
/// The board that always exists and cannot be archived; an empty board in a request means it.
pub const DEFAULT_BOARD: &str = "default";

/// The last ordered id handed out (as a number).
static LAST_ORDERED: AtomicU64 = AtomicU64::new(0);

/// Makes every later ordered id larger than `id` (an ordered id already stored).
pub fn ordered_after(id: &str) {
    let Some(value) = id
        .get(2..)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
    else {
        return;
    };
    LAST_ORDERED.fetch_max(value, Ordering::SeqCst);
}

/// A fresh ordered id (tasks, runs, attachments): larger than every earlier one.
pub fn ordered(prefix: &str) -> String {
    let floor = (clock::now_ms().max(0) as u64) << 16;
    let previous = LAST_ORDERED
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(floor.max(last + 1))
        })
        .expect("the update always succeeds");
    format!("{prefix}{:016x}", floor.max(previous + 1))
}

/// A fresh random id with the given prefix.
pub fn fresh(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    let mut id = String::with_capacity(prefix.len() + 16);
    id.push_str(prefix);
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Checks that `value` looks like an id with the prefix (e.g. `t_`) and 16 hex digits.
pub fn check(field: &'static str, prefix: &str, value: &str) -> Result<(), Error> {
    let ok = value.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else if value.is_empty() {
        Err(Error::invalid(field, "must not be empty"))
    } else {
        Err(Error::invalid(
            field,
            format!("{value:?} is not an id ({prefix} followed by 16 lowercase hex digits)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_check() {
        let id = fresh(TASK);
        assert_eq!(id.len(), 18);
        check("id", TASK, &id).unwrap();
        assert_ne!(fresh(TASK), id);
    }

    #[test]
    fn ordered_ids_increase_and_stay_above_stored_ones() {
        let a = ordered(TASK);
        let b = ordered(TASK);
        assert!(b > a, "{b} > {a}");
        check("id", TASK, &b).unwrap();
        ordered_after("t_ffff000000000000");
        let c = ordered(RUN);
        assert!(c.as_str() > "r_ffff000000000000", "{c}");
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "t_",
            "t_123",
            "T_0123456789abcdef",
            "t_0123456789ABCDEF",
            "r_0123456789abcdef",
        ] {
            assert!(check("id", TASK, bad).is_err(), "{bad}");
        }
    }
}
