//! Sesame's metrics: every name and label in one place, and the one-line calls the domain
//! crates make where things happen.
//!
//! The calls go through the [`metrics`] facade: without an installed recorder (the CLI,
//! unit tests) they cost next to nothing and record nothing. `sesame serve` installs the
//! Prometheus exporter and serves the text format on its own listener (`[metrics] listen`).
//!
//! Labels are low-cardinality by construction: every label value passed here is a
//! `&'static str` from a fixed set (outcomes, kinds, route patterns), never a login, an
//! address or a path with an identifier in it. The names are an interface: dashboards and
//! alerts depend on them, so they change only with a note in docs/upgrading.md.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Logins by outcome (`outcome` = one of [`LOGIN_OUTCOMES`]).
pub const LOGINS_TOTAL: &str = "sesame_logins_total";
/// Logins locked after repeated failures (a new lock, not a refusal while locked).
pub const LOCKOUTS_TOTAL: &str = "sesame_lockouts_total";
/// CAS tickets issued by kind (`kind` = `st`, `pt`, `pgt`).
pub const TICKETS_ISSUED_TOTAL: &str = "sesame_tickets_issued_total";
/// CAS ticket validations by outcome (`outcome` = `success` or the CAS error code, e.g.
/// `INVALID_TICKET`).
pub const TICKETS_VALIDATED_TOTAL: &str = "sesame_tickets_validated_total";
/// OpenID Connect token responses by grant (`grant` = the `grant_type`).
pub const TOKENS_ISSUED_TOTAL: &str = "sesame_tokens_issued_total";
/// Mails by status (`status` = `queued`, `sent`, `retried`, `failed`).
pub const MAILS_TOTAL: &str = "sesame_mails_total";
/// Password hashing jobs waiting for a hashing thread.
pub const HASHING_QUEUE_DEPTH: &str = "sesame_hashing_queue_depth";
/// Time a hashing job waited for a hashing thread.
pub const HASHING_WAIT_SECONDS: &str = "sesame_hashing_wait_seconds";
/// Failed operations of the ticket/session store (Redis).
pub const STORE_ERRORS_TOTAL: &str = "sesame_store_errors_total";
/// Duration of one operation of the ticket/session store (Redis).
pub const STORE_OP_SECONDS: &str = "sesame_store_op_seconds";
/// Failed operations of the account database (unreachable, failed, timed out).
pub const DB_ERRORS_TOTAL: &str = "sesame_db_errors_total";
/// Duration of one account database operation, waiting for a connection included.
pub const DB_OP_SECONDS: &str = "sesame_db_op_seconds";
/// HTTP requests by route pattern and status (`route`, `method`, `status`).
pub const HTTP_REQUESTS_TOTAL: &str = "sesame_http_requests_total";
/// HTTP request duration by route pattern (`route`, `method`).
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "sesame_http_request_duration_seconds";

/// Log lines dropped because standard error was blocked (`log.max_buffered_lines` waiting).
pub const LOG_LINES_DROPPED_TOTAL: &str = "sesame_log_lines_dropped_total";
/// SMS by outcome (`status` = `sent`, `retried`, `failed`): each try handed to the gateway.
pub const SMS_TOTAL: &str = "sesame_sms_total";
/// Age of the oldest mail still waiting in the queue (0 when none waits), as the worker saw
/// it at its last pass.
pub const MAIL_QUEUE_OLDEST_SECONDS: &str = "sesame_mail_queue_oldest_pending_seconds";
/// How long the RS256 key signing now has been signing.
pub const SIGNING_KEY_AGE_SECONDS: &str = "sesame_signing_key_age_seconds";
/// LDAP operations by kind and result (`operation` = `bind`, `search`, `compare`, `whoami`,
/// `starttls`, `write`, `extended`, `other`; `result` = the LDAP result, e.g. `success`,
/// `invalid_credentials`, `busy`).
pub const LDAP_OPERATIONS_TOTAL: &str = "sesame_ldap_operations_total";
/// Open LDAP connections.
pub const LDAP_CONNECTIONS: &str = "sesame_ldap_connections";
/// Fetches of a federation's SAML metadata aggregate by source and outcome (`source` = the
/// configured name; `outcome` = `loaded`, `unchanged`, `refused`, `unreachable`).
pub const SAML_METADATA_REFRESHES_TOTAL: &str = "sesame_saml_metadata_refreshes_total";
/// Seconds until the aggregate in use of a source expires (`validUntil`); 0 when none is.
pub const SAML_METADATA_VALID_SECONDS: &str = "sesame_saml_metadata_valid_seconds";
/// Service providers an aggregate brought, by source.
pub const SAML_METADATA_SERVICE_PROVIDERS: &str = "sesame_saml_metadata_service_providers";

