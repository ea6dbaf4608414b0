//! Logging: tracing to standard error, as text or JSON lines.
//!
//! Never logged (docs/operations.md, "Logs"): passwords, cookie values, tickets, codes, tokens, query
//! strings. Logins are logged through `Debug` so control characters are escaped.
//!
//! JSON lines are flat: `timestamp`, `level`, `target`, `message`, then the fields of the
//! spans the event happened in (outermost first, so `request.id` of the request span is on
//! every line of a request), then the event's own fields. Log pipelines index top-level
//! keys; tracing-subscriber's own JSON nests span fields in a `spans` array instead.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{fmt as tfmt, EnvFilter};

use crate::config::LogSettings;

/// Keeps the log writer's thread running; dropping it flushes what waits (at the end of
/// `main`, so the last lines of a command are written).
#[must_use = "the logs stop when the guard is dropped"]
pub struct LogGuard {
    _writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

impl fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogGuard")
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.level`.
/// Calling it twice is harmless (the second call does nothing).
///
/// Lines go to standard error through a bounded queue written by a thread of its own (F14):
/// a stalled reader (journald, a log shipper) never blocks a request; beyond
/// `log.max_buffered_lines` waiting, lines are dropped, counted
/// (`sesame_log_lines_dropped_total`) and reported by a warning once the output moves again.
pub fn init(settings: &LogSettings) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(settings.max_buffered_lines.max(1))
        .thread_name("sesame-log")
        .finish(std::io::stderr());
    let dropped = writer.error_counter();
    let builder = tfmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    let installed = if settings.format == "json" {
        builder
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .try_init()
    } else {
        builder.try_init()
    };
    if installed.is_err() {
        return LogGuard { _writer: None };
    }
    report_dropped_lines(dropped);
    LogGuard {
        _writer: Some(guard),
    }
}

/// Counts dropped lines in the metric and says so in the log: every second while lines are
/// being dropped, and once more when they no longer are (that line too may be dropped while
/// the output is still blocked: then the count moves, and the report is made again).
fn report_dropped_lines(dropped: tracing_appender::non_blocking::ErrorCounter) {
    let spawned = std::thread::Builder::new()
        .name("sesame-log-drops".to_owned())
        .spawn(move || {
            let mut seen = 0_usize;
            let mut unreported = false;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                let now = dropped.dropped_lines();
                if now > seen {
                    sesame_metrics::log_lines_dropped(u64::try_from(now - seen).unwrap_or(0));
                    seen = now;
                    unreported = true;
                } else if unreported {
                    unreported = false;
                    tracing::warn!(
                        dropped_lines = now,
                        "log lines were dropped while standard error was blocked (log.max_buffered_lines waiting); it is written again"
                    );
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot count dropped log lines");
    }
}

/// One flat JSON object per event (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        // The wall clock, not the Clock port: a log line records when it was written, even
        // when tests move the application's time.
        let mut now = String::new();
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut now))?;
        line.insert("timestamp".to_owned(), Value::from(now));
        line.insert("level".to_owned(), Value::from(meta.level().as_str()));
        line.insert("target".to_owned(), Value::from(meta.target()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                // JsonFields stores each span's fields as one JSON object.
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    line.extend(fields);
                }
            }
        }
        let mut visitor = JsonVisitor(&mut line);
        event.record(&mut visitor);
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Collects an event's fields as JSON values (numbers and booleans stay typed).
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_are_flat_with_the_request_id_on_every_line_of_a_request() {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tfmt()
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(started = true, "outside any request");
            let request = tracing::info_span!("request", request.id = "r1d2");
            let _in_request = request.enter();
            let login = tracing::info_span!("login", user.login = ?"jean\n.dupont");
            let _in_login = login.enter();
            tracing::info!(http.status = 401_u64, duration_ms = 4.5, "request");
            tracing::warn!(error = %"store down", "login failed: store unavailable");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        for line in &lines {
            for key in ["timestamp", "level", "target", "message"] {
                assert!(line.get(key).is_some(), "{key} missing: {line}");
            }
        }
        assert!(lines[0].get("request.id").is_none());
        assert_eq!(lines[0]["started"], true);
        for line in &lines[1..] {
            assert_eq!(line["request.id"], "r1d2", "{line}");
            // Debug-escaped: the newline cannot forge a line.
            assert_eq!(line["user.login"], "\"jean\\n.dupont\"", "{line}");
        }
        assert_eq!(lines[1]["http.status"], 401);
        assert_eq!(lines[1]["duration_ms"], 4.5);
        assert_eq!(lines[2]["level"], "WARN");
        assert_eq!(lines[2]["error"], "store down");
        assert_eq!(lines[2]["message"], "login failed: store unavailable");
    }
}
