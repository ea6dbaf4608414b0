//! `sesame-faults`: what `make faults` runs (security spec, F rows).
//!
//! Starts its own PostgreSQL (initdb + pg_ctl on a free port), Redis and SMTP server
//! (aiosmtpd), a TCP proxy of its own in front of PostgreSQL and of Redis (one per instance),
//! and two `sesame serve` instances on them. A steady load mix runs throughout; each row
//! injects its fault, checks what the spec says must hold, and prints what held, what did
//! not, the recovery time, false successes and lost records. Exits non-zero when a false
//! success or a lost record was seen. Writes a JUnit report so the coverage report lists
//! the rows.

mod failover;
mod infra;
mod load;
mod logstall;
mod proxy;
mod rows;
mod soak;
mod timing;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sesame_bench::infra::{write_config, ConfigInput, PgServer, DATABASE};
use sesame_bench::scenarios::{Site, PASSWORD};
use sesame_core::credentials::hasher::{Argon2Params, PasswordHasher};
use sesame_core::credentials::Password;

use crate::infra::{Instance, Postgres, Redis, Smtp};
use crate::load::Shared;
use crate::proxy::Proxy;

/// Load workers (each its own account).
pub const WORKERS: usize = 6;
/// Redis command budget of the instances (`store.timeout_ms`).
pub const STORE_TIMEOUT_MS: u64 = 500;

/// Everything the rows act on.
pub struct Env {
    /// The throwaway PostgreSQL.
    pub pg: Postgres,
    /// The proxy the instances reach PostgreSQL through.
    pub pg_proxy: Proxy,
    /// The Redis server.
    pub redis: Redis,
    /// The proxies the instances reach Redis through (a's, b's).
    pub redis_proxies: [Proxy; 2],
    /// The SMTP server.
    pub smtp: Smtp,
    /// Instances a and b.
    pub instances: [Instance; 2],
    /// The registered service and clients.
    pub site: Arc<Site>,
    /// The load's state.
    pub shared: Arc<Shared>,
    /// The configuration file of instance a (the CLI commands use it).
    pub config_a: PathBuf,
    /// Work directory.
    pub work: PathBuf,
    /// When F18 rotated the signing key, and the ID tokens issued before.
    pub rotation: Option<(Instant, Vec<String>)>,
    /// The rows to run (`--rows`); empty: all.
    pub rows: Vec<String>,
}

impl Env {
    /// Whether row `id` runs (`--rows`, to work on one row; CI runs them all).
    pub fn selected(&self, id: &str) -> bool {
        self.rows.is_empty() || self.rows.iter().any(|r| r.eq_ignore_ascii_case(id))
    }
}

/// What one row found.
#[derive(Debug, Default)]
pub struct RowResult {
    /// `F01`…
    pub id: &'static str,
    /// Test-like name for the JUnit report (`f01_…`).
    pub name: &'static str,
    /// What held.
    pub held: Vec<String>,
    /// What did not.
    pub failed: Vec<String>,
    /// Time from the end of the fault to service restored.
    pub recovery: Option<Duration>,
    /// Successes that must not have happened.
    pub false_successes: usize,
    /// Records lost (mails, sessions).
    pub lost: usize,
    /// Why the row was not run.
    pub skipped: Option<String>,
    /// How long the row took.
    pub took: Duration,
}

impl RowResult {
    /// A row about to run.
    pub fn new(id: &'static str, name: &'static str) -> Self {
        Self {
            id,
            name,
            ..Self::default()
        }
    }

    /// A row not run, with the reason.
    pub fn skipped(id: &'static str, name: &'static str, why: &str) -> Self {
        Self {
            id,
            name,
            skipped: Some(why.to_owned()),
            ..Self::default()
        }
    }

    /// Records a check.
    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        if ok {
            self.held.push(what.into());
        } else {
            self.failed.push(what.into());
        }
    }

    /// Whether everything held.
    pub fn passed(&self) -> bool {
        self.failed.is_empty() && self.false_successes == 0 && self.lost == 0
    }
}

