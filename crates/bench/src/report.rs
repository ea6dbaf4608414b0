//! The results: a table on the terminal and `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::time::Duration;

use sesame_core::credentials::hasher::Argon2Params;

use crate::gen::PhaseResult;
use crate::procfs::Machine;

/// Redis memory taken by records a phase created and kept.
#[derive(Debug, Clone)]
pub struct RedisMemory {
    /// What one record is.
    pub record: &'static str,
    /// The phase that created them.
    pub phase: &'static str,
    /// How many it created.
    pub records: u64,
    /// `used_memory` after minus before.
    pub bytes: u64,
    /// How many a large deployment would hold at once (for the extrapolation).
    pub at_scale: u64,
}

/// Target of `sesame import` of 100,000 people on this machine class (issue 18), seconds.
const IMPORT_TARGET_SECS: f64 = 60.0;

/// Idle memory target (issue 7).
pub const IDLE_RSS_TARGET_MB: f64 = 30.0;
/// Memory-under-load target (issue 7).
pub const LOAD_RSS_TARGET_MB: f64 = 100.0;

/// What a ratio compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Operations per second against the ceiling's operations per second.
    Ops,
    /// HTTP requests per second (operations × requests per operation) against the ceiling's.
    Requests,
}

/// One measurement of a ceiling.
#[derive(Debug)]
pub struct CeilingSample {
    /// When, relative to its scenarios ("before", "after").
    pub when: String,
    /// Completions per second.
    pub per_second: f64,
    /// CPU milliseconds per completion of the process doing the work.
    pub cpu_ms_per_op: Option<f64>,
    /// The load-generator phase, for the ceilings served over HTTP.
    pub phase: Option<PhaseResult>,
}

/// A ceiling, measured in this run before and after the scenarios it bounds.
#[derive(Debug)]
pub struct Ceiling {
    /// Short name, e.g. "argon2id".
    pub name: &'static str,
    /// What was measured.
    pub how: String,
    /// The measurements.
    pub samples: Vec<CeilingSample>,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

impl Ceiling {
    /// Mean of the measurements, per second.
    pub fn per_second(&self) -> f64 {
        mean(self.samples.iter().map(|s| s.per_second)).unwrap_or(0.0)
    }

