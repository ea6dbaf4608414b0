//! The suite's own PostgreSQL, Redis, SMTP server and Sesame instances: started on free
//! loopback ports in a work directory, never the shared servers on 5432 and 6379.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sesame_bench::http::Conn;
use sesame_bench::infra::{wait_ready, Process};

/// A free loopback port (bound, then released for the server that takes it).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Runs `command`, failing with its output when it fails.
fn run(command: &mut Command) -> anyhow::Result<()> {
    let out = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Sends `signal` (`KILL`, `TERM`) to process `pid`.
pub fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    run(Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string()))
}

/// A throwaway PostgreSQL cluster (initdb + pg_ctl), stopped and removed on drop.
#[derive(Debug)]
pub struct Postgres {
    bindir: PathBuf,
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    as_postgres: bool,
}

impl Postgres {
    /// initdb in `dir` and start on a free port.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL is not installed (/usr/lib/postgresql)")?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .context("no initdb under /usr/lib/postgresql")?;
        std::fs::create_dir_all(dir)?;
        // initdb refuses to run as root: the cluster belongs to the postgres user then.
        let uid = Command::new("id").arg("-u").output()?.stdout;
        let as_postgres = String::from_utf8_lossy(&uid).trim() == "0";
        if as_postgres {
            run(Command::new("chown").arg("postgres").arg(dir))?;
        }
        let pg = Self {
            bindir,
            dir: dir.to_owned(),
            port: free_port()?,
            as_postgres,
        };
        let data = pg.data();
        run(pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres"]))?;
        pg.start()?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let binary = self.bindir.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(binary);
            c
        } else {
            Command::new(binary)
        }
    }

    /// Starts the cluster and waits until it accepts connections.
    pub fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=60 -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-o")
            .arg(options)
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-w", "-t", "60", "start"]))
    }

    /// Stops the cluster: `fast` (clean) or `immediate` (as a crash).
    pub fn stop(&self, mode: &str) -> anyhow::Result<()> {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", mode, "-w", "stop"]))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop("immediate").ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// What a [`Redis`] process is.
#[derive(Debug, Clone)]
enum RedisRole {
    /// A primary (standalone until a sentinel says otherwise).
    Primary,
    /// A replica of the primary on this port.
    ReplicaOf(u16),
    /// A sentinel monitoring, under this service name, the primary on this port.
    Sentinel { service: String, primary: u16 },
}

/// A Redis server (or sentinel) in a child process, with its data directory.
#[derive(Debug)]
pub struct Redis {
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    role: RedisRole,
    process: Option<Process>,
}

impl Redis {
    /// Starts one on a free port, without persistence (as CI's and the bench's).
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_as(dir, RedisRole::Primary).await
    }

    /// Starts a replica of the server on `primary`'s port.
    pub async fn start_replica(dir: &Path, primary: u16) -> anyhow::Result<Self> {
        Self::start_as(dir, RedisRole::ReplicaOf(primary)).await
    }

    /// Starts a sentinel that monitors the primary on `primary`'s port as `service`, quorum 2,
    /// declaring it down after one second without an answer.
    pub async fn start_sentinel(dir: &Path, service: &str, primary: u16) -> anyhow::Result<Self> {
        Self::start_as(
            dir,
            RedisRole::Sentinel {
                service: service.to_owned(),
                primary,
            },
        )
        .await
    }

    async fn start_as(dir: &Path, role: RedisRole) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut redis = Self {
            dir: dir.to_owned(),
            port: free_port()?,
            role,
            process: None,
        };
        redis.restart(false).await?;
        Ok(redis)
    }

    /// The URL of the server itself (the instances go through a proxy).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The snapshot file `SAVE` writes.
    fn snapshot(&self) -> PathBuf {
        self.dir.join("dump.rdb")
    }

    /// Starts the server again on the same port: from the last snapshot when
    /// `from_snapshot`, else empty (everything it held is lost).
    pub async fn restart(&mut self, from_snapshot: bool) -> anyhow::Result<()> {
        if !from_snapshot {
            std::fs::remove_file(self.snapshot()).ok();
        }
        let mut command = Command::new("redis-server");
        if let RedisRole::Sentinel { service, primary } = &self.role {
            // A sentinel rewrites its configuration file as it learns the topology: written
            // once, kept across its restarts.
            let conf = self.dir.join("sentinel.conf");
            if !conf.exists() {
                std::fs::write(
                    &conf,
                    format!(
                        "bind 127.0.0.1\nport {port}\ndir {dir}\n\
                         sentinel monitor {service} 127.0.0.1 {primary} 2\n\
                         sentinel down-after-milliseconds {service} 1000\n\
                         sentinel failover-timeout {service} 10000\n\
                         sentinel parallel-syncs {service} 1\n",
                        port = self.port,
                        dir = self.dir.display(),
                    ),
                )?;
            }
            command.arg(&conf).arg("--sentinel");
        } else {
            command
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .arg("--dir")
                .arg(&self.dir)
                .args([
                    "--dbfilename",
                    "dump.rdb",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args(["--maxmemory-policy", "noeviction"]);
            if let RedisRole::ReplicaOf(primary) = self.role {
                command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
            }
        }
        let process = Process::spawn(command, self.dir.join("redis.log"))?;
        self.process = Some(process);
        let started = Instant::now();
        while self.command(&["PING"]).await.is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                bail!("Redis did not start on port {}", self.port);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// SIGKILL, and wait until it is gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut process) = self.process.take() {
            signal(process.pid(), "KILL")?;
            process.exited().await?;
        }
        Ok(())
    }

    /// One command on a fresh connection, answer as text.
    pub async fn command(&self, args: &[&str]) -> anyhow::Result<redis::Value> {
        let client = redis::Client::open(self.url())?;
        let mut conn = tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        .context("Redis connection timed out")??;
        let mut cmd = redis::cmd(args.first().copied().unwrap_or("PING"));
        for a in args.iter().skip(1) {
            cmd.arg(*a);
        }
        Ok(cmd.query_async(&mut conn).await?)
    }
}