struct Args {
    sesame: PathBuf,
    work: PathBuf,
    junit: PathBuf,
    smtp_script: PathBuf,
    /// Rows known to fail, with an open issue: still run and reported as failed, but their
    /// false successes do not fail the run (so CI still catches every other row).
    known_failing: Vec<String>,
    /// How long the soak (C17) lasts after the faults.
    soak: Duration,
    /// Only these rows (`--rows F14,F20`).
    rows: Vec<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        sesame: PathBuf::from("target/debug/sesame"),
        work: PathBuf::from("target/faults"),
        junit: PathBuf::from("target/test-reports/faults.xml"),
        smtp_script: PathBuf::from("crates/mail/tests/smtp_server.py"),
        known_failing: Vec::new(),
        soak: Duration::from_secs(60),
        rows: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sesame" => a.sesame = value.into(),
            "--work-dir" => a.work = value.into(),
            "--junit" => a.junit = value.into(),
            "--smtp-script" => a.smtp_script = value.into(),
            "--soak-secs" => {
                a.soak = Duration::from_secs(
                    value
                        .parse()
                        .with_context(|| format!("--soak-secs {value}: not a number"))?,
                );
            }
            "--rows" => {
                a.rows = value
                    .split(',')
                    .map(|row| row.trim().to_ascii_uppercase())
                    .filter(|row| !row.is_empty())
                    .collect();
            }
            "--known-failing" => {
                a.known_failing = value
                    .split(',')
                    .map(|row| row.trim().to_ascii_uppercase())
                    .filter(|row| !row.is_empty())
                    .collect();
            }
            other => bail!(
                "unknown option {other} (--sesame, --work-dir, --junit, --smtp-script, --known-failing, --soak-secs, --rows)"
            ),
        }
    }
    Ok(a)
}

