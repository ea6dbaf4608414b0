//! F14 as it applies to Sesame (issue 18): the program reading Sesame's output (journald, a log
//! shipper) stalls under load. Instance b writes into a pipe that the row reads and then stops
//! reading; requests must go on at the same pace, the lines that no longer fit
//! (`log.max_buffered_lines`) are dropped and counted (`sesame_log_lines_dropped_total`), and
//! once the pipe is read again a warning says how many were lost.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sesame_bench::http::Conn;

use crate::infra::free_port;
use crate::load::{quantile_ms, Tally};
use crate::rows::stop_instance;
use crate::{Env, RowResult};

/// Lines the instance holds while its output is blocked, before it drops them: small, so the
/// row sees drops within seconds at the load's pace.
const MAX_BUFFERED_LINES: &str = "200";
/// How long the reader stays stalled.
const STALL: Duration = Duration::from_secs(6);
/// The warning Sesame writes once its output drains.
const DRAINED: &str = "log lines were dropped while standard error was blocked";

/// The reading end of a named pipe, copied to a file, that can stop reading.
struct PausableReader {
    paused: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
}

impl PausableReader {
    /// Creates the pipe at `fifo` and a thread that copies what comes out of it to `copy`.
    fn start(fifo: &Path, copy: &Path) -> anyhow::Result<Self> {
        std::fs::remove_file(fifo).ok();
        let made = std::process::Command::new("mkfifo")
            .arg(fifo)
            .status()
            .context("mkfifo")?;
        if !made.success() {
            bail!("mkfifo {} failed", fifo.display());
        }
        let paused = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let (fifo, copy) = (fifo.to_owned(), copy.to_owned());
        let (p, s) = (Arc::clone(&paused), Arc::clone(&stopped));
        std::thread::Builder::new()
            .name("f14-reader".to_owned())
            .spawn(move || {
                // Opening blocks until Sesame opens the writing end.
                let (Ok(mut from), Ok(mut to)) = (
                    std::fs::File::open(&fifo),
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&copy),
                ) else {
                    return;
                };
                let mut buf = vec![0_u8; 64 * 1024];
                while !s.load(Ordering::SeqCst) {
                    if p.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            })?;
        Ok(Self { paused, stopped })
    }

    fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }
}

impl Drop for PausableReader {
    fn drop(&mut self) {
        self.paused.store(false, Ordering::SeqCst);
        self.stopped.store(true, Ordering::SeqCst);
    }
}

/// `sesame_log_lines_dropped_total` from the metrics listener at `addr` (0 when absent).
async fn dropped_lines(addr: SocketAddr) -> anyhow::Result<f64> {
    let reply = Conn::new(addr)?.get("/metrics", None).await?;
    Ok(reply
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("sesame_log_lines_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0))
}

/// F14, see the module's documentation.
pub async fn f14(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let fifo = env.work.join("sesame-b.fifo");
    let copy: PathBuf = env.work.join("sesame-b-f14.log");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let reader = PausableReader::start(&fifo, &copy)?;
    stop_instance(env, 1).await?;
    let normal_log = env.instances[1].log_path().to_owned();
    env.instances[1].set_log(fifo.clone());
    let overrides = [
        (
            "SESAME_LOG__MAX_BUFFERED_LINES",
            MAX_BUFFERED_LINES.to_owned(),
        ),
        ("SESAME_METRICS__LISTEN", metrics.to_string()),
    ];
    for (k, v) in &overrides {
        env.instances[1].set_env(k, Some(v));
    }
    let checks = match env.instances[1].start().await {
        Ok(_) => {
            env.shared.add_target(env.instances[1].addr);
            f14_checks(env, r, &reader, metrics, &copy).await
        }
        Err(e) => Err(e),
    };
    // Back to its log file; the reader drains the pipe until the instance has stopped.
    reader.pause(false);
    if env.instances[1].process.is_some() {
        stop_instance(env, 1).await?;
    }
    drop(reader);
    env.instances[1].set_log(normal_log);
    for (k, _) in &overrides {
        env.instances[1].set_env(k, None);
    }
    env.instances[1].start().await?;
    env.shared.add_target(env.instances[1].addr);
    std::fs::remove_file(&fifo).ok();
    checks
}

async fn f14_checks(
    env: &mut Env,
    r: &mut RowResult,
    reader: &PausableReader,
    metrics: SocketAddr,
    copy: &Path,
) -> anyhow::Result<()> {
    let b = env.instances[1].addr;
    let at_b = |from: Instant, to: Instant| {
        env.shared
            .window(from, to)
            .into_iter()
            .filter(|s| s.instance == b)
            .collect::<Vec<_>>()
    };
    let calm_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calm = at_b(calm_from, Instant::now());
    let calm_p99 = quantile_ms(calm.iter(), 0.99);
    let dropped_before = dropped_lines(metrics).await?;

    reader.pause(true);
    let stalled_from = Instant::now();
    tokio::time::sleep(STALL).await;
    let stalled = at_b(stalled_from, Instant::now());
    let dropped = dropped_lines(metrics).await;
    reader.pause(false);

    let tally = Tally::of(&stalled);
    r.held
        .push(format!("load at b while its output was blocked: {tally}"));
    r.check(
        !stalled.is_empty()
            && tally.server_errors + tally.transport + tally.unavailable + tally.unavailable_bare
                == 0,
        format!(
            "b answered every request while nothing read its output ({} requests)",
            stalled.len()
        ),
    );
    let stalled_p99 = quantile_ms(stalled.iter(), 0.99);
    r.check(
        stalled_p99 <= calm_p99 * 3.0 + 100.0,
        format!(
            "p99 at b {stalled_p99:.1} ms while blocked, {calm_p99:.1} ms before (≤ 3 × + 100 ms)"
        ),
    );
    let dropped = dropped.context("the metrics listener did not answer while blocked")?;
    r.check(
        dropped > dropped_before,
        format!(
            "the lines that did not fit were dropped and counted (sesame_log_lines_dropped_total {dropped_before} → {dropped})"
        ),
    );
    let started = Instant::now();
    let mut told = false;
    while started.elapsed() < Duration::from_secs(15) && !told {
        tokio::time::sleep(Duration::from_millis(200)).await;
        told = std::fs::read_to_string(copy).is_ok_and(|t| t.contains(DRAINED));
    }
    r.check(
        told,
        "once its output is read again, b says that lines were dropped",
    );
    Ok(())
}
