//! A W3C WebDriver client for the browser test, over the HTTP client the tests already use.
//!
//! The test needs a dozen commands (open a session, navigate, find, click, type, read text and
//! attributes, run a script, resize, screenshot). fantoccini did this, but its `webdriver` crate pulled in ICU 1.5
//! and with it `syn`'s `fold`/`visit` features: every proc macro, and so arrow, DataFusion and
//! rdkafka, compiled a second time for `cargo test` after `cargo build`. The protocol itself is
//! plain JSON over HTTP (<https://www.w3.org/TR/webdriver2/>).

use serde_json::{json, Value};

/// The key under which WebDriver answers an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Enter key, as WebDriver's `send_keys` spells it.
pub const ENTER: &str = "\u{E007}";

/// The down arrow key, as WebDriver's `send_keys` spells it.
pub const ARROW_DOWN: &str = "\u{E015}";

/// A WebDriver error: the command, the HTTP status and the driver's `error`/`message`.
#[derive(Debug)]
pub struct WebDriverError(pub String);

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, WebDriverError>;

/// One browser session on a driver.
pub struct Session {
    http: reqwest::Client,
    base: String,
}

/// An element found in the page.
pub struct Element<'a> {
    session: &'a Session,
    id: String,
}

impl Session {
    /// Opens a session on the driver at `driver` (e.g. `http://127.0.0.1:9515`) with the given
    /// `goog:chromeOptions`.
    pub async fn start(driver: &str, chrome_options: Value) -> Result<Session> {
        let http = super::http();
        let body = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": chrome_options,
            }}
        });
        let value = call(
            &http,
            reqwest::Method::POST,
            &format!("{driver}/session"),
            Some(body),
        )
        .await?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| WebDriverError(format!("new session: no sessionId in {value}")))?;
        Ok(Session {
            http,
            base: format!("{driver}/session/{id}"),
        })
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        call(&self.http, method, &format!("{}{path}", self.base), body).await
    }

    /// Navigates to `url`.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// The address the page is at now.
    pub async fn current_url(&self) -> Result<String> {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// The first element matching the CSS selector.
    pub async fn find(&self, css: &str) -> Result<Element<'_>> {
        let body = json!({ "using": "css selector", "value": css });
        let v = self
            .cmd(reqwest::Method::POST, "/element", Some(body))
            .await?;
        self.element(&v)
    }

    /// Every element matching the CSS selector (none is an empty list, not an error).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>> {
        let body = json!({ "using": "css selector", "value": css });
        let v = self
            .cmd(reqwest::Method::POST, "/elements", Some(body))
            .await?;
        v.as_array()
            .ok_or_else(|| WebDriverError(format!("find_all {css}: not a list: {v}")))?
            .iter()
            .map(|e| self.element(e))
            .collect()
    }

    fn element(&self, v: &Value) -> Result<Element<'_>> {
        let id = v[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| WebDriverError(format!("not an element reference: {v}")))?;
        Ok(Element {
            session: self,
            id: id.to_owned(),
        })
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns its
    /// value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        let body = json!({ "script": script, "args": args });
        self.cmd(reqwest::Method::POST, "/execute/sync", Some(body))
            .await
    }

    /// Resizes the browser window to `width` × `height` CSS pixels.
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        let body = json!({ "width": width, "height": height });
        self.cmd(reqwest::Method::POST, "/window/rect", Some(body))
            .await
            .map(drop)
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await?;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| WebDriverError(format!("screenshot: {e}")))
    }

    /// Ends the session (the browser closes).
    pub async fn close(self) -> Result<()> {
        self.cmd(reqwest::Method::DELETE, "", None).await.map(drop)
    }
}

impl Element<'_> {
    async fn cmd(&self, method: reqwest::Method, what: &str, body: Option<Value>) -> Result<Value> {
        let path = format!("/element/{}{what}", self.id);
        self.session.cmd(method, &path, body).await
    }

    /// Clicks the element.
    pub async fn click(&self) -> Result<()> {
        self.cmd(reqwest::Method::POST, "/click", Some(json!({})))
            .await
            .map(drop)
    }

    /// Types `text` into the element.
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.cmd(
            reqwest::Method::POST,
            "/value",
            Some(json!({ "text": text })),
        )
        .await
        .map(drop)
    }

    /// The element's rendered text.
    pub async fn text(&self) -> Result<String> {
        let v = self.cmd(reqwest::Method::GET, "/text", None).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute's value, `None` when the element has no such attribute.
    pub async fn attr(&self, name: &str) -> Result<Option<String>> {
        let v = self
            .cmd(reqwest::Method::GET, &format!("/attribute/{name}"), None)
            .await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// Whether the element is shown.
    pub async fn is_displayed(&self) -> Result<bool> {
        let v = self.cmd(reqwest::Method::GET, "/displayed", None).await?;
        v.as_bool()
            .ok_or_else(|| WebDriverError(format!("displayed: not a boolean: {v}")))
    }
}

/// Sends one command and unwraps WebDriver's `{"value": ...}`; an error answer (any non-2xx)
/// becomes an error naming the command and the driver's message.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value> {
    let what = format!("{method} {url}");
    let mut req = http.request(method, url);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| WebDriverError(format!("{what}: {e}")))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| WebDriverError(format!("{what}: {e}")))?;
    let mut v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| WebDriverError(format!("{what}: {status}: not JSON: {e}")))?;
    let value = v["value"].take();
    if !status.is_success() {
        return Err(WebDriverError(format!(
            "{what}: {status}: {} {}",
            value["error"], value["message"]
        )));
    }
    Ok(value)
}