/// The aiosmtpd server of the mail tests (crates/mail/tests/smtp_server.py), on a fixed port
/// so it can be stopped and started again where Sesame expects it.
#[derive(Debug)]
pub struct Smtp {
    /// Where it stores what it accepts (NNNN.eml).
    pub dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    script: PathBuf,
}

impl Smtp {
    /// Starts one on a free port, storing mail in `dir`.
    pub fn start(dir: &Path, script: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut smtp = Self {
            dir: dir.to_owned(),
            port: free_port()?,
            child: None,
            script: script.to_owned(),
        };
        smtp.resume()?;
        Ok(smtp)
    }

    /// Starts it (again) on its port.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        use std::io::BufRead as _;
        let mut child = Command::new("python3")
            .arg(&self.script)
            .arg(&self.dir)
            .args(["--port", &self.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the SMTP server (python3 + aiosmtpd)")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("SMTP server stdout")?;
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        if !line.starts_with("READY") {
            bail!("the SMTP server did not start (is aiosmtpd installed?): {line:?}");
        }
        self.child = Some(child);
        Ok(())
    }

    /// Stops it (its port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Closing its standard input stops it cleanly; kill if it lingers.
            drop(child.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// The recipients of every message received so far.
    pub fn recipients(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .filter_map(|v| v["rcpt_tos"].as_array().cloned())
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One `sesame serve`.
#[derive(Debug)]
pub struct Instance {
    /// `a` or `b`.
    pub name: &'static str,
    /// Its listener.
    pub addr: SocketAddr,
    binary: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// The running process, if any.
    pub process: Option<Process>,
}

impl Instance {
    /// An instance of `binary` with this configuration file and environment; not started.
    pub fn new(
        name: &'static str,
        addr: SocketAddr,
        binary: &Path,
        config: &Path,
        env: Vec<(String, String)>,
        log: PathBuf,
    ) -> Self {
        Self {
            name,
            addr,
            binary: binary.to_owned(),
            config: config.to_owned(),
            env,
            log,
            process: None,
        }
    }

    /// Sets (`Some`) or removes (`None`) a variable of its environment, for its next start.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.env.push((key.to_owned(), value.to_owned()));
        }
    }

    /// Where its output goes from its next start: a file, or a pipe (F14).
    pub fn set_log(&mut self, log: PathBuf) {
        self.log = log;
    }

    /// Where its output goes.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `sesame <sub>` with this instance's configuration.
    pub fn command(&self, sub: &[&str]) -> Command {
        self.command_with(&self.config, sub)
    }

    /// `sesame <sub>` with this instance's environment and another configuration file.
    pub fn command_with(&self, config: &Path, sub: &[&str]) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--config")
            .arg(config)
            .args(sub)
            .env_remove("RUST_LOG");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Starts it and waits until it is ready; returns the start time.
    pub async fn start(&mut self) -> anyhow::Result<Duration> {
        let mut process = Process::spawn(self.command(&["serve"]), self.log.clone())?;
        let took = wait_ready(
            &mut process,
            self.addr,
            "/health/ready",
            Duration::from_secs(60),
        )
        .await?;
        self.process = Some(process);
        Ok(took)
    }

    /// The status of `GET path` on a new connection, or None if it does not answer within
    /// `limit`.
    pub async fn probe(&self, path: &str, limit: Duration) -> Option<u16> {
        let mut conn = Conn::new(self.addr).ok()?;
        match tokio::time::timeout(limit, conn.get(path, None)).await {
            Ok(Ok(reply)) => Some(reply.status.as_u16()),
            _ => None,
        }
    }

    /// The lines of its log that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}
