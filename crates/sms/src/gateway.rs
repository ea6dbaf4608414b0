//! SMS gateways: where an SMS goes once a flow has queued it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use sesame_core::sms::{mask_phone, SmsMessage};

/// Why a gateway could not send an SMS.
#[derive(Debug, thiserror::Error)]
pub enum SmsGatewayError {
    /// The provider could not be reached or failed; trying again later may work.
    #[error("SMS gateway unavailable: {0}")]
    Unavailable(String),
    /// The provider refused this message (a 4xx answer other than 408 and 429: bad number,
    /// bad credentials, bad body); trying again would get the same answer.
    #[error("SMS refused by the gateway: {0}")]
    Refused(String),
    /// The gateway's settings are unusable.
    #[error("SMS gateway settings: {0}")]
    Settings(String),
}

/// Sends one SMS.
#[async_trait]
pub trait SmsGateway: Send + Sync + std::fmt::Debug {
    /// Sends `message` now.
    ///
    /// # Errors
    /// [`SmsGatewayError::Unavailable`] when the provider fails or refuses it.
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsGatewayError>;

    /// Short name for logs.
    fn name(&self) -> &'static str;
}

/// Development gateway: logs that an SMS went to a masked number, never its text (which
/// holds a one-time code).
#[derive(Debug, Clone, Default)]
pub struct LogGateway;

#[async_trait]
impl SmsGateway for LogGateway {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsGatewayError> {
        tracing::info!(
            sms.to = %mask_phone(message.to.as_str()),
            "SMS to {} (masked; the log-only SMS gateway sends nothing)",
            mask_phone(message.to.as_str())
        );
        Ok(())
    }

    fn name(&self) -> &'static str {
        "log"
    }
}

/// Writes each SMS as `<dir>/<id>.json` (`{"to": …, "text": …}`), the way the mail outbox
/// writes mails: for tests and for setups where another program picks them up. The
/// directory is `0700` and files `0600` on Unix (they hold one-time codes).
#[derive(Debug, Clone)]
pub struct OutboxGateway {
    dir: PathBuf,
}

impl OutboxGateway {
    /// An outbox in `dir` (created at the first SMS if missing).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl SmsGateway for OutboxGateway {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsGatewayError> {
        let body = serde_json::json!({ "to": message.to.as_str(), "text": message.text });
        let dir = self.dir.clone();
        let name = format!("{}.json", uuid::Uuid::now_v7());
        tokio::task::spawn_blocking(move || {
            write_atomically(&dir, &name, body.to_string().as_bytes())
        })
        .await
        .map_err(|e| SmsGatewayError::Unavailable(format!("outbox task failed: {e}")))?
        .map_err(|e| SmsGatewayError::Unavailable(format!("SMS outbox: {e}")))
    }

    fn name(&self) -> &'static str {
        "outbox"
    }
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// How the HTTP gateway calls the provider.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpGatewayConfig {
    /// The provider's endpoint.
    pub url: String,
    /// `POST` (usual) or `GET`/`PUT`.
    pub method: String,
    /// Name of the authentication header (e.g. `Authorization`); empty: none.
    pub auth_header: String,
    /// Its value (e.g. `Bearer …`). Secret.
    pub auth_value: String,
    /// The request body, with `{to}` and `{text}` replaced (JSON-escaped when the content
    /// type is JSON, form-encoded otherwise).
    pub body_template: String,
    /// The body's content type.
    pub content_type: String,
    /// Budget of one request.
    pub timeout: Duration,
}

impl std::fmt::Debug for HttpGatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpGatewayConfig")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("auth_header", &self.auth_header)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// Sends each SMS with one HTTP request to a provider; any 2xx answer counts as sent.
#[derive(Debug, Clone)]
pub struct HttpGateway {
    config: HttpGatewayConfig,
    method: reqwest::Method,
    client: reqwest::Client,
}

