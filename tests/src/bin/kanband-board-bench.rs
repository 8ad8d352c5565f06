//! `kanband-board-bench`: the web board's figures, measured in a real headless Chromium
//! against the real `kanband` binary (a benchmark, not a test):
//!
//! - page load: from navigation start to the first complete board (the page's
//!   `kanband-ready` User Timing mark, set once every column's first page is drawn) on a board
//!   of `--tasks` ready tasks (default 10,000), median and worst of `--loads` loads;
//! - event-to-screen latency: from just before a gRPC `CreateTask` is sent to the moment its
//!   card is in the page's DOM (a `MutationObserver` stamps it), for `--changes` changes one
//!   after the other; p50, p99 and max.
//!
//! Both clocks are the same machine's wall clock (the page's `performance.timeOrigin +
//! performance.now()`, the bench's `SystemTime`).
//!
//! ```sh
//! cargo build --release -p kanband -p kanband-tests
//! target/release/kanband-board-bench
//! ```

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};
use clap::Parser;
use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::browser::Browser;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

/// Measures the web board's page load and event-to-screen latency in headless Chromium.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The kanband binary to start. Default: the kanband next to this executable.
    #[arg(long, env = "KANBAND_BENCH_KANBAND", value_name = "PATH")]
    kanband: Option<PathBuf>,
    /// Ready tasks on the board.
    #[arg(long, default_value_t = 10_000)]
    tasks: usize,
    /// Page loads to time.
    #[arg(long, default_value_t = 5)]
    loads: usize,
    /// Changes to time from gRPC to the screen.
    #[arg(long, default_value_t = 200)]
    changes: usize,
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let bin = match cli.kanband {
        Some(bin) => bin,
        None => std::env::current_exe()?
            .parent()
            .context("the bench's directory")?
            .join("kanband"),
    };
    let dir = tempfile::tempdir()?;
    let mut kanband = Command::new(&bin)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .env("KANBAND_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let mut lines = BufReader::new(kanband.stdout.take().context("stdout")?).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("no ready line within 30 s")??
        .context("kanband exited before its ready line")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let words: Vec<&str> = ready.split_whitespace().collect();
    let grpc = words
        .iter()
        .find(|w| w.starts_with("http://"))
        .context("no gRPC address in the ready line")?
        .to_string();
    let signin = words
        .iter()
        .skip_while(|w| **w != "board")
        .nth(1)
        .context("no board link in the ready line")?
        .to_string();
    let board = signin
        .split("/signin")
        .next()
        .unwrap_or_default()
        .to_owned();

    // TCP needs a token: the admin token the ready line names.
    let token_file = words
        .iter()
        .skip_while(|w| **w != "token")
        .nth(1)
        .context("no admin token file in the ready line")?;
    let token = std::fs::read_to_string(token_file)?.trim().to_owned();
    let client = Client::connect(kanband_gateway::Target::new(&grpc, Some(token))).await?;
    let started = Instant::now();
    let per_worker = cli.tasks.div_ceil(16);
    let mut workers = Vec::new();
    for w in 0..16 {
        let mut client = client.clone();
        let count = per_worker.min(cli.tasks.saturating_sub(w * per_worker));
        workers.push(tokio::spawn(async move {
            for i in 0..count {
                client
                    .tasks
                    .create_task(pb::CreateTaskRequest {
                        title: format!("Backlog task {w}-{i}"),
                        priority: (i % 7) as i32,
                        ..Default::default()
                    })
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    eprintln!("{} tasks created in {:?}", cli.tasks, started.elapsed());

    let browser = Browser::launch().await;
    browser.goto(&signin).await;
    let mut loads = Vec::new();
    for _ in 0..cli.loads {
        browser
            .goto(&format!("{board}/?load={}", loads.len()))
            .await;
        let mark = browser
            .wait_for(
                "the board is drawn",
                "const m = performance.getEntriesByName('kanband-ready')[0]; return m ? m.startTime : null;",
                Duration::from_secs(30),
            )
            .await;
        let cards = browser
            .execute("return document.querySelectorAll('.card').length", vec![])
            .await;
        if cards.as_u64().unwrap_or(0) == 0 {
            bail!("the board shows no card");
        }
        loads.push(mark.as_f64().context("a mark time")?);
    }

    browser
        .execute(
            "window.__seen = {}; new MutationObserver((records) => { \
               const t = performance.timeOrigin + performance.now(); \
               for (const r of records) for (const n of r.addedNodes) { \
                 const h = n.querySelector && n.querySelector('h3'); \
                 if (h && h.textContent.startsWith('Change ') && !(h.textContent in window.__seen)) window.__seen[h.textContent] = t; } \
             }).observe(document.getElementById('columns'), { childList: true, subtree: true }); return true;",
            vec![],
        )
        .await;
    let mut client = client;
    let mut latencies = Vec::new();
    for i in 0..cli.changes {
        let title = format!("Change {i}");
        let sent = now_ms();
        client
            .tasks
            .create_task(pb::CreateTaskRequest {
                title: title.clone(),
                ..Default::default()
            })
            .await?;
        let seen = browser
            .wait_for(
                "the change is on screen",
                &format!("return window.__seen[{}] ?? null;", Value::from(title)),
                Duration::from_secs(10),
            )
            .await;
        latencies.push(seen.as_f64().context("a time")? - sent);
    }
    browser.quit().await;
    let _ = kanband.kill().await;

    loads.sort_by(f64::total_cmp);
    latencies.sort_by(f64::total_cmp);
    println!(
        "page load, {} ready tasks ({} loads): median {:.0} ms, max {:.0} ms (target: interactive within 1 s)",
        cli.tasks,
        loads.len(),
        percentile(&loads, 50.0),
        loads.last().copied().unwrap_or_default()
    );
    println!(
        "event-to-screen, gRPC CreateTask -> card in the DOM ({} changes): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target: p99 within 250 ms)",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or_default()
    );
    Ok(())
}
