//! A second SAML service provider library against Sesame: OneLogin's python3-saml (over
//! python-xmlsec), strict, signing its requests and logout messages, wanting assertions
//! signed and encrypted and every message signed. It logs in, logs out itself, and answers
//! Sesame's front-channel logout.

use std::process::Command;

use sesame_server::config::saml::SamlServiceProviderSetting;
use sesame_tests::{saml_service_provider, unique_login, TestApp, GOOD_PASSWORD};

const SCOPE: &str = "univ.example.org";

fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/interop/python3_saml_sp.py")
}

fn python3_saml_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import onelogin.saml2, xmlsec, requests"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "python3-saml must be installed in CI (pip install python3-saml)"
        );
        eprintln!("skipped: python3-saml is not installed");
    }
    ok
}

fn run(args: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python3-saml SP {args:?}: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

/// Sesame with the python3-saml SP registered (its responses signed whole, as it wants every
/// message signed); the SP's key directory.
async fn app() -> (TestApp, String) {
    let dir = std::env::temp_dir().join(format!(
        "sesame-onelogin-{}",
        sesame_core::random::alphanumeric(12)
    ));
    let keydir = dir.display().to_string();
    let metadata = dir.join("metadata.xml").display().to_string();
    let out = Command::new("python3")
        .arg(script())
        .args(["metadata", &keydir, &metadata])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = TestApp::builder()
        .with_saml(SamlServiceProviderSetting {
            sign_response: true,
            ..saml_service_provider(metadata, &["mail", "eduPersonPrincipalName", "displayName"])
        })
        .with(|s| s.saml.scope = SCOPE.to_owned())
        .spawn()
        .await;
    (app, keydir)
}

async fn person(app: &TestApp) -> String {
    let login = unique_login("onelogin");
    app.create_user(&login, GOOD_PASSWORD).await;
    login
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python3_saml_logs_in_with_a_signed_request_and_reads_a_signed_encrypted_answer() {
    if !python3_saml_available() {
        return;
    }
    let (app, keydir) = app().await;
    let login = person(&app).await;
    let learnt = run(&["login", &keydir, &app.address, &login, GOOD_PASSWORD]);
    assert_eq!(learnt["encrypted"], true, "{learnt}");
    assert_eq!(learnt["relay_state"], "relay-1", "{learnt}");
    assert_eq!(
        learnt["name_id_format"],
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    );
    let name_id = learnt["name_id"].as_str().unwrap();
    assert!(
        !name_id.contains(&login),
        "pairwise, not the login: {name_id}"
    );
    let attributes = &learnt["attributes"];
    assert_eq!(
        attributes["urn:oid:0.9.2342.19200300.100.1.3"][0],
        format!("{login}@{SCOPE}"),
        "{learnt}"
    );
    assert_eq!(
        attributes["urn:oid:1.3.6.1.4.1.5923.1.1.1.6"][0],
        format!("{login}@{SCOPE}")
    );
    assert!(
        attributes.get("urn:oid:2.5.4.42").is_none(),
        "givenName is not released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python3_saml_logs_out_itself_and_answers_sesames_logout_through_the_browser() {
    if !python3_saml_available() {
        return;
    }
    let (app, keydir) = app().await;
    let login = person(&app).await;
    let own = run(&["logout", &keydir, &app.address, &login, GOOD_PASSWORD]);
    assert_eq!(own["errors"], serde_json::json!([]), "{own}");
    let at_sesame = run(&["idp-logout", &keydir, &app.address, &login, GOOD_PASSWORD]);
    assert_eq!(at_sesame["errors"], serde_json::json!([]), "{at_sesame}");
    assert_eq!(at_sesame["back_to_sesame"], true, "{at_sesame}");
    assert_eq!(at_sesame["final_status"], 200, "{at_sesame}");
    let page = at_sesame["final_page"].as_str().unwrap();
    assert!(
        page.contains("Déconnexion réussie") || page.contains("You are logged out"),
        "{page}"
    );
}