/// The values of `outcome` on [`LOGINS_TOTAL`].
pub const LOGIN_OUTCOMES: &[&str] = &[
    "success",
    "invalid_credentials",
    "locked",
    "throttled",
    "blocked",
    "disabled",
    "busy",
    "password_too_long",
    "activation_code",
    "error",
];

/// The values of `status` on [`MAILS_TOTAL`].
pub const MAIL_STATUSES: &[&str] = &["queued", "sent", "retried", "failed"];

/// Every metric with its kind and help text, for the exporter and the documentation test.
pub const CATALOGUE: &[(&str, Kind, &str)] = &[
    (
        LOG_LINES_DROPPED_TOTAL,
        Kind::Counter,
        "Log lines dropped because standard error was blocked.",
    ),
    (
        SMS_TOTAL,
        Kind::Counter,
        "SMS tries by outcome (sent, retried, failed).",
    ),
    (
        MAIL_QUEUE_OLDEST_SECONDS,
        Kind::Gauge,
        "Age of the oldest mail waiting in the queue, seconds (0: none).",
    ),
    (
        SIGNING_KEY_AGE_SECONDS,
        Kind::Gauge,
        "How long the RS256 key signing now has been signing, seconds.",
    ),
    (
        LDAP_OPERATIONS_TOTAL,
        Kind::Counter,
        "LDAP operations, by operation and result.",
    ),
    (LDAP_CONNECTIONS, Kind::Gauge, "Open LDAP connections."),
    (
        SAML_METADATA_REFRESHES_TOTAL,
        Kind::Counter,
        "Fetches of a federation's SAML metadata aggregate, by source and outcome (loaded, unchanged, refused, unreachable).",
    ),
    (
        SAML_METADATA_VALID_SECONDS,
        Kind::Gauge,
        "Seconds until the SAML metadata aggregate in use expires, by source (0: none in use).",
    ),
    (
        SAML_METADATA_SERVICE_PROVIDERS,
        Kind::Gauge,
        "Service providers the SAML metadata aggregate in use brought, by source.",
    ),
    (LOGINS_TOTAL, Kind::Counter, "Login attempts by outcome."),
    (
        LOCKOUTS_TOTAL,
        Kind::Counter,
        "Logins locked after repeated failures.",
    ),
    (
        TICKETS_ISSUED_TOTAL,
        Kind::Counter,
        "CAS tickets issued, by kind (st, pt, pgt).",
    ),
    (
        TICKETS_VALIDATED_TOTAL,
        Kind::Counter,
        "CAS ticket validations, by outcome (success or the CAS error code).",
    ),
    (
        TOKENS_ISSUED_TOTAL,
        Kind::Counter,
        "OpenID Connect token responses, by grant type.",
    ),
    (
        MAILS_TOTAL,
        Kind::Counter,
        "Mails queued, sent, retried and given up (failed).",
    ),
    (
        HASHING_QUEUE_DEPTH,
        Kind::Gauge,
        "Password hashing jobs waiting for a hashing thread.",
    ),
    (
        HASHING_WAIT_SECONDS,
        Kind::Histogram,
        "Time a password hashing job waited for a hashing thread.",
    ),
    (
        STORE_ERRORS_TOTAL,
        Kind::Counter,
        "Failed or timed-out operations of the ticket/session store (Redis).",
    ),
    (
        STORE_OP_SECONDS,
        Kind::Histogram,
        "Duration of one ticket/session store (Redis) operation.",
    ),
    (
        DB_ERRORS_TOTAL,
        Kind::Counter,
        "Failed operations of the account database (unreachable, failed, timed out).",
    ),
    (
        DB_OP_SECONDS,
        Kind::Histogram,
        "Duration of one account database operation, including the wait for a connection.",
    ),
    (
        HTTP_REQUESTS_TOTAL,
        Kind::Counter,
        "HTTP requests on the public listener, by route pattern, method and status.",
    ),
    (
        HTTP_REQUEST_DURATION_SECONDS,
        Kind::Histogram,
        "Duration of HTTP requests on the public listener, by route pattern and method.",
    ),
];

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution of durations, in seconds.
    Histogram,
}

