//! `sesame-bench`: what `make bench` runs (issue 7).
//!
//! `sesame-bench run` creates a fresh PostgreSQL database and Redis key prefix, seeds accounts
//! by COPY (one argon2id hash at the production parameters for every row), starts the release
//! `sesame serve` on them, and drives each scenario with its own load generator, measuring in
//! the same run the ceiling each scenario is bounded by. It prints the table and writes
//! `docs/benchmarks.md`. `sesame-bench ceiling-server` is the minimal actix-web server of the
//! HTTP ceilings (hello world, one Redis round trip), started by `run` as a child process.

mod ceilings;
mod report;

// Shared with `make faults` (crates/faults) through the library.
use sesame_bench::{balancer, gen, http, import, infra, ldap, procfs, scenarios};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command as ProcessCommand, ExitCode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::{Args, Parser, Subcommand};
use sesame_core::clock::{Clock as _, SystemClock};
use sesame_core::credentials::hasher::{Argon2Params, PasswordHasher};
use sesame_core::credentials::Password;

use crate::gen::{PhaseResult, PhaseSpec, Scenario};
use crate::http::Conn;
use crate::infra::{ConfigInput, PgServer, Process};
use crate::ldap::{LdapBind, LdapSearch, LdapWhoAmI};
use crate::report::{Basis, Ceiling, CeilingSample, LdapMix, Report, Row};
use crate::scenarios::{
    login_of, CasCycle, ClientCredentials, ExchangeCodes, Get, MintCodes, MintServiceTickets,
    PasswordLogin, Queue, Refresh, SamlSso, Site, TotpLogin, ValidateP3, PASSWORD,
};

/// TOTP accounts seeded for the TOTP login: taken in turn, each is asked for a code at most
/// once per pass, a pass lasting far longer than a code's 30 s at the login's rate.
const TOTP_ACCOUNTS: u32 = 20_000;

/// Sesame benchmarks.
#[derive(Debug, Parser)]
#[command(name = "sesame-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every scenario and its ceiling; print the table and write the report.
    Run(Box<RunArgs>),
    /// The ceiling server (started by `run`).
    CeilingServer(CeilingArgs),
    /// A TCP balancer in front of several Sesame instances (started by `run --large`).
    Balancer(BalancerArgs),
    /// Only the SAML aggregate measurement (`run` makes it too), printed.
    SamlAggregate(SamlAggregateArgs),
    /// Reads one aggregate and prints what it cost (started by the measurement).
    SamlAggregateRead(SamlAggregateReadArgs),
}

#[derive(Debug, Args)]
struct SamlAggregateReadArgs {
    /// The aggregate.
    file: PathBuf,
    /// The federation's certificate, DER.
    certificate: PathBuf,
}

#[derive(Debug, Args)]
struct SamlAggregateArgs {
    /// Service providers in the aggregate.
    #[arg(long, default_value_t = 10_000)]
    entities: usize,
    /// Where the aggregate is written.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
}

#[derive(Debug, Args)]
struct BalancerArgs {
    /// Address to listen on.
    #[arg(long)]
    listen: String,
    /// A backend; give it once per instance.
    #[arg(long, required = true)]
    backend: Vec<SocketAddr>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The release `sesame` binary.
    #[arg(long)]
    sesame: PathBuf,
    /// The report to write.
    #[arg(long, default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// The analysis of the misses (profiles: what bounds each, what would lift it), written by
    /// a person from a previous run's profiles and appended to the report as it is, if present.
    #[arg(long, default_value = "bench/analysis.md")]
    analysis: PathBuf,
    /// Configuration and logs of the run.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// Accounts of the main run.
    #[arg(long, default_value_t = 1_000)]
    accounts: u32,
    /// Also measure the login with `--large-accounts` accounts.
    #[arg(long)]
    large: bool,
    /// Accounts of the large run.
    #[arg(long, default_value_t = 1_000_000)]
    large_accounts: u32,
    /// Live SSO sessions of the large run's CAS cycle over many sessions.
    #[arg(long, default_value_t = 100_000)]
    many_sessions: usize,
    /// Tickets that cycle issues (warm-up included): it stops once they are issued.
    #[arg(long, default_value_t = 1_000_000)]
    many_sessions_tickets: usize,
    /// Longest measurement window of that cycle, seconds: a slow machine stops here before
    /// issuing them all (the report gives the count issued).
    #[arg(long, default_value_t = 900)]
    many_sessions_secs: u64,
    /// People in the file `sesame import` reads in the large run.
    #[arg(long, default_value_t = 100_000)]
    import_people: u32,
    /// Measurement window of each phase, seconds.
    #[arg(long, default_value_t = 10)]
    measure_secs: u64,
    /// Measurement window of the login phases, seconds.
    #[arg(long, default_value_t = 15)]
    login_measure_secs: u64,
    /// Warm-up before each window, seconds.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Connections of the HTTP scenarios and their ceilings.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Connections of the login scenarios.
    #[arg(long, default_value_t = 8)]
    login_connections: usize,
    /// Threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// PostgreSQL host (trust authentication).
    #[arg(long, default_value = "127.0.0.1")]
    pg_host: String,
    /// PostgreSQL port.
    #[arg(long, default_value_t = 5432)]
    pg_port: u16,
    /// PostgreSQL user.
    #[arg(long, default_value = "postgres")]
    pg_user: String,
    /// Redis.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Sesame's port.
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// The ceiling server's port.
    #[arg(long, default_value_t = 18081)]
    ceiling_port: u16,
    /// Sesame's LDAP port.
    #[arg(long, default_value_t = 18389)]
    ldap_port: u16,
    /// Sesame's `log.level`.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Only these scenarios (comma-separated: login, totp, ldap, cas, p3, code, saml,
    /// client-credentials, refresh, discovery, jwks; with `--large` also import,
    /// many-sessions, and two-instances, which needs cas), e.g. to profile one; the report
    /// then lists only them.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    only: Vec<String>,
}

