//! Input validation: each function checks one kind of field and names it in the error.

use super::{error::Error, limits};

/// Checks a board slug: `^[a-z0-9][a-z0-9_-]{0,63}$`.
pub fn slug(field: &'static str, value: &str) -> Result<(), Error> {
    let bytes = value.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes[1.min(bytes.len())..]
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
    if first_ok && rest_ok && bytes.len() <= 64 {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{value:?} is not a board slug (lowercase letters, digits, '_' and '-', 1 to 64, starting with a letter or digit)"
            ),
        ))
    }
}

/// Checks a profile-like name (assignee, default assignee): `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`.
/// Empty is allowed and means "none".
pub fn profile(field: &'static str, value: &str) -> Result<(), Error> {
    if value.is_empty() || is_token(value, b"._-") {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{value:?} is not a profile name (letters, digits, '.', '_' and '-', 1 to 64, starting with a letter or digit)"
            ),
        ))
    }
}

/// Checks a list of profiles a session runs or a notifier serves: 1 to 64 names, none empty.
pub fn profiles(field: &'static str, list: &[String]) -> Result<(), Error> {
    if list.is_empty() {
        return Err(Error::invalid(field, "name at least one profile"));
    }
    list_len(field, list)?;
    for name in list {
        if name.is_empty() {
            return Err(Error::invalid(
                field,
                "an empty profile name is not a profile",
            ));
        }
        profile(field, name)?;
    }
    Ok(())
}

/// Checks a capability name: `^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`.
pub fn capability(field: &'static str, value: &str) -> Result<(), Error> {
    if is_token(value, b"._:-") {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{value:?} is not a capability (letters, digits, '.', '_', ':' and '-', 1 to 64, starting with a letter or digit)"
            ),
        ))
    }
}

fn is_token(value: &str, extra: &[u8]) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(b))
}

/// Checks a text that may be empty against a byte limit.
pub fn text(field: &'static str, value: &str, max: usize) -> Result<(), Error> {
    if value.len() > max {
        Err(Error::invalid(
            field,
            format!("is {} bytes; the limit is {max}", value.len()),
        ))
    } else if value.contains('\0') {
        Err(Error::invalid(field, "contains a NUL character"))
    } else {
        Ok(())
    }
}

/// Checks an operator's reason (block, archive, reclaim): a text that may be empty, at most
/// [`limits::SUMMARY_MAX`] bytes, with no control character but newline and tab, so it reads
/// back on one terminal the way it was typed.
pub fn reason(field: &'static str, value: &str) -> Result<(), Error> {
    text(field, value, limits::SUMMARY_MAX)?;
    match value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        Some(c) => Err(Error::invalid(
            field,
            format!("contains the control character {c:?}; only newline and tab are allowed"),
        )),
        None => Ok(()),
    }
}

/// Checks a text that must have something besides white space.
pub fn required_text(field: &'static str, value: &str, max: usize) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    text(field, value, max)
}

/// Checks an attachment's file name: 1 to 255 bytes, not blank, no control characters. It is
/// only ever a name (shown, and sent back in a download's `Content-Disposition`), never a
/// path, so `../x` is accepted as the name `../x`.
pub fn file_name(field: &'static str, value: &str) -> Result<(), Error> {
    required_text(field, value, limits::ATTACHMENT_NAME_MAX)?;
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "contains a control character"));
    }
    Ok(())
}

/// Checks a media type of the form `type/subtype` (RFC 6838 token characters, at most 127
/// bytes, no parameters).
pub fn media_type(field: &'static str, value: &str) -> Result<(), Error> {
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let well_formed = value
        .split_once('/')
        .is_some_and(|(kind, sub)| token(kind) && token(sub));
    if value.len() > limits::MEDIA_TYPE_MAX {
        Err(Error::invalid(
            field,
            format!(
                "is {} bytes; the limit is {}",
                value.len(),
                limits::MEDIA_TYPE_MAX
            ),
        ))
    } else if !well_formed {
        Err(Error::invalid(
            field,
            format!("{value:?} is not a media type like text/plain"),
        ))
    } else {
        Ok(())
    }
}

/// Checks a task priority.
pub fn priority(field: &'static str, value: i32) -> Result<(), Error> {
    if value.unsigned_abs() > limits::PRIORITY_MAX.unsigned_abs() {
        Err(Error::invalid(
            field,
            format!("{value} is out of range -{0}..={0}", limits::PRIORITY_MAX),
        ))
    } else {
        Ok(())
    }
}

