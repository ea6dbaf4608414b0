//! The mail system on Sesame's LDAP interface, with the real programs (Debian's packages):
//! Dovecot checks IMAP passwords by binding as the person (`passdb ldap`, `auth_bind = yes`),
//! Postfix reads where a person's mail goes (`ldap:` table, `postmap -q`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sesame_core::account::{AccountChanges, MailRedirect};
use sesame_core::clock::Clock;
use sesame_core::ids::Email;
use sesame_tests::{
    ldap_service_account as service, unique_login, TestAppBuilder, GOOD_PASSWORD, LDAP_BASE,
};

fn installed(programs: &[&str], packages: &str) -> bool {
    let ok = programs.iter().all(|p| {
        Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "{packages} must be installed in CI"
        );
        eprintln!("skipped: {packages} not installed");
    }
    ok
}

fn temp_dir(stem: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sesame-{stem}-{}",
        sesame_core::random::alphanumeric(8)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Dovecot of its own (configuration, sockets and logs in `dir`), stopped when dropped.
struct Dovecot {
    child: Child,
    config: String,
    imap_port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("doveadm")
            .args(["-c", &self.config, "stop"])
            .output();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Dovecot {
    fn start(ldap_port: u16, service: &str, secret: &str) -> Self {
        let dir = temp_dir("dovecot");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        // The mail user (nobody) writes the mailboxes.
        let _ = Command::new("chmod")
            .args(["-R", "777"])
            .arg(&home)
            .status();
        let imap_port = free_port();
        let ldap = dir.join("dovecot-ldap.conf.ext");
        std::fs::write(
            &ldap,
            format!(
                "uris = ldap://127.0.0.1:{port}\n\
                 dn = cn={service},ou=services,{LDAP_BASE}\n\
                 dnpass = {secret}\n\
                 auth_bind = yes\n\
                 ldap_version = 3\n\
                 base = ou=people,{LDAP_BASE}\n\
                 pass_filter = (|(uid=%u)(mail=%u))\n",
                port = ldap_port
            ),
        )
        .unwrap();
        let config = dir.join("dovecot.conf");
        std::fs::write(
            &config,
            format!(
                "base_dir = {d}/run\n\
                 state_dir = {d}/state\n\
                 log_path = {d}/dovecot.log\n\
                 protocols = imap\n\
                 listen = 127.0.0.1\n\
                 ssl = no\n\
                 disable_plaintext_auth = no\n\
                 auth_mechanisms = plain login\n\
                 auth_cache_size = 0\n\
                 mail_location = maildir:~/Maildir\n\
                 first_valid_uid = 1\n\
                 passdb {{\n  driver = ldap\n  args = {ldap}\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={home}/%u\n}}\n\
                 service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
                 service pop3-login {{\n  inet_listener pop3 {{\n    port = 0\n  }}\n}}\n\
                 service submission-login {{\n  inet_listener submission {{\n    port = 0\n  }}\n}}\n\
                 service lmtp {{\n  unix_listener lmtp {{\n    mode = 0600\n  }}\n}}\n",
                d = dir.display(),
                ldap = ldap.display(),
                home = home.display(),
            ),
        )
        .unwrap();
        let config = config.display().to_string();
        let child = Command::new("dovecot")
            .args(["-F", "-c", &config])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        let dovecot = Self {
            child,
            config,
            imap_port,
            dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", imap_port)).is_ok() {
                return dovecot;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "dovecot did not start: {}",
            std::fs::read_to_string(dovecot.dir.join("dovecot.log")).unwrap_or_default()
        );
    }

    /// `doveadm auth test`: whether Dovecot accepts `login` with `password`.
    fn auth_test(&self, login: &str, password: &str) -> (bool, String) {
        let o = Command::new("doveadm")
            .args(["-c", &self.config, "auth", "test", login, password])
            .output()
            .expect("doveadm");
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }

    /// An IMAP `LOGIN` over the loopback: the server's tagged answer.
    fn imap_login(&self, login: &str, password: &str) -> String {
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.imap_port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("* OK"), "greeting: {line}");
        let mut writer = stream;
        write!(writer, "a1 LOGIN \"{login}\" \"{password}\"\r\n").unwrap();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.starts_with("a1 ") || line.is_empty() {
                let _ = write!(writer, "a2 LOGOUT\r\n");
                return line.trim().to_owned();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_checks_imap_passwords_by_binding_as_the_person() {
    if !installed(&["dovecot", "doveadm"], "dovecot-imapd and dovecot-ldap") {
        return;
    }
    let (dovecot, secret) = service("dovecot", "auth");
    let app = TestAppBuilder::new()
        .with_ldap()
        .with(move |s| {
            s.ldap.service_accounts = vec![dovecot];
            s.ldap.relaying_peers = vec!["127.0.0.1".to_owned()];
        })
        .spawn()
        .await;
    let login = unique_login("imap");
    app.create_user(&login, GOOD_PASSWORD).await;
    let dovecot = {
        let port = app.ldap_port.unwrap();
        tokio::task::spawn_blocking(move || Dovecot::start(port, "dovecot", &secret))
            .await
            .unwrap()
    };
    let checks = {
        let login = login.clone();
        tokio::task::spawn_blocking(move || {
            let right = dovecot.auth_test(&login, GOOD_PASSWORD);
            let wrong = dovecot.auth_test(&login, "not the password");
            let by_mail = dovecot.auth_test(&format!("{login}@univ.example.org"), GOOD_PASSWORD);
            let imap_ok = dovecot.imap_login(&login, GOOD_PASSWORD);
            let imap_wrong = dovecot.imap_login(&login, "not the password");
            (right, wrong, by_mail, imap_ok, imap_wrong)
        })
        .await
        .unwrap()
    };
    let (right, wrong, by_mail, imap_ok, imap_wrong) = checks;
    assert!(right.0, "{}", right.1);
    assert!(!wrong.0, "{}", wrong.1);
    assert!(by_mail.0, "{}", by_mail.1);
    assert!(imap_ok.starts_with("a1 OK"), "{imap_ok}");
    assert!(imap_wrong.starts_with("a1 NO"), "{imap_wrong}");
    // Sesame saw each of them, as logins through LDAP.
    let events = app.services.audit.recent(Some(&login), 50).await.unwrap();
    let via_ldap = |kind: &str| {
        events
            .iter()
            .filter(|e| {
                e.kind == kind && e.detail.get("via").and_then(|v| v.as_str()) == Some("ldap")
            })
            .count()
    };
    assert_eq!(via_ldap("login.failed"), 2, "{events:?}");
    assert!(via_ldap("login.succeeded") >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_reads_where_a_persons_mail_goes() {
    if !installed(&["postmap"], "postfix and postfix-ldap") {
        return;
    }
    let (postfix, secret) = service("postfix", "mail");
    let app = TestAppBuilder::new()
        .with_ldap()
        .with(move |s| s.ldap.service_accounts = vec![postfix])
        .spawn()
        .await;
    let forwards = unique_login("forwards");
    let copies = unique_login("copies");
    let stays = unique_login("stays");
    for (login, redirect) in [
        (&forwards, Some(("forwards@ailleurs.example", false))),
        (&copies, Some(("copies@ailleurs.example", true))),
        (&stays, None),
    ] {
        let account = app.create_user(login, GOOD_PASSWORD).await;
        let changes = AccountChanges {
            mail_redirect: redirect.map(|(address, keep_copy)| {
                Some(MailRedirect {
                    address: Email::parse(address).unwrap(),
                    verified: true,
                    keep_copy,
                })
            }),
            ..AccountChanges::default()
        };
        app.services
            .profiles
            .update_account(account.id, &changes, app.clock.now())
            .await
            .unwrap();
    }
    let dir = temp_dir("postfix");
    let table = dir.join("ldap-forward.cf");
    std::fs::write(
        &table,
        format!(
            "server_host = ldap://127.0.0.1:{port}\n\
             version = 3\n\
             bind = yes\n\
             bind_dn = cn=postfix,ou=services,{LDAP_BASE}\n\
             bind_pw = {secret}\n\
             search_base = ou=people,{LDAP_BASE}\n\
             query_filter = (mail=%s)\n\
             result_attribute = sesameMailDeliverTo\n",
            port = app.ldap_port.unwrap()
        ),
    )
    .unwrap();
    let map = format!("ldap:{}", table.display());
    let query = move |address: String| {
        let map = map.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let o = Command::new("postmap")
                    .args(["-q", &address, &map])
                    .output()
                    .expect("postmap");
                (
                    o.status.code(),
                    String::from_utf8_lossy(&o.stdout).trim().to_owned(),
                    String::from_utf8_lossy(&o.stderr).to_string(),
                )
            })
            .await
            .unwrap()
        }
    };
    let (code, out, err) = query(format!("{forwards}@univ.example.org")).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "forwards@ailleurs.example");
    let (_, out, err) = query(format!("{copies}@univ.example.org")).await;
    assert_eq!(
        out,
        format!("copies@ailleurs.example,{copies}@univ.example.org"),
        "{err}"
    );
    // Nothing for a person whose mail stays in their mailbox, nor for nobody.
    let (code, out, err) = query(format!("{stays}@univ.example.org")).await;
    assert_eq!((code, out.as_str()), (Some(1), ""), "{err}");
    let (code, _, _) = query("nobody@univ.example.org".to_owned()).await;
    assert_eq!(code, Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}