/// Registers the help texts and makes every fixed series visible at zero, so dashboards and
/// `rate()` see a series before its first event. Call once after installing a recorder.
pub fn describe() {
    for (name, kind, help) in CATALOGUE {
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, *help),
            Kind::Gauge => metrics::describe_gauge!(*name, *help),
            Kind::Histogram => {
                metrics::describe_histogram!(*name, metrics::Unit::Seconds, *help);
            }
        }
    }
    for outcome in LOGIN_OUTCOMES {
        metrics::counter!(LOGINS_TOTAL, "outcome" => *outcome).absolute(0);
    }
    for status in MAIL_STATUSES {
        metrics::counter!(MAILS_TOTAL, "status" => *status).absolute(0);
    }
    for kind in ["st", "pt", "pgt"] {
        metrics::counter!(TICKETS_ISSUED_TOTAL, "kind" => kind).absolute(0);
    }
    metrics::counter!(LOCKOUTS_TOTAL).absolute(0);
    metrics::counter!(STORE_ERRORS_TOTAL).absolute(0);
    metrics::counter!(DB_ERRORS_TOTAL).absolute(0);
    metrics::gauge!(HASHING_QUEUE_DEPTH).set(0.0);
}

/// A login ended with `outcome` (one of [`LOGIN_OUTCOMES`]).
pub fn login(outcome: &'static str) {
    metrics::counter!(LOGINS_TOTAL, "outcome" => outcome).increment(1);
}

/// `lines` more log lines were dropped.
pub fn log_lines_dropped(lines: u64) {
    metrics::counter!(LOG_LINES_DROPPED_TOTAL).increment(lines);
}

/// An SMS try ended with `status` (`sent`, `retried`, `failed`).
pub fn sms(status: &'static str) {
    metrics::counter!(SMS_TOTAL, "status" => status).increment(1);
}

/// The oldest waiting mail is `seconds` old (0: none waits).
pub fn mail_queue_oldest(seconds: f64) {
    metrics::gauge!(MAIL_QUEUE_OLDEST_SECONDS).set(seconds);
}

/// The signing key in use is `seconds` old.
pub fn signing_key_age(seconds: f64) {
    metrics::gauge!(SIGNING_KEY_AGE_SECONDS).set(seconds);
}

/// A fetch of the aggregate of `source` ended with `outcome` (`loaded`, `unchanged`,
/// `refused`, `unreachable`); the aggregate in use is valid `valid_seconds` more and brought
/// `service_providers`. `source` is a configured name (bounded by the configuration).
pub fn saml_metadata_refresh(
    source: &str,
    outcome: &'static str,
    valid_seconds: f64,
    service_providers: usize,
) {
    let source = source.to_owned();
    metrics::counter!(SAML_METADATA_REFRESHES_TOTAL, "source" => source.clone(), "outcome" => outcome)
        .increment(1);
    metrics::gauge!(SAML_METADATA_VALID_SECONDS, "source" => source.clone()).set(valid_seconds);
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(SAML_METADATA_SERVICE_PROVIDERS, "source" => source)
        .set(service_providers as f64);
}

