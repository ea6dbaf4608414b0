//! A CAS client library not written here (python-cas, from PyPI) logs a person in through
//! the login page and reads Sesame's validation responses, over CAS 1.0, 2.0, 3.0 and
//! SAML 1.1, with names that hold XML special characters.

use std::process::Command;

use sesame_core::account::{AccountState, NewAccount};
use sesame_core::credentials::Password;
use sesame_core::ids::{Affiliation, Email, LoginName};
use sesame_tests::{cas_service, unique_login, TestApp, GOOD_PASSWORD};

fn python_cas_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cas, requests"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "python-cas must be installed in CI (pip install python-cas)"
        );
        eprintln!("skipped: python-cas is not installed (pip install python-cas)");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_cas_logs_a_person_in_over_every_protocol_version() {
    if !python_cas_available() {
        return;
    }
    let app = TestApp::builder()
        .with(|s| {
            s.cas.services.push(cas_service(
                "moodle",
                "https://moodle.example.edu/",
                "attributes = [\"mail\", \"givenName\", \"sn\", \"displayName\", \"eduPersonAffiliation\"]",
            ));
        })
        .spawn()
        .await;
    let login = unique_login("interop");
    let name = LoginName::parse(&login).unwrap();
    let family = "O'Brien & <Fils> \"Ainé\"";
    app.services
        .accounts
        .create(
            NewAccount {
                login: name.clone(),
                email: Some(Email::parse(&format!("{login}@univ.example.org")).unwrap()),
                given_name: "Jean-Éric".to_owned(),
                family_name: family.to_owned(),
                affiliation: Affiliation::Faculty,
                state: AccountState::Provisioned,
            },
            "test",
        )
        .await
        .unwrap();
    app.services
        .accounts
        .set_password(&name, Password::new(GOOD_PASSWORD), "test")
        .await
        .unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/python_cas_login.py");
    for version in ["1", "2", "3", "CAS_2_SAML_1_0"] {
        let out = Command::new("python3")
            .args([
                script,
                &app.address,
                "https://moodle.example.edu/course/view.php?id=2",
                &login,
                GOOD_PASSWORD,
                version,
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "version {version}: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(
            result["user"],
            login.as_str(),
            "version {version}: {result}"
        );
        assert!(
            result["replay_user"].is_null(),
            "a replayed ticket is refused (version {version})"
        );
        if version == "3" || version == "CAS_2_SAML_1_0" {
            let attrs = &result["attributes"];
            let sn = if attrs["sn"].is_array() {
                attrs["sn"][0].clone()
            } else {
                attrs["sn"].clone()
            };
            assert_eq!(sn, family, "version {version}: {attrs}");
            let given = if attrs["givenName"].is_array() {
                attrs["givenName"][0].clone()
            } else {
                attrs["givenName"].clone()
            };
            assert_eq!(given, "Jean-Éric", "version {version}: {attrs}");
        }
    }
}
