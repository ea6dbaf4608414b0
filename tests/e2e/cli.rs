//! The `sesame` command line, run as a real process against the test's database.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use sesame_tests::{browser, unique_login, Backend, TestApp, GOOD_PASSWORD};

/// The `sesame` binary next to this test binary (`make test` builds it first).
pub(crate) fn sesame_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SESAME_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("sesame");
    assert!(
        bin.exists(),
        "build the binary first: cargo build --bin sesame (looked for {})",
        bin.display()
    );
    bin
}

pub(crate) struct Cli {
    pub(crate) config: PathBuf,
}

impl Cli {
    pub(crate) fn for_app(app: &TestApp) -> Self {
        let config = std::env::temp_dir().join(format!(
            "sesame-cli-{}.toml",
            sesame_core::random::alphanumeric(10)
        ));
        let store = match sesame_tests::backend() {
            Backend::Embedded => "url = \"memory://\"".to_owned(),
            Backend::Production => format!(
                "url = \"{}\"\nkey_prefix = \"{}\"",
                app.settings.store.url.expose(),
                app.settings.store.key_prefix
            ),
        };
        let text = format!(
            "[database]\nurl = \"{}\"\n\n[store]\n{store}\n\n[password_hashing]\nmemory_kib = 256\niterations = 1\n\n[log]\nlevel = \"warn\"\n",
            app.settings.database.url.expose()
        );
        std::fs::write(&config, text).unwrap();
        Self { config }
    }

