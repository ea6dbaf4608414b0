//! The LDAP interface driven by LDAP clients not written here: OpenLDAP's command-line tools
//! (`ldapwhoami`, `ldapsearch`, `ldapmodify`, from Debian's ldap-utils) and python `ldap3`
//! (from PyPI), on both backends. Security rows A73–A78 of docs/security-spec.md.

use std::io::{Read, Write};
use std::process::{Command, Output};

use serde_json::{json, Value};
use sesame_core::account::{AccountChanges, AccountState, MailRedirect, NewAccount};
use sesame_core::clock::Clock;
use sesame_core::helpdesk::BlockReason;
use sesame_core::ids::{Affiliation, Email, LoginName};
use sesame_tests::{
    browser, ldap_service_account as service, localhost_certificate, unique_login, TestApp,
    TestAppBuilder, GOOD_PASSWORD, LDAP_BASE,
};

/// Whether the LDAP clients are installed (they must be in CI).
fn clients_available() -> bool {
    let tools = Command::new("ldapsearch")
        .arg("-VV")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stderr.is_empty());
    let ldap3 = Command::new("python3")
        .args(["-c", "import ldap3"])
        .status()
        .is_ok_and(|s| s.success());
    if !(tools && ldap3) {
        assert!(
            std::env::var("CI").is_err(),
            "ldap-utils and python ldap3 must be installed in CI"
        );
        eprintln!("skipped: ldap-utils or python ldap3 is not installed");
    }
    tools && ldap3
}

fn person_dn(login: &str) -> String {
    format!("uid={login},ou=people,{LDAP_BASE}")
}

fn service_dn(name: &str) -> String {
    format!("cn={name},ou=services,{LDAP_BASE}")
}

fn url(app: &TestApp) -> String {
    format!("ldap://127.0.0.1:{}", app.ldap_port.expect("LDAP is on"))
}

/// Runs an OpenLDAP tool with `args` (no configuration file of the machine read).
fn tool(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(name);
    cmd.args(args)
        .env("LDAPCONF", "/dev/null")
        .env("LDAPRC", "sesame-tests-no-ldaprc");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the LDAP tool")
}