/// An LDAP `operation` ended with `result`.
pub fn ldap_operation(operation: &'static str, result: &'static str) {
    metrics::counter!(LDAP_OPERATIONS_TOTAL, "operation" => operation, "result" => result)
        .increment(1);
}

/// An LDAP connection opened.
pub fn ldap_connection_opened() {
    metrics::gauge!(LDAP_CONNECTIONS).increment(1.0);
}

/// An LDAP connection closed.
pub fn ldap_connection_closed() {
    metrics::gauge!(LDAP_CONNECTIONS).decrement(1.0);
}

/// A login string was just locked.
pub fn lockout() {
    metrics::counter!(LOCKOUTS_TOTAL).increment(1);
}

/// A CAS ticket of `kind` (`st`, `pt`, `pgt`) was issued.
pub fn ticket_issued(kind: &'static str) {
    metrics::counter!(TICKETS_ISSUED_TOTAL, "kind" => kind).increment(1);
}

/// A CAS ticket validation ended with `outcome` (`success` or a CAS error code).
pub fn ticket_validated(outcome: &'static str) {
    metrics::counter!(TICKETS_VALIDATED_TOTAL, "outcome" => outcome).increment(1);
}

/// The token endpoint answered a `grant` (`authorization_code`, `refresh_token`,
/// `client_credentials`) with tokens.
pub fn token_issued(grant: &'static str) {
    metrics::counter!(TOKENS_ISSUED_TOTAL, "grant" => grant).increment(1);
}

/// A mail reached `status` (one of [`MAIL_STATUSES`]).
pub fn mail(status: &'static str) {
    metrics::counter!(MAILS_TOTAL, "status" => status).increment(1);
}

/// A store (Redis) operation took `elapsed` and succeeded or not.
pub fn store_op(elapsed: Duration, ok: bool) {
    metrics::histogram!(STORE_OP_SECONDS).record(elapsed.as_secs_f64());
    if !ok {
        metrics::counter!(STORE_ERRORS_TOTAL).increment(1);
    }
}

/// A database operation took `elapsed` and failed in the database (`failed`) or not.
pub fn db_op(elapsed: Duration, failed: bool) {
    metrics::histogram!(DB_OP_SECONDS).record(elapsed.as_secs_f64());
    if failed {
        metrics::counter!(DB_ERRORS_TOTAL).increment(1);
    }
}

/// The counter and histogram of one (method, status) of a route.
type HttpHandles = (&'static str, u16, metrics::Counter, metrics::Histogram);

thread_local! {
    /// Each HTTP worker thread's handles, by route, then (method, status): a small, fixed
    /// set. Asking the recorder for them at every request (a key built from the labels, the
    /// status formatted, the key hashed and looked up under a lock) cost about 4,700
    /// instructions a request (callgrind of `make bench`'s discovery and JWKS phases), a
    /// seventh of a whole `/jwks` request; a hit here is one hash of the route.
    static HTTP_HANDLES: RefCell<HashMap<String, Vec<HttpHandles>>> =
        RefCell::new(HashMap::new());
}

fn http_handles(route: &str, method: &'static str, status: u16) -> HttpHandles {
    let counter = metrics::counter!(
        HTTP_REQUESTS_TOTAL,
        "route" => route.to_owned(),
        "method" => method,
        "status" => status.to_string()
    );
    let histogram = metrics::histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        "route" => route.to_owned(),
        "method" => method
    );
    (method, status, counter, histogram)
}

