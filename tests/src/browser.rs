//! A small WebDriver client for the web board's browser tests: starts Debian's `chromedriver`
//! on a free port, opens one headless Chromium with a fresh profile, and speaks the W3C
//! WebDriver protocol to it over HTTP (reqwest). Only the commands the tests need are here.
//!
//! Chromium and its driver come from Debian (`apt-get install chromium chromium-driver`);
//! `KANBAND_CHROMIUM` and `KANBAND_CHROMEDRIVER` name other binaries. The driver runs in a
//! process group of its own, which is killed (by its pid) when the [`Browser`] is dropped, so
//! a failing test leaves no browser behind.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use base64::Engine as _;
use nix::{sys::signal, unistd::Pid};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The Chromium flags of every test browser: headless, no sandbox (tests run as root in CI),
/// and nothing that talks to the network on its own.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
];

/// WebDriver's key for an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One headless Chromium, driven over WebDriver.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// An element of the page, by its WebDriver reference.
#[derive(Debug, Clone)]
pub struct Element(String);

/// Finds `name` on PATH, or the path in the environment variable `var`.
fn binary(var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed (the browser tests need it): \
                 apt-get install chromium chromium-driver, or set {var}"
            )
        })
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile directory.
    pub async fn launch() -> Browser {
        let chromium = binary("KANBAND_CHROMIUM", "chromium");
        let chromedriver = binary("KANBAND_CHROMEDRIVER", "chromedriver");
        // With `--port=0` chromedriver takes a free IPv4 port and then binds the same number on
        // IPv6; when that one is taken it exits ("bind() failed: Address already in use").
        // Another try picks another port.
        let mut failures = Vec::new();
        let (driver, port) = loop {
            match start_driver(&chromedriver).await {
                Ok(started) => break started,
                Err(output) if failures.len() < 2 => failures.push(output),
                Err(output) => {
                    failures.push(output);
                    panic!(
                        "chromedriver did not start in three tries; it printed:\n{}",
                        failures.join("\n---\n")
                    )
                }
            }
        };

        let profile = tempfile::tempdir().expect("profile directory");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let capabilities = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "unhandledPromptBehavior": "ignore",
                "goog:chromeOptions": {"binary": chromium, "args": args},
            }}
        });
        let answer = send(http.post(format!("{base}/session")).json(&capabilities)).await;
        let id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {answer}"))
            .to_owned();
        Browser {
            http,
            session: format!("{base}/session/{id}"),
            driver,
            _profile: profile,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        send(
            self.http
                .post(format!("{}{path}", self.session))
                .json(&body),
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        send(self.http.get(format!("{}{path}", self.session))).await
    }

    /// Opens `url` and waits for the page's load event.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Runs `script` until it returns a truthy value (every 20 ms, at most `limit`), and
    /// returns that value; panics naming `what` when the limit passes.
    pub async fn wait_for(&self, what: &str, script: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let value = self.execute(script, vec![]).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not true within {limit:?} (last value {value})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The first element matching the CSS selector.
    pub async fn find(&self, css: &str) -> Element {
        let value = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await;
        Element(
            value[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css}: {value}"))
                .to_owned(),
        )
    }

    /// Clicks an element.
    pub async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    /// Types `text` into an element.
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await;
    }

    /// The rendered text of an element.
    pub async fn text(&self, element: &Element) -> String {
        self.get(&format!("/element/{}/text", element.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The text of an open `alert`/`confirm`/`prompt` dialog, if one is open.
    pub async fn alert_text(&self) -> Option<String> {
        let response = self
            .http
            .get(format!("{}/alert/text", self.session))
            .send()
            .await
            .expect("chromedriver answers");
        let ok = response.status().is_success();
        let body: Value = response.json().await.expect("WebDriver JSON");
        ok.then(|| body["value"].as_str().unwrap_or_default().to_owned())
    }

    /// Dismisses an open dialog.
    pub async fn dismiss_alert(&self) {
        self.post("/alert/dismiss", json!({})).await;
    }

    /// Saves a PNG screenshot of the window to `path` (creating its directory).
    pub async fn screenshot(&self, path: &Path) {
        let value = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("base64 screenshot"))
            .expect("screenshot decodes");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    /// Closes the browser and stops the driver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver leads its own process group; Chromium and its helpers are in it too.
        if let Some(pid) = self.driver.id().and_then(|pid| i32::try_from(pid).ok()) {
            let _ = signal::killpg(Pid::from_raw(pid), signal::Signal::SIGKILL);
        }
    }
}

/// Starts one chromedriver on a port of its choosing and returns it with that port, or what
/// it printed if it exited (or stayed silent for 20 s) without saying where it listens.
async fn start_driver(chromedriver: &Path) -> Result<(Child, u16), String> {
    let mut driver = Command::new(chromedriver)
        .arg("--port=0")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", chromedriver.display()));
    let mut stdout = BufReader::new(driver.stdout.take().expect("piped stdout")).lines();
    let mut stderr = BufReader::new(driver.stderr.take().expect("piped stderr")).lines();
    let mut printed = Vec::new();
    let port = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = stdout.next_line().await {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                return rest.trim_end_matches('.').trim().parse::<u16>().ok();
            }
            printed.push(line);
        }
        None
    })
    .await
    .ok()
    .flatten();
    let Some(port) = port else {
        let _ = driver.start_kill();
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(1), stderr.next_line()).await
        {
            printed.push(line);
        }
        let _ = driver.wait().await;
        return Err(printed.join("\n"));
    };
    // Keep reading its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    Ok((driver, port))
}

/// Sends a WebDriver command and returns its `value`, panicking with the driver's error.
async fn send(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("chromedriver answers");
    let status = response.status();
    let body: Value = response.json().await.expect("WebDriver JSON");
    assert!(status.is_success(), "WebDriver error {status}: {body}");
    body["value"].clone()
}

/// Where the browser tests save screenshots: `screenshots/` under the cargo target directory.
pub fn screenshot_dir() -> PathBuf {
    crate::daemon::bin_dir().join("..").join("screenshots")
}
