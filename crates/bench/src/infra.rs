//! The bench's own database, accounts, Redis keys, configuration file and server processes.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::SinkExt as _;
use sesame_core::credentials::hasher::Argon2Params;
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, NoTls};

use crate::http::Conn;
use crate::procfs;
use crate::scenarios::Site;

/// The bench's database, dropped and created again by every run.
pub const DATABASE: &str = "sesame_bench";

/// PostgreSQL connection parameters (trust authentication, as in CI).
#[derive(Debug, Clone)]
pub struct PgServer {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
}

impl PgServer {
    /// A client of database `dbname`.
    pub async fn connect(&self, dbname: &str) -> anyhow::Result<Client> {
        let params = format!(
            "host={} port={} user={} dbname={dbname} connect_timeout=5",
            self.host, self.port, self.user
        );
        let (client, connection) = tokio_postgres::connect(&params, NoTls)
            .await
            .with_context(|| format!("connecting to PostgreSQL ({params})"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("PostgreSQL connection: {e}");
            }
        });
        Ok(client)
    }

    /// The URL Sesame is configured with.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://{}@{}:{}/{dbname}",
            self.user, self.host, self.port
        )
    }

    /// Drops and creates [`DATABASE`]; returns the server version.
    pub async fn fresh_database(&self) -> anyhow::Result<String> {
        let admin = self.connect("postgres").await?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
            .await
            .context("dropping the previous bench database")?;
        admin
            .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
            .await
            .context("creating the bench database")?;
        let row = admin.query_one("SHOW server_version", &[]).await?;
        Ok(row.get::<_, String>(0))
    }

    /// Drops [`DATABASE`].
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        let admin = self.connect("postgres").await?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
            .await
            .context("dropping the bench database")?;
        Ok(())
    }

    /// Adds active accounts `first..=last` (login `bench.NNNNNNN`), all with the password
    /// hash `phc`, by COPY; then ANALYZE.
    pub async fn seed_accounts(&self, first: u32, last: u32, phc: &str) -> anyhow::Result<()> {
        self.seed_named(first, last, phc, crate::scenarios::login_of)
            .await
            .map(drop)
    }

    /// Adds TOTP accounts `1..=count` (login `bench.totp.NNNNNN`, the password hash `phc`),
    /// each with an authenticator application of secret [`crate::scenarios::TOTP_SECRET`],
    /// sealed with `sealer` as Sesame stores it.
    pub async fn seed_totp_accounts(
        &self,
        count: u32,
        phc: &str,
        sealer: &sesame_mfa::sealing::SecretSealer,
    ) -> anyhow::Result<()> {
        let ids = self
            .seed_named(1, count, phc, crate::scenarios::totp_login_of)
            .await?;
        let client = self.connect(DATABASE).await?;
        #[expect(
            clippy::disallowed_methods,
            reason = "creation times of seeded rows; no Sesame policy reads the bench's clock"
        )]
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let sink = client
            .copy_in(
                "COPY second_factors (id, account_id, kind, label, sealed_secret, created_at) \
                 FROM STDIN",
            )
            .await
            .context("COPY second_factors")?;
        let mut sink = std::pin::pin!(sink);
        let mut chunk = String::with_capacity(1 << 20);
        for id in ids {
            let sealed = sealer
                .seal(
                    sesame_core::ids::AccountId(id),
                    &crate::scenarios::TOTP_SECRET,
                )
                .map_err(|e| anyhow::anyhow!("sealing a TOTP secret: {e}"))?;
            writeln!(
                chunk,
                "{}\t{id}\ttotp\tBench\t{sealed}\t{now}",
                uuid::Uuid::new_v4()
            )?;
        }
        sink.send(Bytes::from(chunk)).await?;
        sink.as_mut()
            .finish()
            .await
            .context("COPY second_factors")?;
        client.batch_execute("ANALYZE second_factors").await?;
        Ok(())
    }

    async fn seed_named(
        &self,
        first: u32,
        last: u32,
        phc: &str,
        login_of: fn(u32) -> String,
    ) -> anyhow::Result<Vec<uuid::Uuid>> {
        let client = self.connect(DATABASE).await?;
        #[expect(
            clippy::disallowed_methods,
            reason = "creation times of seeded rows; no Sesame policy reads the bench's clock"
        )]
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let affiliations = ["staff", "student", "faculty"];
        let mut ids = Vec::with_capacity(usize::try_from(last - first + 1).unwrap_or(0));
        let sink = client
            .copy_in(
                "COPY accounts (id, login, email, given_name, family_name, affiliation, state, \
                 created_at, updated_at) FROM STDIN",
            )
            .await
            .context("COPY accounts")?;
        let mut sink = std::pin::pin!(sink);
        let mut chunk = String::with_capacity(1 << 20);
        for n in first..=last {
            let id = uuid::Uuid::new_v4();
            let login = login_of(n);
            let affiliation = affiliations[n as usize % affiliations.len()];
            writeln!(
                chunk,
                "{id}\t{login}\t{login}@univ.example.org\tBench\tUser{n:07}\t{affiliation}\tactive\t{now}\t{now}"
            )?;
            ids.push(id);
            if chunk.len() >= 1 << 20 {
                sink.send(Bytes::from(std::mem::take(&mut chunk))).await?;
            }
        }
        if !chunk.is_empty() {
            sink.send(Bytes::from(std::mem::take(&mut chunk))).await?;
        }
        sink.as_mut().finish().await.context("COPY accounts")?;

        let sink = client
            .copy_in("COPY credentials (account_id, password_hash, updated_at) FROM STDIN")
            .await
            .context("COPY credentials")?;
        let mut sink = std::pin::pin!(sink);
        for id in &ids {
            writeln!(chunk, "{id}\t{phc}\t{now}")?;
            if chunk.len() >= 1 << 20 {
                sink.send(Bytes::from(std::mem::take(&mut chunk))).await?;
            }
        }
        if !chunk.is_empty() {
            sink.send(Bytes::from(chunk)).await?;
        }
        sink.as_mut().finish().await.context("COPY credentials")?;
        client
            .batch_execute("ANALYZE accounts; ANALYZE credentials")
            .await?;
        Ok(ids)
    }
}