    /// Mean CPU milliseconds per completion.
    pub fn cpu_ms_per_op(&self) -> Option<f64> {
        mean(self.samples.iter().filter_map(|s| s.cpu_ms_per_op))
    }
}

/// One measured scenario.
#[derive(Debug)]
pub struct Row {
    /// Name.
    pub scenario: String,
    /// What one operation is.
    pub operation: &'static str,
    /// HTTP requests per operation.
    pub requests_per_op: u32,
    /// Connections.
    pub connections: usize,
    /// The measurement.
    pub result: PhaseResult,
    /// Index into [`Report::ceilings`].
    pub ceiling: Option<usize>,
    /// What the ratio compares.
    pub basis: Basis,
    /// Target ratio (issue 7).
    pub target: Option<f64>,
}

/// The CAS cycle over many live SSO sessions (`make bench-large`).
#[derive(Debug)]
pub struct ManySessions {
    /// Live sessions (copies of one login's record, see `infra::clone_session`).
    pub sessions: usize,
    /// Redis memory they added, bytes.
    pub sessions_bytes: u64,
    /// The phase.
    pub result: PhaseResult,
    /// Tickets issued over the whole phase (warm-up included).
    pub tickets_issued: u64,
    /// Sessions whose records were measured before and after (`MEMORY USAGE`).
    pub sampled: usize,
    /// Their records' memory before the phase, bytes per session.
    pub per_session_before: f64,
    /// The same after it (the record and what the session gave out), bytes per session.
    pub per_session_after: f64,
    /// SSO session keys in Redis after the phase.
    pub sessions_after: u64,
}

/// The CAS cycle through a TCP balancer in front of two instances (`make bench-large`).
#[derive(Debug)]
pub struct TwoInstances {
    /// Cores of the machine all of them share.
    pub cores: usize,
    /// Connections of the load generator (to the balancer).
    pub connections: usize,
    /// The phase, driven through the balancer; its server use is the first instance's.
    pub through: PhaseResult,
    /// CPU of the second instance from the window's opening to the phase's end, ms.
    pub second_cpu_ms: f64,
    /// CPU of the balancer over the same time, ms.
    pub balancer_cpu_ms: f64,
}

/// The login page measured while many LDAP connections bind (issue 17: its p99 must stay
/// within twice its p99 alone).
#[derive(Debug)]
pub struct LdapMix {
    /// LDAP connections binding in a closed loop.
    pub binders: usize,
    /// Login connections.
    pub login_connections: usize,
    /// The login's p99 alone, milliseconds.
    pub alone_p99_ms: f64,
    /// The logins during the binds.
    pub logins: PhaseResult,
    /// The binds.
    pub binds: PhaseResult,
    /// `busy` answers the binds got (retried).
    pub busy: u64,
}

impl LdapMix {
    /// The login's p99 beside the binds over its p99 alone.
    pub fn p99_ratio(&self) -> f64 {
        if self.alone_p99_ms > 0.0 {
            self.logins.latency_ms(0.99) / self.alone_p99_ms
        } else {
            0.0
        }
    }
}

/// Most the login's p99 may grow beside LDAP binds.
pub const LDAP_MIX_P99_TARGET: f64 = 2.0;

/// Everything the report says.
#[derive(Debug)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// When (UTC).
    pub date: String,
    /// PostgreSQL version.
    pub postgres: String,
    /// Redis version.
    pub redis: String,
    /// Generator threads.
    pub threads: usize,
    /// Connections of the HTTP scenarios.
    pub connections: usize,
    /// Connections of the login scenarios.
    pub login_connections: usize,
    /// Warm-up of each phase.
    pub warmup: Duration,
    /// Measurement window of each phase.
    pub measure: Duration,
    /// Measurement window of the login phases.
    pub login_measure: Duration,
    /// argon2id parameters of the server and the ceiling.
    pub argon2: Argon2Params,
    /// `log.level` of the server.
    pub log_level: String,
    /// Accounts of the main run.
    pub accounts: u32,
    /// Seeding time of the main run's accounts.
    pub seed_time: Duration,
    /// Process start to ready, first start (keys generated).
    pub first_ready: Duration,
    /// Process start to ready, restart.
    pub restart_ready: Duration,
    /// Resident memory idle after start, KiB.
    pub idle_rss_kib: u64,
    /// Peak resident memory of the server over the run (VmHWM), KiB.
    pub hwm_kib: u64,
    /// The ceilings.
    pub ceilings: Vec<Ceiling>,
    /// The scenarios.
    pub rows: Vec<Row>,
    /// The large-account login run: accounts, seeding time, result.
    pub large: Option<(u32, Duration, Row)>,
    /// Redis memory per record, measured over phases that create records and keep them.
    pub redis_memory: Vec<RedisMemory>,
    /// `sesame import` at institution scale (`make bench-large`).
    pub import: Option<sesame_bench::import::ImportRun>,
    /// A federation's metadata aggregate of tens of megabytes, read and verified.
    pub saml_aggregate: Option<sesame_bench::aggregate::AggregateRun>,
    /// The CAS cycle on two instances behind a balancer (`make bench-large`).
    pub two_instances: Option<TwoInstances>,
    /// The CAS cycle over many live sessions (`make bench-large`).
    pub many_sessions: Option<ManySessions>,
    /// The login page beside a burst of LDAP binds.
    pub ldap_mix: Option<LdapMix>,
    /// Warnings and errors Sesame logged during the phases, with a few samples.
    pub server_log_problems: (usize, Vec<String>),
    /// Wall time of the whole run (build excluded).
    pub total: Duration,
    /// The command that made it (`make bench` or `make bench-large`).
    pub command: &'static str,
    /// The 1-minute load average when the run ended.
    pub load_after: String,
}