/// The environment both instances run with, on top of the generated configuration file.
fn instance_env(smtp_port: u16) -> Vec<(String, String)> {
    [
        ("SESAME_STORE__TIMEOUT_MS", STORE_TIMEOUT_MS.to_string()),
        // The default 10 s (the bench's 300 s would hide a clock skew of 2 minutes, F12).
        ("SESAME_CAS__SERVICE_TICKET_TTL_SECS", "10".to_owned()),
        ("SESAME_SERVER__WORKERS", "2".to_owned()),
        ("SESAME_SERVER__SHUTDOWN_TIMEOUT_SECS", "10".to_owned()),
        ("SESAME_DATABASE__MAX_CONNECTIONS", "8".to_owned()),
        ("SESAME_LOCKOUT__IP_THRESHOLD", "1000000".to_owned()),
        ("SESAME_LOCKOUT__FAILURE_DELAY_MS", "0".to_owned()),
        ("SESAME_OIDC__KEY_RELOAD_SECS", "1".to_owned()),
        ("SESAME_OIDC__KEY_ACTIVATION_DELAY_SECS", "61".to_owned()),
        ("SESAME_MAIL__TRANSPORT", "smtp".to_owned()),
        ("SESAME_MAIL__SMTP_HOST", "127.0.0.1".to_owned()),
        ("SESAME_MAIL__SMTP_PORT", smtp_port.to_string()),
        ("SESAME_MAIL__SMTP_SECURITY", "none".to_owned()),
        (
            "SESAME_MAIL__FROM",
            "Sesame <no-reply@univ.example.org>".to_owned(),
        ),
        ("SESAME_MAIL__TIMEOUT_SECS", "2".to_owned()),
        ("SESAME_MAIL__WORKER_INTERVAL_SECS", "1".to_owned()),
        (
            "SESAME_MAIL__RETRY_DELAYS_SECS",
            "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Cheap argon2id: the suite is about faults, not hashing cost.
fn cheap_argon2() -> Argon2Params {
    Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    }
}

async fn setup(a: &Args) -> anyhow::Result<Env> {
    let started = Instant::now();
    std::fs::remove_dir_all(&a.work).ok();
    std::fs::create_dir_all(&a.work)?;
    let work = std::fs::canonicalize(&a.work)?;
    // PostgreSQL's files belong to the postgres user: outside the (root-owned) worktree.
    let pg_dir = std::env::temp_dir().join(format!("sesame-faults-pg-{}", std::process::id()));
    let pg = Postgres::create(&pg_dir)?;
    let pg_proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], pg.port))).await?;
    let redis = Redis::start(&work.join("redis")).await?;
    let redis_addr = SocketAddr::from(([127, 0, 0, 1], redis.port));
    let redis_proxies = [
        Proxy::start(redis_addr).await?,
        Proxy::start(redis_addr).await?,
    ];
    let smtp = Smtp::start(&work.join("smtp"), &a.smtp_script)?;
    println!(
        "   PostgreSQL :{} (proxy :{}), Redis :{} (proxies :{}, :{}), SMTP :{}",
        pg.port,
        pg_proxy.addr.port(),
        redis.port,
        redis_proxies[0].addr.port(),
        redis_proxies[1].addr.port(),
        smtp.port
    );

    let server = PgServer {
        host: "127.0.0.1".to_owned(),
        port: pg.port,
        user: "postgres".to_owned(),
    };
    server.fresh_database().await?;
    let via_proxy = PgServer {
        port: pg_proxy.addr.port(),
        ..server.clone()
    };
    let site = Arc::new(Site::new());
    let env_vars = instance_env(smtp.port);
    let sesame = std::fs::canonicalize(&a.sesame)
        .with_context(|| format!("{} (cargo build --bin sesame)", a.sesame.display()))?;
    let mut instances = Vec::new();
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        let listen = SocketAddr::from(([127, 0, 0, 1], infra::free_port()?));
        let config = work.join(format!("sesame-{name}.toml"));
        let redis_url = format!("redis://{}", redis_proxies[i].addr);
        write_config(
            &config,
            &ConfigInput {
                listen,
                database_url: via_proxy.url(DATABASE),
                redis_url: &redis_url,
                key_prefix: "faults:",
                argon2: cheap_argon2(),
                site: &site,
                log_level: "info",
                ldap_listen: None,
                saml: false,
            },
        )?;
        instances.push(Instance::new(
            name,
            listen,
            &sesame,
            &config,
            env_vars.clone(),
            work.join(format!("sesame-{name}.log")),
        ));
    }
    let [mut a_inst, mut b_inst] =
        <[Instance; 2]>::try_from(instances).map_err(|_| anyhow::anyhow!("two instances"))?;
    let out = a_inst
        .command(&["migrate"])
        .output()
        .context("sesame migrate")?;
    if !out.status.success() {
        bail!("sesame migrate: {}", String::from_utf8_lossy(&out.stderr));
    }
    let phc = PasswordHasher::new(cheap_argon2())?.hash(&Password::new(PASSWORD))?;
    server
        .seed_accounts(1, u32::try_from(WORKERS).unwrap_or(6) + 20, &phc)
        .await?;
    // C16 probes accounts whose hash has the parameters of a real deployment.
    let owasp_phc = PasswordHasher::new(timing::OWASP_ARGON2)?.hash(&Password::new(PASSWORD))?;
    server
        .seed_accounts(
            timing::TIMING_FIRST_ACCOUNT,
            timing::TIMING_FIRST_ACCOUNT + timing::TIMING_ACCOUNTS - 1,
            &owasp_phc,
        )
        .await?;
    a_inst.start().await?;
    b_inst.start().await?;
    let shared = Shared::new(Arc::clone(&site));
    shared.add_target(a_inst.addr);
    shared.add_target(b_inst.addr);
    let config_a = work.join("sesame-a.toml");
    println!(
        "   set up in {:.1} s (two debug-build instances on :{} and :{})",
        started.elapsed().as_secs_f64(),
        a_inst.addr.port(),
        b_inst.addr.port()
    );
    Ok(Env {
        pg,
        pg_proxy,
        redis,
        redis_proxies,
        smtp,
        instances: [a_inst, b_inst],
        site,
        shared,
        config_a,
        work,
        rotation: None,
        rows: a.rows.clone(),
    })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn write_junit(path: &PathBuf, results: &[RowResult]) -> anyhow::Result<()> {
    let failures = results
        .iter()
        .filter(|r| r.skipped.is_none() && !r.passed())
        .count();
    let skipped = results.iter().filter(|r| r.skipped.is_some()).count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"faults\">\n<testsuite name=\"faults\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">\n",
        results.len()
    );
    for r in results {
        xml.push_str(&format!(
            "<testcase classname=\"sesame-faults\" name=\"{}\" time=\"{:.3}\">",
            r.name,
            r.took.as_secs_f64()
        ));
        if let Some(why) = &r.skipped {
            xml.push_str(&format!("<skipped message=\"{}\"/>", xml_escape(why)));
        } else if !r.passed() {
            let mut text = r.failed.join("; ");
            if r.false_successes > 0 {
                text.push_str(&format!("; {} false successes", r.false_successes));
            }
            if r.lost > 0 {
                text.push_str(&format!("; {} lost records", r.lost));
            }
            xml.push_str(&format!("<failure message=\"{}\"/>", xml_escape(&text)));
        }
        xml.push_str("</testcase>\n");
    }
    xml.push_str("</testsuite>\n</testsuites>\n");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, xml)?;
    Ok(())
}

