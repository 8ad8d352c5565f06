//! Where the kanband under test runs ([`Launch`]) and the connections to it ([`Pool`]).

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use anyhow::{Context as _, bail};
use kanband_gateway::{Client, Target};

use crate::server::{DataDir, Kanband};

/// Where the kanband under test runs: a binary the bench starts per scenario, or a running
/// service at a given address.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    bin: Option<PathBuf>,
    addr: Option<String>,
    tcp: bool,
    data_root: Option<PathBuf>,
}

impl Launch {
    /// Finds the binary (unless `addr` is given).
    pub(crate) fn new(
        bin: Option<PathBuf>,
        addr: Option<String>,
        tcp: bool,
        data_root: Option<PathBuf>,
    ) -> anyhow::Result<Launch> {
        let bin = match (&addr, bin) {
            (Some(_), _) => None,
            (None, Some(bin)) if bin.is_file() => Some(bin),
            (None, Some(bin)) => bail!("--kanband {} is not a file", bin.display()),
            (None, None) => Some(find_kanband()?),
        };
        Ok(Launch {
            bin,
            addr,
            tcp,
            data_root,
        })
    }

    /// The binary the bench starts (none with `--addr`).
    pub(crate) fn bin(&self) -> Option<&Path> {
        self.bin.as_deref()
    }

    /// Where the temporary data directories are made (`None`: the system's temporary
    /// directory).
    pub(crate) fn data_root(&self) -> Option<&Path> {
        self.data_root.as_deref()
    }

    /// What the report says about the service under test.
    pub(crate) fn describe(&self) -> String {
        match (&self.addr, &self.bin) {
            (Some(addr), _) => format!("running at {addr}"),
            (None, Some(bin)) => format!(
                "{} over {}, data under {}",
                bin.display(),
                if self.tcp { "TCP" } else { "the Unix socket" },
                self.data_root
                    .clone()
                    .unwrap_or_else(std::env::temp_dir)
                    .display()
            ),
            (None, None) => "nothing".into(),
        }
    }

    /// Starts kanband on `dir`, or on a fresh data directory.
    pub(crate) async fn start(&self, dir: Option<DataDir>) -> anyhow::Result<Kanband> {
        let bin = self
            .bin
            .as_deref()
            .context("this scenario needs a kanband the bench starts; drop --addr")?;
        match dir {
            Some(dir) => Kanband::start(bin, dir).await,
            None => Kanband::start_fresh(bin, self.data_root.as_deref()).await,
        }
    }

    /// The address of an already running kanband (`--addr`), if given, with the token in
    /// `KANBAN_TOKEN` (needed over TCP).
    pub(crate) fn running_at(&self) -> Option<Target> {
        let token = std::env::var("KANBAN_TOKEN").ok();
        self.addr.as_deref().map(|addr| Target::new(addr, token))
    }

    /// Where clients of `server` connect: its Unix socket (no token needed as its own user),
    /// or with `--tcp` its TCP address with the admin token.
    pub(crate) fn client_addr(&self, server: &Kanband) -> Target {
        if self.tcp {
            Target::new(&server.tcp_addr, Some(server.admin_token.clone()))
        } else {
            Target::from(&server.unix_addr)
        }
    }
}

/// `target/release/kanband` under the current directory, else the `kanband` next to this
/// executable (`target/<profile>/kanband-bench`).
fn find_kanband() -> anyhow::Result<PathBuf> {
    let release = Path::new("target/release/kanband");
    if release.is_file() {
        return Ok(release.to_path_buf());
    }
    let exe = std::env::current_exe().context("cannot find this executable's path")?;
    let sibling = exe
        .parent()
        .map(|dir| dir.join("kanband"))
        .context("this executable has no directory")?;
    if sibling.is_file() {
        return Ok(sibling);
    }
    bail!(
        "no kanband binary at {} nor {}: build it with `cargo build --release -p kanband` or \
         pass --kanband PATH",
        release.display(),
        sibling.display()
    )
}

/// Connections to kanband, handed out round-robin so load spreads over several HTTP/2
/// connections (one connection is served by one task on the server side).
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    clients: Arc<Vec<Client>>,
    next: Arc<AtomicUsize>,
}

impl Pool {
    /// Opens `connections` connections to `target`.
    pub(crate) async fn connect(target: &Target, connections: usize) -> anyhow::Result<Pool> {
        let mut clients = Vec::new();
        for _ in 0..connections.max(1) {
            clients.push(
                Client::connect(target)
                    .await
                    .with_context(|| format!("cannot connect to {}", target.addr))?,
            );
        }
        Ok(Pool {
            clients: Arc::new(clients),
            next: Arc::default(),
        })
    }

    /// The next connection's clients.
    pub(crate) fn get(&self) -> Client {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.clients[i % self.clients.len()].clone()
    }
}