#[derive(Debug, Args)]
struct CeilingArgs {
    /// Address to listen on.
    #[arg(long)]
    listen: String,
    /// Redis URL.
    #[arg(long)]
    redis: String,
    /// Prefix of the key read.
    #[arg(long)]
    key_prefix: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Command::Run(args) = &cli.command {
        // The load generator's threads; the ceiling server keeps tokio's default (one per
        // core), like `sesame serve`.
        builder.worker_threads(args.threads.max(1));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(*args).await,
            Command::CeilingServer(a) => ceilings::serve(&a.listen, &a.redis, &a.key_prefix).await,
            Command::Balancer(a) => balancer::run(&a.listen, a.backend).await,
            Command::SamlAggregate(a) => {
                let run = tokio::task::spawn_blocking(move || {
                    sesame_bench::aggregate::measure(a.entities, &a.work_dir)
                })
                .await??;
                println!("{run:?}");
                Ok(())
            }
            Command::SamlAggregateRead(a) => {
                let certificate = std::fs::read(&a.certificate)?;
                let run = sesame_bench::aggregate::read(&a.file, certificate)?;
                println!("{}", run.line());
                Ok(())
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn say(text: &str) {
    println!("== {text}");
}

fn summary(r: &PhaseResult, requests_per_op: u32) -> String {
    format!(
        "{:.1} ops/s ({:.1} req/s), p50 {:.2} ms, p99 {:.2} ms, server CPU {} ms/op, peak RSS {} MB, errors {}{}",
        r.rate(),
        r.rate() * f64::from(requests_per_op),
        r.latency_ms(0.5),
        r.latency_ms(0.99),
        r.cpu_ms_per_op()
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.3}")),
        r.server
            .map_or_else(|| "-".to_owned(), |u| format!("{:.1}", u.peak_rss_kib as f64 / 1024.0)),
        r.errors,
        r.error_samples
            .first()
            .map_or_else(String::new, |e| format!(" (first: {e})"))
    )
}

/// Pins every thread of process `pid`, and the threads they start later, to `cpus` (a
/// `taskset` list: "1", "0-1").
fn pin(pid: u32, cpus: &str) -> anyhow::Result<()> {
    let out = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .context("taskset (util-linux) is needed to pin the one-core login")?;
    ensure!(
        out.status.success(),
        "taskset -a -p -c {cpus} {pid}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

async fn in_process<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work).await?
}

/// What one run measures, and what its phases share.
struct Bench {
    cores: usize,
    accounts: u32,
    argon2: Argon2Params,
    phc: String,
    site: Arc<Site>,
    sesame_addr: SocketAddr,
    ceiling_addr: SocketAddr,
    ldap_addr: SocketAddr,
    server: Process,
    ceiling: Process,
    http_spec: PhaseSpec,
    login_spec: PhaseSpec,
    queue_spec: PhaseSpec,
    mint_spec: PhaseSpec,
    ceiling_time: Duration,
    sessions: Vec<String>,
    ceilings: Vec<Ceiling>,
    rows: Vec<Row>,
    log_problems: (usize, Vec<String>),
    redis_url: String,
    key_prefix: String,
    redis_memory: Vec<report::RedisMemory>,
}

/// Most tickets or codes minted ahead of a phase.
const MINT_CAP: usize = 400_000;

impl Bench {
    async fn phase<S: Scenario>(
        &mut self,
        name: &str,
        on_ceiling_server: bool,
        spec: PhaseSpec,
        scenario: S,
        requests_per_op: u32,
    ) -> anyhow::Result<PhaseResult> {
        let target = if on_ceiling_server {
            self.ceiling_addr
        } else {
            self.sesame_addr
        };
        self.phase_on(
            name,
            target,
            on_ceiling_server,
            spec,
            scenario,
            requests_per_op,
        )
        .await
    }

    /// [`Bench::phase`] on another of the server's listeners (LDAP).
    async fn phase_on<S: Scenario>(
        &mut self,
        name: &str,
        target: SocketAddr,
        on_ceiling_server: bool,
        spec: PhaseSpec,
        scenario: S,
        requests_per_op: u32,
    ) -> anyhow::Result<PhaseResult> {
        say(&format!(
            "{name}: {} connections, {} s warm-up + {} s",
            spec.connections,
            spec.warmup.as_secs(),
            spec.measure.as_secs()
        ));
        let pid = if on_ceiling_server {
            self.ceiling.pid()
        } else {
            self.server.pid()
        };
        let result = gen::drive(target, spec, Arc::new(scenario), Some(pid)).await?;
        println!("   {}", summary(&result, requests_per_op));
        self.check_alive()?;
        self.collect_log()?;
        Ok(result)
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        ensure!(
            self.server.running(),
            "sesame exited; see {}",
            self.server.log.display()
        );
        ensure!(
            self.ceiling.running(),
            "the ceiling server exited; see {}",
            self.ceiling.log.display()
        );
        Ok(())
    }

    fn collect_log(&mut self) -> anyhow::Result<()> {
        let (count, samples) = self.server.drain_log()?;
        self.log_problems.0 += count;
        for s in samples {
            if self.log_problems.1.len() < 5 {
                self.log_problems.1.push(s);
            }
        }
        Ok(())
    }

    /// Adds a measurement to ceiling `name` (created with `how` at its first measurement);
    /// returns its index.
    fn record_ceiling(&mut self, name: &'static str, how: String, sample: CeilingSample) -> usize {
        if let Some(i) = self.ceilings.iter().position(|c| c.name == name) {
            if let Some(c) = self.ceilings.get_mut(i) {
                c.samples.push(sample);
            }
            return i;
        }
        self.ceilings.push(Ceiling {
            name,
            how,
            samples: vec![sample],
        });
        self.ceilings.len() - 1
    }

    async fn argon2_ceiling(&mut self, when: &str) -> anyhow::Result<usize> {
        let argon2 = self.argon2;
        let how = format!(
            "verifications in-process (argon2 crate, one working buffer kept per thread as Sesame does), {} threads = the hashing pool, m = {} KiB, t = {}, p = {}",
            self.cores, argon2.memory_kib, argon2.iterations, argon2.parallelism
        );
        self.argon2_measure(when, "argon2id", self.cores, how).await
    }

    /// argon2id verifications in-process on `threads` threads, recorded as ceiling `name`.
    async fn argon2_measure(
        &mut self,
        when: &str,
        name: &'static str,
        threads: usize,
        how: String,
    ) -> anyhow::Result<usize> {
        let (time, argon2) = (self.ceiling_time, self.argon2);
        say(&format!(
            "ceiling ({when}): {name}: argon2id verifications in-process, {threads} thread(s), {} s",
            time.as_secs()
        ));
        let phc = self.phc.clone();
        let measured = in_process(move || {
            ceilings::argon2_verifications(argon2, &phc, PASSWORD, threads, time)
        })
        .await?;
        println!(
            "   {:.1}/s, {:.2} ms CPU each",
            measured.per_second, measured.cpu_ms_per_op
        );
        Ok(self.record_ceiling(
            name,
            how,
            CeilingSample {
                when: when.to_owned(),
                per_second: measured.per_second,
                cpu_ms_per_op: Some(measured.cpu_ms_per_op),
                phase: None,
            },
        ))
    }

    async fn rs256_ceiling(&mut self, when: &str) -> anyhow::Result<usize> {
        let (cores, time) = (self.cores, self.ceiling_time);
        say(&format!(
            "ceiling ({when}): RS256 signatures in-process (AWS-LC, key parsed once), {cores} threads, {} s",
            time.as_secs()
        ));
        let measured = in_process(move || ceilings::rs256_signatures(cores, time)).await?;
        println!(
            "   {:.1}/s, {:.3} ms CPU each",
            measured.per_second, measured.cpu_ms_per_op
        );
        let how = format!(
            "signatures of an ID-token-sized claim set in-process (RSA 2048, AWS-LC key pair parsed once, as crates/protocol signs), {cores} threads"
        );
        Ok(self.record_ceiling(
            "RS256",
            how,
            CeilingSample {
                when: when.to_owned(),
                per_second: measured.per_second,
                cpu_ms_per_op: Some(measured.cpu_ms_per_op),
                phase: None,
            },
        ))
    }

    async fn http_ceiling(
        &mut self,
        when: &str,
        name: &'static str,
        (path, marker): (&'static str, &'static str),
        how: &str,
    ) -> anyhow::Result<usize> {
        let phase = self
            .phase(
                &format!("ceiling ({when}): {name}"),
                true,
                self.http_spec,
                Get { path, marker },
                1,
            )
            .await?;
        let how = format!(
            "`sesame-bench ceiling-server`: actix-web, one worker per core, {how}; same generator and connections"
        );
        Ok(self.record_ceiling(
            name,
            how,
            CeilingSample {
                when: when.to_owned(),
                per_second: phase.rate(),
                cpu_ms_per_op: phase.cpu_ms_per_op(),
                phase: Some(phase),
            },
        ))
    }

    async fn redis_ceiling(&mut self, when: &str) -> anyhow::Result<usize> {
        self.http_ceiling(
            when,
            "Redis round trip",
            ("/redis", "redis ok"),
            "one Redis GET per request (connection manager on the main runtime, as Sesame's store)",
        )
        .await
    }

    async fn hello_ceiling(&mut self, when: &str) -> anyhow::Result<usize> {
        self.http_ceiling(
            when,
            "hello world",
            ("/hello", "hello world"),
            "a constant text body",
        )
        .await
    }

    /// SSO sessions, one per connection, for the flows that start logged in.
    async fn sessions(&mut self) -> anyhow::Result<Vec<String>> {
        if self.sessions.is_empty() {
            say(&format!(
                "{} SSO sessions for the flows that start logged in",
                self.http_spec.connections
            ));
            let mut conn = Conn::new(self.sesame_addr)?;
            for i in 0..self.http_spec.connections {
                let n = u32::try_from(i).unwrap_or(0) % self.accounts.max(1) + 1;
                self.sessions
                    .push(scenarios::log_in(&mut conn, &login_of(n)).await?);
            }
        }
        Ok(self.sessions.clone())
    }

    async fn login(&mut self, ceiling: usize, accounts: u32) -> anyhow::Result<Row> {
        let spec = self.login_spec;
        let sessions = format!("{}sso:*", self.key_prefix);
        let before = (
            infra::redis_used_memory(&self.redis_url).await?,
            infra::redis_count(&self.redis_url, &sessions).await?,
        );
        let result = self
            .phase(
                &format!("password login, {accounts} accounts"),
                false,
                spec,
                PasswordLogin { accounts },
                2,
            )
            .await?;
        let after = (
            infra::redis_used_memory(&self.redis_url).await?,
            infra::redis_count(&self.redis_url, &sessions).await?,
        );
        // Only a growth says what the sessions cost: when tickets of earlier phases expired
        // meanwhile, Redis shrank and the difference says nothing (the many-sessions phase
        // measures sessions at scale anyway).
        if after.0 > before.0 && after.1 > before.1 {
            self.redis_memory.push(report::RedisMemory {
                record: "SSO session, with its member of the account's session set",
                phase: "password login",
                records: after.1 - before.1,
                bytes: after.0 - before.0,
                at_scale: 100_000,
            });
        }
        Ok(Row {
            scenario: format!(
                "Password login, {} accounts",
                report::thousands(u64::from(accounts))
            ),
            operation: "GET /cas/login (form, fresh `lt`) + POST /cas/login → 303 + SSO cookie; random account",
            requests_per_op: 2,
            connections: spec.connections,
            result,
            ceiling: Some(ceiling),
            basis: Basis::Ops,
            // The fair ratio is the one-core row's (`login_on_one_core`): here argon2id has
            // both CPUs to itself while the login shares them with everything else.
            target: None,
        })
    }

    /// The password login with Sesame on a core of its own, against argon2id on that same
    /// core: the fair ratio (issue 18). The load generator is pinned to the first CPU, Sesame
    /// (every thread, and those it starts later) to the last, and the ceiling's one thread to
    /// the last too; PostgreSQL and Redis are left where the scheduler puts them. `None` on a
    /// machine with one CPU.
    async fn login_on_one_core(&mut self, accounts: u32) -> anyhow::Result<Option<Row>> {
        if self.cores < 2 {
            return Ok(None);
        }
        let (generator, sesame) = ("0".to_owned(), (self.cores - 1).to_string());
        let all = format!("0-{}", self.cores - 1);
        let (me, server) = (std::process::id(), self.server.pid());
        let how = format!(
            "verifications in-process as for the argon2id ceiling, 1 thread pinned to CPU {sesame}, the CPU Sesame is pinned to in the one-core login"
        );
        pin(me, &sesame)?;
        let ceiling = self
            .argon2_measure("before", "argon2id, one core", 1, how.clone())
            .await;
        pin(me, &generator)?;
        let ceiling = ceiling?;
        pin(server, &sesame)?;
        let result = self
            .phase(
                &format!("password login, {accounts} accounts, Sesame on CPU {sesame}, the generator on CPU {generator}"),
                false,
                self.login_spec,
                PasswordLogin { accounts },
                2,
            )
            .await;
        pin(server, &all)?;
        pin(me, &sesame)?;
        let after = self
            .argon2_measure("after", "argon2id, one core", 1, how)
            .await;
        pin(me, &all)?;
        after?;
        Ok(Some(Row {
            scenario: format!(
                "Password login, {} accounts, Sesame on one core",
                report::thousands(u64::from(accounts))
            ),
            operation: "as the password login; Sesame pinned to the last CPU, the load generator to the first (`taskset`), PostgreSQL and Redis unpinned",
            requests_per_op: 2,
            connections: self.login_spec.connections,
            result: result?,
            ceiling: Some(ceiling),
            basis: Basis::Ops,
            target: Some(0.90),
        }))
    }

    async fn totp_login(&mut self, ceiling: usize) -> anyhow::Result<Row> {
        let spec = self.login_spec;
        let scenario = TotpLogin {
            accounts: TOTP_ACCOUNTS,
            next: Arc::new(std::sync::atomic::AtomicU32::new(0)),
        };
        let result = self
            .phase("password + TOTP login", false, spec, scenario, 3)
            .await?;
        Ok(Row {
            scenario: "Password + TOTP login".to_owned(),
            operation: "GET /cas/login + POST /cas/login → 303 to the second-factor step + POST /login/second-factor (code) → 303 + SSO cookie; accounts in turn",
            requests_per_op: 3,
            connections: spec.connections,
            result,
            ceiling: Some(ceiling),
            basis: Basis::Ops,
            target: None,
        })
    }

    /// LDAP's share of the hashing pool (`ldap.max_concurrent_binds` left at its default).
    fn ldap_share(&self) -> usize {
        (self.cores / 2).max(1)
    }

    async fn argon2_share_ceiling(&mut self, when: &str) -> anyhow::Result<usize> {
        let threads = self.ldap_share();
        let how = format!(
            "verifications in-process as for the argon2id ceiling, on {threads} thread(s): the places of the hashing pool LDAP binds may hold (`ldap.max_concurrent_binds` default, half the cores)"
        );
        self.argon2_measure(when, "argon2id, LDAP's share", threads, how)
            .await
    }

    async fn ldap_whoami_ceiling(&mut self, when: &str) -> anyhow::Result<usize> {
        let phase = self
            .phase_on(
                &format!("ceiling ({when}): LDAP WhoAmI"),
                self.ldap_addr,
                false,
                self.http_spec,
                LdapWhoAmI,
                1,
            )
            .await?;
        Ok(self.record_ceiling(
            "LDAP WhoAmI",
            "WhoAmI (RFC 4532) without a bind on Sesame's own LDAP listener: the codec, the connection and the dispatch, no storage; same generator and connections".to_owned(),
            CeilingSample {
                when: when.to_owned(),
                per_second: phase.rate(),
                cpu_ms_per_op: phase.cpu_ms_per_op(),
                phase: Some(phase),
            },
        ))
    }

    async fn ldap_bind(&mut self, ceiling: usize) -> anyhow::Result<()> {
        // Twice LDAP's share: a bind always waits to take a freed place.
        let spec = PhaseSpec {
            connections: self.ldap_share() * 2,
            ..self.login_spec
        };
        let busy = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let scenario = LdapBind {
            accounts: self.accounts,
            busy: Arc::clone(&busy),
        };
        let result = self
            .phase_on("LDAP bind", self.ldap_addr, false, spec, scenario, 1)
            .await?;
        println!(
            "   {} busy answers (retried)",
            busy.load(std::sync::atomic::Ordering::Relaxed)
        );
        self.rows.push(Row {
            scenario: "LDAP bind".to_owned(),
            operation: "simple bind uid=<login>,ou=people with the password (random account, persistent connection; `busy` retried after 5 ms)",
            requests_per_op: 1,
            connections: spec.connections,
            result,
            ceiling: Some(ceiling),
            basis: Basis::Ops,
            target: Some(0.90),
        });
        Ok(())
    }

    async fn ldap_search(&mut self, ceiling: usize) -> anyhow::Result<()> {
        let spec = self.http_spec;
        let scenario = LdapSearch {
            accounts: self.accounts,
            secret: self.site.ldap_secret.clone(),
        };
        let result = self
            .phase_on("LDAP search", self.ldap_addr, false, spec, scenario, 1)
            .await?;
        self.rows.push(Row {
            scenario: "LDAP search by uid".to_owned(),
            operation: "search (uid=<login>) under ou=people, 3 attributes, as a `full` service account bound once per connection → 1 entry",
            requests_per_op: 1,
            connections: spec.connections,
            result,
            ceiling: Some(ceiling),
            basis: Basis::Ops,
            target: None,
        });
        Ok(())
    }

    /// The login page's latency while 100 connections bind over LDAP in a closed loop, against
    /// its latency alone (`alone`, the login row's, or measured here).
    async fn ldap_beside_login(&mut self, alone: Option<f64>) -> anyhow::Result<LdapMix> {
        let spec = self.login_spec;
        let alone_p99_ms = match alone {
            Some(p99) => p99,
            None => self
                .phase(
                    "password login alone",
                    false,
                    spec,
                    PasswordLogin {
                        accounts: self.accounts,
                    },
                    2,
                )
                .await?
                .latency_ms(0.99),
        };
        const BINDERS: usize = 100;
        say(&format!(
            "password login ({} connections) while {BINDERS} LDAP connections bind, {} s warm-up + {} s",
            spec.connections,
            spec.warmup.as_secs(),
            spec.measure.as_secs()
        ));
        let busy = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let binders = gen::drive(
            self.ldap_addr,
            PhaseSpec {
                connections: BINDERS,
                ..spec
            },
            Arc::new(LdapBind {
                accounts: self.accounts,
                busy: Arc::clone(&busy),
            }),
            None,
        );
        let logins = gen::drive(
            self.sesame_addr,
            spec,
            Arc::new(PasswordLogin {
                accounts: self.accounts,
            }),
            Some(self.server.pid()),
        );
        let (binds, logins) = tokio::join!(binders, logins);
        let (binds, logins) = (binds?, logins?);
        println!("   logins: {}", summary(&logins, 2));
        println!(
            "   binds: {} ({} busy answers, retried)",
            summary(&binds, 1),
            busy.load(std::sync::atomic::Ordering::Relaxed)
        );
        self.check_alive()?;
        self.collect_log()?;
        Ok(LdapMix {
            binders: BINDERS,
            login_connections: spec.connections,
            alone_p99_ms,
            logins,
            binds,
            busy: busy.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    async fn cas_cycle(&mut self, ceiling: usize) -> anyhow::Result<()> {
        let sessions = self.sessions().await?;
        let spec = self.http_spec;
        let scenario = CasCycle {
            site: Arc::clone(&self.site),
            sessions,
        };
        let result = self.phase("CAS cycle", false, spec, scenario, 2).await?;
        self.rows.push(Row {
            scenario: "CAS cycle".to_owned(),
            operation:
                "GET /cas/login?service= with the SSO cookie → 302 + ST; GET /cas/serviceValidate",
            requests_per_op: 2,
            connections: spec.connections,
            result,
            ceiling: Some(ceiling),
            basis: Basis::Requests,
            target: Some(0.50),
        });
        Ok(())
    }

    /// The CAS cycle over `count` live SSO sessions, each used in turn, for `measure`
    /// (issue 18: 100,000 sessions, about a million tickets).
    async fn cas_cycle_over_sessions(
        &mut self,
        count: usize,
        tickets: usize,
        measure: Duration,
    ) -> anyhow::Result<report::ManySessions> {
        let first = self
            .sessions()
            .await?
            .into_iter()
            .next()
            .context("no SSO session to copy")?;
        say(&format!(
            "{} live SSO sessions (copies of one login's record)",
            report::thousands(count as u64)
        ));
        let pattern = format!("{}sso:*", self.key_prefix);
        let before = infra::redis_used_memory(&self.redis_url).await?;
        let sessions =
            infra::clone_session(&self.redis_url, &self.key_prefix, &first, count).await?;
        let with_sessions = infra::redis_used_memory(&self.redis_url).await?;
        // A sample of the sessions, measured before and after by key: Redis's total moves
        // with other phases' records expiring during a phase this long.
        let sample = sessions[..sessions.len().min(1000)].to_vec();
        let sample_before =
            infra::session_records_memory(&self.redis_url, &self.key_prefix, &sample).await?;
        let spec = PhaseSpec {
            measure,
            ..self.http_spec
        };
        let scenario = Arc::new(scenarios::CasCycleOverSessions {
            site: Arc::clone(&self.site),
            sessions,
            next: std::sync::atomic::AtomicUsize::new(0),
            tickets,
        });
        say(&format!(
            "CAS cycle over the sessions: {} connections, {} s warm-up, then until {} tickets \
             are issued (at most {} s)",
            spec.connections,
            spec.warmup.as_secs(),
            report::thousands(tickets as u64),
            spec.measure.as_secs()
        ));
        let result = gen::drive(
            self.sesame_addr,
            spec,
            Arc::clone(&scenario),
            Some(self.server.pid()),
        )
        .await?;
        println!("   {}", summary(&result, 2));
        self.check_alive()?;
        self.collect_log()?;
        let sessions_after = infra::redis_count(&self.redis_url, &pattern).await?;
        let sample_after =
            infra::session_records_memory(&self.redis_url, &self.key_prefix, &sample).await?;
        ensure!(
            result.errors == 0,
            "{} CAS cycles over the sessions failed: {:?}",
            result.errors,
            result.error_samples
        );
        Ok(report::ManySessions {
            sessions: count,
            sessions_bytes: with_sessions.saturating_sub(before),
            tickets_issued: scenario.issued() as u64,
            sampled: sample.len(),
            per_session_before: sample_before as f64 / sample.len().max(1) as f64,
            per_session_after: sample_after as f64 / sample.len().max(1) as f64,
            sessions_after,
            result,
        })
    }

    /// The CAS cycle through a TCP balancer in front of this instance and a second one on
    /// the same database and Redis (issue 18). The generator watches the first instance; the
    /// second's and the balancer's CPU are read from the window's opening to the phase's end.
    async fn cas_cycle_two_instances(
        &mut self,
        (second, second_addr): (ProcessCommand, SocketAddr),
        (front, front_addr): (ProcessCommand, SocketAddr),
        work_dir: &std::path::Path,
    ) -> anyhow::Result<report::TwoInstances> {
        say("starting a second sesame serve and a TCP balancer in front of both");
        let ready_limit = Duration::from_secs(60);
        let mut second = Process::spawn(second, work_dir.join("sesame-second.log"))?;
        infra::wait_ready(&mut second, second_addr, "/health/ready", ready_limit).await?;
        let mut front = Process::spawn(front, work_dir.join("balancer.log"))?;
        // Ready through the balancer: it reaches an instance.
        infra::wait_ready(&mut front, front_addr, "/health/ready", ready_limit).await?;
        let sessions = self.sessions().await?;
        let spec = self.http_spec;
        let (second_pid, front_pid) = (second.pid(), front.pid());
        let opening = tokio::spawn(async move {
            tokio::time::sleep(spec.warmup).await;
            (procfs::cpu_ticks(second_pid), procfs::cpu_ticks(front_pid))
        });
        say(&format!(
            "CAS cycle through the balancer: {} connections, {} s warm-up + {} s",
            spec.connections,
            spec.warmup.as_secs(),
            spec.measure.as_secs()
        ));
        let scenario = CasCycle {
            site: Arc::clone(&self.site),
            sessions,
        };
        let through = gen::drive(
            front_addr,
            spec,
            Arc::new(scenario),
            Some(self.server.pid()),
        )
        .await?;
        let (second_before, front_before) = opening.await?;
        let ticks = procfs::clock_ticks_per_second();
        let ms = |after: u64, before: u64| after.saturating_sub(before) as f64 * 1000.0 / ticks;
        let second_cpu_ms = ms(procfs::cpu_ticks(second_pid)?, second_before?);
        let balancer_cpu_ms = ms(procfs::cpu_ticks(front_pid)?, front_before?);
        println!("   {}", summary(&through, 2));
        ensure!(
            second.running() && front.running(),
            "the second instance or the balancer exited; see {}",
            work_dir.display()
        );
        ensure!(
            through.errors == 0,
            "{} CAS cycles failed through the balancer: {:?}",
            through.errors,
            through.error_samples
        );
        self.check_alive()?;
        self.collect_log()?;
        second.stop(Duration::from_secs(35))?;
        front.stop(Duration::from_secs(5))?;
        Ok(report::TwoInstances {
            cores: self.cores,
            connections: spec.connections,
            through,
            second_cpu_ms,
            balancer_cpu_ms,
        })
    }

    async fn p3_validate(&mut self, ceiling: usize) -> anyhow::Result<()> {
        let sessions = self.sessions().await?;
        let tickets: Queue = Arc::new(Mutex::new(Vec::new()));
        let mint = MintServiceTickets {
            site: Arc::clone(&self.site),
            sessions,
            out: Arc::clone(&tickets),
            cap: MINT_CAP,
        };
        let before = infra::redis_used_memory(&self.redis_url).await?;
        self.phase(
            "minting service tickets for /p3/serviceValidate",
            false,
            self.mint_spec,
            mint,
            1,
        )
        .await?;
        let after = infra::redis_used_memory(&self.redis_url).await?;
        let minted = tickets.lock().map(|t| t.len()).unwrap_or(0);
        self.redis_memory.push(report::RedisMemory {
            // The session's single-logout record is one per application, not per ticket: the
            // tickets minted here, for one service from a few sessions, share a few.
            record: "service ticket not yet validated",
            phase: "minting service tickets",
            records: minted as u64,
            bytes: after.saturating_sub(before),
            at_scale: 1_000_000,
        });
        let spec = self.queue_spec;
        let scenario = ValidateP3 {
            site: Arc::clone(&self.site),
            tickets,
        };
        let result = self
            .phase("/cas/p3/serviceValidate", false, spec, scenario, 1)
            .await?;
        self.rows.push(Row {
            scenario: "/cas/p3/serviceValidate alone".to_owned(),
            operation: "GET /cas/p3/serviceValidate of a ticket minted beforehand (5 attributes, captured in the ticket when it was minted)",
            requests_per_op: 1,
            connections: spec.connections,
            result,
            ceiling: Some(ceiling),
            basis: Basis::Requests,
            target: Some(0.60),
        });
        Ok(())
    }

    async fn code_exchange(&mut self, ceiling: usize) -> anyhow::Result<()> {
        let sessions = self.sessions().await?;
        let codes: Queue = Arc::new(Mutex::new(Vec::new()));
        let mint = MintCodes {
            site: Arc::clone(&self.site),
            sessions,
            out: Arc::clone(&codes),
            cap: MINT_CAP,
        };
        self.phase(
            "minting authorization codes",
            false,
            self.mint_spec,
            mint,
            1,
        )
        .await?;
        let spec = self.queue_spec;
        let scenario = ExchangeCodes {
            site: Arc::clone(&self.site),
            codes,
        };
        let result = self
            .phase("authorization code exchange", false, spec, scenario, 1)
            .await?;
        self.rows.push(Row {
            scenario: "OIDC code exchange at /token".to_owned(),
            operation: "POST /token grant_type=authorization_code (client_secret_basic) of a code minted beforehand → ID token RS256 + access + refresh token",
            requests_per_op: 1,
            connections: spec.connections,
            result,
            ceiling: Some(ceiling),
            basis: Basis::Ops,
            target: Some(0.70),
        });
        Ok(())
    }

    /// SAML Web Browser SSO from an open session, against the RSA-SHA256 signing ceiling
    /// (one signature per assertion, as one per ID token).
    async fn saml_sso(&mut self, ceiling: usize) -> anyhow::Result<()> {
        let sessions = self.sessions().await?;
        let spec = self.http_spec;
        let scenario = SamlSso {
            sessions,
            next: std::sync::atomic::AtomicU64::new(0),
        };
        let result = self.phase("SAML SSO", false, spec, scenario, 1).await?;
        self.rows.push(Row {
            scenario: "SAML SSO".to_owned(),
            operation: "GET /saml/sso?SAMLRequest= (HTTP-Redirect, a new request ID each) with the SSO cookie → 200, the page posting the signed assertion (RSA-SHA256)",
            requests_per_op: 1,
            connections: spec.connections,
            result,
            ceiling: Some(ceiling),
            basis: Basis::Ops,
            target: Some(0.50),
        });
        Ok(())
    }

    async fn client_credentials(&mut self, ceiling: usize) -> anyhow::Result<()> {
        let spec = self.http_spec;
        let scenario = ClientCredentials {
            authorization: self.site.svc_basic(),
        };
        let result = self
            .phase("client_credentials grant", false, spec, scenario, 1)
            .await?;
        self.rows.push(Row {
            scenario: "OIDC client_credentials grant".to_owned(),
            operation:
                "POST /token grant_type=client_credentials (client_secret_basic) → access token",
            requests_per_op: 1,
            connections: spec.connections,
            result,
            ceiling: Some(ceiling),
            basis: Basis::Requests,
            target: Some(0.50),
        });
        Ok(())
    }

    async fn refresh(&mut self, ceiling: usize) -> anyhow::Result<()> {
        let sessions = self.sessions().await?;
        say("one refresh token per connection");
        let tokens: Queue = Arc::new(Mutex::new(Vec::new()));
        let mut conn = Conn::new(self.sesame_addr)?;
        for cookie in &sessions {
            let token = scenarios::refresh_token_for(&mut conn, &self.site, cookie).await?;
            tokens
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(token);
        }
        drop(conn);
        let spec = self.http_spec;
        let scenario = Refresh {
            authorization: self.site.rp_basic(),
            tokens,
        };
        let result = self
            .phase("refresh_token grant", false, spec, scenario, 1)
            .await?;
        self.rows.push(Row {
            scenario: "OIDC refresh_token grant".to_owned(),
            operation: "POST /token grant_type=refresh_token (rotating; the SSO session is checked) → access + refresh token",
            requests_per_op: 1,
            connections: spec.connections,
            result,
            ceiling: Some(ceiling),
            basis: Basis::Requests,
            target: Some(0.50),
        });
        Ok(())
    }

    async fn static_get(
        &mut self,
        ceiling: usize,
        name: &str,
        path: &'static str,
        marker: &'static str,
        operation: &'static str,
    ) -> anyhow::Result<()> {
        let spec = self.http_spec;
        let result = self
            .phase(name, false, spec, Get { path, marker }, 1)
            .await?;
        self.rows.push(Row {
            scenario: name.to_owned(),
            operation,
            requests_per_op: 1,
            connections: spec.connections,
            result,
            ceiling: Some(ceiling),
            basis: Basis::Requests,
            target: Some(0.80),
        });
        Ok(())
    }
}

const SCENARIOS: [&str; 15] = [
    "login",
    "totp",
    "ldap",
    "cas",
    "p3",
    "code",
    "saml",
    "saml-aggregate",
    "client-credentials",
    "refresh",
    "discovery",
    "jwks",
    "import",
    "two-instances",
    "many-sessions",
];

#[expect(
    clippy::too_many_lines,
    reason = "set-up, phases and tear-down of one run, in order"
)]
async fn run(args: RunArgs) -> anyhow::Result<()> {
    let began = Instant::now();
    let wanted = |name: &str| args.only.iter().any(|o| o == name || o == "all");
    for o in &args.only {
        ensure!(
            o == "all" || SCENARIOS.contains(&o.as_str()),
            "--only: unknown scenario {o}; known: {}",
            SCENARIOS.join(", ")
        );
    }
    let machine = procfs::Machine::probe();
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("creating {}", args.work_dir.display()))?;
    let warmup = Duration::from_secs(args.warmup_secs);
    let measure = Duration::from_secs(args.measure_secs);
    let login_measure = Duration::from_secs(args.login_measure_secs);

    say("one argon2id hash at the production parameters, for every account");
    let argon2 = Argon2Params::default();
    let phc = in_process(move || {
        let hasher = PasswordHasher::new(argon2)?;
        Ok(hasher.hash(&Password::new(PASSWORD))?)
    })
    .await?;

    say("fresh PostgreSQL database and Redis key prefix");
    let pg = PgServer {
        host: args.pg_host.clone(),
        port: args.pg_port,
        user: args.pg_user.clone(),
    };
    let postgres = pg.fresh_database().await?;
    let redis = infra::redis_version(&args.redis).await.context("Redis")?;
    let key_prefix = format!(
        "sesame-bench:{}:",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let site = Arc::new(Site::new());
    let sesame_addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let ldap_addr = SocketAddr::from(([127, 0, 0, 1], args.ldap_port));
    let ceiling_addr = SocketAddr::from(([127, 0, 0, 1], args.ceiling_port));
    let config = args.work_dir.join("sesame.toml");
    infra::write_config(
        &config,
        &ConfigInput {
            listen: sesame_addr,
            database_url: pg.url(infra::DATABASE),
            redis_url: &args.redis,
            key_prefix: &key_prefix,
            argon2,
            site: &site,
            log_level: &args.log_level,
            ldap_listen: Some(ldap_addr),
            saml: true,
        },
    )?;
    let sesame_command = |sub: &str| {
        let mut c = ProcessCommand::new(&args.sesame);
        c.arg("--config")
            .arg(&config)
            .arg(sub)
            .env_remove("RUST_LOG");
        c
    };
    let migrate_log = args.work_dir.join("migrate.log");
    let mut migrate = Process::spawn(sesame_command("migrate"), migrate_log.clone())?;
    let status = migrate.exited().await?;
    ensure!(
        status.success(),
        "sesame migrate failed: {}",
        std::fs::read_to_string(&migrate_log).unwrap_or_default()
    );

    say(&format!("seeding {} accounts by COPY", args.accounts));
    let seeding = Instant::now();
    pg.seed_accounts(1, args.accounts, &phc).await?;
    let seed_time = seeding.elapsed();
    println!("   {:.1} s", seed_time.as_secs_f64());
    if wanted("totp") {
        say(&format!(
            "seeding {TOTP_ACCOUNTS} accounts with a TOTP application"
        ));
        pg.seed_totp_accounts(TOTP_ACCOUNTS, &phc, &infra::mfa_sealer()?)
            .await?;
    }

    say("starting sesame serve (first start: signing keys are generated), then again");
    let log = args.work_dir.join("sesame.log");
    std::fs::write(&log, "")?;
    let mut first = Process::spawn(sesame_command("serve"), log.clone())?;
    let ready_limit = Duration::from_secs(60);
    let first_ready =
        infra::wait_ready(&mut first, sesame_addr, "/health/ready", ready_limit).await?;
    first.stop(Duration::from_secs(35))?;
    drop(first);
    let mut server = Process::spawn(sesame_command("serve"), log.clone())?;
    let restart_ready =
        infra::wait_ready(&mut server, sesame_addr, "/health/ready", ready_limit).await?;
    let idle_rss_kib = infra::idle_rss_kib(server.pid(), Duration::from_secs(2)).await?;
    println!(
        "   ready after {} ms (first start), {} ms (restart); RSS idle {:.1} MB",
        first_ready.as_millis(),
        restart_ready.as_millis(),
        idle_rss_kib as f64 / 1024.0
    );

    let exe = std::env::current_exe().context("locating sesame-bench")?;
    let mut ceiling_command = ProcessCommand::new(exe);
    ceiling_command
        .arg("ceiling-server")
        .arg("--listen")
        .arg(ceiling_addr.to_string())
        .arg("--redis")
        .arg(&args.redis)
        .arg("--key-prefix")
        .arg(&key_prefix);
    let mut ceiling = Process::spawn(ceiling_command, args.work_dir.join("ceiling-server.log"))?;
    infra::wait_ready(&mut ceiling, ceiling_addr, "/hello", ready_limit).await?;

    let mut bench = Bench {
        cores: machine.cpus,
        accounts: args.accounts,
        argon2,
        phc,
        site,
        sesame_addr,
        ceiling_addr,
        ldap_addr,
        server,
        ceiling,
        http_spec: PhaseSpec {
            connections: args.connections,
            warmup,
            measure,
        },
        login_spec: PhaseSpec {
            connections: args.login_connections,
            warmup,
            measure: login_measure,
        },
        // Fed by a queue: a short warm-up, and it may end early when the queue runs dry.
        queue_spec: PhaseSpec {
            connections: args.connections,
            warmup: Duration::from_secs(1),
            measure,
        },
        mint_spec: PhaseSpec {
            connections: args.connections,
            warmup: Duration::ZERO,
            measure: measure + Duration::from_secs(5),
        },
        ceiling_time: Duration::from_secs(8),
        sessions: Vec::new(),
        ceilings: Vec::new(),
        rows: Vec::new(),
        redis_url: args.redis.clone(),
        key_prefix: key_prefix.clone(),
        redis_memory: Vec::new(),
        log_problems: (0, Vec::new()),
    };
    bench.collect_log()?;

    // Each group between two measurements of its ceiling. The login runs last: it is the
    // phase that grows the server's memory, so the others show their own.
    if ["cas", "p3", "client-credentials", "refresh"]
        .iter()
        .any(|n| wanted(n))
    {
        // The SSO sessions are opened first, so that their logins are not inside a window.
        bench.sessions().await?;
        let ceiling = bench.redis_ceiling("before").await?;
        if wanted("cas") {
            bench.cas_cycle(ceiling).await?;
        }
        if wanted("p3") {
            bench.p3_validate(ceiling).await?;
        }
        if wanted("client-credentials") {
            bench.client_credentials(ceiling).await?;
        }
        if wanted("refresh") {
            bench.refresh(ceiling).await?;
        }
        bench.redis_ceiling("after").await?;
    }
    let mut many_sessions = None;
    if args.large && wanted("many-sessions") {
        many_sessions = Some(
            bench
                .cas_cycle_over_sessions(
                    args.many_sessions,
                    args.many_sessions_tickets,
                    Duration::from_secs(args.many_sessions_secs),
                )
                .await?,
        );
    }
    let mut two_instances = None;
    if args.large && wanted("two-instances") && wanted("cas") {
        let second_addr = SocketAddr::from(([127, 0, 0, 1], args.port + 2));
        let balancer_addr = SocketAddr::from(([127, 0, 0, 1], args.port + 3));
        let second_config = args.work_dir.join("sesame-second.toml");
        infra::write_config(
            &second_config,
            &ConfigInput {
                listen: second_addr,
                database_url: pg.url(infra::DATABASE),
                redis_url: &args.redis,
                key_prefix: &key_prefix,
                argon2,
                site: &bench.site,
                log_level: &args.log_level,
                ldap_listen: None,
                saml: false,
            },
        )?;
        let mut second = ProcessCommand::new(&args.sesame);
        second
            .arg("--config")
            .arg(&second_config)
            .arg("serve")
            .env_remove("RUST_LOG");
        let mut front =
            ProcessCommand::new(std::env::current_exe().context("locating sesame-bench")?);
        front
            .arg("balancer")
            .arg("--listen")
            .arg(balancer_addr.to_string())
            .arg("--backend")
            .arg(sesame_addr.to_string())
            .arg("--backend")
            .arg(second_addr.to_string());
        two_instances = Some(
            bench
                .cas_cycle_two_instances(
                    (second, second_addr),
                    (front, balancer_addr),
                    &args.work_dir,
                )
                .await?,
        );
    }
    if wanted("code") || wanted("saml") {
        let ceiling = bench.rs256_ceiling("before").await?;
        if wanted("code") {
            bench.code_exchange(ceiling).await?;
        }
        if wanted("saml") {
            bench.saml_sso(ceiling).await?;
        }
        bench.rs256_ceiling("after").await?;
    }
    if wanted("discovery") || wanted("jwks") {
        let ceiling = bench.hello_ceiling("before").await?;
        if wanted("discovery") {
            bench
                .static_get(
                    ceiling,
                    "OIDC discovery",
                    "/.well-known/openid-configuration",
                    "\"issuer\"",
                    "GET /.well-known/openid-configuration",
                )
                .await?;
        }
        if wanted("jwks") {
            bench
                .static_get(ceiling, "OIDC JWKS", "/jwks", "\"keys\"", "GET /jwks")
                .await?;
        }
        bench.hello_ceiling("after").await?;
    }
    let mut large = None;
    if wanted("login") || wanted("totp") {
        let ceiling = bench.argon2_ceiling("before").await?;
        if wanted("login") {
            let row = bench.login(ceiling, args.accounts).await?;
            bench.rows.insert(0, row);
        }
        if wanted("totp") {
            let row = bench.totp_login(ceiling).await?;
            let at = usize::from(wanted("login"));
            bench.rows.insert(at, row);
        }
        bench.argon2_ceiling("after").await?;
        if wanted("login") {
            if let Some(row) = bench.login_on_one_core(args.accounts).await? {
                bench.rows.insert(1, row);
            }
        }
        if wanted("login") && args.large && args.large_accounts > args.accounts {
            say(&format!(
                "seeding accounts up to {} by COPY",
                args.large_accounts
            ));
            let seeding = Instant::now();
            pg.seed_accounts(args.accounts + 1, args.large_accounts, &bench.phc)
                .await?;
            let seeded = seeding.elapsed();
            println!("   {:.1} s", seeded.as_secs_f64());
            let row = bench.login(ceiling, args.large_accounts).await?;
            bench
                .argon2_ceiling(&format!(
                    "after the {} accounts",
                    report::thousands(u64::from(args.large_accounts))
                ))
                .await?;
            large = Some((args.large_accounts, seeded, row));
        }
    }

    let mut ldap_mix = None;
    if wanted("ldap") {
        let ceiling = bench.argon2_share_ceiling("before").await?;
        bench.ldap_bind(ceiling).await?;
        bench.argon2_share_ceiling("after").await?;
        let ceiling = bench.ldap_whoami_ceiling("before").await?;
        bench.ldap_search(ceiling).await?;
        bench.ldap_whoami_ceiling("after").await?;
        let alone = bench
            .rows
            .iter()
            .find(|r| r.scenario.starts_with("Password login"))
            .map(|r| r.result.latency_ms(0.99));
        ldap_mix = Some(bench.ldap_beside_login(alone).await?);
    }

    let hwm_kib = procfs::peak_rss_kib(bench.server.pid())?;
    say("stopping; dropping the database and the Redis keys");
    bench.server.stop(Duration::from_secs(35))?;
    bench.ceiling.stop(Duration::from_secs(5))?;
    let import = if args.large && wanted("import") {
        Some(import_run(&args, &pg, &sesame_command).await?)
    } else {
        None
    };
    // After the server stopped: the machine's cores are the reading's alone.
    let saml_aggregate = if wanted("saml-aggregate") {
        say("a federation aggregate of 10,000 SPs: generated, signed, read and verified");
        let work_dir = args.work_dir.clone();
        Some(
            tokio::task::spawn_blocking(move || {
                sesame_bench::aggregate::measure(10_000, &work_dir)
            })
            .await??,
        )
    } else {
        None
    };
    pg.drop_database().await?;
    let removed = infra::redis_cleanup(&args.redis, &key_prefix).await?;
    println!("   {removed} Redis keys removed");

    let now = SystemClock.now();
    let date = format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute()
    );
    let report = Report {
        machine,
        date,
        postgres,
        redis,
        threads: args.threads.max(1),
        connections: args.connections,
        login_connections: args.login_connections,
        warmup,
        measure,
        login_measure,
        argon2,
        log_level: args.log_level.clone(),
        accounts: args.accounts,
        seed_time,
        first_ready,
        restart_ready,
        idle_rss_kib,
        hwm_kib,
        ceilings: bench.ceilings,
        rows: bench.rows,
        large,
        import,
        saml_aggregate,
        two_instances,
        many_sessions,
        redis_memory: bench.redis_memory,
        ldap_mix,
        server_log_problems: bench.log_problems,
        total: began.elapsed(),
        load_after: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_default(),
        command: if args.large {
            "make bench-large"
        } else {
            "make bench"
        },
    };
    print!("{}", report.console());
    let mut markdown = report.markdown();
    match std::fs::read_to_string(&args.analysis) {
        Ok(analysis) => {
            markdown.push('\n');
            markdown.push_str(&analysis);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", args.analysis.display())),
    }
    std::fs::write(&args.out, markdown)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("\nwrote {}", args.out.display());
    // Missed targets are results; errors mean a flow is broken, which the run must not hide.
    let errors: u64 = report
        .rows
        .iter()
        .chain(report.large.iter().map(|(_, _, r)| r))
        .map(|r| r.result.errors)
        .sum();
    ensure!(errors == 0, "{errors} operations failed; see the report");
    Ok(())
}

/// `sesame import` of a file of `--import-people` people, then of the same file again, with
/// the server stopped (the import is a command of its own against the database).
async fn import_run(
    args: &RunArgs,
    pg: &PgServer,
    sesame_command: &dyn Fn(&str) -> ProcessCommand,
) -> anyhow::Result<import::ImportRun> {
    let file = args.work_dir.join("people.csv");
    let file_bytes = import::write_file(&file, args.import_people)?;
    let log = args.work_dir.join("import.log");
    let command = || {
        let mut c = sesame_command("import");
        c.arg(&file);
        c
    };
    say(&format!(
        "sesame import of {} people ({:.1} MB)",
        report::thousands(u64::from(args.import_people)),
        file_bytes as f64 / 1e6
    ));
    let first = import::import_once(command(), &log).await?;
    println!("   {:.1} s: {:?}", first.took.as_secs_f64(), first.counts);
    say("sesame import of the same file again (nobody changed)");
    let again = import::import_once(command(), &log).await?;
    println!("   {:.1} s: {:?}", again.took.as_secs_f64(), again.counts);
    let accounts_in_database = import::imported_accounts(pg).await?;
    let people = u64::from(args.import_people);
    ensure!(
        first.counts.created == people && first.counts.rejected == 0,
        "the first import should create {people} accounts: {:?}",
        first.counts
    );
    ensure!(
        again.counts.unchanged == people && again.counts.created + again.counts.updated == 0,
        "the second import should change nothing: {:?}",
        again.counts
    );
    ensure!(
        u64::try_from(accounts_in_database).ok() == Some(people),
        "{accounts_in_database} imported accounts in the database, {people} in the file"
    );
    Ok(import::ImportRun {
        people: args.import_people,
        file_bytes,
        first,
        again,
        accounts_in_database,
    })
}