fn whoami(app: &TestApp, dn: &str, password: &str) -> Output {
    tool(
        "ldapwhoami",
        &["-x", "-H", &url(app), "-D", dn, "-w", password],
        &[],
    )
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs the ldap3 client with `request` (see tests/interop/ldap3_client.py).
fn ldap3(url: &str, request: &Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/ldap3_client.py");
    let o = Command::new("python3")
        .args([script, url, &request.to_string()])
        .output()
        .expect("run python3");
    assert!(o.status.success(), "{}", out(&o));
    serde_json::from_slice(&o.stdout).expect("the client prints JSON")
}

fn search(base: &str, filter: &str, attributes: &[&str]) -> Value {
    json!({"base": base, "filter": filter, "attributes": attributes})
}

fn dns(result: &Value) -> Vec<String> {
    let mut dns: Vec<String> = result["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["dn"].as_str().expect("dn").to_owned())
        .collect();
    dns.sort();
    dns
}

fn attribute(result: &Value, name: &str) -> Option<Vec<String>> {
    let entry = &result["entries"][0]["attributes"];
    entry.as_object()?.iter().find_map(|(k, v)| {
        k.eq_ignore_ascii_case(name).then(|| {
            v.as_array()
                .expect("values")
                .iter()
                .map(|x| x.as_str().expect("string").to_owned())
                .collect()
        })
    })
}

/// Creates an active person of `affiliation` with the test password, their directory
/// choice and (optionally) a proven mail redirect (address, keep a copy).
async fn person(
    app: &TestApp,
    stem: &str,
    affiliation: Affiliation,
    opt_in: bool,
    redirect: Option<(&str, bool)>,
) -> String {
    let login = unique_login(stem);
    let account = app
        .create_user_with(&login, GOOD_PASSWORD, affiliation)
        .await;
    let changes = AccountChanges {
        directory_opt_in: Some(opt_in),
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
    login
}

async fn via_ldap_events(app: &TestApp, login: &str) -> Vec<String> {
    app.services
        .audit
        .recent(Some(login), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.detail.get("via").and_then(Value::as_str) == Some("ldap"))
        .map(|e| e.kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldapwhoami_binds_a_person_with_their_password_and_the_audit_says_ldap() {
    if !clients_available() {
        return;
    }
    let app = TestAppBuilder::new().with_ldap().spawn().await;
    let login = unique_login("whoami");
    app.create_user(&login, GOOD_PASSWORD).await;

    let ok = whoami(&app, &person_dn(&login), GOOD_PASSWORD);
    assert!(ok.status.success(), "{}", out(&ok));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        format!("dn:{}", person_dn(&login))
    );
    // The DN's case and spacing do not matter; the login's spelling (its folded form) does not
    // either, as on the login page.
    let spaced = format!("UID={} , OU=People, {LDAP_BASE}", login.to_uppercase());
    assert!(whoami(&app, &spaced, GOOD_PASSWORD).status.success());

    let wrong = whoami(&app, &person_dn(&login), "not the password");
    assert_eq!(wrong.status.code(), Some(49), "{}", out(&wrong));
    assert!(out(&wrong).contains("Invalid credentials (49)"));
    assert_eq!(
        via_ldap_events(&app, &login).await,
        ["login.failed", "login.succeeded", "login.succeeded"]
    );
    // An address as the login is refused unless `bind_by_mail` is set.
    let by_mail = whoami(
        &app,
        &person_dn(&format!("{login}@univ.example.org")),
        GOOD_PASSWORD,
    );
    assert_eq!(by_mail.status.code(), Some(49));
    let anonymous = tool("ldapwhoami", &["-x", "-H", &url(&app)], &[]);
    assert_eq!(anonymous.status.code(), Some(53), "{}", out(&anonymous));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_by_mail_when_configured() {
    if !clients_available() {
        return;
    }
    let app = TestAppBuilder::new()
        .with_ldap()
        .with(|s| s.ldap.bind_by_mail = true)
        .spawn()
        .await;
    let login = unique_login("bymail");
    app.create_user(&login, GOOD_PASSWORD).await;
    let address = format!("{login}@univ.example.org");
    for dn in [
        format!("mail={address},ou=people,{LDAP_BASE}"),
        person_dn(&address),
    ] {
        let o = whoami(&app, &dn, GOOD_PASSWORD);
        assert!(o.status.success(), "{dn}: {}", out(&o));
        // Whoever binds by address is the person: their DN is the uid one.
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            format!("dn:{}", person_dn(&login))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a73_bind_failures_count_with_the_webs_on_one_counter_and_the_lock_refuses_both() {
    if !clients_available() {
        return;
    }
    let app = TestAppBuilder::new()
        .with_ldap()
        .with(|s| s.lockout.ip_threshold = 10_000)
        .spawn()
        .await;
    let threshold = app.settings.lockout.threshold;
    // One web failure, the rest through LDAP: one counter.
    let login = unique_login("brute");
    app.create_user(&login, GOOD_PASSWORD).await;
    let res = app
        .login_with(&browser(), &login, "wrong on the web", false)
        .await;
    assert_eq!(res.status(), 401);
    for _ in 1..threshold {
        let o = whoami(&app, &person_dn(&login), "wrong over IMAP");
        assert_eq!(o.status.code(), Some(49), "{}", out(&o));
    }
    // Locked now: the right password binds nothing and opens nothing on the web either.
    let o = whoami(&app, &person_dn(&login), GOOD_PASSWORD);
    assert_eq!(o.status.code(), Some(49), "{}", out(&o));
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(res.status(), 401);
    let kinds = via_ldap_events(&app, &login).await;
    assert!(kinds.contains(&"login.locked".to_owned()), "{kinds:?}");
    assert!(
        kinds.contains(&"login.refused_locked".to_owned()),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"login.succeeded".to_owned()));
    // The lock ends by itself, for LDAP as for the web.
    app.clock.advance(time::Duration::minutes(16));
    assert!(whoami(&app, &person_dn(&login), GOOD_PASSWORD)
        .status
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a73_a_relaying_mail_server_is_not_throttled_by_its_own_address() {
    if !clients_available() {
        return;
    }
    // Without `relaying_peers`, failures from one address trip its throttle: then even a
    // right password from it is refused.
    let throttled = TestAppBuilder::new()
        .with_ldap()
        .with(|s| s.lockout.ip_threshold = 3)
        .spawn()
        .await;
    let login = unique_login("relay");
    throttled.create_user(&login, GOOD_PASSWORD).await;
    for i in 0..4 {
        let o = whoami(&throttled, &person_dn(&format!("nobody{i}")), "guess");
        assert_eq!(o.status.code(), Some(49));
    }
    assert_eq!(
        whoami(&throttled, &person_dn(&login), GOOD_PASSWORD)
            .status
            .code(),
        Some(49)
    );
    // A mail server binding for everyone is listed: its failures count per login only.
    let relayed = TestAppBuilder::new()
        .with_ldap()
        .with(|s| {
            s.lockout.ip_threshold = 3;
            s.ldap.relaying_peers = vec!["127.0.0.0/8".to_owned()];
        })
        .spawn()
        .await;
    relayed.create_user(&login, GOOD_PASSWORD).await;
    for i in 0..4 {
        let o = whoami(&relayed, &person_dn(&format!("nobody{i}")), "guess");
        assert_eq!(o.status.code(), Some(49));
    }
    let o = whoami(&relayed, &person_dn(&login), GOOD_PASSWORD);
    assert!(o.status.success(), "{}", out(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a74_blocked_voided_and_unknown_accounts_get_the_answer_of_a_wrong_password() {
    if !clients_available() {
        return;
    }
    let app = TestAppBuilder::new().with_ldap().spawn().await;
    let login = unique_login("blocked");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let wrong = out(&whoami(&app, &person_dn(&login), "wrong password"));
    let unknown = out(&whoami(&app, &person_dn("nobody.here"), GOOD_PASSWORD));
    app.services
        .helpdesk
        .desk
        .block(&account.login, BlockReason::Suspicious, None, "test")
        .await
        .unwrap();
    let blocked = whoami(&app, &person_dn(&login), GOOD_PASSWORD);
    assert_eq!(blocked.status.code(), Some(49));
    // An unblock voids the password: the right one still binds nothing.
    app.services
        .helpdesk
        .desk
        .unblock(&account.login, "test")
        .await
        .unwrap();
    let voided = whoami(&app, &person_dn(&login), GOOD_PASSWORD);
    assert_eq!(voided.status.code(), Some(49));
    // No message tells them apart.
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, out(&blocked));
    assert_eq!(wrong, out(&voided));
    // The audit trail says why: the block, then the voided password.
    let refused: Vec<Value> = app
        .services
        .audit
        .recent(Some(&login), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "login.refused_state")
        .map(|e| e.detail)
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused
            .iter()
            .any(|d| d["reason"] == "password_reset_required" && d["via"] == "ldap"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a75_each_reader_sees_what_its_scope_releases_and_never_a_secret() {
    if !clients_available() {
        return;
    }
    let (full, full_secret) = service("nextcloud", "full");
    let (mail, mail_secret) = service("postfix", "mail");
    let (directory, directory_secret) = service("annuaire", "directory");
    let (auth, auth_secret) = service("dovecot", "auth");
    let accounts = vec![full, mail, directory, auth];
    let app = TestAppBuilder::new()
        .with_ldap()
        .with(move |s| {
            s.ldap.service_accounts = accounts;
            s.cas.principal_scope = "univ.example.org".to_owned();
        })
        .spawn()
        .await;
    let alice = person(
        &app,
        "alice",
        Affiliation::Staff,
        true,
        Some(("alice@ailleurs.example", true)),
    )
    .await;
    let bob = person(&app, "bob", Affiliation::Student, false, None).await;
    // Not yet activated: no entry, whoever asks.
    let pending = unique_login("pending");
    app.create_provisioned(&pending, Affiliation::Staff, None)
        .await;
    let people = format!("ou=people,{LDAP_BASE}");
    let as_service = |name: &str, secret: &str, searches: Vec<Value>| {
        ldap3(
            &url(&app),
            &json!({"bind_dn": service_dn(name), "password": secret, "searches": searches}),
        )
    };

    let r = as_service(
        "nextcloud",
        &full_secret,
        vec![
            search(&people, &format!("(uid={alice})"), &["*", "+"]),
            search(&people, &format!("(uid={bob})"), &["supannListeRouge"]),
            search(&people, "(objectClass=*)", &["*", "+"]),
            search(&people, &format!("(uid={pending})"), &["uid"]),
        ],
    );
    assert_eq!(r["bind"]["result"], 0, "{r}");
    assert_eq!(dns(&r["searches"][3]), Vec::<String>::new());
    assert!(!r["searches"][2].to_string().contains(&pending));
    let a = &r["searches"][0];
    assert_eq!(attribute(a, "uid").unwrap(), [alice.as_str()]);
    assert_eq!(
        attribute(a, "eduPersonPrincipalName").unwrap(),
        [format!("{alice}@univ.example.org")]
    );
    assert_eq!(
        attribute(a, "mailForwardingAddress").unwrap(),
        ["alice@ailleurs.example"]
    );
    assert_eq!(attribute(a, "sesameMailKeepCopy").unwrap(), ["TRUE"]);
    assert_eq!(attribute(a, "supannListeRouge").unwrap(), ["FALSE"]);
    assert_eq!(
        attribute(a, "memberOf").unwrap(),
        [format!("cn=staff,ou=groups,{LDAP_BASE}")]
    );
    assert_eq!(attribute(a, "entryUUID").unwrap().len(), 1);
    assert_eq!(
        attribute(&r["searches"][1], "supannListeRouge").unwrap(),
        ["TRUE"]
    );
    // Nothing of a password or a secret, whatever is asked.
    let everything = r["searches"][2].to_string();
    assert!(dns(&r["searches"][2]).len() >= 2);
    for forbidden in ["userPassword", "argon2", "secret", &full_secret] {
        assert!(!everything.contains(forbidden), "{forbidden}");
    }

    let r = as_service(
        "annuaire",
        &directory_secret,
        vec![
            search(&people, "(objectClass=person)", &["*"]),
            search(&people, "(mailForwardingAddress=*)", &["uid"]),
            search(&people, &format!("(uid={bob})"), &["uid"]),
        ],
    );
    assert_eq!(dns(&r["searches"][0]), [person_dn(&alice)]);
    assert!(attribute(&r["searches"][0], "mailForwardingAddress").is_none());
    assert!(attribute(&r["searches"][0], "supannListeRouge").is_none());
    // A hidden attribute cannot be probed by a filter, a hidden person not found by uid.
    assert_eq!(dns(&r["searches"][1]), Vec::<String>::new());
    assert_eq!(dns(&r["searches"][2]), Vec::<String>::new());

    let r = as_service(
        "postfix",
        &mail_secret,
        vec![search(
            &people,
            &format!("(mail={alice}@univ.example.org)"),
            &["*"],
        )],
    );
    let m = &r["searches"][0];
    assert_eq!(
        attribute(m, "sesameMailDeliverTo").unwrap(),
        [
            "alice@ailleurs.example".to_owned(),
            format!("{alice}@univ.example.org")
        ]
    );
    assert!(attribute(m, "givenName").is_none());

    let r = as_service(
        "dovecot",
        &auth_secret,
        vec![search(&people, &format!("(uid={alice})"), &["*"])],
    );
    let d = &r["searches"][0];
    assert_eq!(dns(d), [person_dn(&alice)]);
    let names: Vec<String> = d["entries"][0]["attributes"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(names.len(), 3, "objectClass, uid, mail only: {names:?}");

    // A person sees themself whole and others as the public directory does.
    let r = ldap3(
        &url(&app),
        &json!({"bind_dn": person_dn(&bob), "password": GOOD_PASSWORD, "searches": [
            search(&people, &format!("(uid={bob})"), &["supannListeRouge"]),
            search(&people, "(objectClass=person)", &["uid"]),
        ]}),
    );
    assert_eq!(
        attribute(&r["searches"][0], "supannListeRouge").unwrap(),
        ["TRUE"]
    );
    assert_eq!(dns(&r["searches"][1]), [person_dn(&alice), person_dn(&bob)]);

    // A wrong secret binds nothing. Anonymous binds are refused; a client that does not bind
    // reads the root DSE and nothing else.
    let r = as_service("nextcloud", "not the secret", vec![]);
    assert_eq!(r["bind"]["result"], 49);
    let refused: Vec<Value> = app
        .services
        .audit
        .recent(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "ldap.service_bind_refused")
        .map(|e| e.detail)
        .collect();
    assert_eq!(refused, [json!({"service": "nextcloud"})]);
    assert!(!serde_json::to_string(&refused)
        .unwrap()
        .contains("not the secret"));
    let anonymous = tool(
        "ldapsearch",
        &["-x", "-H", &url(&app), "-b", &people, "(uid=*)"],
        &[],
    );
    assert_eq!(anonymous.status.code(), Some(53), "{}", out(&anonymous));
    let r = ldap3(
        &url(&app),
        &json!({"searches": [
            {"base": "", "scope": "base", "filter": "(objectClass=*)", "attributes": ["namingContexts", "supportedControl", "supportedExtension"]},
            search(&people, "(uid=*)", &["uid"]),
        ]}),
    );
    let root = &r["searches"][0];
    assert_eq!(attribute(root, "namingContexts").unwrap(), [LDAP_BASE]);
    assert_eq!(
        attribute(root, "supportedControl").unwrap(),
        ["1.2.840.113556.1.4.319"]
    );
    assert!(attribute(root, "supportedExtension")
        .unwrap()
        .contains(&"1.3.6.1.4.1.4203.1.11.3".to_owned()));
    assert_eq!(r["searches"][1]["result"], 50, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_directory_is_readable_anonymously_only_when_configured() {
    if !clients_available() {
        return;
    }
    let app = TestAppBuilder::new()
        .with_ldap()
        .with(|s| s.ldap.anonymous_directory = true)
        .spawn()
        .await;
    let listed = person(&app, "listed", Affiliation::Faculty, true, None).await;
    let hidden = person(&app, "hidden", Affiliation::Faculty, false, None).await;
    let o = tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-H",
            &url(&app),
            "-b",
            LDAP_BASE,
            "(eduPersonAffiliation=faculty)",
            "uid",
        ],
        &[],
    );
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains(&format!("uid: {listed}")), "{text}");
    assert!(!text.contains(&hidden), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a76_filters_paging_and_limits_bound_what_a_search_costs() {
    if !clients_available() {
        return;
    }
    let (full, secret) = service("nextcloud", "full");
    let app = TestAppBuilder::new()
        .with_ldap()
        .with(move |s| {
            s.ldap.service_accounts = vec![full];
            s.ldap.size_limit = 20;
            s.ldap.scan_limit = 60;
        })
        .spawn()
        .await;
    let stem = format!("p{}", sesame_core::random::alphanumeric(5).to_lowercase());
    for i in 0..23 {
        let login = LoginName::parse(&format!("{stem}.{i:02}")).unwrap();
        app.services
            .accounts
            .create(
                NewAccount {
                    email: Some(Email::parse(&format!("{login}@univ.example.org")).unwrap()),
                    login,
                    given_name: "Élève".to_owned(),
                    family_name: if i % 2 == 0 { "Martin" } else { "Zola" }.to_owned(),
                    affiliation: Affiliation::Student,
                    state: AccountState::Active,
                },
                "test",
            )
            .await
            .unwrap();
    }
    let people = format!("ou=people,{LDAP_BASE}");
    let student = format!("(&(eduPersonAffiliation=student)(uid={stem}.*))");
    let paged = json!({"base": people, "filter": student, "attributes": ["uid"], "paged_size": 10});
    let limited =
        json!({"base": people, "filter": student, "attributes": ["uid"], "size_limit": 5});
    let r = ldap3(
        &url(&app),
        &json!({"bind_dn": service_dn("nextcloud"), "password": secret, "searches": [
            paged,
            limited,
            search(&people, &student, &["uid"]),
            search(&people, &format!("(&(uid={stem}.*)(|(sn>=Z)(cn=*Martin))(!(uid={stem}.0*)))"), &["uid", "sn"]),
            search(&people, &format!("(|(uid={stem}.03)(mail={stem}.05@univ.example.org)(uid=nobody))"), &["uid"]),
            search(&people, "(uid:caseExactMatch:=x)", &["uid"]),
            // Filter syntax inside a value (as an application that builds its filter from
            // what a person typed would send it, escaped) is a literal: it matches nobody.
            search(&people, &format!("(uid={stem}.0\\2a\\29\\28uid=\\2a)"), &["uid"]),
        ]}),
    );
    // 23 people in pages of 10: 3 pages, each person once.
    let p = &r["searches"][0];
    assert_eq!(p["result"], 0, "{p}");
    assert_eq!(p["pages"], 3);
    let mut seen = dns(p);
    assert_eq!(seen.len(), 23);
    seen.dedup();
    assert_eq!(seen.len(), 23);
    // The client's size limit, then the server's (20): sizeLimitExceeded with what fits.
    assert_eq!(r["searches"][1]["result"], 4);
    assert_eq!(dns(&r["searches"][1]).len(), 5);
    assert_eq!(r["searches"][2]["result"], 4);
    assert_eq!(dns(&r["searches"][2]).len(), 20);
    // `.10`–`.22` whose family name is Zola or Martin: all 13.
    assert_eq!(dns(&r["searches"][3]).len(), 13, "{}", r["searches"][3]);
    assert_eq!(
        dns(&r["searches"][4]),
        [
            person_dn(&format!("{stem}.03")),
            person_dn(&format!("{stem}.05"))
        ]
    );
    // An extensible match is not supported: Undefined, so nothing matches.
    assert_eq!(dns(&r["searches"][5]), Vec::<String>::new());
    assert_eq!(r["searches"][6]["result"], 0, "{}", r["searches"][6]);
    assert_eq!(dns(&r["searches"][6]), Vec::<String>::new());

    // Past the scan limit (60 accounts examined), an unindexed search stops.
    for i in 0..40 {
        let login = LoginName::parse(&format!("{stem}.x{i:02}")).unwrap();
        app.services
            .accounts
            .create(
                NewAccount {
                    email: None,
                    login,
                    given_name: "X".to_owned(),
                    family_name: "Y".to_owned(),
                    affiliation: Affiliation::Staff,
                    state: AccountState::Active,
                },
                "test",
            )
            .await
            .unwrap();
    }
    let r = ldap3(
        &url(&app),
        &json!({"bind_dn": service_dn("nextcloud"), "password": secret, "searches": [
            search(&people, "(sn=nobody)", &["uid"]),
            search(&people, &format!("(uid={stem}.x39)"), &["uid"]),
        ]}),
    );
    assert_eq!(r["searches"][0]["result"], 11, "{r}");
    assert_eq!(dns(&r["searches"][1]).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a77_passwords_travel_over_tls_starttls_and_ldaps_with_a_reloaded_certificate() {
    if !clients_available() {
        return;
    }
    let (ca, cert, key) = localhost_certificate();
    let (cert2, key2) = (cert.clone(), key.clone());
    let app = TestAppBuilder::new()
        .with_ldap()
        .with(move |s| {
            s.ldap.listen_tls = "127.0.0.1:0".to_owned();
            s.ldap.tls_cert_file = cert2;
            s.ldap.tls_key_file = key2;
            s.ldap.cleartext_binds = sesame_server::config::ldap::CleartextBindsSetting::Never;
        })
        .spawn()
        .await;
    let login = unique_login("tls");
    app.create_user(&login, GOOD_PASSWORD).await;
    let dn = person_dn(&login);
    let plain = format!("ldap://localhost:{}", app.ldap_port.unwrap());
    let ldaps = format!("ldaps://localhost:{}", app.ldaps_port.unwrap());
    let env = [
        ("LDAPTLS_CACERT", ca.as_str()),
        ("LDAPTLS_REQCERT", "demand"),
    ];

    // In clear, a password is refused before it is checked (nothing counted, nothing logged).
    let o = tool(
        "ldapwhoami",
        &["-x", "-H", &plain, "-D", &dn, "-w", GOOD_PASSWORD],
        &env,
    );
    assert_eq!(o.status.code(), Some(13), "{}", out(&o));
    assert!(via_ldap_events(&app, &login).await.is_empty());
    let o = tool(
        "ldapwhoami",
        &["-x", "-ZZ", "-H", &plain, "-D", &dn, "-w", GOOD_PASSWORD],
        &env,
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = tool(
        "ldapwhoami",
        &["-x", "-H", &ldaps, "-D", &dn, "-w", GOOD_PASSWORD],
        &env,
    );
    assert!(o.status.success(), "{}", out(&o));
    // python ldap3's StartTLS, verifying the certificate.
    let r = ldap3(
        &plain,
        &json!({"bind_dn": dn, "password": GOOD_PASSWORD, "start_tls": true, "ca_file": ca}),
    );
    assert_eq!(r["start_tls"], true, "{r}");
    assert_eq!(r["bind"]["result"], 0, "{r}");

    // A renewed certificate (another CA here) is served from the next handshake, no restart.
    let (ca2, cert_new, key_new) = localhost_certificate();
    std::fs::copy(&cert_new, &cert).unwrap();
    std::fs::copy(&key_new, &key).unwrap();
    let env2 = [
        ("LDAPTLS_CACERT", ca2.as_str()),
        ("LDAPTLS_REQCERT", "demand"),
    ];
    let o = tool(
        "ldapwhoami",
        &["-x", "-H", &ldaps, "-D", &dn, "-w", GOOD_PASSWORD],
        &env2,
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = tool(
        "ldapwhoami",
        &["-x", "-H", &ldaps, "-D", &dn, "-w", GOOD_PASSWORD],
        &env,
    );
    assert!(!o.status.success(), "the old CA no longer verifies it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a78_writes_bad_input_and_unauthenticated_binds_change_nothing() {
    if !clients_available() {
        return;
    }
    let (full, secret) = service("nextcloud", "full");
    let app = TestAppBuilder::new()
        .with_ldap()
        .with(move |s| s.ldap.service_accounts = vec![full])
        .spawn()
        .await;
    let login = unique_login("ro");
    app.create_user(&login, GOOD_PASSWORD).await;
    let dn = person_dn(&login);

    // Writes are refused: the directory is read-only.
    let ldif = format!("dn: {dn}\nchangetype: modify\nreplace: sn\nsn: Changed\n");
    let mut child = Command::new("ldapmodify")
        .args([
            "-x",
            "-H",
            &url(&app),
            "-D",
            &service_dn("nextcloud"),
            "-w",
            &secret,
        ])
        .env("LDAPCONF", "/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ldif.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(53), "{}", out(&o));
    let account = app
        .services
        .accounts
        .get(&LoginName::parse(&login).unwrap())
        .await
        .unwrap();
    assert_eq!(account.family_name, "Person");

    // A DN without password is an "unauthenticated bind": refused, not anonymous success.
    let o = tool(
        "ldapwhoami",
        &["-x", "-H", &url(&app), "-D", &dn, "-w", ""],
        &[],
    );
    assert_eq!(o.status.code(), Some(53), "{}", out(&o));
    // Filter syntax in a bind DN is only a string: no account is named `*`.
    let o = whoami(&app, &person_dn("*"), GOOD_PASSWORD);
    assert_eq!(o.status.code(), Some(49));
    let o = whoami(
        &app,
        &format!("uid={login})(uid=*,ou=people,{LDAP_BASE}"),
        GOOD_PASSWORD,
    );
    assert_eq!(o.status.code(), Some(49));
    // A DN outside the tree is unknown to a reader, with no hint of the tree's shape.
    let o = tool(
        "ldapsearch",
        &[
            "-x",
            "-H",
            &url(&app),
            "-D",
            &service_dn("nextcloud"),
            "-w",
            &secret,
            "-b",
            "dc=other",
            "(objectClass=*)",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(32), "{}", out(&o));

    // Bytes that are not LDAP end that connection with a notice; the server goes on.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", app.ldap_port.unwrap())).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    // A complete BER sequence holding a message id and no operation.
    raw.write_all(&[0x30, 0x03, 0x02, 0x01, 0x01]).unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    assert!(
        answer.windows(22).any(|w| w == b"1.3.6.1.4.1.1466.20036"),
        "a notice of disconnection: {answer:?}"
    );
    // A message only a server sends (a search result), from a client: a notice, then the
    // connection is closed (read to its end, not to the timeout).
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", app.ldap_port.unwrap())).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    raw.write_all(&[
        0x30, 0x0c, 0x02, 0x01, 0x01, 0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
    ])
    .unwrap();
    let mut answer = Vec::new();
    let closed = raw.read_to_end(&mut answer);
    assert!(
        closed.is_ok(),
        "the server closes the connection: {closed:?}"
    );
    assert!(answer.windows(22).any(|w| w == b"1.3.6.1.4.1.1466.20036"));
    assert!(whoami(&app, &dn, GOOD_PASSWORD).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c12_a_burst_of_binds_gets_busy_at_once_rather_than_queueing_behind_the_pool() {
    if !clients_available() {
        return;
    }
    let app = TestAppBuilder::new()
        .with_ldap()
        .with(|s| {
            // Real cost, no queue: more concurrent binds than hashing threads are refused.
            s.password_hashing.memory_kib = 19_456;
            s.password_hashing.iterations = 2;
            s.password_hashing.queue_per_worker = 0;
            s.lockout.ip_threshold = 10_000;
            // Every bind goes to the pool itself, which refuses what it cannot take.
            s.ldap.max_concurrent_binds = 100;
        })
        .spawn()
        .await;
    let url = url(&app);
    let binds: Vec<_> = (0..24)
        .map(|i| {
            let url = url.clone();
            tokio::task::spawn_blocking(move || {
                tool(
                    "ldapwhoami",
                    &[
                        "-x",
                        "-H",
                        &url,
                        "-D",
                        &person_dn(&format!("nobody{i}")),
                        "-w",
                        "guess",
                    ],
                    &[],
                )
            })
        })
        .collect();
    let mut codes = Vec::new();
    for b in binds {
        codes.push(b.await.unwrap().status.code());
    }
    assert!(
        codes.contains(&Some(51)),
        "some binds must be told busy: {codes:?}"
    );
    assert!(
        codes.iter().all(|c| *c == Some(51) || *c == Some(49)),
        "{codes:?}"
    );
    // The schema is published for clients that read it.
    // Anonymous binds are off: read it with ldap3, which need not bind.
    let r = ldap3(
        &url,
        &json!({"searches": [{"base": "cn=subschema", "scope": "base", "filter": "(objectClass=*)", "attributes": ["attributeTypes", "objectClasses"]}]}),
    );
    let types = attribute(&r["searches"][0], "attributeTypes").unwrap();
    assert!(
        types.iter().any(|t| t.contains("'sesameMailDeliverTo'")),
        "{types:?}"
    );
    assert!(attribute(&r["searches"][0], "objectClasses")
        .unwrap()
        .iter()
        .any(|c| c.contains("'supannPerson'")));
}