    pub(crate) fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(sesame_bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("LANG", "fr_FR.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "[{}] {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_creates_an_account_sets_its_password_and_the_person_logs_in() {
    let app = TestApp::spawn().await;
    let cli = Cli::for_app(&app);
    let login = unique_login("jean-eric");

    let out = cli.run(
        &[
            "account",
            "add",
            &login,
            "--email",
            &format!("{login}@univ.example.org"),
            "--given-name",
            "Jean-Éric",
            "--family-name",
            "Obrien",
            "--affiliation",
            "faculty",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("state provisioned"));

    let again = cli.run(
        &[
            "account",
            "add",
            &login,
            "--given-name",
            "X",
            "--family-name",
            "Y",
        ],
        None,
    );
    assert!(!again.status.success(), "duplicate login refused");

    // Each broken rule gets its own message, and nothing is stored.
    let weak = cli.run(&["account", "set-password", &login], Some("short1\n"));
    assert!(!weak.status.success());
    let msg = text(&weak);
    assert!(msg.contains("au moins 15 caractères"), "{msg}");
    let personal = cli.run(
        &["account", "set-password", &login],
        Some(&format!("{login}-2025-and-more\n")),
    );
    assert!(!personal.status.success());
    assert!(
        text(&personal).contains("identifiant"),
        "{}",
        text(&personal)
    );
    assert_eq!(
        app.login_with(&browser(), &login, "short1", false)
            .await
            .status(),
        401
    );

    let ok = cli.run(
        &["account", "set-password", &login],
        Some(&format!("{GOOD_PASSWORD}\n")),
    );
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("state active"));
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );

    let show = cli.run(&["account", "show", &login], None);
    let shown = text(&show);
    assert!(show.status.success(), "{shown}");
    assert!(
        shown.contains("faculty")
            && shown.contains("state:        active")
            && shown.contains("login.succeeded"),
        "{shown}"
    );
    assert!(!shown.contains("argon2"), "never print the hash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_and_unblock_from_the_command_line() {
    let app = TestApp::spawn().await;
    let cli = Cli::for_app(&app);
    let login = unique_login("helpdesk");
    app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    assert_eq!(
        app.login_with(&client, &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );

    let out = cli.run(
        &["account", "block", &login, "--reason", "suspicious"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    // Whether or not the CLI could reach the session store, the session is dead at its next use.
    let html = client
        .get(format!("{}/cas/login", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("id=\"current-user\""));
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        403
    );

    // Unblocked: the former password opens nothing until a new one is set, here by the
    // operator.
    let out = cli.run(&["account", "unblock", &login], None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        403
    );
    const NEW_PASSWORD: &str = "seven lanterns over the quiet canal";
    let out = cli.run(&["account", "set-password", &login], Some(NEW_PASSWORD));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        app.login_with(&browser(), &login, NEW_PASSWORD, false)
            .await
            .status(),
        303
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_and_unlock_from_the_command_line() {
    let app = TestApp::spawn().await;
    let cli = Cli::for_app(&app);
    let login = unique_login("locked");
    app.create_user(&login, GOOD_PASSWORD).await;
    for _ in 0..5 {
        app.login_with(&browser(), &login, "wrong password here", false)
            .await;
    }
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        401
    );
    let show = cli.run(&["account", "show", &login], None);
    assert!(text(&show).contains("locked until"), "{}", text(&show));
    let out = cli.run(&["account", "unlock", &login], None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );

    let out = cli.run(&["account", "lock", &login, "--minutes", "30"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        401
    );
}

#[test]
fn config_check_masks_secrets_and_bad_keys_are_named() {
    let dir = std::env::temp_dir().join(format!(
        "sesame-cfg-{}",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[database]\nurl = \"postgres://sesame:hunter2secret@db.example/sesame\"\n",
    )
    .unwrap();
    let out = Command::new(sesame_bin())
        .args(["--config"])
        .arg(&good)
        .args(["config", "check"])
        .output()
        .unwrap();
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("postgres://sesame:********@db.example/sesame"));
    assert!(!printed.contains("hunter2secret"));
    assert!(printed.contains("min_length = 15"));

    let bad_key = dir.join("bad-key.toml");
    std::fs::write(&bad_key, "[lockout]\nthreshhold = 5\n").unwrap();
    let out = Command::new(sesame_bin())
        .args(["--config"])
        .arg(&bad_key)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unknown key `lockout.threshhold`"),
        "{}",
        text(&out)
    );

    let bad_value = dir.join("bad-value.toml");
    std::fs::write(&bad_value, "[server]\npublic_url = \"not a url\"\n").unwrap();
    let out = Command::new(sesame_bin())
        .args(["--config"])
        .arg(&bad_value)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("server.public_url"), "{}", text(&out));

    let out = Command::new(sesame_bin())
        .args(["--config"])
        .arg(&good)
        .args(["config", "check"])
        .env("SESAME_LOCKOUT__THRESHOLD", "zero")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("lockout.threshold"), "{}", text(&out));
    // The error names where the value came from: the variable, or the file and its line.
    assert!(
        text(&out).contains("(from SESAME_LOCKOUT__THRESHOLD)"),
        "{}",
        text(&out)
    );
    let wrong_type = dir.join("wrong-type.toml");
    std::fs::write(&wrong_type, "# Sesame\n\n[lockout]\nthreshold = \"zero\"\n").unwrap();
    let out = Command::new(sesame_bin())
        .args(["--config"])
        .arg(&wrong_type)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("(from {}, line 4)", wrong_type.display())),
        "{}",
        text(&out)
    );

    let out = Command::new(sesame_bin())
        .args(["--config"])
        .arg(&good)
        .args(["config", "check"])
        .env("SESAME_LOCKOUT__THRESHOLD", "7")
        .output()
        .unwrap();
    assert!(text(&out).contains("threshold = 7"), "{}", text(&out));
    // A secret can come from a file named by SESAME_…_FILE, and is still masked.
    let secret = dir.join("db-url");
    std::fs::write(&secret, "postgres://sesame:fromafile99@db.example/sesame\n").unwrap();
    let out = Command::new(sesame_bin())
        .args(["config", "check"])
        .env("SESAME_DATABASE__URL_FILE", &secret)
        .output()
        .unwrap();
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains("postgres://sesame:********@db.example/sesame")
            && !printed.contains("fromafile99"),
        "{printed}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn keys_that_end_in_file_are_set_through_the_environment_directly_or_from_a_file() {
    let ca = "/etc/ssl/certs/ca-certificates.crt";
    assert!(
        std::path::Path::new(ca).exists(),
        "Debian's CA bundle (ca-certificates)"
    );
    let check = |vars: &[(&str, &str)]| {
        let mut cmd = Command::new(sesame_bin());
        cmd.args(["config", "check"]);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (out.status.success(), text(&out))
    };
    // The documented variables of keys ending in `_file` hold the path itself.
    let (ok, printed) = check(&[
        ("SESAME_MAIL__SMTP_CA_FILE", ca),
        ("SESAME_CAS__PROXY_CALLBACK_CA_FILE", ca),
    ]);
    assert!(ok, "{printed}");
    assert!(
        printed.contains(&format!("smtp_ca_file = \"{ca}\"")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("proxy_callback_ca_file = \"{ca}\"")),
        "{printed}"
    );
    // Their `_FILE` form is `…_FILE_FILE`: the file holds the value (here, the path).
    let holder = std::env::temp_dir().join(format!(
        "sesame-ca-path-{}",
        sesame_core::random::alphanumeric(8)
    ));
    std::fs::write(&holder, format!("{ca}\n")).unwrap();
    let (ok, printed) = check(&[("SESAME_MAIL__SMTP_CA_FILE_FILE", holder.to_str().unwrap())]);
    assert!(ok, "{printed}");
    assert!(
        printed.contains(&format!("smtp_ca_file = \"{ca}\"")),
        "{printed}"
    );
    std::fs::remove_file(&holder).unwrap();
    // A `_FILE` variable of no key is refused, naming the variable.
    let (ok, printed) = check(&[("SESAME_MAIL__NO_SUCH_KEY_FILE", ca)]);
    assert!(!ok);
    assert!(
        printed.contains("SESAME_MAIL__NO_SUCH_KEY_FILE"),
        "{printed}"
    );
}

/// Every variable `docs/configuration.md` documents, with its documented default.
fn documented_variables() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/configuration.md"
    ))
    .unwrap();
    let mut out = Vec::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let (Some(var), Some(default)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Some(var) = var
            .strip_prefix('`')
            .and_then(|v| v.strip_suffix('`'))
            .filter(|v| v.starts_with("SESAME_"))
        else {
            continue;
        };
        let Some(default) = default.strip_prefix('`').and_then(|d| d.split('`').next()) else {
            continue;
        };
        // A TOML literal string in the table is what a shell's single quotes would give.
        let default = default
            .strip_prefix('\'')
            .and_then(|d| d.strip_suffix('\''))
            .unwrap_or(default);
        out.push((var.to_owned(), default.to_owned()));
    }
    out
}