/// Checks a numeric setting against an inclusive upper bound.
pub fn at_most<T: PartialOrd + std::fmt::Display>(
    field: &'static str,
    value: T,
    max: T,
) -> Result<(), Error> {
    if value > max {
        Err(Error::invalid(
            field,
            format!("{value} is more than the limit {max}"),
        ))
    } else {
        Ok(())
    }
}

/// Turns a requested page size into the one used: 0 means the default.
pub fn page_size(field: &'static str, value: u32, default: u32) -> Result<u32, Error> {
    match value {
        0 => Ok(default),
        n if n > limits::PAGE_SIZE_MAX => Err(Error::invalid(
            field,
            format!("{n} is more than the limit {}", limits::PAGE_SIZE_MAX),
        )),
        n => Ok(n),
    }
}

/// Checks a list's length.
pub fn list_len<T>(field: &'static str, list: &[T]) -> Result<(), Error> {
    if list.len() > limits::LIST_MAX {
        Err(Error::invalid(
            field,
            format!(
                "has {} entries; the limit is {}",
                list.len(),
                limits::LIST_MAX
            ),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["default", "a", "0", "team-a_1", &"a".repeat(64)] {
            assert!(slug("slug", good).is_ok(), "{good}");
        }
        for bad in ["", "A", "-a", "_a", "a b", "a.b", "é", &"a".repeat(65)] {
            let err = slug("slug", bad).unwrap_err();
            assert!(err.to_string().contains("slug"), "{err}");
        }
    }

    #[test]
    fn profiles_and_capabilities() {
        assert!(profile("assignee", "").is_ok());
        assert!(profile("assignee", "coder.v2_x-1").is_ok());
        assert!(profile("assignee", ".x").is_err());
        assert!(profile("assignee", "a:b").is_err());
        assert!(capability("required_capabilities", "gpu:a100").is_ok());
        assert!(capability("required_capabilities", "").is_err());
    }

    #[test]
    fn file_names_are_names_not_paths() {
        for good in [
            "report.pdf",
            "../x",
            "a/b\\c",
            "résumé 2026.txt",
            &"n".repeat(255),
        ] {
            assert!(file_name("name", good).is_ok(), "{good}");
        }
        for bad in ["", "  ", "a\nb", "a\tb", "x\0", "\u{7f}", &"n".repeat(256)] {
            assert!(file_name("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn media_types() {
        for good in ["text/plain", "application/vnd.ms-excel", "image/svg+xml"] {
            assert!(media_type("media_type", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "text",
            "/plain",
            "text/",
            "text/plain; charset=utf-8",
            "a/b/c",
            "t\n/x",
        ] {
            assert!(media_type("media_type", bad).is_err(), "{bad:?}");
        }
        assert!(media_type("media_type", &format!("a/{}", "b".repeat(126))).is_err());
    }

    #[test]
    fn texts() {
        assert!(required_text("title", "  ", 10).is_err());
        assert!(required_text("title", "ok", 10).is_ok());
        assert!(text("body", "", 10).is_ok());
        let err = text("body", "12345678901", 10).unwrap_err().to_string();
        assert!(
            err.contains("body") && err.contains("11 bytes") && err.contains("10"),
            "{err}"
        );
        assert!(text("body", "a\0b", 10).is_err());
    }

    #[test]
    fn reasons_take_newlines_and_tabs_but_no_other_control_character() {
        assert!(reason("reason", "").is_ok());
        assert!(reason("reason", "disk full\n\tsee the log").is_ok());
        assert!(reason("reason", &"x".repeat(limits::SUMMARY_MAX)).is_ok());
        for bad in ["a\rb", "a\u{1b}[31mb", "a\0b", "a\u{7f}b", "a\u{85}b"] {
            let err = reason("reason", bad).unwrap_err().to_string();
            assert!(err.contains("reason"), "{bad:?}: {err}");
        }
        let err = reason("reason", &"x".repeat(limits::SUMMARY_MAX + 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("4097 bytes"), "{err}");
    }

    #[test]
    fn priorities_at_the_edges() {
        assert!(priority("priority", limits::PRIORITY_MAX).is_ok());
        assert!(priority("priority", -limits::PRIORITY_MAX).is_ok());
        assert!(priority("priority", i32::MIN).is_err(), "must not overflow");
        assert!(priority("priority", i32::MAX).is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size("page_size", 0, 100).unwrap(), 100);
        assert_eq!(page_size("page_size", 7, 100).unwrap(), 7);
        assert!(page_size("page_size", limits::PAGE_SIZE_MAX + 1, 100).is_err());
    }
}
