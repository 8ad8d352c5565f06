//! Identifiers the service assigns: tasks `t_` and runs `r_`, each followed by 16 lowercase hex
//! digits of randomness, so ids reveal nothing and never collide across boards.

use crate::error::Error;

/// Prefix of task ids.
pub const TASK: &str = "t_";
/// Prefix of run ids.
pub const RUN: &str = "r_";

/// A fresh id with the given prefix.
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

/// Checks that `value` looks like an id with the prefix (`t_` or `r_` and 16 hex digits).
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