/// Redis version, from `INFO server`.
pub async fn redis_version(url: &str) -> anyhow::Result<String> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_owned())
}

/// Redis's `used_memory` (bytes its allocator holds for data and overhead).
pub async fn redis_used_memory(url: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no used_memory in INFO memory")
}

/// Redis memory (`MEMORY USAGE`) of the records of the sessions of `cookies`: each
/// session's record and the map of what it gave out (one entry per protocol and party),
/// summed. Unlike `used_memory`, other phases' records expiring meanwhile do not enter it.
pub async fn session_records_memory(
    url: &str,
    prefix: &str,
    cookies: &[String],
) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut pipe = redis::pipe();
    for cookie in cookies {
        let value = cookie.split_once('=').map_or(cookie.as_str(), |(_, v)| v);
        let handle = sha256_hex(value);
        for key in [
            format!("{prefix}sso:{handle}"),
            format!("{prefix}sso-given:{handle}"),
        ] {
            pipe.cmd("MEMORY").arg("USAGE").arg(key);
        }
    }
    let usages: Vec<Option<u64>> = pipe.query_async(&mut conn).await?;
    Ok(usages.into_iter().flatten().sum())
}

/// Every key matching `pattern` (`SCAN`, in batches).
async fn matching_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> anyhow::Result<Vec<String>> {
    let mut cursor: u64 = 0;
    let mut all = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(5000)
            .query_async(conn)
            .await?;
        all.extend(keys);
        if next == 0 {
            return Ok(all);
        }
        cursor = next;
    }
}

/// How many keys match `pattern`.
pub async fn redis_count(url: &str, pattern: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    Ok(matching_keys(&mut conn, pattern).await?.len() as u64)
}

/// Deletes every key under `prefix`; returns how many.
pub async fn redis_cleanup(url: &str, prefix: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys = matching_keys(&mut conn, &format!("{prefix}*")).await?;
    let mut removed = 0;
    for batch in keys.chunks(5000) {
        let n: u64 = redis::cmd("UNLINK")
            .arg(batch)
            .query_async(&mut conn)
            .await?;
        removed += n;
    }
    Ok(removed)
}

