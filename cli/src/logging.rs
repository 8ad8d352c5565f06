//! Logging set-up for the binaries: to stderr, text or JSON, with an `EnvFilter` filter.
//!
//! The filter comes from a flag with an environment fallback (`KANBAND_LOG`,
//! `KANBAND_GATEWAY_LOG`), so `--help` shows it; one that does not parse is an error at start,
//! never a silent fallback. Unless the filter names them, the HTTP/2 stack's crates (`h2`,
//! `hyper`, `hyper_util`, `tower`, `tonic`) log only warnings: `debug` then shows kanband's own
//! lines (one per RPC, target `kanband::rpc`) without a line per HTTP/2 frame.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line (for journald, Loki, ...).
    Json,
}

/// Crates kept at warn unless the filter names them: the transport's per-frame noise.
const QUIET: &[&str] = &["h2", "hyper", "hyper_util", "tower", "tonic"];

/// Parses `filter` (EnvFilter syntax), adding the quiet defaults for crates it does not name.
/// The error says which variable or flag to fix.
pub fn filter(filter: &str, source: &str) -> anyhow::Result<EnvFilter> {
    let mut directives = QUIET
        .iter()
        .filter(|name| !filter.contains(*name))
        .map(|name| format!("{name}=warn"))
        .collect::<Vec<_>>();
    if !filter.trim().is_empty() {
        directives.insert(0, filter.to_owned());
    }
    EnvFilter::builder()
        .parse(directives.join(","))
        .map_err(|err| {
            anyhow::anyhow!(
                "{source} {filter:?} is not a log filter ({err}); use a level (info, debug) or \
                 target=level pairs, e.g. info,kanband=debug"
            )
        })
}

/// Installs the process's logger on stderr. `source` names the flag and variable the filter
/// came from, for the error.
pub fn init(filter_text: &str, source: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = filter(filter_text, source)?;
    // A span closing logs its busy and idle time: with `KANBAND_LOG=kanband=debug`, each store
    // operation (a debug span named after it) shows how long it took.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
    installed.map_err(|err| anyhow::anyhow!("cannot set up logging: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_is_refused_with_what_to_fix() {
        let err = filter("kanband=loud", "--log / KANBAND_LOG").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("--log / KANBAND_LOG \"kanband=loud\" is not a log filter"),
            "{text}"
        );
    }

    #[test]
    fn the_transport_is_quiet_unless_named() {
        let quiet = filter("debug", "KANBAND_LOG").unwrap().to_string();
        assert!(
            quiet.contains("h2=warn") && quiet.contains("tonic=warn"),
            "{quiet}"
        );
        let named = filter("debug,h2=trace", "KANBAND_LOG").unwrap().to_string();
        assert!(
            named.contains("h2=trace") && !named.contains("h2=warn"),
            "{named}"
        );
    }
}