/// A duration in seconds, or milliseconds below one second.
fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate(v: f64) -> String {
    if v >= 100.0 {
        thousands(v.round() as u64)
    } else {
        format!("{v:.1}")
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Row {
    /// Operations (or requests) per second compared with the ceiling.
    pub fn ratio(&self, ceilings: &[Ceiling]) -> Option<f64> {
        let ceiling = ceilings.get(self.ceiling?)?;
        let mine = match self.basis {
            Basis::Ops => self.result.rate(),
            Basis::Requests => self.result.rate() * f64::from(self.requests_per_op),
        };
        let theirs = ceiling.per_second();
        (theirs > 0.0).then(|| mine / theirs)
    }

    /// The ceiling's CPU time per operation (or request) over Sesame's: how much of Sesame's
    /// CPU the bounding work accounts for. Unlike the throughput ratio, it does not move with
    /// the load other processes put on the machine.
    pub fn cpu_ratio(&self, ceilings: &[Ceiling]) -> Option<f64> {
        let ceiling = ceilings.get(self.ceiling?)?.cpu_ms_per_op()?;
        let per_op = self.result.cpu_ms_per_op()?;
        let mine = match self.basis {
            Basis::Ops => per_op,
            Basis::Requests => per_op / f64::from(self.requests_per_op),
        };
        (mine > 0.0).then(|| ceiling / mine)
    }

    fn met(&self, ceilings: &[Ceiling]) -> Option<bool> {
        Some(self.ratio(ceilings)? >= self.target?)
    }

    fn peak_rss_mb(&self) -> Option<f64> {
        self.result.server.map(|s| mb(s.peak_rss_kib))
    }
}

impl Report {
    /// The "CAS cycle over many live sessions" section of the report.
    fn many_sessions_section(&self, s: &mut String) {
        let _ = writeln!(s, "## The CAS cycle with many live SSO sessions\n");
        let Some(many) = &self.many_sessions else {
            let _ = writeln!(s, "Not measured in this run: `make bench-large`.\n");
            return;
        };
        let r = &many.result;
        let _ = writeln!(
            s,
            "{} live SSO sessions in Redis (one login's record copied under {} new cookies by \
             `DUMP`/`RESTORE`: Sesame finds a session by the SHA-256 of its cookie, so each is \
             a session of its own), then the CAS cycle for {} s (until the run's tickets, \
             warm-up included, were issued) with each operation taking the next session in \
             turn, so that every session is used. The sessions added {} bytes \
             of Redis memory ({:.0} bytes each).\n",
            thousands(many.sessions as u64),
            thousands(many.sessions as u64),
            r.window.as_secs(),
            thousands(many.sessions_bytes),
            many.sessions_bytes as f64 / many.sessions.max(1) as f64,
        );
        let _ = writeln!(
            s,
            "| cycles/s | p50 ms | p99 ms | Sesame CPU per cycle | tickets issued | Redis bytes per session: before → after the cycles | session keys after | errors |\n|--:|--:|--:|--:|--:|--:|--:|--:|"
        );
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {} | {} | {:.0} → {:.0} ({} sessions sampled) | {} | {} |\n",
            rate(r.rate()),
            r.latency_ms(0.50),
            r.latency_ms(0.99),
            r.cpu_ms_per_op()
                .map_or_else(|| "—".to_owned(), |ms| format!("{ms:.3} ms")),
            thousands(many.tickets_issued),
            many.per_session_before,
            many.per_session_after,
            thousands(many.sampled as u64),
            thousands(many.sessions_after),
            r.errors,
        );
    }

    /// The "two instances behind a balancer" section of the report.
    fn two_instances_section(&self, s: &mut String) {
        let _ = writeln!(s, "## Two instances behind a TCP balancer\n");
        let Some(two) = &self.two_instances else {
            let _ = writeln!(s, "Not measured in this run: `make bench-large`.\n");
            return;
        };
        let alone = self.rows.iter().find(|r| r.scenario == "CAS cycle");
        let _ = writeln!(
            s,
            "The CAS cycle ({} connections) through `sesame-bench balancer` (each connection \
             to the next instance in turn, as HAProxy in `mode tcp`) in front of the instance \
             measured above and a second one started on the same PostgreSQL database and Redis \
             prefix; the SSO cookies are those the first one issued. Both instances, the \
             balancer and the load generator share this machine's {} cores: this shows what a \
             second instance and a balancer cost, **not a speed-up**. A deployment multiplies \
             the per-instance figure, Sesame's CPU per cycle, by the cores it gives each \
             instance.\n",
            two.connections, two.cores,
        );
        let _ = writeln!(
            s,
            "| setup | cycles/s | p50 ms | p99 ms | Sesame CPU per cycle | balancer CPU per cycle | machine busy | errors |\n|---|--:|--:|--:|--:|--:|--:|--:|"
        );
        if let Some(row) = alone {
            let r = &row.result;
            let _ = writeln!(
                s,
                "| one instance (the CAS cycle above) | {} | {:.2} | {:.2} | {} | — | {:.0} % | {} |",
                rate(r.rate()),
                r.latency_ms(0.50),
                r.latency_ms(0.99),
                r.cpu_ms_per_op()
                    .map_or_else(|| "—".to_owned(), |ms| format!("{ms:.3} ms")),
                r.machine_busy * 100.0,
                r.errors,
            );
        }
        let r = &two.through;
        let ops = r.ops.max(1) as f64;
        let first = r.server.as_ref().map_or(0.0, |u| u.cpu_ms);
        let _ = writeln!(
            s,
            "| two instances + balancer | {} | {:.2} | {:.2} | {:.3} ms ({:.3} + {:.3}) | {:.3} ms | {:.0} % | {} |\n",
            rate(r.rate()),
            r.latency_ms(0.50),
            r.latency_ms(0.99),
            (first + two.second_cpu_ms) / ops,
            first / ops,
            two.second_cpu_ms / ops,
            two.balancer_cpu_ms / ops,
            r.machine_busy * 100.0,
            r.errors,
        );
    }

    fn all_rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().chain(self.large.iter().map(|(_, _, r)| r))
    }

    /// The targets this run missed, in words.
    pub fn misses(&self) -> Vec<String> {
        let mut out = Vec::new();
        for row in self.all_rows() {
            if row.result.errors > 0 {
                out.push(format!(
                    "**{}**: {} errors (must be 0). First: {}",
                    row.scenario,
                    row.result.errors,
                    row.result.error_samples.first().map_or("-", String::as_str)
                ));
            }
            if row.met(&self.ceilings) == Some(false) {
                let ceiling = row.ceiling.and_then(|i| self.ceilings.get(i));
                out.push(format!(
                    "**{}**: {:.0} % of the {} ceiling, target {:.0} %.",
                    row.scenario,
                    row.ratio(&self.ceilings).unwrap_or(0.0) * 100.0,
                    ceiling.map_or("?", |c| c.name),
                    row.target.unwrap_or(0.0) * 100.0
                ));
            }
        }
        if let Some(mix) = &self.ldap_mix {
            if mix.p99_ratio() > LDAP_MIX_P99_TARGET || mix.logins.errors > 0 {
                out.push(format!(
                    "**Login beside {} LDAP binders**: p99 {:.1}× its p99 alone (target ≤ {LDAP_MIX_P99_TARGET:.0}×), {} login errors.",
                    mix.binders,
                    mix.p99_ratio(),
                    mix.logins.errors
                ));
            }
        }
        let heavy: Vec<String> = self
            .all_rows()
            .filter_map(|row| {
                let u = row.result.server?;
                (mb(u.peak_rss_kib) > LOAD_RSS_TARGET_MB).then(|| {
                    format!(
                        "{} {:.0} MB ({:.0} MB at its start)",
                        row.scenario,
                        mb(u.peak_rss_kib),
                        mb(u.start_rss_kib)
                    )
                })
            })
            .collect();
        if !heavy.is_empty() {
            out.push(format!(
                "**Peak RSS** above {LOAD_RSS_TARGET_MB:.0} MB: {}.",
                heavy.join("; ")
            ));
        }
        let idle = mb(self.idle_rss_kib);
        if idle > IDLE_RSS_TARGET_MB {
            out.push(format!(
                "**RSS at idle**: {idle:.1} MB, target ≤ {IDLE_RSS_TARGET_MB:.0} MB."
            ));
        }
        out
    }

    /// The results table as plain text, for the terminal.
    pub fn console(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\n{:<44} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>6} {:>6} {:>8} {:>7}",
            "scenario",
            "conns",
            "ops/s",
            "req/s",
            "p50 ms",
            "p99 ms",
            "cpu ms",
            "rss MB",
            "errors",
            "busy",
            "ratio",
            "target"
        );
        for row in self.all_rows() {
            let r = &row.result;
            let _ = writeln!(
                s,
                "{:<44} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>6} {:>5.0}% {:>8} {:>7}",
                row.scenario,
                row.connections,
                rate(r.rate()),
                rate(r.rate() * f64::from(row.requests_per_op)),
                ms(r.latency_ms(0.5)),
                ms(r.latency_ms(0.99)),
                r.cpu_ms_per_op().map_or_else(|| "-".to_owned(), ms),
                row.peak_rss_mb()
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}")),
                r.errors,
                r.machine_busy * 100.0,
                row.ratio(&self.ceilings)
                    .map_or_else(|| "-".to_owned(), |v| format!("{:.0} %", v * 100.0)),
                row.target
                    .map_or_else(|| "-".to_owned(), |v| format!("≥{:.0} %", v * 100.0)),
            );
        }
        let _ = writeln!(s, "\nceilings (mean of the measurements before and after):");
        for c in &self.ceilings {
            let each: Vec<String> = c
                .samples
                .iter()
                .map(|x| format!("{} {}", x.when, rate(x.per_second)))
                .collect();
            let _ = writeln!(
                s,
                "  {:<20} {:>9}/s  ({}), CPU {} ms/op",
                c.name,
                rate(c.per_second()),
                each.join(", "),
                c.cpu_ms_per_op()
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
            );
        }
        let _ = writeln!(
            s,
            "\nstart to ready: first {} ms, restart {} ms; RSS idle {:.1} MB, peak {:.1} MB",
            self.first_ready.as_millis(),
            self.restart_ready.as_millis(),
            mb(self.idle_rss_kib),
            mb(self.hwm_kib)
        );
        let misses = self.misses();
        if misses.is_empty() {
            let _ = writeln!(s, "every target met");
        } else {
            let _ = writeln!(s, "targets missed:");
            for m in misses {
                let _ = writeln!(s, "  - {}", m.replace("**", ""));
            }
        }
        s
    }

    /// `docs/benchmarks.md`.
    #[expect(clippy::too_many_lines, reason = "one document, written top to bottom")]
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "> **Generated by `{}` on {}. Do not edit by hand:** run `make bench` again \
             (`make bench-large` adds the login with 1,000,000 accounts). Code: `crates/bench`, \
             `bench/run.sh`. Every number below was measured in that one run; none is typed in.\n",
            self.command, self.date
        );
        let _ = writeln!(s, "## Machine and set-up\n");
        let _ = writeln!(s, "| | |\n|---|---|");
        let _ = writeln!(
            s,
            "| machine | {}, {} logical CPUs (`nproc`), {:.1} GiB memory, Linux {}; 1-minute load \
             average {} when the run started and {} when it ended (above 0 before the start, \
             other work shares the machine) |",
            m.cpu_model,
            m.cpus,
            m.memory_mib as f64 / 1024.0,
            m.kernel,
            m.load_before,
            self.load_after
        );
        let _ = writeln!(
            s,
            "| Sesame | release build, `sesame serve` on PostgreSQL + Redis, `server.workers = 0` \
             ({} HTTP workers), hashing pool of {} threads, argon2id m = {} KiB, t = {}, p = {} \
             (the production default), `log.level = \"{}\"` (to a file) |",
            m.cpus,
            m.cpus,
            self.argon2.memory_kib,
            self.argon2.iterations,
            self.argon2.parallelism,
            self.log_level
        );
        let _ = writeln!(
            s,
            "| storage | PostgreSQL {} and Redis {} on the same machine (127.0.0.1); a fresh \
             database and Redis key prefix per run; {} accounts seeded by COPY in {}, all \
             with one argon2id hash made at the production parameters |",
            self.postgres,
            self.redis,
            thousands(u64::from(self.accounts)),
            secs(self.seed_time)
        );
        let _ = writeln!(
            s,
            "| load generator | `sesame-bench` (hyper HTTP/1.1 keep-alive, closed loop: each \
             connection sends its next request when the previous one is answered), **{} thread**, \
             **{} connections** ({} for the logins); latencies in an HDR histogram |",
            self.threads, self.connections, self.login_connections
        );
        let _ = writeln!(
            s,
            "| sharing | generator, Sesame, PostgreSQL and Redis share the {} CPUs: \"CPU busy\" \
             below is the whole machine's (100 % = every CPU) and the generator's (100 % = one \
             CPU) |",
            m.cpus
        );
        let _ = writeln!(
            s,
            "| phases | {} s warm-up, then {} s measured ({} s for the logins); phases fed by \
             tickets or codes minted beforehand end early when the queue runs dry |",
            self.warmup.as_secs(),
            self.measure.as_secs(),
            self.login_measure.as_secs()
        );
        let _ = writeln!(
            s,
            "| run time | {:.1} min, build excluded |\n",
            self.total.as_secs_f64() / 60.0
        );

        let _ = writeln!(s, "## Results\n");
        let _ = writeln!(
            s,
            "Latency is that of one whole operation (all its requests). Server CPU is user + \
             system time of the `sesame` process over the window, divided by the operations. \
             Peak RSS is the largest `VmRSS` sampled every 50 ms during the phase.\n"
        );
        let _ = writeln!(
            s,
            "| scenario | one operation | conns | ops/s | requests/s | p50 ms | p99 ms | server CPU ms/op | RSS MB: peak (at start) | errors | CPU busy: machine / generator | ceiling | ratio | target | met | CPU-time ratio |"
        );
        let _ = writeln!(
            s,
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|---|--:|"
        );
        for row in self.all_rows() {
            let r = &row.result;
            let ceiling = row.ceiling.and_then(|i| self.ceilings.get(i));
            let unit = match row.basis {
                Basis::Ops => "",
                Basis::Requests => " (per request)",
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} % / {:.0} % | {} | {} | {} | {} | {} |",
                row.scenario,
                row.operation,
                row.connections,
                rate(r.rate()),
                rate(r.rate() * f64::from(row.requests_per_op)),
                ms(r.latency_ms(0.5)),
                ms(r.latency_ms(0.99)),
                r.cpu_ms_per_op().map_or_else(|| "-".to_owned(), ms),
                r.server.map_or_else(
                    || "-".to_owned(),
                    |u| format!("{:.1} ({:.1})", mb(u.peak_rss_kib), mb(u.start_rss_kib))
                ),
                r.errors,
                r.machine_busy * 100.0,
                r.generator_share() * 100.0,
                ceiling.map_or_else(
                    || "-".to_owned(),
                    |c| format!("{} {}/s", c.name, rate(c.per_second()))
                ),
                row.ratio(&self.ceilings).map_or_else(
                    || "-".to_owned(),
                    |v| format!("{:.0} %{unit}", v * 100.0)
                ),
                row.target
                    .map_or_else(|| "-".to_owned(), |v| format!("≥ {:.0} %", v * 100.0)),
                match row.met(&self.ceilings) {
                    Some(true) if r.errors == 0 => "yes",
                    Some(_) => "**no**",
                    None => "-",
                },
                row.cpu_ratio(&self.ceilings)
                    .map_or_else(|| "-".to_owned(), |v| format!("{:.0} %", v * 100.0)),
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "**Ratio** (the target of issue 7) is throughput against the ceiling's mean throughput \
             (below). The password login compares logins/s with argon2id verifications/s (one \
             per login); the code exchange compares exchanges/s with RS256 signatures/s (one ID \
             token each), and SAML SSO assertions/s with the same RSA-SHA256 signatures/s (one \
             signed assertion each); the CAS cycle (two requests: the ticket is minted, then validated) \
             compares HTTP requests/s with the Redis handler's requests/s, so per cycle it is \
             half the ratio shown; every other row compares requests/s. The in-process ceilings \
             have the CPUs to themselves, while a scenario shares them with the generator, \
             PostgreSQL and Redis. The password login's target is therefore judged on the \
             **one-core** row: Sesame pinned to one CPU and the load generator to another, \
             against argon2id on one thread pinned to Sesame's CPU, so that both sides have \
             the same one core (PostgreSQL and Redis are not pinned and may take some of it).\n\n\
             **CPU-time ratio** is the ceiling's CPU time per operation (or request) over \
             Sesame's: the share of Sesame's CPU that the bounding work would take. It does not \
             move with what else runs on the machine. Neither side counts the CPU PostgreSQL and \
             Redis spend.\n"
        );

        let limit = 0.9 * self.threads as f64;
        let mut saturated: Vec<String> = self
            .all_rows()
            .filter(|r| r.result.generator_share() >= limit)
            .map(|r| r.scenario.clone())
            .collect();
        for c in &self.ceilings {
            for x in &c.samples {
                if x.phase
                    .as_ref()
                    .is_some_and(|p| p.generator_share() >= limit)
                {
                    saturated.push(format!("{} ceiling ({})", c.name, x.when));
                }
            }
        }
        if !saturated.is_empty() {
            let _ = writeln!(
                s,
                "**The load generator was saturated** (its {} thread(s) ≥ 90 % busy) in: {}. \
                 There the generator, not the server, may bound the throughput; a ceiling so \
                 bounded is lower than the server could do, which flatters the ratio.\n",
                self.threads,
                saturated.join("; ")
            );
        }

        for c in &self.ceilings {
            let values = c.samples.iter().map(|x| x.per_second);
            let (lo, hi) = values.fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
            if c.samples.len() > 1 && lo > 0.0 && hi / lo > 1.2 {
                let _ = writeln!(
                    s,
                    "**The {} ceiling moved by {:.0} % between its measurements** ({} to {}/s): \
                     the load on the machine changed during the run, and the ratios against it \
                     are uncertain by as much; the CPU-time ratio is not.\n",
                    c.name,
                    (hi / lo - 1.0) * 100.0,
                    rate(lo),
                    rate(hi)
                );
            }
        }

        let _ = writeln!(s, "## Ceilings (measured in the same run)\n");
        let _ = writeln!(
            s,
            "Each ceiling is measured right before and right after the scenarios it bounds; \
             the ratio uses the mean.\n"
        );
        let _ = writeln!(
            s,
            "| ceiling | how | measured | per second | CPU ms per op | p50 ms | p99 ms | peak RSS MB | errors | CPU busy: machine / generator |"
        );
        let _ = writeln!(s, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|");
        for c in &self.ceilings {
            for x in &c.samples {
                let cpu = x
                    .cpu_ms_per_op
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
                match &x.phase {
                    Some(p) => {
                        let _ = writeln!(
                            s,
                            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} % / {:.0} % |",
                            c.name,
                            c.how,
                            x.when,
                            rate(x.per_second),
                            cpu,
                            ms(p.latency_ms(0.5)),
                            ms(p.latency_ms(0.99)),
                            p.server.map_or_else(
                                || "-".to_owned(),
                                |u| format!("{:.1}", mb(u.peak_rss_kib))
                            ),
                            p.errors,
                            p.machine_busy * 100.0,
                            p.generator_share() * 100.0
                        );
                    }
                    None => {
                        let _ = writeln!(
                            s,
                            "| {} | {} | {} | {} | {} | - | - | - | - | - |",
                            c.name,
                            c.how,
                            x.when,
                            rate(x.per_second),
                            cpu
                        );
                    }
                }
            }
        }
        let _ = writeln!(s);

        let _ = writeln!(s, "## Start and memory\n");
        let _ = writeln!(s, "| measure | value | target |\n|---|--:|---|");
        let _ = writeln!(
            s,
            "| process start → `/health/ready` = 200, first start (signing keys generated) | {} ms | |",
            self.first_ready.as_millis()
        );
        let _ = writeln!(
            s,
            "| process start → `/health/ready` = 200, restart | {} ms | |",
            self.restart_ready.as_millis()
        );
        let idle = mb(self.idle_rss_kib);
        let _ =
            writeln!(
            s,
            "| RSS at idle, 2 s after ready | {idle:.1} MB | ≤ {IDLE_RSS_TARGET_MB:.0} MB: {} |",
            if idle <= IDLE_RSS_TARGET_MB { "met" } else { "**missed**" }
        );
        let hwm = mb(self.hwm_kib);
        let _ = writeln!(
            s,
            "| peak RSS over the whole run (`VmHWM`) | {hwm:.1} MB | ≤ {LOAD_RSS_TARGET_MB:.0} MB: {} |\n",
            if hwm <= LOAD_RSS_TARGET_MB { "met" } else { "**missed**" }
        );

        let _ = writeln!(s, "## Login latency and the number of accounts\n");
        let _ = writeln!(
            s,
            "| accounts in PostgreSQL | logins/s | p50 ms | p99 ms | errors |\n|--:|--:|--:|--:|--:|"
        );
        if let Some(row) = self
            .rows
            .iter()
            .find(|r| r.scenario.starts_with("Password login"))
        {
            let r = &row.result;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                thousands(u64::from(self.accounts)),
                rate(r.rate()),
                ms(r.latency_ms(0.5)),
                ms(r.latency_ms(0.99)),
                r.errors
            );
        }
        match &self.large {
            Some((accounts, seeded, row)) => {
                let r = &row.result;
                let _ = writeln!(
                    s,
                    "| {} (seeded by COPY in {:.0} s) | {} | {} | {} | {} |\n",
                    thousands(u64::from(*accounts)),
                    seeded.as_secs_f64(),
                    rate(r.rate()),
                    ms(r.latency_ms(0.5)),
                    ms(r.latency_ms(0.99)),
                    r.errors
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "| 1,000,000 | not measured in this run: `make bench-large` | | | |\n"
                );
            }
        }

        if !self.redis_memory.is_empty() {
            let _ = writeln!(s, "## Redis memory per record\n");
            let _ = writeln!(
                s,
                "`used_memory` of Redis (`INFO memory`) before and after a phase that creates \
                 records and keeps them, over the records it created (sessions counted by \
                 `SCAN` of their keys; tickets as minted). Everything the phase wrote is in the \
                 difference (the lockout counters of a login, the set of the session's \
                 tickets), so it is the cost per record as a deployment pays it.\n"
            );
            let _ = writeln!(
                s,
                "| record | phase | records | bytes | bytes each | at scale |\n|---|---|--:|--:|--:|---|"
            );
            for m in &self.redis_memory {
                let each = m.bytes as f64 / (m.records.max(1) as f64);
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {each:.0} | {} held at once: {:.0} MB |",
                    m.record,
                    m.phase,
                    thousands(m.records),
                    thousands(m.bytes),
                    thousands(m.at_scale),
                    each * m.at_scale as f64 / 1e6,
                );
            }
            s.push('\n');
        }

        self.many_sessions_section(&mut s);
        self.two_instances_section(&mut s);

        let _ = writeln!(s, "## `sesame import` at institution scale\n");
        match &self.import {
            Some(run) => {
                let _ = writeln!(
                    s,
                    "A file of {} people ({:.1} MB; `;`-separated as a spreadsheet exports it; \
                     80 % students, half with a recovery address, family names that repeat so \
                     that logins collide as in a year group) imported by the release `sesame \
                     import` into the bench database (the server stopped), then the same file \
                     again, as the nightly run finds it. Counts are those of the import's own \
                     `summary:` line, checked against the file; {} accounts carry one of the \
                     file's `hr_id`s afterwards.\n",
                    thousands(u64::from(run.people)),
                    run.file_bytes as f64 / 1e6,
                    thousands(u64::try_from(run.accounts_in_database).unwrap_or(0)),
                );
                let _ = writeln!(
                    s,
                    "| pass | wall time | people/s | created | updated | unchanged | rejected | activation links queued | target |\n|---|--:|--:|--:|--:|--:|--:|--:|---|"
                );
                for (name, pass, target) in [
                    ("first (everyone new)", &run.first, Some(IMPORT_TARGET_SECS)),
                    ("again (nobody changed)", &run.again, None),
                ] {
                    let secs = pass.took.as_secs_f64();
                    let c = pass.counts;
                    let _ = writeln!(
                        s,
                        "| {name} | {secs:.1} s | {} | {} | {} | {} | {} | {} | {} |",
                        rate(f64::from(run.people) / secs.max(1e-9)),
                        thousands(c.created),
                        thousands(c.updated),
                        thousands(c.unchanged),
                        thousands(c.rejected),
                        thousands(pass.activation_links),
                        target.map_or_else(String::new, |t| format!(
                            "≤ {t:.0} s: {}",
                            if secs <= t { "met" } else { "**missed**" }
                        )),
                    );
                }
                s.push('\n');
            }
            None => {
                let _ = writeln!(s, "Not measured in this run: `make bench-large`.\n");
            }
        }

        if let Some(run) = &self.saml_aggregate {
            let _ = writeln!(s, "## A federation's SAML metadata aggregate\n");
            let _ = writeln!(
                s,
                "An aggregate of {} SPs ({:.1} MB, as federations' feeds are; each SP with two \
                 certificates, UI names in three languages, five endpoints), signed RSA-SHA256, read \
                 as Sesame's feed reads one on its blocking thread: parsed (DTDs refused), its \
                 signature verified over the whole document (exclusive canonicalisation, SHA-256), \
                 every SP read. Requests are served meanwhile by the other threads; the SPs in use \
                 are swapped only once it is read.\n",
                thousands(run.entities as u64),
                run.bytes as f64 / 1e6,
            );
            let _ = writeln!(
                s,
                "| read and verified | SPs read | MB/s | memory at its peak, beyond the document |\n|--:|--:|--:|--:|"
            );
            let _ = writeln!(
                s,
                "| {:.2} s | {} | {:.0} | {:.0} MB |\n",
                run.read.as_secs_f64(),
                thousands(run.service_providers as u64),
                run.bytes as f64 / 1e6 / run.read.as_secs_f64().max(1e-9),
                run.peak_growth_kib as f64 / 1024.0,
            );
        }

        if let Some(mix) = &self.ldap_mix {
            let _ = writeln!(s, "## The login page beside LDAP binds\n");
            let _ = writeln!(
                s,
                "{} password logins in a closed loop, alone and while {} LDAP connections bind \
                 in a closed loop (a mail server's burst). LDAP binds hold at most their share \
                 of the hashing pool (`ldap.max_concurrent_binds`); beyond it they are told \
                 `busy` (51) at once, and retried here after 5 ms.\n",
                mix.login_connections, mix.binders
            );
            let _ = writeln!(
                s,
                "| | logins/s | p50 ms | p99 ms | errors | binds/s | busy answers |\n|---|--:|--:|--:|--:|--:|--:|"
            );
            let _ = writeln!(s, "| login alone | | | {} | | | |", ms(mix.alone_p99_ms));
            let l = &mix.logins;
            let _ = writeln!(
                s,
                "| login beside the binds | {} | {} | {} | {} | {} | {} |\n",
                rate(l.rate()),
                ms(l.latency_ms(0.5)),
                ms(l.latency_ms(0.99)),
                l.errors,
                rate(mix.binds.rate()),
                thousands(mix.busy)
            );
            let _ = writeln!(
                s,
                "p99 beside the binds / p99 alone: {:.2}× (target ≤ {LDAP_MIX_P99_TARGET:.0}×: {}).\n",
                mix.p99_ratio(),
                if mix.p99_ratio() <= LDAP_MIX_P99_TARGET { "met" } else { "**missed**" }
            );
        }

        let _ = writeln!(s, "## Targets missed\n");
        let misses = self.misses();
        if misses.is_empty() {
            let _ = writeln!(s, "None: every target of issue 7 was met in this run.\n");
        } else {
            for miss in misses {
                let _ = writeln!(s, "- {miss}");
            }
            let _ = writeln!(s);
        }
        let (count, samples) = &self.server_log_problems;
        let _ = writeln!(
            s,
            "Sesame logged {count} warning or error line(s) during the measured phases{}",
            if samples.is_empty() { "." } else { ", e.g.:" }
        );
        for line in samples {
            let _ = writeln!(s, "\n    {line}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn small_rates_keep_a_decimal() {
        assert_eq!(rate(93.74), "93.7");
        assert_eq!(rate(47_280.4), "47,280");
    }
}