/// Copies the SSO session of `cookie` (`name=value`) under `count` new cookies: the record
/// Sesame wrote (`DUMP`, then `RESTORE` with its time to live), each under the key of a new
/// random cookie value of the same form, in pipelined batches. Returns the new cookies.
///
/// Sesame finds a session by the SHA-256 of its cookie value, so each copy is a session of its
/// own for every request that presents its cookie: many live sessions at the cost of one
/// login.
pub async fn clone_session(
    url: &str,
    prefix: &str,
    cookie: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let (name, value) = cookie
        .split_once('=')
        .context("an SSO cookie is name=value")?;
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let key = format!("{prefix}sso:{}", sha256_hex(value));
    let dump: Option<Vec<u8>> = redis::cmd("DUMP").arg(&key).query_async(&mut conn).await?;
    let dump = dump.with_context(|| format!("no session under {key}"))?;
    let ttl_ms: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await?;
    let ttl_ms = ttl_ms.max(0);
    let mut cookies = Vec::with_capacity(count);
    for batch in 0..count.div_ceil(1000) {
        let mut pipe = redis::pipe();
        for _ in 0..1000.min(count - batch * 1000) {
            // 43 letters and digits, as Sesame's own cookie values.
            let fresh = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                &uuid::Uuid::new_v4().simple().to_string()[..11]
            );
            pipe.cmd("RESTORE")
                .arg(format!("{prefix}sso:{}", sha256_hex(&fresh)))
                .arg(ttl_ms)
                .arg(&dump)
                .ignore();
            cookies.push(format!("{name}={fresh}"));
        }
        pipe.query_async::<()>(&mut conn).await?;
    }
    Ok(cookies)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// What the generated `sesame.toml` holds.
#[derive(Debug)]
pub struct ConfigInput<'a> {
    /// Sesame's listener.
    pub listen: SocketAddr,
    /// PostgreSQL URL.
    pub database_url: String,
    /// Redis URL.
    pub redis_url: &'a str,
    /// Redis key prefix of this run.
    pub key_prefix: &'a str,
    /// argon2id parameters (production ones).
    pub argon2: Argon2Params,
    /// The registered service and clients.
    pub site: &'a Site,
    /// `log.level`.
    pub log_level: &'a str,
    /// The LDAP listener, when the run measures it.
    pub ldap_listen: Option<SocketAddr>,
    /// Turn SAML on with the bench's service provider (the SAML scenario); off for the fault
    /// suite, whose rows do not use it.
    pub saml: bool,
}

/// The bench's `[mfa] sealing_key` bytes (a throwaway key: the bench's database is dropped
/// after each run).
pub const MFA_SEALING_KEY_BYTES: [u8; 32] = [0x42; 32];

/// The sealer of the seeded TOTP secrets: the configuration's key.
///
/// # Errors
/// Never with the constant key; the sealer's own check otherwise.
pub fn mfa_sealer() -> anyhow::Result<sesame_mfa::sealing::SecretSealer> {
    sesame_mfa::sealing::SecretSealer::new(("bench", &MFA_SEALING_KEY_BYTES), &[])
        .map_err(|e| anyhow::anyhow!("the bench's sealing key: {e}"))
}

