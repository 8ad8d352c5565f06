//! Descriptors and idle connections, against the real binary: kanband raises its soft
//! descriptor limit, backs off (instead of spinning) when it runs out, and closes sockets that
//! send nothing and connections that have nothing open.

use std::{path::Path, time::Duration};

use kanband_proto::pb;
use kanband_tests::{
    calls::create,
    daemon::{self, Daemon},
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    time::{Instant, sleep, timeout},
};

use crate::support::shared;

/// Raises this test process's own soft descriptor limit, so it can hold many sockets.
fn raise_own_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// Open descriptors of a process.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// (soft, hard) "Max open files" of a process, as /proc shows them.
fn open_files_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().unwrap().to_owned(),
        fields.next().unwrap().to_owned(),
    )
}

/// CPU time (user + system) a process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let per_second: f64 = String::from_utf8(
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    ticks / per_second
}

/// Waits (real time, bounded) until `probe` holds.
async fn until(what: &str, limit: Duration, mut probe: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !probe() {
        assert!(Instant::now() < end, "{what}: not within {limit:?}");
        sleep(Duration::from_millis(20)).await;
    }
}

/// Reads (and drops) whatever kanband sends until it closes the socket.
async fn until_closed(socket: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = socket.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

fn tcp_port(daemon: &Daemon) -> String {
    daemon.tcp_addr.trim_start_matches("http://").to_owned()
}

/// A working client: connects and creates a task within `limit`.
async fn served(daemon: &Daemon, limit: Duration) {
    let call = async {
        let mut client = daemon.tcp_client().await;
        create(&mut client, "served").await;
    };
    timeout(limit, call).await.unwrap_or_else(|_| {
        panic!(
            "a new client was not served within {limit:?}; stderr:\n{}",
            daemon.stderr.lock().unwrap()
        )
    });
}

async fn start(data: &Path, nofile: (u64, u64), extra: &[&str]) -> Daemon {
    Daemon::start_limited(data, nofile, extra).await
}

#[tokio::test]
async fn kanband_raises_its_soft_descriptor_limit_and_serves_past_the_old_one() {
    let _machine = shared().await;
    raise_own_limit();
    let (_dir, data) = daemon::data_dir();
    // Idle sockets must outlive the test here: a long handshake timeout.
    let kanband = start(&data, (256, 4096), &["--handshake-timeout-ms", "600000"]).await;
    let pid = kanband.pid();
    assert_eq!(
        open_files_limit(pid),
        ("4096".into(), "4096".into()),
        "the soft limit is raised to the hard one"
    );
    assert!(
        kanband
            .stderr
            .lock()
            .unwrap()
            .contains("raised the soft descriptor limit to the hard limit"),
        "and logged: {}",
        kanband.stderr.lock().unwrap()
    );

    let addr = tcp_port(&kanband);
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    until(
        "kanband holds the 1,100 idle sockets",
        Duration::from_secs(20),
        || descriptors(pid) >= 1_100,
    )
    .await;
    served(&kanband, Duration::from_secs(10)).await;
    drop(idle);
    kanband.terminate().await;
}

#[tokio::test]
async fn out_of_descriptors_kanband_backs_off_instead_of_spinning_and_recovers() {
    let _machine = shared().await;
    raise_own_limit();
    let (_dir, data) = daemon::data_dir();
    let kanband = start(&data, (64, 64), &["--handshake-timeout-ms", "600000"]).await;
    let pid = kanband.pid();
    let addr = tcp_port(&kanband);
    // More sockets than kanband has descriptors: the rest wait in the listen backlog (128).
    let mut idle = Vec::new();
    for _ in 0..150 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    until(
        "kanband runs out of descriptors",
        Duration::from_secs(20),
        || descriptors(pid) >= 63,
    )
    .await;
    let stderr = || kanband.stderr.lock().unwrap().clone();
    until("the pause is logged", Duration::from_secs(10), || {
        stderr().contains("cannot accept a connection; pausing accepts")
    })
    .await;

    // At the limit, with connections waiting, kanband sleeps rather than retrying at once.
    let (cpu, at) = (cpu_seconds(pid), Instant::now());
    sleep(Duration::from_secs(2)).await;
    let cores = (cpu_seconds(pid) - cpu) / at.elapsed().as_secs_f64();
    println!("kanband at EMFILE used {cores:.3} cores");
    assert!(
        cores < 0.2,
        "kanband spins at EMFILE: {cores:.2} cores over 2 s"
    );

    // Descriptors freed, a new client is served.
    drop(idle);
    served(&kanband, Duration::from_secs(10)).await;
    kanband.terminate().await;
}

#[tokio::test]
async fn silent_sockets_and_idle_connections_are_closed() {
    let _machine = shared().await;
    let (_dir, data) = daemon::data_dir();
    let kanband = Daemon::start_with(
        &data,
        &[
            "--handshake-timeout-ms",
            "300",
            "--idle-timeout-seconds",
            "3",
        ],
    )
    .await;
    let addr = tcp_port(&kanband);

    // Sockets that connect and send nothing are closed after the handshake timeout.
    let opened = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(&addr).await.unwrap());
    }
    for socket in &mut silent {
        // kanband speaks first (its HTTP/2 settings), then closes.
        timeout(Duration::from_secs(5), until_closed(socket))
            .await
            .expect("kanband closes a silent socket");
    }
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(2_500),
        "closed by the handshake timeout, not the idle one: {took:?}"
    );

    // A connection that finished its HTTP/2 handshake but opens no stream is closed after the
    // idle timeout.
    let mut quiet = TcpStream::connect(&addr).await.unwrap();
    quiet
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let closed = timeout(Duration::from_secs(10), until_closed(&mut quiet)).await;
    assert!(closed.is_ok(), "a connection with nothing open is closed");

    // A connection with a stream open is never idle: a watcher open past the idle timeout
    // still gets new events.
    let mut client = kanband.tcp_client().await;
    let mut events = client
        .events
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    sleep(Duration::from_millis(3_500)).await;
    let task = create(&mut kanband.client().await, "after the idle timeout").await;
    let event = timeout(Duration::from_secs(5), events.message())
        .await
        .expect("the watcher is still served")
        .expect("the stream is open")
        .expect("an event");
    assert_eq!(event.task_id, task.id);
    kanband.terminate().await;
}
