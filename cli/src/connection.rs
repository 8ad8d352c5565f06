//! The flags that say how a client reaches kanband: one [`ConnectionArgs`] flattened into
//! `kanbanctl` and `kanband-gateway`, so the address, token and TLS flags, their environment
//! variables and their help read the same in both.

use std::path::{Path, PathBuf};

/// Where kanband listens unless told otherwise (its default TCP listener).
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

/// Where kanband is and how to prove who we are to it. Every flag is global, so it may stand
/// after a subcommand too.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Where kanband listens: host:port (localhost:50051), http://host:port,
    /// https://host:port (TLS), unix:/path/to/kanband.sock or a path to the socket.
    #[arg(long, env = "KANBAN_ADDR", default_value = DEFAULT_ADDR, global = true)]
    pub addr: String,

    /// The bearer token to send (kanband needs one over TCP). Best left in the environment,
    /// where `ps` does not show it.
    #[arg(
        long,
        env = "KANBAN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        global = true
    )]
    pub token: Option<String>,

    /// A file whose first line is the token (instead of --token).
    #[arg(long, env = "KANBAN_TOKEN_FILE", value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,

    /// For an https:// address: trust only the CA certificates in this PEM file (a private
    /// CA) instead of the system's roots.
    #[arg(long, env = "KANBAN_CA", value_name = "FILE", global = true, value_parser = any_path())]
    pub ca: Option<PathBuf>,

    /// Mutual TLS: the client certificate (PEM) to present; needs --key.
    #[arg(long, env = "KANBAN_CERT", value_name = "FILE", global = true, value_parser = any_path())]
    pub cert: Option<PathBuf>,

    /// Mutual TLS: the private key (PEM) of --cert.
    #[arg(long, env = "KANBAN_KEY", value_name = "FILE", global = true, value_parser = any_path())]
    pub key: Option<PathBuf>,
}

/// Any path, the empty one included (clap's path parser refuses it; a supervisor sets these
/// variables empty for its workers when it has no such file).
fn any_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser as _;
    clap::builder::OsStringValueParser::new().map(PathBuf::from)
}

impl ConnectionArgs {
    /// The address in the one spelling the clients connect to (`unix:/path` or
    /// `http://host:port`), whichever form was typed. Checked here rather than by clap, so
    /// that an empty KANBAN_ADDR under an explicit --addr is not an error.
    pub fn address(&self) -> Result<String, String> {
        crate::input::address(&self.addr)
    }

    /// The token from --token or --token-file (its first line), trimmed; none when neither is
    /// given. Both at once, an unreadable file or an empty one is an error.
    pub fn token(&self) -> Result<Option<String>, String> {
        resolve_token(self.token.clone(), self.token_file.as_deref())
    }

    /// `--ca`, `--cert` and `--key` as given; an empty value counts as not given.
    pub fn tls_paths(&self) -> [Option<PathBuf>; 3] {
        let given = |path: &Option<PathBuf>| path.clone().filter(|p| !p.as_os_str().is_empty());
        [given(&self.ca), given(&self.cert), given(&self.key)]
    }
}

fn resolve_token(token: Option<String>, file: Option<&Path>) -> Result<Option<String>, String> {
    let token = token.filter(|t| !t.trim().is_empty());
    match (token, file) {
        (Some(_), Some(_)) => Err("give a token or a token file, not both".to_owned()),
        (Some(token), None) => Ok(Some(token.trim().to_owned())),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .map_err(|err| format!("cannot read the token file {}: {err}", file.display()))?;
            let token = text.lines().next().unwrap_or("").trim().to_owned();
            if token.is_empty() {
                return Err(format!("the token file {} is empty", file.display()));
            }
            Ok(Some(token))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        connection: ConnectionArgs,
    }

    fn parse(args: &[&str]) -> ConnectionArgs {
        Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
            .expect("parses")
            .connection
    }

    #[test]
    fn the_token_comes_from_the_flag_or_the_first_line_of_the_file_never_both() {
        let dir = std::env::temp_dir().join(format!("kanband-cli-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "  kbt_from_file \nsecond line\n").unwrap();
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let (file, empty) = (file.to_str().unwrap(), empty.to_str().unwrap());

        assert_eq!(
            parse(&["--token", " kbt_x "]).token(),
            Ok(Some("kbt_x".into()))
        );
        assert_eq!(
            parse(&["--token-file", file]).token(),
            Ok(Some("kbt_from_file".into()))
        );
        // A blank --token counts as none, so the file is used.
        assert_eq!(
            parse(&["--token", " ", "--token-file", file]).token(),
            Ok(Some("kbt_from_file".into()))
        );
        let both = parse(&["--token", "kbt_x", "--token-file", file]).token();
        assert!(both.unwrap_err().contains("not both"));
        assert!(
            parse(&["--token-file", empty])
                .token()
                .unwrap_err()
                .contains("is empty")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_tls_path_counts_as_not_given_and_the_address_is_normalised() {
        let args = parse(&[
            "--ca", "", "--cert", "c.pem", "--key", "k.pem", "--addr", "h:1",
        ]);
        assert_eq!(
            args.tls_paths(),
            [None, Some("c.pem".into()), Some("k.pem".into())]
        );
        assert_eq!(args.address(), Ok("http://h:1".into()));
    }
}