/// Writes the configuration file; everything not set here keeps Sesame's default.
pub fn write_config(path: &Path, c: &ConfigInput<'_>) -> anyhow::Result<()> {
    let site = c.site;
    // The SAML scenario's service provider, its metadata beside the configuration.
    let saml = if c.saml {
        let saml_sp = path.with_file_name("bench-sp-metadata.xml");
        std::fs::write(
            &saml_sp,
            format!(
                r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{sp}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.bench.example/Shibboleth.sso/SAML2/POST" index="1"/></md:SPSSODescriptor></md:EntityDescriptor>"#,
                sp = crate::scenarios::SAML_SP
            ),
        )
        .with_context(|| format!("writing {}", saml_sp.display()))?;
        format!(
            "[saml]\nenabled = true\npairwise_salt = \"bench salt, not a secret of anyone\"\n\n[[saml.service_providers]]\nmetadata_file = \"{}\"\nattributes = [\"eduPersonPrincipalName\", \"eduPersonScopedAffiliation\", \"mail\", \"displayName\"]\n\n",
            saml_sp.display()
        )
    } else {
        String::new()
    };
    let service_prefix = site
        .service
        .split_once("/login")
        .map_or(site.service.as_str(), |(p, _)| p);
    let toml = format!(
        r#"# Generated by `make bench` (crates/bench): Sesame on PostgreSQL + Redis with the
# production argon2id parameters. Only what the bench needs differs from the defaults.

[server]
listen = "{listen}"
public_url = "http://{listen}"
workers = 0

[database]
url = "{db}"

[store]
url = "{redis}"
key_prefix = "{prefix}"

[password_hashing]
memory_kib = {m}
iterations = {t}
parallelism = {p}

[cas]
# Tickets are minted ahead of the /p3/serviceValidate phase, which may start more than the
# default 10 s later.
service_ticket_ttl_secs = 300

[[cas.services]]
id = "moodle"
name = "Moodle (bench)"
url_prefix = "{service_prefix}/"
attributes = ["mail", "givenName", "sn", "displayName", "eduPersonAffiliation"]

[[oidc.clients]]
client_id = "{rp_id}"
name = "Bench relying party"
client_secret_sha256 = "{rp_hash}"
redirect_uris = ["{rp_redirect}"]
scopes = ["profile", "email"]
first_party = true

[[oidc.clients]]
client_id = "{svc_id}"
name = "Bench provisioning job"
client_secret_sha256 = "{svc_hash}"
redirect_uris = ["https://provisioning.bench.example/unused"]
scopes = ["provisioning"]
client_credentials = true

{saml}[mfa]
# The seeded TOTP accounts' secrets are sealed with it.
sealing_key = "bench:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="

{ldap}[log]
level = "{log_level}"

[metrics]
# Recorded as in production, on a port of the system's choosing: the default 127.0.0.1:9090
# would clash between the fault suite's two instances (or another Sesame on the machine).
listen = "127.0.0.1:0"
"#,
        listen = c.listen,
        db = c.database_url,
        redis = c.redis_url,
        prefix = c.key_prefix,
        m = c.argon2.memory_kib,
        t = c.argon2.iterations,
        p = c.argon2.parallelism,
        rp_id = site.rp_id,
        rp_hash = sha256_hex(&site.rp_secret),
        rp_redirect = site.rp_redirect,
        svc_id = site.svc_id,
        svc_hash = sha256_hex(&site.svc_secret),
        saml = saml,
        log_level = c.log_level,
        ldap = c.ldap_listen.map_or_else(String::new, |listen| format!(
            "[ldap]\nlisten = \"{listen}\"\nbase_dn = \"{base}\"\n\n[[ldap.service_accounts]]\nname = \"{name}\"\nscope = \"full\"\nsecret_sha256 = \"{hash}\"\n\n",
            base = crate::ldap::BASE_DN,
            name = crate::ldap::SERVICE,
            hash = sha256_hex(&site.ldap_secret),
        )),
    );
    std::fs::write(path, toml).with_context(|| format!("writing {}", path.display()))
}

/// A child process killed (if still running) when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// Its log file (standard output and error).
    pub log: PathBuf,
    /// When it was spawned.
    pub spawned: Instant,
}

impl Process {
    /// Spawns `command`, output appended to `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> anyhow::Result<Self> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        let spawned = Instant::now();
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        Ok(Self {
            child,
            log,
            spawned,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for it to exit on its own.
    pub async fn exited(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM (graceful stop), then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> anyhow::Result<()> {
        if !self.running() {
            return Ok(());
        }
        Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .context("kill -TERM")?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.running() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill().ok();
        self.child.wait().ok();
        Ok(())
    }

    /// Empties the log file (the process appends, so it keeps writing at the new end) after
    /// counting its warnings and errors; returns (count, first few).
    pub fn drain_log(&self) -> anyhow::Result<(usize, Vec<String>)> {
        let text = std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let bad: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        let samples = bad.iter().take(3).map(|l| (*l).to_owned()).collect();
        File::options()
            .write(true)
            .open(&self.log)
            .and_then(|f| f.set_len(0))
            .with_context(|| format!("truncating {}", self.log.display()))?;
        Ok((bad.len(), samples))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.running() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// Polls `GET /health/ready` until 200 (each poll on a new connection); returns the time
/// since the process was spawned.
pub async fn wait_ready(
    process: &mut Process,
    addr: SocketAddr,
    path: &str,
    limit: Duration,
) -> anyhow::Result<Duration> {
    loop {
        if !process.running() {
            bail!(
                "the process exited during start; see {}",
                process.log.display()
            );
        }
        let mut conn = Conn::new(addr)?;
        if let Ok(reply) = conn.get(path, None).await {
            if reply.status == hyper::StatusCode::OK {
                return Ok(process.spawned.elapsed());
            }
        }
        if process.spawned.elapsed() > limit {
            bail!(
                "{path} did not answer 200 within {} s; see {}",
                limit.as_secs(),
                process.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Resident memory of a process after it has been idle for `settle`, KiB.
pub async fn idle_rss_kib(pid: u32, settle: Duration) -> anyhow::Result<u64> {
    tokio::time::sleep(settle).await;
    procfs::rss_kib(pid)
}
