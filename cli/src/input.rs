//! The parsers of values people type, one per kind, used as clap `value_parser`s by all three
//! binaries so that `--addr`, a boolean environment variable or a duration means the same in
//! each of them. Each returns a message that names the value and the forms it accepts.

use std::time::Duration;

/// A kanband address in the form the clients connect to: `unix:/path` or `http://host:port`
/// (or `https://...`, passed through). Accepted, as grpcurl and etcdctl accept them:
///
/// - `host:port`, `localhost:50051`, `[::1]:50051`: HTTP/2 in clear to that host and port;
/// - `http://host:port` (and `https://`): as given;
/// - `unix:/path` or `unix:///path`: the Unix socket at that path;
/// - a bare path to a socket (`/run/kanband/kanband.sock`, `./kanband.sock`, anything with a
///   `/` and no `://`): the same as `unix:PATH`.
pub fn address(text: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "{text:?} is not an address: use host:port (localhost:50051), http://host:port, \
             unix:/path/to/kanband.sock or a path to the socket"
        )
    };
    let text = text.trim();
    if let Some(path) = text.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        return if path.is_empty() {
            Err(bad())
        } else {
            Ok(format!("unix:{path}"))
        };
    }
    if let Some((scheme, rest)) = text.split_once("://") {
        return match scheme {
            "http" | "https" if authority(rest.trim_end_matches('/')) => Ok(text.to_owned()),
            _ => Err(bad()),
        };
    }
    if text.contains('/') {
        return Ok(format!("unix:{text}"));
    }
    if host_port(text) {
        return Ok(format!("http://{text}"));
    }
    Err(bad())
}

/// The authority of a URL: `host:port`, or a host alone (the scheme's port).
fn authority(text: &str) -> bool {
    host_port(text) || host(text)
}

/// `host:port` with a non-empty host (a name, an IPv4 address or a bracketed IPv6 one) and a
/// port number.
fn host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    self::host(host) && port.parse::<u16>().is_ok()
}

/// A host name, an IPv4 address or a bracketed IPv6 one.
fn host(text: &str) -> bool {
    if let Some(inner) = text.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    }
}

/// A yes/no value, as boolean environment variables take it: `1`, `true`, `yes` or `0`,
/// `false`, `no`, in any case. Anything else is an error, never a silent `false`.
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a yes/no value: use 1, true, yes or 0, false, no"
        )),
    }
}

/// A duration: a whole number with a unit, `ms`, `s`, `m`, `h` or `d` (`250ms`, `30s`, `5m`,
/// `1h`, `90d`); a bare number is seconds, so a flag that took seconds before still takes them.
pub fn duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let digits = trimmed.len()
        - trimmed
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .len();
    let (number, unit) = trimmed.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 250ms, 30s, 5m, 1h or 90d"))?;
    let seconds = |factor: u64| {
        number
            .checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{text:?} is too long a duration"))
    };
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(24 * 3600),
        other => Err(format!(
            "unknown unit {other:?} in {text:?}: use ms, s, m, h or d (250ms, 30s, 5m, 1h, 90d)"
        )),
    }
}

/// [`duration`] in whole seconds, for flags and requests counted in seconds (`5m` is 300);
/// a part of a second is refused rather than rounded away.
pub fn seconds(text: &str) -> Result<u64, String> {
    let d = duration(text)?;
    if d.subsec_nanos() != 0 {
        return Err(format!("{text:?} is not a whole number of seconds"));
    }
    Ok(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_the_forms_grpcurl_and_etcdctl_take() {
        let ok = |input: &str, want: &str| assert_eq!(address(input).as_deref(), Ok(want));
        ok("127.0.0.1:50051", "http://127.0.0.1:50051");
        ok("localhost:50051", "http://localhost:50051");
        ok("[::1]:50051", "http://[::1]:50051");
        ok("http://127.0.0.1:50051", "http://127.0.0.1:50051");
        ok("https://kanband.example:443", "https://kanband.example:443");
        ok("https://kanband.example", "https://kanband.example");
        ok("unix:/tmp/k.sock", "unix:/tmp/k.sock");
        ok("unix:///tmp/k.sock", "unix:/tmp/k.sock");
        ok("/tmp/k.sock", "unix:/tmp/k.sock");
        ok("./k.sock", "unix:./k.sock");
        for bad in [
            "",
            "unix:",
            "localhost",
            "localhost:port",
            "localhost:70000",
            ":50051",
            "ftp://x:1",
            "http://",
            "[nope]:1",
        ] {
            let err = address(bad).expect_err(bad);
            assert!(err.contains("host:port"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn booleans_take_six_words_in_any_case_and_refuse_the_rest() {
        for yes in ["1", "true", "TRUE", "yes", "Yes"] {
            assert_eq!(boolean(yes), Ok(true), "{yes}");
        }
        for no in ["0", "false", "False", "no", "NO"] {
            assert_eq!(boolean(no), Ok(false), "{no}");
        }
        for bad in ["", "2", "on", "y", "nein"] {
            assert!(boolean(bad).unwrap_err().contains("yes/no"), "{bad:?}");
        }
    }

    #[test]
    fn durations_take_units_and_bare_seconds() {
        let s = Duration::from_secs;
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("30"), Ok(s(30)));
        assert_eq!(duration("30s"), Ok(s(30)));
        assert_eq!(duration("5m"), Ok(s(300)));
        assert_eq!(duration("1h"), Ok(s(3600)));
        assert_eq!(duration("90d"), Ok(s(90 * 24 * 3600)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "-1s", "1.5s", "3w", "ten", "99999999999999999999h"] {
            assert!(duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(seconds("5m"), Ok(300));
        assert_eq!(seconds("45"), Ok(45));
        assert!(seconds("1500ms").is_err());
    }
}
