//! Identifiers the service assigns: a prefix and 16 lowercase hex digits (claim tokens: 32).
//!
//! Task (`t_`) and run (`r_`) ids are *ordered*: a millisecond timestamp in the high 48 bits and
//! a counter in the low 16, strictly increasing within the process and started above every id
//! already stored. New rows then land at the end of their indexes instead of on a random page,
//! which roughly halves the pages a group commit writes. A claim token is a bearer credential
//! and must not be guessable: it is an ordered id followed by 16 random hex digits
//! ([`claim_token`]), so that claims too land at the end of their index. Session and
//! subscription ids are random ([`fresh`]).

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
    let mut id = String::with_capacity(prefix.len() + 16);
    id.push_str(prefix);
    push_random_hex(&mut id);
    id
}

/// A fresh claim token: an ordered id with the claim prefix, then 16 random hex digits (64
/// bits from the operating system's random source).
pub fn claim_token() -> String {
    let mut token = ordered(CLAIM);
    push_random_hex(&mut token);
    token
}

/// Appends 16 random lowercase hex digits.
fn push_random_hex(id: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    for b in bytes {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// How many lowercase hex digits follow `prefix` in `value`, if nothing else does.
fn hex_digits(prefix: &str, value: &str) -> Option<usize> {
    let hex = value.strip_prefix(prefix)?;
    hex.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        .then_some(hex.len())
}

/// The refusal of a malformed id in `field`.
fn malformed(field: &'static str, value: &str, form: String) -> Error {
    if value.is_empty() {
        Error::invalid(field, "must not be empty")
    } else {
        Error::invalid(field, format!("{value:?} is not {form}"))
    }
}

/// Checks that `value` looks like an id with the prefix (e.g. `t_`) and 16 hex digits.
pub fn check(field: &'static str, prefix: &str, value: &str) -> Result<(), Error> {
    match hex_digits(prefix, value) {
        Some(16) => Ok(()),
        _ => Err(malformed(
            field,
            value,
            format!("an id ({prefix} followed by 16 lowercase hex digits)"),
        )),
    }
}

/// Checks that `value` looks like a claim token: `c_` and 32 hex digits, or 16 for a token
/// issued by a kanband from before tokens had an ordered half (its claim may still be live).
pub fn check_claim_token(field: &'static str, value: &str) -> Result<(), Error> {
    match hex_digits(CLAIM, value) {
        Some(16 | 32) => Ok(()),
        _ => Err(malformed(
            field,
            value,
            format!("a claim token ({CLAIM} followed by 32 lowercase hex digits)"),
        )),
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
        let before = clock::now_ms() as u64;
        let a = ordered(TASK);
        let after = clock::now_ms() as u64;
        let millis = u64::from_str_radix(&a[2..], 16).unwrap() >> 16;
        assert!(
            (before..=after).contains(&millis),
            "{a} carries its time in its high 48 bits"
        );
        let b = ordered(TASK);
        assert!(b > a, "{b} > {a}");
        check("id", TASK, &b).unwrap();
        ordered_after("t_ffff000000000000");
        let c = ordered(RUN);
        assert!(c.as_str() > "r_ffff000000000000", "{c}");
    }

    #[test]
    fn claim_tokens_increase_in_their_first_half_and_differ_in_their_random_second() {
        let a = claim_token();
        let b = claim_token();
        assert_eq!(a.len(), 2 + 32, "{a}");
        check_claim_token("claim_token", &a).unwrap();
        assert!(b[..18] > a[..18], "{b} after {a}");
        let c = claim_token();
        // 64 random bits each: three equal halves would be a broken random source.
        assert!(a[18..] != b[18..] || b[18..] != c[18..], "{a} {b} {c}");
        check_claim_token("claim_token", "c_0123456789abcdef").expect("a token of 16 digits");
        for bad in [
            "",
            "c_",
            "c_0123456789abcdef0123",
            "c_0123456789abcdef0123456789abcdeF",
            "c_0123456789abcdef0123456789abcdef0",
            "t_0123456789abcdef0123456789abcdef",
        ] {
            assert!(check_claim_token("claim_token", bad).is_err(), "{bad}");
        }
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
