//! Headless Chromium driven over WebDriver (chromedriver, through the
//! `fantoccini` crate) for the real-browser tests: the driver process and its
//! session, Chrome DevTools commands, the console, form helpers, a local
//! callback server that records what the browser delivered, and screenshots
//! at phone and desktop sizes under `target/screenshots/`.
//!
//! `GRANTBOX_TEST_CHROMEDRIVER` names the chromedriver binary; when it is
//! unset, [`Driver::start`] prints a note and the test passes without a browser.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::server::workspace;

pub const DRIVER_ENV: &str = "GRANTBOX_TEST_CHROMEDRIVER";
pub use super::fixtures::PASSWORD;
/// A fixed PKCE verifier (RFC 7636 §4.1: 43 to 128 unreserved characters).
pub const VERIFIER: &str = "browser-test-verifier-0123456789abcdefghijklmnop";

/// Chromium's flags on this kind of machine: headless, as root, and with no
/// background connections to a network that is not there.
pub const CHROME_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
];

// ---------------------------------------------------------------------------
// chromedriver and the WebDriver session

/// A chromedriver process on a free port, in its own process group so that
/// the Chromium it starts dies with it.
pub struct Driver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver, or returns `None` with a note when
    /// `GRANTBOX_TEST_CHROMEDRIVER` is unset. Panics when it is set and
    /// chromedriver does not answer.
    pub fn start(test: &str) -> Option<Driver> {
        let binary = match std::env::var(DRIVER_ENV) {
            Ok(path) if !path.is_empty() => path,
            _ => {
                eprintln!("{test}: {DRIVER_ENV} is not set; this browser test is skipped");
                return None;
            }
        };
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new(&binary);
            command
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            let mut child = command
                .spawn()
                .unwrap_or_else(|e| panic!("{DRIVER_ENV}={binary}: cannot start: {e}"));
            for _ in 0..100 {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Driver {
                        child,
                        url: format!("http://127.0.0.1:{port}"),
                        profile: tempfile::tempdir().expect("a profile directory"),
                    });
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last_error = format!("chromedriver exited with {status}");
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            kill_group(&mut child);
            if last_error.is_empty() {
                last_error = format!("chromedriver did not listen on port {port} in 10 s");
            }
        }
        panic!("{DRIVER_ENV}={binary}: {last_error}");
    }

    /// Opens a WebDriver session: a fresh headless Chromium with its console
    /// log kept for [`console`].
    pub async fn session(&self) -> Client {
        let mut args: Vec<String> = CHROME_ARGS.iter().map(|&a| a.to_owned()).collect();
        args.push(format!("--user-data-dir={}", self.profile.path().display()));
        let mut options = json!({ "args": args });
        let chromium = std::env::var("GRANTBOX_TEST_CHROMIUM")
            .unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        if std::path::Path::new(&chromium).is_file() {
            options["binary"] = json!(chromium);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver at {} cannot start Chromium: {e}", self.url))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Kills a process group led by `child` (chromedriver and the browser it
/// started), then reaps the leader.
pub fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// chromedriver's own commands, beyond the W3C ones fantoccini wraps.
#[derive(Debug)]
pub enum Chromium {
    /// `POST /session/{id}/se/log`: the browser console since the last call.
    BrowserLog,
    /// `POST /session/{id}/goog/cdp/execute`: one DevTools command.
    Cdp(&'static str, Value),
}

impl WebDriverCompatibleCommand for Chromium {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        match self {
            Chromium::BrowserLog => base_url.join(&format!("session/{session}/se/log")),
            Chromium::Cdp(..) => base_url.join(&format!("session/{session}/goog/cdp/execute")),
        }
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = match self {
            Chromium::BrowserLog => json!({ "type": "browser" }),
            Chromium::Cdp(cmd, params) => json!({ "cmd": cmd, "params": params }),
        };
        (http::Method::POST, Some(body.to_string()))
    }
}

/// The console messages (level, text) since the last call.
pub async fn console(browser: &Client) -> Vec<(String, String)> {
    let entries = browser
        .issue_cmd(Chromium::BrowserLog)
        .await
        .expect("chromedriver returns the browser log");
    entries
        .as_array()
        .expect("the log is a list")
        .iter()
        .map(|entry| {
            (
                entry["level"].as_str().unwrap_or_default().to_owned(),
                entry["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Asserts that the pages shown since the last call logged no Content
/// Security Policy violation and no other error, except a failed load whose
/// status the test expects (e.g. the 401 of a wrong password).
pub async fn assert_clean_console(browser: &Client, what: &str, expected_statuses: &[u16]) {
    let entries = console(browser).await;
    let bad: Vec<_> = entries
        .iter()
        .filter(|(level, message)| {
            let csp = message.contains("Content Security Policy")
                || message.contains("Content-Security-Policy")
                || message.contains("Refused to");
            // Chromium asks every origin for /favicon.ico; the test's own
            // callback server has none (Grantbox answers 204).
            let favicon = message.contains("/favicon.ico - Failed to load resource");
            let expected = favicon
                || expected_statuses
                    .iter()
                    .any(|status| message.contains(&format!("status of {status}")));
            csp || (level == "SEVERE" && !expected)
        })
        .collect();
    assert!(bad.is_empty(), "{what}: console errors: {bad:#?}");
}

pub async fn find(browser: &Client, css: &str) -> fantoccini::elements::Element {
    match browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(e) => {
            let at = browser.current_url().await.map(String::from);
            panic!("no {css} on {at:?}: {e}\n{}", text(browser).await)
        }
    }
}

pub async fn text(browser: &Client) -> String {
    browser
        .execute(
            "return document.body ? document.body.innerText : ''",
            vec![],
        )
        .await
        .expect("the page runs a script")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Types into the login form and submits it with a click.
pub async fn sign_in(browser: &Client, username: &str, password: &str) {
    let user = find(browser, "input#username").await;
    user.clear().await.expect("the username field clears");
    user.send_keys(username).await.expect("a username typed");
    let pass = find(browser, "input#password").await;
    pass.clear().await.expect("the password field clears");
    pass.send_keys(password).await.expect("a password typed");
    find(browser, "form button[type=submit]")
        .await
        .click()
        .await
        .expect("sign in clicked");
}

/// Waits until the browser shows a page whose heading is `heading`.
pub async fn wait_heading(browser: &Client, heading: &str) {
    for _ in 0..300 {
        if let Ok(h1) = browser.find(Locator::Css("h1")).await
            && h1.text().await.is_ok_and(|t| t == heading)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no page headed {heading:?}; the browser shows {}:\n{}",
        browser
            .current_url()
            .await
            .map(String::from)
            .unwrap_or_default(),
        text(browser).await
    );
}

// ---------------------------------------------------------------------------
// The client's side: a callback server on another local origin

/// One request the callback server received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub form: HashMap<String, String>,
}

/// A tiny HTTP server on 127.0.0.1 standing for the client: `/cb` records
/// the query (GET) or form (POST) the browser brings; `/frame?src=URL` is a
/// page that frames `/control` (same origin, must load) and `src` (another
/// origin). Runs until the test process ends.
pub struct Callback {
    pub base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Callback {
    pub fn start() -> Callback {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a callback port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let sink = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let sink = sink.clone();
                std::thread::spawn(move || serve(stream, &sink));
            }
        });
        Callback { base, hits }
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}/cb", self.base)
    }

    /// Waits for the browser to reach `/cb` and returns what it brought.
    pub async fn hit(&self, browser: &Client) -> Hit {
        for _ in 0..300 {
            if let Some(hit) = self.hits.lock().expect("hits lock").first() {
                return hit.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let at = browser.current_url().await.map(String::from);
        panic!(
            "the browser never reached the callback; it shows {at:?}: {}\nconsole: {:#?}",
            text(browser).await,
            console(browser).await
        );
    }
}

pub fn serve(stream: TcpStream, hits: &Mutex<Vec<Hit>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default();
    let url = url::Url::parse(&format!("http://callback{target}")).expect("a request target");
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let html = match url.path() {
        "/cb" => {
            hits.lock().expect("hits lock").push(Hit {
                method,
                path: url.path().to_owned(),
                query,
                form: url::form_urlencoded::parse(&body).into_owned().collect(),
            });
            "<h1>Callback</h1><p>The client received the response.</p>".to_owned()
        }
        "/control" => "<h1 id=\"control\">Framed</h1>".to_owned(),
        "/frame" => {
            let mut html = "<h1>A page on another origin</h1>\
                 <iframe id=\"control\" src=\"/control\"></iframe>"
                .to_owned();
            for (name, src) in &query {
                let src = src.replace('&', "&amp;").replace('"', "&quot;");
                html.push_str(&format!("<iframe id=\"{name}\" src=\"{src}\"></iframe>"));
            }
            html
        }
        _ => {
            let _ = (&stream).write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
    };
    let page = format!(
        "<!doctype html><html><head><title>client</title></head><body>{html}</body></html>"
    );
    let _ = (&stream).write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        )
        .as_bytes(),
    );
}

pub async fn click(browser: &Client, css: &str) {
    find(browser, css).await.click().await.expect("clicked");
}

/// Phone and desktop viewports (CSS pixels).
pub const SIZES: &[(&str, u32, u32, bool)] =
    &[("phone", 390, 844, true), ("desktop", 1280, 800, false)];

pub fn screenshot_dir() -> PathBuf {
    let dir = workspace().join("target").join("screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots");
    dir
}

/// Saves the page at each size as `target/screenshots/<page>-<size>.png`.
pub async fn screenshots(browser: &Client, page: &str) {
    for &(size, width, height, mobile) in SIZES {
        browser
            .issue_cmd(Chromium::Cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
            ))
            .await
            .expect("the viewport resizes");
        let inner = browser
            .execute(
                "return [window.innerWidth, document.documentElement.scrollWidth]",
                vec![],
            )
            .await
            .expect("the page runs a script");
        assert_eq!(
            inner,
            json!([width, width]),
            "{page} at {size}: the page is wider than the viewport"
        );
        let png = browser.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(screenshot_dir().join(format!("{page}-{size}.png")), png)
            .expect("the screenshot is saved");
    }
    browser
        .issue_cmd(Chromium::Cdp(
            "Emulation.clearDeviceMetricsOverride",
            json!({}),
        ))
        .await
        .expect("the viewport is restored");
}