/// An HTTP request on the public listener was answered. `route` is the route's pattern
/// (`/static/{name}`) or `unmatched`, never the request's path.
pub fn http_request(route: &str, method: &'static str, status: u16, elapsed: Duration) {
    let record = |(_, _, counter, histogram): &HttpHandles| {
        counter.increment(1);
        histogram.record(elapsed.as_secs_f64());
    };
    let cached = HTTP_HANDLES.try_with(|handles| {
        let Ok(mut handles) = handles.try_borrow_mut() else {
            return false;
        };
        if !handles.contains_key(route) {
            handles.insert(route.to_owned(), Vec::new());
        }
        let Some(of_route) = handles.get_mut(route) else {
            return false;
        };
        let found = of_route
            .iter()
            .position(|(m, s, _, _)| *m == method && *s == status);
        let index = found.unwrap_or_else(|| {
            of_route.push(http_handles(route, method, status));
            of_route.len() - 1
        });
        of_route.get(index).map(record).is_some()
    });
    // Only while the thread is being torn down (or re-entered): ask the recorder directly.
    if cached != Ok(true) {
        record(&http_handles(route, method, status));
    }
}

/// A hashing job waiting for a thread: counted in [`HASHING_QUEUE_DEPTH`] from
/// [`HashingWait::begin`] until [`HashingWait::end`] (or until dropped, when the wait is
/// abandoned), and its wait recorded in [`HASHING_WAIT_SECONDS`] at `end`.
#[derive(Debug)]
#[must_use = "the job counts as waiting until the guard ends or drops"]
pub struct HashingWait {
    started: Instant,
}

impl HashingWait {
    /// The job starts waiting.
    pub fn begin() -> Self {
        metrics::gauge!(HASHING_QUEUE_DEPTH).increment(1.0);
        Self {
            started: Instant::now(),
        }
    }

    /// The job got a thread.
    pub fn end(self) {
        metrics::histogram!(HASHING_WAIT_SECONDS).record(self.started.elapsed().as_secs_f64());
        // Drop takes it out of the queue depth.
    }
}

impl Drop for HashingWait {
    fn drop(&mut self) {
        metrics::gauge!(HASHING_QUEUE_DEPTH).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `sesame_…` metric names in `text`, a histogram's series (`_bucket`, `_sum`,
    /// `_count`) named by their histogram.
    fn metric_names(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("sesame_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix).filter(|b| {
                        CATALOGUE
                            .iter()
                            .any(|(n, kind, _)| n == b && *kind == Kind::Histogram)
                    })
                })
                .unwrap_or(name);
            names.push(base.to_owned());
            rest = &tail[end..];
        }
        names
    }

    #[test]
    fn every_metric_the_alerts_and_the_dashboard_name_is_exported() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
        for file in [
            "prometheus/sesame-alerts.yml",
            "grafana/sesame-dashboard.json",
        ] {
            let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
            let names = metric_names(&text);
            assert!(names.len() >= 10, "{file}: {names:?}");
            for name in names {
                assert!(
                    CATALOGUE.iter().any(|(n, _, _)| *n == name),
                    "{file} names {name}, which Sesame does not export"
                );
            }
        }
        assert_eq!(
            metric_names("rate(sesame_db_op_seconds_bucket[5m]) sesame_nope_total"),
            ["sesame_db_op_seconds", "sesame_nope_total"]
        );
    }

    #[test]
    fn names_follow_the_prometheus_conventions() {
        for (name, kind, help) in CATALOGUE {
            assert!(name.starts_with("sesame_"), "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            match kind {
                Kind::Counter => assert!(name.ends_with("_total"), "{name}"),
                Kind::Histogram => assert!(name.ends_with("_seconds"), "{name}"),
                Kind::Gauge => assert!(!name.ends_with("_total"), "{name}"),
            }
            assert!(!help.is_empty());
        }
    }

    #[test]
    fn calls_without_a_recorder_do_nothing() {
        login("success");
        HashingWait::begin().end();
        store_op(Duration::from_millis(1), false);
    }
}