fn print_row(r: &RowResult) {
    if let Some(why) = &r.skipped {
        println!("{} {:<44} not run: {why}", r.id, r.name);
        return;
    }
    let verdict = if r.passed() { "HELD" } else { "FAILED" };
    println!(
        "{} {:<44} {verdict} in {:.1} s; recovery {}; false successes {}; lost records {}",
        r.id,
        r.name,
        r.took.as_secs_f64(),
        r.recovery
            .map_or_else(|| "-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
        r.false_successes,
        r.lost
    );
    for h in &r.held {
        println!("      held: {h}");
    }
    for f in &r.failed {
        println!("      NOT HELD: {f}");
    }
}

async fn run() -> anyhow::Result<ExitCode> {
    let a = args()?;
    let started = Instant::now();
    println!("== fault suite: setting up");
    let mut env = setup(&a).await?;
    let workers = load::start(&env.shared, WORKERS);
    // Warm-up: every worker logged in, a baseline of latencies.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let results = rows::run_all(&mut env, a.soak).await;
    env.shared.stop();
    for w in workers {
        w.await.ok();
    }
    println!("== fault suite: results");
    for r in &results {
        print_row(r);
    }
    let run_rows: Vec<&RowResult> = results.iter().filter(|r| r.skipped.is_none()).collect();
    let held = run_rows.iter().filter(|r| r.passed()).count();
    let lost: usize = run_rows.iter().map(|r| r.lost).sum();
    let load_false = env.shared.false_success_count();
    let fs_list = env
        .shared
        .false_successes
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    for f in fs_list.iter().take(10) {
        println!("   false success: {f}");
    }
    write_junit(&a.junit, &results)?;
    // Rows report theirs into the shared list too: it holds every false success of the run.
    let total_false = load_false;
    println!(
        "faults: {} rows, held {held}, failed {}, false successes {total_false}, lost records {lost} ({} not run; {:.0} s; logs in {})",
        run_rows.len(),
        run_rows.len() - held,
        results.len() - run_rows.len(),
        started.elapsed().as_secs_f64(),
        env.work.display()
    );
    // False successes of rows known to fail (listed, with their issue, in docs/faults.md)
    // are reported above but do not fail the run; any other one does.
    let known: Vec<&RowResult> = run_rows
        .iter()
        .copied()
        .filter(|r| a.known_failing.iter().any(|k| r.id.eq_ignore_ascii_case(k)))
        .collect();
    let known_false: usize = known.iter().map(|r| r.false_successes).sum();
    if !known.is_empty() {
        println!(
            "faults: known failing (not gating): {} ({known_false} false successes among them)",
            known
                .iter()
                .map(|r| format!("{} {}", r.id, if r.passed() { "held" } else { "failed" }))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(if total_false.saturating_sub(known_false) > 0 || lost > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fault suite: {e:#}");
            ExitCode::from(2)
        }
    }
}