impl HttpGateway {
    /// A gateway for `config`.
    ///
    /// # Errors
    /// [`SmsGatewayError::Settings`] for a bad URL or method.
    pub fn new(config: HttpGatewayConfig) -> Result<Self, SmsGatewayError> {
        if !(config.url.starts_with("https://") || config.url.starts_with("http://")) {
            return Err(SmsGatewayError::Settings(
                "sms.http_url must be an http(s) URL".to_owned(),
            ));
        }
        let method = reqwest::Method::from_bytes(config.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| SmsGatewayError::Settings(format!("unknown method {}", config.method)))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .build()
            .map_err(|e| SmsGatewayError::Settings(e.to_string()))?;
        Ok(Self {
            config,
            method,
            client,
        })
    }

    /// The request body for `message`.
    pub fn body(&self, message: &SmsMessage) -> String {
        let escape = |value: &str| -> String {
            if self.config.content_type.contains("json") {
                let quoted = serde_json::Value::from(value).to_string();
                quoted[1..quoted.len() - 1].to_owned()
            } else {
                form_encode(value)
            }
        };
        self.config
            .body_template
            .replace("{to}", &escape(message.to.as_str()))
            .replace("{text}", &escape(&message.text))
    }
}

fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[async_trait]
impl SmsGateway for HttpGateway {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsGatewayError> {
        let mut request = self
            .client
            .request(self.method.clone(), &self.config.url)
            .header("content-type", &self.config.content_type)
            .body(self.body(message));
        if !self.config.auth_header.is_empty() {
            request = request.header(&self.config.auth_header, &self.config.auth_value);
        }
        match request.send().await {
            Ok(res) if res.status().is_success() => Ok(()),
            Ok(res)
                if res.status().is_client_error()
                    && !matches!(res.status().as_u16(), 408 | 429) =>
            {
                Err(SmsGatewayError::Refused(format!(
                    "the provider answered {}",
                    res.status().as_u16()
                )))
            }
            Ok(res) => Err(SmsGatewayError::Unavailable(format!(
                "the provider answered {}",
                res.status().as_u16()
            ))),
            Err(e) => Err(SmsGatewayError::Unavailable(e.without_url().to_string())),
        }
    }

    fn name(&self) -> &'static str {
        "http"
    }
}

#[cfg(test)]
mod tests {
    use sesame_core::ids::MobilePhone;

    use super::*;

    fn config(content_type: &str, template: &str) -> HttpGatewayConfig {
        HttpGatewayConfig {
            url: "https://sms.example.org/send".to_owned(),
            method: "POST".to_owned(),
            auth_header: "Authorization".to_owned(),
            auth_value: "Bearer secret".to_owned(),
            body_template: template.to_owned(),
            content_type: content_type.to_owned(),
            timeout: Duration::from_secs(5),
        }
    }

    fn message() -> SmsMessage {
        SmsMessage {
            to: MobilePhone::parse("+33612345678").unwrap(),
            text: "Code \"123456\" & more".to_owned(),
        }
    }

    #[test]
    fn json_bodies_escape_the_values() {
        let g = HttpGateway::new(config(
            "application/json",
            r#"{"to":"{to}","message":"{text}"}"#,
        ))
        .unwrap();
        let body = g.body(&message());
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["to"], "+33612345678");
        assert_eq!(parsed["message"], "Code \"123456\" & more");
    }

    #[test]
    fn form_bodies_encode_the_values() {
        let g = HttpGateway::new(config(
            "application/x-www-form-urlencoded",
            "to={to}&text={text}",
        ))
        .unwrap();
        assert_eq!(
            g.body(&message()),
            "to=%2B33612345678&text=Code+%22123456%22+%26+more"
        );
    }

    #[test]
    fn the_auth_value_is_never_in_debug() {
        let shown = format!("{:?}", config("application/json", ""));
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[tokio::test]
    async fn the_outbox_writes_one_file_per_sms() {
        let dir = std::env::temp_dir().join(format!("sesame-sms-test-{}", uuid::Uuid::now_v7()));
        let g = OutboxGateway::new(dir.clone());
        g.send(&message()).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
