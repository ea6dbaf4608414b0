//! The load generator: N connections, each running one scenario's operation in a closed loop
//! (next operation as soon as the previous one is answered), latencies in an HDR histogram.
//!
//! An operation counts when it completes inside the measurement window (after the warm-up).
//! While a phase runs, the watched server process is sampled: its CPU time at the start and
//! end of the window, and its resident memory every 50 ms.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::http::Conn;
use crate::procfs;

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One operation completed.
    Done,
    /// Nothing left to do (a queue of pre-minted tickets is empty): this connection stops.
    Exhausted,
}

/// A connection a scenario runs on (HTTP, LDAP), opened lazily by its first operation.
pub trait Connection: Send + Sized + 'static {
    /// A connection to `target`.
    ///
    /// # Errors
    /// When the client cannot be built.
    fn open(target: SocketAddr) -> anyhow::Result<Self>;
}

impl Connection for Conn {
    fn open(target: SocketAddr) -> anyhow::Result<Self> {
        Conn::new(target)
    }
}

/// A closed-loop workload.
pub trait Scenario: Send + Sync + 'static {
    /// What it runs on.
    type Conn: Connection;
    /// Per-connection state.
    type State: Send + 'static;
    /// The state of connection `index`.
    fn state(&self, index: usize) -> Self::State;
    /// One operation (one or more HTTP requests), checked: a wrong status or body is an error.
    fn op(
        &self,
        conn: &mut Self::Conn,
        state: &mut Self::State,
    ) -> impl Future<Output = anyhow::Result<Step>> + Send;
}

/// How long and how wide a phase is.
#[derive(Debug, Clone, Copy)]
pub struct PhaseSpec {
    /// Concurrent connections.
    pub connections: usize,
    /// Run before the window opens.
    pub warmup: Duration,
    /// The measurement window.
    pub measure: Duration,
}

/// The watched server's use of the machine during the window.
#[derive(Debug, Clone, Copy)]
pub struct ServerUse {
    /// CPU time (user + system, all threads), milliseconds.
    pub cpu_ms: f64,
    /// Largest resident memory seen during the phase, KiB.
    pub peak_rss_kib: u64,
    /// Resident memory when the phase started, KiB.
    pub start_rss_kib: u64,
}

/// The outcome of a phase.
#[derive(Debug)]
pub struct PhaseResult {
    /// Operations completed in the window.
    pub ops: u64,
    /// Failed operations over the whole phase (warm-up included).
    pub errors: u64,
    /// The first few errors.
    pub error_samples: Vec<String>,
    /// Length of the window.
    pub window: Duration,
    /// Latency of the operations counted, microseconds.
    pub hist: Histogram<u64>,
    /// The watched server, if any.
    pub server: Option<ServerUse>,
    /// Share of all CPUs busy during the window (every process), 0–1.
    pub machine_busy: f64,
    /// CPU time of this process (the generator) during the window, milliseconds.
    pub generator_cpu_ms: f64,
}

impl PhaseResult {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// Latency at `q` (0–1), milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    /// The generator's CPU time over the window, as a share of one CPU (0–1 per thread).
    pub fn generator_share(&self) -> f64 {
        let ms = self.window.as_secs_f64() * 1000.0;
        if ms > 0.0 {
            self.generator_cpu_ms / ms
        } else {
            0.0
        }
    }

    /// Server CPU milliseconds per operation.
    pub fn cpu_ms_per_op(&self) -> Option<f64> {
        let server = self.server?;
        (self.ops > 0).then(|| server.cpu_ms / self.ops as f64)
    }
}

struct TaskOutcome {
    ops: u64,
    errors: u64,
    samples: Vec<String>,
    hist: Histogram<u64>,
    exhausted: bool,
    last_done: Option<Instant>,
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs to 10 min, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// Longest a single operation may take before it counts as an error.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection that fails this many times stops (the server is down or the flow is broken).
const MAX_ERRORS_PER_CONNECTION: u64 = 50;

async fn connection_loop<S: Scenario>(
    scenario: Arc<S>,
    index: usize,
    target: SocketAddr,
    from: Instant,
    end: Instant,
) -> anyhow::Result<TaskOutcome> {
    let mut conn = S::Conn::open(target)?;
    let mut state = scenario.state(index);
    let mut out = TaskOutcome {
        ops: 0,
        errors: 0,
        samples: Vec::new(),
        hist: new_histogram()?,
        exhausted: false,
        last_done: None,
    };
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let result = tokio::time::timeout(OP_TIMEOUT, scenario.op(&mut conn, &mut state)).await;
        let done = Instant::now();
        match result {
            Ok(Ok(Step::Done)) => {
                if done >= from && done < end {
                    out.ops += 1;
                    let micros =
                        u64::try_from(done.duration_since(started).as_micros()).unwrap_or(u64::MAX);
                    out.hist.saturating_record(micros.max(1));
                    out.last_done = Some(done);
                }
            }
            Ok(Ok(Step::Exhausted)) => {
                out.exhausted = true;
                break;
            }
            Ok(Err(e)) => {
                out.errors += 1;
                if out.samples.len() < 3 {
                    out.samples.push(format!("{e:#}"));
                }
            }
            Err(_) => {
                out.errors += 1;
                if out.samples.len() < 3 {
                    out.samples
                        .push(format!("no answer within {} s", OP_TIMEOUT.as_secs()));
                }
                // The connection may be stuck mid-response: start a new one.
                conn = S::Conn::open(target)?;
            }
        }
        if out.errors >= MAX_ERRORS_PER_CONNECTION {
            break;
        }
    }
    Ok(out)
}

