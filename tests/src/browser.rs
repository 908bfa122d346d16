//! A real headless Chromium, driven over WebDriver, for the web UI's tests.
//!
//! Each [`Browser`] starts its own `chromedriver` on a free port and one Chromium with a
//! fresh profile, so tests never share cookies and can run in parallel (nextest runs each
//! test in its own process; `cargo test` in threads). [`Browser::run`] closes the browser
//! and stops chromedriver even when the test body panics, and fails the test on any
//! browser console error the page did not expect.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); `CHROMIUM`
//! and `CHROMEDRIVER` override the paths.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};

/// How long any wait for the page may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A chromedriver process, stopped on drop.
#[derive(Debug)]
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One Chromium window and the chromedriver that drives it.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    driver: Arc<Driver>,
    profile: PathBuf,
    http: reqwest::Client,
    /// HTTP statuses whose network log lines the test expects (beside 401).
    expected: Arc<Mutex<Vec<u16>>>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// Where screenshots go: `<target dir>/ui-screenshots/`, created on demand.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot directory can be created");
    dir
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width` px wide.
    pub async fn start(width: u32) -> Self {
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = free_port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {chromedriver} ({e}): apt-get install chromium-driver")
            });
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        wait_until("chromedriver to listen", Duration::from_secs(20), || {
            let status = http.get(format!("{}/status", driver.url)).send();
            async move { status.await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;

        let profile = std::env::temp_dir().join(format!(
            "sessiond-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-extensions",
                    "--hide-scrollbars",
                    format!("--window-size={width},900"),
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("cannot start {chromium} through chromedriver: {e}"));
        Self {
            client,
            driver: Arc::new(driver),
            profile,
            http,
            expected: Arc::new(Mutex::new(vec![401])),
        }
    }

    /// Runs `test` in a fresh browser `width` px wide, then fails on console errors and
    /// closes everything, also when `test` panics (the panic is then re-raised).
    pub async fn run<F, Fut>(width: u32, test: F)
    where
        F: FnOnce(Browser) -> Fut,
        Fut: Future<Output = ()>,
    {
        let browser = Browser::start(width).await;
        let client = browser.client.clone();
        let driver = Arc::clone(&browser.driver);
        let profile = browser.profile.clone();
        let http = browser.http.clone();
        let expected = Arc::clone(&browser.expected);
        let outcome = std::panic::AssertUnwindSafe(test(browser))
            .catch_unwind()
            .await;
        let errors = match client.session_id().await {
            Ok(Some(session)) => {
                let expected = expected.lock().expect("not poisoned").clone();
                console_errors(&http, &driver.url, &session, &expected).await
            }
            _ => Vec::new(),
        };
        let _ = client.close().await;
        drop(driver);
        let _ = std::fs::remove_dir_all(&profile);
        if let Err(panic) = outcome {
            eprintln!("browser console errors at the failure: {errors:#?}");
            std::panic::resume_unwind(panic);
        }
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }

    /// Fails on any console error of the page since the last check (see `console_errors`).
    pub async fn assert_no_console_errors(&self) {
        let session = self
            .client
            .session_id()
            .await
            .expect("a WebDriver session")
            .expect("a WebDriver session id");
        let expected = self.expected.lock().expect("not poisoned").clone();
        let errors = console_errors(&self.http, &self.driver.url, &session, &expected).await;
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }

    /// Tells the console check that answers with `status` are expected: the browser logs
    /// every 4xx as an error, also those the page handles (a 429, a wrong password).
    pub fn expect_status(&self, status: u16) {
        self.expected.lock().expect("not poisoned").push(status);
    }

    /// Opens `url` and waits for the page's script to have run.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
        self.wait_for(
            "the app to start",
            "return !document.getElementById('boot');",
        )
        .await;
    }

    /// Runs `script` (a function body that returns a value) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns true.
    pub async fn wait_for(&self, what: &str, script: &str) {
        let started = Instant::now();
        loop {
            if self.client.execute(script, Vec::new()).await.ok() == Some(Value::Bool(true)) {
                return;
            }
            if started.elapsed() > WAIT {
                let text = self.eval("return document.body.innerText;").await;
                let url = self.client.current_url().await.map(|u| u.to_string());
                panic!("timed out waiting for {what}; at {url:?} the page reads:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until some element matching `css` contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) {
        let script = format!(
            "return [...document.querySelectorAll({css})].some(e => e.textContent.includes({text}));",
            css = json!(css),
            text = json!(text),
        );
        self.wait_for(&format!("{css:?} to contain {text:?}"), &script)
            .await;
    }

    /// The number of elements matching `css`.
    pub async fn count(&self, css: &str) -> u64 {
        self.eval(&format!(
            "return document.querySelectorAll({}).length;",
            json!(css)
        ))
        .await
        .as_u64()
        .unwrap_or_default()
    }

    /// Waits until exactly `n` elements match `css`.
    pub async fn wait_for_count(&self, css: &str, n: usize) {
        let script = format!(
            "return document.querySelectorAll({}).length === {n};",
            json!(css)
        );
        self.wait_for(&format!("{n} × {css:?}"), &script).await;
    }

    /// Clicks the element matching `css` (waiting for it to exist and be enabled).
    pub async fn click(&self, css: &str) {
        self.wait_for(
            &format!("{css:?} to be clickable"),
            &format!(
                "const e = document.querySelector({}); return !!e && !e.disabled;",
                json!(css)
            ),
        )
        .await;
        self.client
            .find(Locator::Css(css))
            .await
            .expect("the element exists")
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Types `text` into the field matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no field {css}: {e}"));
        field.clear().await.expect("the field clears");
        field.send_keys(text).await.expect("typing works");
    }

    /// Signs in through the sign-in form and waits for the sessions page.
    pub async fn sign_in(&self, base_url: &str, email: &str, password: &str) {
        self.open(&format!("{base_url}/#/sign-in")).await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("#sign-in-submit").await;
        self.wait_for_count("#session-list > li.session-current", 1)
            .await;
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`).
    pub async fn cdp(&self, command: &str, params: Value) -> Value {
        let session = self
            .client
            .session_id()
            .await
            .expect("a WebDriver session")
            .expect("a WebDriver session id");
        let reply = self
            .http
            .post(format!(
                "{}/session/{session}/goog/cdp/execute",
                self.driver.url
            ))
            .json(&json!({ "cmd": command, "params": params }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("chromedriver does not answer {command}: {e}"));
        let status = reply.status();
        let body: Value = reply.json().await.expect("a JSON answer");
        assert!(status.is_success(), "{command} failed: {body}");
        body["value"].clone()
    }

    /// Makes the page see `prefers-color-scheme: dark` (or light) from now on.
    pub async fn set_color_scheme(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .await;
        self.wait_for(
            "the colour scheme",
            &format!("return matchMedia('(prefers-color-scheme: {scheme})').matches;"),
        )
        .await;
    }

    /// The `id` of the focused element (`document.activeElement`): its tag name for one
    /// without, "BODY" when the focus fell to `<body>`.
    pub async fn focused(&self) -> String {
        self.eval(
            "const e = document.activeElement; \
             return !e || e === document.body ? 'BODY' : e.id || e.tagName;",
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Waits until the element with `id` has the focus.
    pub async fn wait_for_focus(&self, id: &str) {
        let started = Instant::now();
        loop {
            let focused = self.focused().await;
            if focused == id {
                return;
            }
            assert!(
                started.elapsed() < WAIT,
                "the focus is on {focused:?}, not on #{id}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resizes the window to `width` px and saves a screenshot as `name`.png in
    /// [`screenshot_dir`].
    pub async fn screenshot(&self, name: &str, width: u32) -> PathBuf {
        self.client
            .set_window_size(width, 900)
            .await
            .expect("the window resizes");
        // Wait for the layout at the new width before taking the picture.
        self.wait_for(
            "the new width",
            &format!("return Math.abs(window.innerWidth - {width}) <= 16;"),
        )
        .await;
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }

    /// Screenshots of the page as it is, at 390 and 1280 px in light and dark, named
    /// `<page>-<width>-<scheme>`; a page longer than the window also gets its end
    /// (`…-end`), and is scrolled back to the top.
    pub async fn screenshots(&self, page: &str) {
        for dark in [false, true] {
            self.set_color_scheme(dark).await;
            let scheme = if dark { "dark" } else { "light" };
            for width in [390, 1280] {
                let path = self
                    .screenshot(&format!("{page}-{width}-{scheme}"), width)
                    .await;
                assert!(path.exists());
                let longer = self
                    .eval(
                        "const more = document.documentElement.scrollHeight > innerHeight;\
                         if (more) scrollTo(0, document.documentElement.scrollHeight);\
                         return more;",
                    )
                    .await;
                if longer == true {
                    self.screenshot(&format!("{page}-{width}-{scheme}-end"), width)
                        .await;
                    self.eval("scrollTo(0, 0); return true;").await;
                }
            }
        }
    }
}

/// The console errors since the last call (chromedriver's log endpoint), except the network
/// log lines of answers the UI expects and handles: 401 (a signed-out browser or an ended
/// session, after which the page shows sign-in) and the `expected` statuses of the test.
async fn console_errors(
    http: &reqwest::Client,
    driver_url: &str,
    session: &str,
    expected: &[u16],
) -> Vec<Value> {
    let reply = http
        .post(format!("{driver_url}/session/{session}/se/log"))
        .json(&json!({ "type": "browser" }))
        .send()
        .await
        .expect("chromedriver answers");
    let body: Value = reply.json().await.expect("a JSON log");
    let entries = body["value"].as_array().cloned().unwrap_or_default();
    entries
        .into_iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .filter(|entry| {
            let message = entry["message"].as_str().unwrap_or_default();
            !(entry["source"] == "network"
                && expected.iter().any(|status| {
                    message.contains(&format!("the server responded with a status of {status} "))
                }))
        })
        .collect()
}

/// Polls `condition` every 50 ms until it holds, or panics after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