#[test]
fn every_documented_variable_sets_its_key_and_its_documented_default_is_the_real_one() {
    let vars = documented_variables();
    assert!(vars.len() >= 100, "the tables were read: {}", vars.len());
    let run = |vars: &[(String, String)]| {
        let mut cmd = Command::new(sesame_bin());
        cmd.args(["config", "check"])
            .current_dir(std::env::temp_dir())
            .env_remove("SESAME_CONFIG");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    // Each variable names a key (an unknown one stops the start), its documented default
    // parses, and is the default: the effective configuration is the same with all of them.
    let defaults = run(&[]);
    let documented = run(&vars);
    let differing: Vec<_> = defaults
        .lines()
        .zip(documented.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert!(differing.is_empty(), "{differing:?}");
    assert_eq!(defaults.lines().count(), documented.lines().count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_configuration_serve_runs_the_embedded_default_and_stops_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!(
        "sesame-serve-{}",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(sesame_bin())
        .arg("serve")
        .current_dir(&dir)
        .env("SESAME_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "SESAME_SERVER__PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env("SESAME_PASSWORD_HASHING__MEMORY_KIB", "256")
        // Port 0: tests run in parallel and the default 9090 may be taken.
        .env("SESAME_METRICS__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(res) = reqwest::get(format!("http://127.0.0.1:{port}/health/ready")).await {
            ready = res.status() == 200;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "sesame serve answers ready");
    assert!(
        dir.join("data/sesame.db").exists(),
        "SQLite database at ./data/sesame.db"
    );
    let page = reqwest::get(format!("http://127.0.0.1:{port}/cas/login"))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = exited.expect("sesame exits after SIGTERM");
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "graceful exit: {log}");
    assert!(log.contains("sesame stopped"), "{log}");
    assert!(
        log.contains("database=\"sqlite\"") && log.contains("store=\"in-process\""),
        "{log}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_from_the_command_line_sends_single_logout_to_the_applications() {
    if sesame_tests::backend() != Backend::Production {
        eprintln!("skipped: the CLI reaches the server's sessions only through a shared Redis");
        return;
    }
    let rp = sesame_tests::RecordingServer::start().await;
    let rp_base = format!("{}/", rp.base);
    let app = TestApp::builder()
        .with({
            let rp_base = rp_base.clone();
            move |s| {
                s.cas
                    .services
                    .push(sesame_tests::cas_service("rp", &rp_base, ""))
            }
        })
        .spawn()
        .await;
    let cli = Cli::for_app(&app);
    // The CLI needs the same registry to know where logout requests go.
    let registry =
        format!("\n[[cas.services]]\nid = \"rp\"\nname = \"rp\"\nurl_prefix = \"{rp_base}\"\n");
    let config_text = std::fs::read_to_string(&cli.config).unwrap().replace(
        "[password_hashing]",
        &format!("{registry}\n[password_hashing]"),
    );
    std::fs::write(&cli.config, config_text).unwrap();

    let login = unique_login("blockslo");
    app.create_user(&login, GOOD_PASSWORD).await;
    let lt = app.fresh_lt().await;
    let service = url::form_urlencoded::byte_serialize(rp_base.as_bytes()).collect::<String>();
    let res = app
        .client
        .post(format!("{}/cas/login?service={service}", app.address))
        .form(&[
            ("lt", lt.as_str()),
            ("username", login.as_str()),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    let out = cli.run(
        &["account", "block", &login, "--reason", "suspicious"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("1 session(s) ended, 1 application(s)"),
        "{}",
        text(&out)
    );
    let received = rp.wait_for(1).await;
    assert!(
        received
            .iter()
            .any(|r| r.method == "POST" && r.body.starts_with("logoutRequest=")),
        "{received:?}"
    );
}

#[tokio::test]
async fn keys_rotate_publishes_a_new_key_that_the_server_serves_and_audits() {
    let app = TestApp::spawn().await;
    let cli = Cli::for_app(&app);
    let before = cli.run(&["keys", "list"], None);
    assert!(before.status.success(), "{before:?}");
    let listing = String::from_utf8_lossy(&before.stdout).into_owned();
    assert_eq!(listing.matches("signing").count(), 3, "{listing}");
    let rotated = cli.run(&["keys", "rotate", "--alg", "ES256"], None);
    assert!(rotated.status.success(), "{rotated:?}");
    let out = String::from_utf8_lossy(&rotated.stdout).into_owned();
    let kid = out
        .split_whitespace()
        .nth(3)
        .expect("new <alg> key <kid>: …")
        .trim_end_matches(':')
        .to_owned();
    let after = String::from_utf8_lossy(&cli.run(&["keys", "list"], None).stdout).into_owned();
    assert!(
        after.contains(&format!("{kid} ES256  published, signs from")),
        "{after}"
    );
    // The running server picks the key up at its next reload and publishes it.
    app.services.oidc.tokens.keys().reload().await.unwrap();
    let jwks = browser()
        .get(format!("{}/jwks", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(jwks.contains(&kid));
    let recent = app.services.audit.recent(None, 10).await.unwrap();
    assert!(recent.iter().any(|e| e.kind == "oidc.signing_key_rotated"));
    // An algorithm Sesame does not keep keys for is refused, and nothing changes.
    let bad = cli.run(&["keys", "rotate", "--alg", "HS256"], None);
    assert!(!bad.status.success());
    let unchanged = String::from_utf8_lossy(&cli.run(&["keys", "list"], None).stdout).into_owned();
    assert_eq!(unchanged.lines().count(), after.lines().count());
}

#[tokio::test]
async fn client_secret_prints_a_secret_and_its_digest() {
    let app = TestApp::spawn().await;
    let out = Cli::for_app(&app).run(&["client", "secret"], None);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("client_secret = "))
        .unwrap();
    let digest = text
        .lines()
        .find_map(|l| l.strip_prefix("client_secret_sha256 = "))
        .unwrap()
        .trim_matches('"');
    assert!(secret.len() >= 43);
    assert_eq!(sesame_core::random::sha256_hex(secret), digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f14_a_blocked_standard_error_never_blocks_a_request_and_dropped_lines_are_counted() {
    let dir = std::env::temp_dir().join(format!(
        "sesame-logstall-{}",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, metrics_port) = (free_port(), free_port());
    // Standard error is a pipe nobody reads: it fills after some 64 KiB, as when journald or a
    // log shipper stalls.
    let mut child = Command::new(sesame_bin())
        .arg("serve")
        .current_dir(&dir)
        .env("SESAME_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "SESAME_SERVER__PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env("SESAME_PASSWORD_HASHING__MEMORY_KIB", "256")
        .env(
            "SESAME_METRICS__LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("SESAME_LOG__LEVEL", "debug")
        .env("SESAME_LOG__MAX_BUFFERED_LINES", "100")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(res) = client
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .await
        {
            ready = res.status() == 200;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "sesame serve answers ready");
    // Far more log than the pipe holds: every request is still answered.
    for i in 0..2000 {
        let res = client
            .get(format!("http://127.0.0.1:{port}/health/live"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i} not answered while stderr is blocked: {e}"));
        assert_eq!(res.status(), 200);
    }
    let mut dropped = 0.0;
    for _ in 0..50 {
        let metrics = client
            .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        dropped = metrics
            .lines()
            .find_map(|l| l.strip_prefix("sesame_log_lines_dropped_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if dropped > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(dropped > 0.0, "dropped lines are counted");
    // Once standard error is read again, a warning says how many lines were lost.
    let stderr = child.stderr.take().unwrap();
    let (found_tx, found_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("log lines were dropped while standard error was blocked") {
                let _ = found_tx.send(line);
                break;
            }
        }
    });
    let warning = found_rx.recv_timeout(std::time::Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    let warning = warning.expect("the drop is reported once stderr moves again");
    assert!(warning.contains("dropped_lines="), "{warning}");
    std::fs::remove_dir_all(dir).unwrap();
}