/// Runs `scenario` on `spec.connections` connections to `target`, watching process `watch`.
///
/// # Errors
/// When a connection task cannot start or panics, or /proc cannot be read.
pub async fn drive<S: Scenario>(
    target: SocketAddr,
    spec: PhaseSpec,
    scenario: Arc<S>,
    watch: Option<u32>,
) -> anyhow::Result<PhaseResult> {
    let start = Instant::now();
    let from = start + spec.warmup;
    let end = from + spec.measure;

    // Memory: sampled through the whole phase.
    let start_rss_kib = watch.map(procfs::rss_kib).transpose()?.unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(start_rss_kib));
    let sampler = watch.map(|pid| {
        let stop = Arc::clone(&stop);
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(50));
            while !stop.load(Ordering::Relaxed) {
                every.tick().await;
                if let Ok(kib) = procfs::rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
            }
        })
    });
    // CPU: read when the window opens.
    let opening = tokio::spawn(async move {
        tokio::time::sleep_until(from.into()).await;
        let server = watch.map(procfs::cpu_ticks).transpose();
        let me = procfs::cpu_ticks(std::process::id());
        let machine = procfs::machine_ticks();
        (server, me, machine)
    });

    let mut tasks = Vec::with_capacity(spec.connections);
    for index in 0..spec.connections {
        let scenario = Arc::clone(&scenario);
        tasks.push(tokio::spawn(connection_loop(
            scenario, index, target, from, end,
        )));
    }
    let mut hist = new_histogram()?;
    let mut ops = 0;
    let mut errors = 0;
    let mut error_samples = Vec::new();
    let mut exhausted = false;
    let mut last_done: Option<Instant> = None;
    for task in tasks {
        let out = task.await??;
        ops += out.ops;
        errors += out.errors;
        hist.add(&out.hist)?;
        exhausted |= out.exhausted;
        last_done = last_done.max(out.last_done);
        for s in out.samples {
            if error_samples.len() < 5 {
                error_samples.push(s);
            }
        }
    }
    let closed_at = Instant::now();
    let server_end = watch.map(procfs::cpu_ticks).transpose()?;
    let me_end = procfs::cpu_ticks(std::process::id())?;
    let machine_end = procfs::machine_ticks()?;
    stop.store(true, Ordering::Relaxed);
    if let Some(sampler) = sampler {
        sampler.await?;
    }
    let (server_start, me_start, machine_start) = if closed_at >= from {
        opening.await?
    } else {
        // Everything finished during the warm-up (a queue ran dry): no window.
        opening.abort();
        (Ok(server_end), Ok(me_end), Ok(machine_end))
    };
    let (server_start, me_start, machine_start) = (server_start?, me_start?, machine_start?);

    let window = if exhausted {
        last_done.map_or(Duration::ZERO, |t| t.saturating_duration_since(from))
    } else {
        spec.measure
    };
    let tick_ms = 1000.0 / procfs::clock_ticks_per_second();
    let server = match (server_start, server_end) {
        (Some(a), Some(b)) => Some(ServerUse {
            cpu_ms: b.saturating_sub(a) as f64 * tick_ms,
            peak_rss_kib: peak.load(Ordering::Relaxed),
            start_rss_kib,
        }),
        _ => None,
    };
    let busy = machine_end.0.saturating_sub(machine_start.0) as f64;
    let total = machine_end.1.saturating_sub(machine_start.1) as f64;
    Ok(PhaseResult {
        ops,
        errors,
        error_samples,
        window,
        hist,
        server,
        machine_busy: if total > 0.0 { busy / total } else { 0.0 },
        generator_cpu_ms: me_end.saturating_sub(me_start) as f64 * tick_ms,
    })
}
