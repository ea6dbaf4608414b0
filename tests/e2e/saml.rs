//! SAML 2.0 Web Browser SSO: a service provider not written here (pysaml2, from PyPI) logs a
//! person in over both request bindings and checks Sesame's signed responses; and the
//! refusals of the security spec (A80–A85): unknown SP, consumer service not in its metadata,
//! replayed or stale request, DTD, oversized or inflating request, `Destination` elsewhere,
//! unsigned or forged requests from an SP that signs.

use std::io::Write as _;
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sesame_core::account::{AccountChanges, AccountState, NewAccount};
use sesame_core::clock::Clock as _;
use sesame_core::credentials::Password;
use sesame_core::ids::{Affiliation, Email, HrId, LoginName};
use sesame_protocol::saml::issuer::GarPersonIdentifier;
use sesame_protocol::saml::keys;
use sesame_protocol::saml::signature::{sign_enveloped, SigningKey};
use sesame_protocol::saml::xml::Element;
use sesame_server::config::saml::{SamlMetadataSource, SamlServiceProviderSetting};
use sesame_tests::{saml_service_provider, unique_login, TestApp, GOOD_PASSWORD};

const SP: &str = "https://sp.example.org/saml/metadata";
const ACS: &str = "https://sp.example.org/saml/acs";
const SCOPE: &str = "univ.example.org";

fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/interop/pysaml2_sp.py")
}

fn pysaml2_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import saml2, requests"])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("xmlsec1")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "pysaml2 and xmlsec1 must be installed in CI (pip install pysaml2; apt-get install xmlsec1)"
        );
        eprintln!("skipped: pysaml2 or xmlsec1 is not installed");
    }
    ok
}

/// The test SP's key directory and metadata as pysaml2 writes it (a file Sesame's
/// configuration names).
fn sp_metadata_file(sign_requests: bool) -> (String, String) {
    let dir = std::env::temp_dir().join(format!(
        "sesame-sp-{}",
        sesame_core::random::alphanumeric(12)
    ));
    let keydir = dir.display().to_string();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("metadata.xml").display().to_string();
    if pysaml2_available() {
        let out = sp_command(sign_requests)
            .args(["metadata", &keydir, &path])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        // The refusals below need no pysaml2: the same metadata, written by hand.
        let xml = format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{SP}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="false" WantAssertionsSigned="true"><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{ACS}" index="1"/></md:SPSSODescriptor></md:EntityDescriptor>"#
        );
        std::fs::write(&path, xml).unwrap();
    }
    (keydir, path)
}

/// The pysaml2 SP's command; `sign_requests`: it signs its requests (and its metadata says so).
fn sp_command(sign_requests: bool) -> Command {
    let mut command = Command::new("python3");
    command.arg(script()).env(
        "PYSAML2_SIGN_REQUESTS",
        if sign_requests { "1" } else { "0" },
    );
    command
}

/// Sesame with the pysaml2 SP registered; `encrypt`: its assertions encrypted to the SP's key
/// (the default when its metadata has one); `sign_requests`: the SP signs its requests.
/// Returns the SP's key directory too.
async fn saml_app_with(encrypt: bool, sign_requests: bool) -> (TestApp, String) {
    saml_app_allowing(encrypt, sign_requests, false).await
}

/// [`saml_app_with`], the SP accepting unsolicited logins when `unsolicited`.
async fn saml_app_allowing(
    encrypt: bool,
    sign_requests: bool,
    unsolicited: bool,
) -> (TestApp, String) {
    let (keydir, metadata_file) = sp_metadata_file(sign_requests);
    let app = TestApp::builder()
        .with_saml(SamlServiceProviderSetting {
            entity_id: SP.to_owned(),
            name: "Bibliothèque numérique".to_owned(),
            allow_unsolicited: unsolicited,
            encrypt_assertions: (!encrypt).then_some(false),
            ..saml_service_provider(
                metadata_file,
                &[
                    "mail",
                    "givenName",
                    "sn",
                    "displayName",
                    "eduPersonPrincipalName",
                    "eduPersonScopedAffiliation",
                    "eduPersonAffiliation",
                    "schacHomeOrganization",
                    "pairwise-id",
                    "eduPersonTargetedID",
                    "eduPersonEntitlement",
                    "eduPersonAssurance",
                    "supannEtablissement",
                ],
            )
        })
        .with(|s| {
            s.saml.technical_contact = "dsi@univ.example.org".to_owned();
            s.saml.assurance = vec![
                "https://refeds.org/assurance".to_owned(),
                "https://refeds.org/assurance/ID/unique".to_owned(),
            ];
            s.saml.supann_etablissement = "{UAI}0751717J".to_owned();
            s.saml.logo_url = "https://univ.example.org/logo.png".to_owned();
            s.saml.entitlements.insert(
                Affiliation::Faculty,
                vec!["urn:mace:dir:entitlement:common-lib-terms".to_owned()],
            );
        })
        .spawn()
        .await;
    (app, keydir)
}

async fn saml_app() -> TestApp {
    saml_app_with(true, false).await.0
}

async fn person(app: &TestApp, stem: &str) -> String {
    let login = unique_login(stem);
    let name = LoginName::parse(&login).unwrap();
    app.services
        .accounts
        .create(
            NewAccount {
                login: name.clone(),
                email: Some(Email::parse(&format!("{login}@{SCOPE}")).unwrap()),
                given_name: "Zoé".to_owned(),
                family_name: "L'Hôpital & <Fils>".to_owned(),
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
    login
}

fn run_sp(args: &[&str]) -> serde_json::Value {
    run_sp_signing(false, args)
}

fn run_sp_signing(sign_requests: bool, args: &[&str]) -> serde_json::Value {
    let out = sp_command(sign_requests).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pysaml2 SP {args:?}: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

/// pysaml2's login of `login` over HTTP-Redirect, and what it read of the responses.
fn login_over_redirect(app: &TestApp, keydir: &str, login: &str) -> serde_json::Value {
    run_sp(&[
        "login",
        keydir,
        &app.address,
        login,
        GOOD_PASSWORD,
        "redirect",
    ])
}

/// A fresh path in the temporary directory, for a federation's files.
fn federation_temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "sesame-federation-{}-{name}",
        sesame_core::random::alphanumeric(10)
    ))
}

fn first_value<'a>(attributes: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    &attributes[name][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pysaml2_logs_a_person_in_over_both_bindings_with_one_pairwise_identifier() {
    if !pysaml2_available() {
        return;
    }
    let (app, keydir) = saml_app_with(true, false).await;
    let login = person(&app, "saml").await;
    let mut identifiers = Vec::new();
    for binding in ["redirect", "post"] {
        let result = run_sp(&[
            "login",
            &keydir,
            &app.address,
            &login,
            GOOD_PASSWORD,
            binding,
        ]);
        let (first, second) = (&result["first"], &result["second"]);
        assert_eq!(
            first["name_id_format"], "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            "{result}"
        );
        let name_id = first["name_id"].as_str().unwrap().to_owned();
        assert_eq!(
            name_id.len(),
            64,
            "an opaque pairwise identifier: {name_id}"
        );
        assert!(!name_id.contains(&login), "never the login: {name_id}");
        // The session answers the second request, with the same person and session.
        assert_eq!(second["name_id"], first["name_id"], "{result}");
        assert_eq!(second["session_index"], first["session_index"], "{result}");
        assert_ne!(second["in_response_to"], first["in_response_to"]);
        // The SP's metadata has an encryption key: what the browser carries is encrypted.
        assert_eq!(first["encrypted"], true, "{result}");
        assert_eq!(
            first["authn_context"],
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        );
        let attributes = &first["attributes"];
        assert_eq!(first_value(attributes, "mail"), &format!("{login}@{SCOPE}"));
        assert_eq!(
            first_value(attributes, "eduPersonPrincipalName"),
            &format!("{login}@{SCOPE}")
        );
        assert_eq!(first_value(attributes, "givenName"), "Zoé");
        assert_eq!(first_value(attributes, "sn"), "L'Hôpital & <Fils>");
        assert_eq!(first_value(attributes, "schacHomeOrganization"), SCOPE);
        let scoped: Vec<&str> = attributes["eduPersonScopedAffiliation"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(
            scoped.contains(&"faculty@univ.example.org")
                && scoped.contains(&"member@univ.example.org"),
            "{attributes}"
        );
        assert_eq!(
            first_value(attributes, "eduPersonEntitlement"),
            "urn:mace:dir:entitlement:common-lib-terms",
            "{attributes}"
        );
        assert_eq!(
            attributes["eduPersonAssurance"],
            serde_json::json!([
                "https://refeds.org/assurance",
                "https://refeds.org/assurance/ID/unique"
            ]),
            "{attributes}"
        );
        // pysaml2 knows no friendly name for SUPANN's OIDs.
        assert_eq!(
            first_value(attributes, "urn:oid:1.3.6.1.4.1.7135.1.2.1.14"),
            "{UAI}0751717J",
            "{attributes}"
        );
        // eduPersonTargetedID: the same pairwise identifier, as a qualified NameID.
        assert_eq!(
            first_value(attributes, "eduPersonTargetedID"),
            &name_id,
            "{attributes}"
        );
        assert!(
            result["replayed"] != "accepted",
            "a response played again is refused by the SP: {result}"
        );
        identifiers.push(name_id);
    }
    assert_eq!(
        identifiers[0], identifiers[1],
        "one person, one SP: one persistent identifier"
    );
}

/// The GAR, as a school ENT reaches it: the person under the identifier of the feed the GAR
/// was sent (here the HR identifier) and the ENT's identifier, named as the GAR reads them;
/// SUPANN's numbers and red list come from the profile, read for this SP only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gar_is_told_the_persons_feed_identifier_and_the_ent_in_its_own_names() {
    if !pysaml2_available() {
        return;
    }
    let (keydir, metadata_file) = sp_metadata_file(false);
    let app = TestApp::builder()
        .with_saml(SamlServiceProviderSetting {
            entity_id: SP.to_owned(),
            name: "GAR".to_owned(),
            ..saml_service_provider(
                metadata_file,
                &[
                    "GARPersonIdentifiant",
                    "idEnt",
                    "supannEtuId",
                    "supannEmpId",
                    "supannListeRouge",
                ],
            )
        })
        .with(|s| {
            s.saml.gar.ent_id = "ENT-ACADEMIE-TEST".to_owned();
            s.saml.gar.person_identifier = GarPersonIdentifier::HrId;
        })
        .spawn()
        .await;
    let login = person(&app, "gar").await;
    let account = app
        .services
        .accounts_repo
        .find_by_login(&LoginName::parse(&login).unwrap())
        .await
        .unwrap()
        .unwrap();
    app.services
        .profiles
        .update_account(
            account.id,
            &AccountChanges {
                affiliation: Some(Affiliation::Student),
                hr_id: Some(HrId::parse("e2026042").unwrap()),
                ..AccountChanges::default()
            },
            app.clock.now(),
        )
        .await
        .unwrap();
    let result = login_over_redirect(&app, &keydir, &login);
    let attributes = &result["first"]["attributes"];
    assert_eq!(
        first_value(attributes, "GARPersonIdentifiant"),
        "E2026042",
        "{result}"
    );
    assert_eq!(
        first_value(attributes, "idEnt"),
        "ENT-ACADEMIE-TEST",
        "{result}"
    );
    // supannEtuId: a student's number; no supannEmpId for a student.
    assert_eq!(
        first_value(attributes, "urn:oid:1.3.6.1.4.1.7135.1.2.1.10"),
        "E2026042",
        "{result}"
    );
    assert!(
        attributes
            .get("urn:oid:1.3.6.1.4.1.7135.1.2.1.11")
            .is_none(),
        "{result}"
    );
    // Not opted into the directory: on the red list.
    assert_eq!(
        first_value(attributes, "urn:oid:1.3.6.1.4.1.7135.1.2.1.1"),
        "TRUE",
        "{result}"
    );
    // Nothing the SP was not given.
    assert!(attributes.get("mail").is_none(), "{result}");
    assert_eq!(attributes.as_object().map(|o| o.len()), Some(4), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_authn_asks_for_the_password_again_and_is_passive_never_shows_a_page() {
    if !pysaml2_available() {
        return;
    }
    // This SP's assertions are not encrypted (`encrypt_assertions = false`).
    let (app, keydir) = saml_app_with(false, false).await;
    let login = person(&app, "samlforce").await;
    let result = run_sp(&[
        "login",
        &keydir,
        &app.address,
        &login,
        GOOD_PASSWORD,
        "redirect",
        "force",
    ]);
    assert_eq!(result["second"]["name_id"], result["first"]["name_id"]);
    assert_eq!(result["first"]["encrypted"], false, "{result}");
    let passive = run_sp(&["passive", &keydir, &app.address]);
    let status = passive["status"].as_str().unwrap();
    assert!(status.contains("NoPassive"), "{passive}");
    assert_eq!(passive["acs"], ACS);
}

/// An `AuthnRequest` from `issuer`, as the Redirect binding carries it.
fn authn_request(issuer: &str, id: &str, instant: time::OffsetDateTime, extra: &str) -> String {
    let instant = instant
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{instant}" {extra}><saml:Issuer>{issuer}</saml:Issuer></samlp:AuthnRequest>"#
    )
}

fn deflated(xml: &str) -> String {
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(xml.as_bytes()).unwrap();
    STANDARD.encode(encoder.finish().unwrap())
}

async fn send(app: &TestApp, xml: &str) -> reqwest::Response {
    let mut url = url::Url::parse(&format!("{}/saml/sso", app.address)).unwrap();
    url.query_pairs_mut()
        .append_pair("SAMLRequest", &deflated(xml))
        .append_pair("RelayState", "r");
    app.client.get(url).send().await.unwrap()
}

fn refused(res: &reqwest::Response, why: &str) {
    assert_eq!(res.status(), 400, "{why}");
    assert!(
        res.headers().get("location").is_none(),
        "{why}: no redirect anywhere"
    );
}

fn now(app: &TestApp) -> time::OffsetDateTime {
    app.clock.now()
}

#[tokio::test]
async fn a80_a_request_from_an_unknown_or_look_alike_sp_gets_an_error_page() {
    let app = saml_app().await;
    // Accepted: the login page, by a redirect to Sesame's own login URL, naming the SP.
    let res = send(&app, &authn_request(SP, "_good", now(&app), "")).await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/cas/login?saml=", app.address)),
        "{location}"
    );
    let page = app.client.get(&location).send().await.unwrap();
    let body = page.text().await.unwrap();
    assert!(
        body.contains("Bibliothèque numérique"),
        "the SP's name is shown"
    );

    refused(
        &send(
            &app,
            &authn_request("https://evil.example.org/sp", "_x1", now(&app), ""),
        )
        .await,
        "unknown SP",
    );
    for look_alike in [
        format!("{SP}/"),
        SP.to_uppercase(),
        format!("{SP}.evil.example"),
    ] {
        refused(
            &send(&app, &authn_request(&look_alike, "_x2", now(&app), "")).await,
            "look-alike entity ID",
        );
    }
}

#[tokio::test]
async fn a81_a_consumer_service_outside_the_sps_metadata_gets_nothing() {
    let app = saml_app().await;
    for (id, extra) in [
        (
            "_x3",
            r#"AssertionConsumerServiceURL="https://evil.example.org/acs""#,
        ),
        ("_x4", r#"AssertionConsumerServiceIndex="7""#),
        (
            "_x5",
            r#"ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact""#,
        ),
    ] {
        refused(
            &send(&app, &authn_request(SP, id, now(&app), extra)).await,
            extra,
        );
    }
    // The metadata's own URL is accepted.
    let ok = send(
        &app,
        &authn_request(
            SP,
            "_x6",
            now(&app),
            &format!(r#"AssertionConsumerServiceURL="{ACS}""#),
        ),
    )
    .await;
    assert_eq!(ok.status(), 303);
}

#[tokio::test]
async fn a82_a_request_played_again_or_out_of_its_time_is_refused() {
    let app = saml_app().await;
    let request = authn_request(SP, "_once", now(&app), "");
    assert_eq!(send(&app, &request).await.status(), 303);
    refused(&send(&app, &request).await, "replayed request ID");
    refused(
        &send(
            &app,
            &authn_request(SP, "_old", now(&app) - time::Duration::minutes(30), ""),
        )
        .await,
        "stale IssueInstant",
    );
    refused(
        &send(
            &app,
            &authn_request(SP, "_future", now(&app) + time::Duration::minutes(30), ""),
        )
        .await,
        "IssueInstant ahead",
    );
}

#[tokio::test]
async fn a83_dtds_deflate_bombs_and_oversized_requests_are_refused() {
    let app = saml_app().await;
    let dtd = format!(
        r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "{SP}">]>{}"#,
        authn_request("&e;", "_dtd", now(&app), "")
    );
    refused(&send(&app, &dtd).await, "DTD");
    let bomb = format!(
        "{}<!--{}-->",
        authn_request(SP, "_bomb", now(&app), ""),
        "A".repeat(10 * 1024 * 1024)
    );
    refused(&send(&app, &bomb).await, "inflates beyond the bound");
    let oversized = STANDARD.encode(format!(
        "{}<!--{}-->",
        authn_request(SP, "_big", now(&app), ""),
        "B".repeat(100 * 1024)
    ));
    let res = app
        .client
        .post(format!("{}/saml/sso", app.address))
        .form(&[("SAMLRequest", oversized.as_str())])
        .send()
        .await
        .unwrap();
    refused(&res, "POST beyond 64 KiB");
}

#[tokio::test]
async fn a84_a_destination_elsewhere_or_a_long_relay_state_is_refused() {
    let app = saml_app().await;
    refused(
        &send(
            &app,
            &authn_request(
                SP,
                "_dest",
                now(&app),
                r#"Destination="https://other-idp.example.org/sso""#,
            ),
        )
        .await,
        "Destination elsewhere",
    );
    let mut url = url::Url::parse(&format!("{}/saml/sso", app.address)).unwrap();
    url.query_pairs_mut()
        .append_pair(
            "SAMLRequest",
            &deflated(&authn_request(SP, "_relay", now(&app), "")),
        )
        .append_pair("RelayState", &"r".repeat(81));
    refused(
        &app.client.get(url).send().await.unwrap(),
        "RelayState beyond 80 bytes",
    );
    // This endpoint's own Destination is accepted.
    let ok = send(
        &app,
        &authn_request(
            SP,
            "_dest_ok",
            now(&app),
            &format!(r#"Destination="{}/saml/sso""#, app.address),
        ),
    )
    .await;
    assert_eq!(ok.status(), 303);
}

#[tokio::test]
async fn saml_is_off_until_enabled_and_its_metadata_is_signed_and_cached() {
    let off = TestApp::spawn().await;
    let res = off
        .client
        .get(format!("{}/saml/metadata", off.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let app = saml_app().await;
    let get = || async {
        app.client
            .get(format!("{}/saml/metadata", app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let first = get().await;
    let doc = roxmltree::Document::parse(&first).unwrap();
    let root = doc.root_element();
    assert_eq!(
        root.attribute("entityID"),
        Some(format!("{}/saml/metadata", app.address).as_str())
    );
    assert!(first.contains("<ds:Signature"), "signed");
    assert!(first.contains(&format!(">{SCOPE}</shibmd:Scope>")));
    assert!(first.contains(&format!(r#"Location="{}/saml/sso""#, app.address)));
    // What the federation's registry and discovery service read.
    assert!(
        first.contains(">mailto:dsi@univ.example.org</md:EmailAddress>"),
        "{first}"
    );
    assert!(first.contains(
        r#"<mdui:Logo height="60" width="80">https://univ.example.org/logo.png</mdui:Logo>"#
    ));
    assert!(first.contains(&format!(
        "<md:OrganizationURL xml:lang=\"fr\">{}</md:OrganizationURL>",
        app.address
    )));
    // One signature per hour, not per request.
    assert_eq!(get().await, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pysaml2_signs_its_requests_over_either_binding_and_sesame_checks_them() {
    if !pysaml2_available() {
        return;
    }
    let (app, keydir) = saml_app_with(true, true).await;
    let login = person(&app, "samlsigned").await;
    let result = run_sp_signing(
        true,
        &[
            "login",
            &keydir,
            &app.address,
            &login,
            GOOD_PASSWORD,
            "redirect",
        ],
    );
    assert_eq!(result["second"]["name_id"], result["first"]["name_id"]);
    // Over HTTP-POST its request carries an XML signature, which Sesame verifies.
    let posted = run_sp_signing(
        true,
        &[
            "login",
            &keydir,
            &app.address,
            &login,
            GOOD_PASSWORD,
            "post",
        ],
    );
    assert_eq!(posted["first"]["name_id"], result["first"]["name_id"]);
}

/// An SP's metadata that says it signs its requests, with `cert` (DER).
fn signing_sp_metadata(cert: &[u8]) -> String {
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{SP}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="true"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{ACS}" index="1"/></md:SPSSODescriptor></md:EntityDescriptor>"#,
        STANDARD.encode(cert)
    )
}

/// The Redirect-binding query of `xml`, signed with `key` (RSA-SHA256, or `alg`).
fn signed_query(xml: &str, key: &SigningKey, alg: &str) -> String {
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let query = format!(
        "SAMLRequest={}&RelayState={}&SigAlg={}",
        enc(&deflated(xml)),
        enc("r"),
        enc(alg)
    );
    let signature = key.sign(query.as_bytes()).unwrap();
    format!("{query}&Signature={}", enc(&STANDARD.encode(signature)))
}

#[tokio::test]
async fn a85_a_signing_sp_gets_nothing_for_an_unsigned_forged_or_sha1_request() {
    let started = time::OffsetDateTime::UNIX_EPOCH;
    let (sp_pkcs8, sp_cert) = keys::generate("sp.example.org", started).unwrap();
    let sp_key = SigningKey::from_pkcs8(&sp_pkcs8, sp_cert.clone()).unwrap();
    let (other_pkcs8, other_cert) = keys::generate("evil.example.org", started).unwrap();
    let other_key = SigningKey::from_pkcs8(&other_pkcs8, other_cert).unwrap();
    let path = std::env::temp_dir().join(format!(
        "sesame-signing-sp-{}.xml",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::write(&path, signing_sp_metadata(&sp_cert)).unwrap();
    let metadata_file = path.display().to_string();
    let app = TestApp::builder()
        .with_saml(SamlServiceProviderSetting {
            name_id_format: "transient".to_owned(),
            ..saml_service_provider(metadata_file, &[])
        })
        .spawn()
        .await;
    let get = |query: String| {
        let client = app.client.clone();
        let url = format!("{}/saml/sso?{query}", app.address);
        async move { client.get(url).send().await.unwrap() }
    };
    let sha256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    // Signed by the SP's key: accepted.
    let good = get(signed_query(
        &authn_request(SP, "_s1", now(&app), ""),
        &sp_key,
        sha256,
    ))
    .await;
    assert_eq!(good.status(), 303);
    // Unsigned, signed by another key, signed with SHA-1, or altered after signing: refused.
    let unsigned = format!(
        "SAMLRequest={}",
        url::form_urlencoded::byte_serialize(
            deflated(&authn_request(SP, "_s2", now(&app), "")).as_bytes()
        )
        .collect::<String>()
    );
    refused(&get(unsigned).await, "unsigned");
    refused(
        &get(signed_query(
            &authn_request(SP, "_s3", now(&app), ""),
            &other_key,
            sha256,
        ))
        .await,
        "another key",
    );
    refused(
        &get(signed_query(
            &authn_request(SP, "_s4", now(&app), ""),
            &sp_key,
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        ))
        .await,
        "SHA-1",
    );
    let altered = signed_query(&authn_request(SP, "_s5", now(&app), ""), &sp_key, sha256)
        .replace("RelayState=r", "RelayState=s");
    refused(&get(altered).await, "RelayState altered");
    // Over HTTP-POST the signature is in the XML: the SP's key verifies; unsigned, another
    // key, or a request changed after signing, refused.
    let post = |xml: String| {
        let client = app.client.clone();
        let url = format!("{}/saml/sso", app.address);
        async move {
            client
                .post(url)
                .form(&[("SAMLRequest", STANDARD.encode(xml).as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    let signed_post = |id: &str, key: &SigningKey| {
        let mut request = Element::new("samlp", "AuthnRequest")
            .attr("ID", id)
            .attr("Version", "2.0")
            .attr(
                "IssueInstant",
                sesame_protocol::saml::format_instant(now(&app)),
            )
            .child(Element::new("saml", "Issuer").text(SP));
        sign_enveloped(&mut request, 1, key).unwrap();
        request.canonical()
    };
    let res = post(signed_post("_p1", &sp_key)).await;
    assert_eq!(res.status(), 303, "a request signed by the SP's key");
    refused(
        &post(authn_request(SP, "_p2", now(&app), "")).await,
        "unsigned POST from a signing SP",
    );
    refused(
        &post(signed_post("_p3", &other_key)).await,
        "POST, another key",
    );
    let changed =
        signed_post("_p4", &sp_key).replacen("Version=", "ForceAuthn=\"true\" Version=", 1);
    refused(&post(changed).await, "POST altered after signing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsolicited_login_reaches_an_sp_that_allows_it_and_no_other() {
    if !pysaml2_available() {
        return;
    }
    let (app, keydir) = saml_app_allowing(true, false, true).await;
    let login = person(&app, "samlidp").await;
    let result = run_sp(&["unsolicited", &keydir, &app.address, &login, GOOD_PASSWORD]);
    assert!(result["in_response_to"].is_null(), "{result}");
    assert_eq!(result["acs"], ACS);
    assert_eq!(
        first_value(&result["attributes"], "mail"),
        &format!("{login}@{SCOPE}")
    );
    // Not for an SP that does not allow it, nor to a consumer service outside its metadata.
    let closed = saml_app().await;
    let url = format!(
        "{}/saml/unsolicited?providerId={}",
        closed.address,
        url::form_urlencoded::byte_serialize(SP.as_bytes()).collect::<String>()
    );
    refused(&closed.client.get(url).send().await.unwrap(), "not allowed");
    let url = format!(
        "{}/saml/unsolicited?providerId={}&shire=https%3A%2F%2Fevil.example.org%2Facs",
        app.address,
        url::form_urlencoded::byte_serialize(SP.as_bytes()).collect::<String>()
    );
    refused(
        &app.client.get(url).send().await.unwrap(),
        "shire outside the metadata",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_from_pysaml2_ends_the_sesame_session_and_is_answered_signed() {
    if !pysaml2_available() {
        return;
    }
    let (app, keydir) = saml_app_with(true, false).await;
    let login = person(&app, "samlslo").await;
    let result = run_sp(&["logout", &keydir, &app.address, &login, GOOD_PASSWORD]);
    assert_eq!(
        result["status"], "urn:oasis:names:tc:SAML:2.0:status:Success",
        "{result}"
    );
    assert_eq!(result["signed"], true, "{result}");
    assert_eq!(result["login_page_again"], true, "{result}");
    // The logout is in the audit trail.
    let kinds = app.audit_kinds(&login).await;
    assert!(kinds.iter().any(|k| k == "logout"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_at_sesame_takes_the_browser_through_an_sp_without_a_back_channel() {
    if !pysaml2_available() {
        return;
    }
    // The pysaml2 SP's metadata offers single logout over HTTP-Redirect only.
    let (app, keydir) = saml_app_with(true, false).await;
    let login = person(&app, "samlfront").await;
    let result = run_sp(&["idp-logout", &keydir, &app.address, &login, GOOD_PASSWORD]);
    // The request named the person and the session as the SP knows them, signed (pysaml2
    // checked it against Sesame's metadata key before answering).
    assert_eq!(result["request_name_id"], result["name_id"], "{result}");
    assert_eq!(
        result["request_session_index"], result["session_index"],
        "{result}"
    );
    // The SP's answer ends the chain on Sesame's logged-out page.
    assert_eq!(result["final_status"], 200, "{result}");
    let page = result["final_page"].as_str().unwrap();
    assert!(
        page.contains("Déconnexion réussie") || page.contains("You are logged out"),
        "{page}"
    );
    // Played again: no logout under way any more, the logged-out page.
    assert_eq!(result["again_status"], 200, "{result}");
    let kinds = app.audit_kinds(&login).await;
    assert!(kinds.iter().any(|k| k == "logout"), "{kinds:?}");
}

/// Logs `login` in through the SAML flow (the SP's assertions not encrypted); returns the
/// `NameID` and `SessionIndex` the SP got.
async fn saml_login(app: &TestApp, login: &str) -> (String, String) {
    let (name_id, session_index, _) = saml_login_xml(app, login).await;
    (name_id, session_index)
}

/// [`saml_login`], with the response's XML.
async fn saml_login_xml(app: &TestApp, login: &str) -> (String, String, String) {
    let res = send(app, &authn_request(SP, "_slo_login", now(app), "")).await;
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let html = app
        .client
        .get(&location)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lt = sesame_tests::extract_lt(&html).unwrap();
    let page = app
        .client
        .post(&location)
        .form(&[
            ("lt", lt.as_str()),
            ("username", login),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let encoded = page
        .split("name=\"SAMLResponse\" value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap()
        .replace("&#x2b;", "+")
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=");
    let xml = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let name_id = doc
        .descendants()
        .find(|n| n.has_tag_name("NameID"))
        .and_then(|n| n.text())
        .unwrap()
        .to_owned();
    let session_index = doc
        .descendants()
        .find(|n| n.has_tag_name("AuthnStatement"))
        .and_then(|n| n.attribute("SessionIndex"))
        .unwrap()
        .to_owned();
    (name_id, session_index, xml)
}

fn logout_request(app: &TestApp, id: &str, name_id: &str, session_index: &str) -> String {
    let instant = now(app)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{instant}"><saml:Issuer>{SP}</saml:Issuer><saml:NameID>{name_id}</saml:NameID><samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"#
    )
}

async fn logged_in(app: &TestApp) -> bool {
    let page = app
        .client
        .get(format!("{}/cas/login", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.contains("id=\"current-user\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a86_a_logout_request_ends_a_session_only_with_the_name_and_session_the_sp_was_given() {
    if !pysaml2_available() {
        return;
    }
    let (app, _) = saml_app_with(false, false).await;
    let login = person(&app, "samlforged").await;
    let (name_id, session_index) = saml_login(&app, &login).await;
    assert!(logged_in(&app).await);
    // Posted by another site (no cookie), with a NameID or SessionIndex the SP was not given:
    // answered (the SP hears Success, as for a session already gone) but nothing ends. (The
    // SP's metadata offers HTTP-Redirect for logout: the response is a redirect.)
    let other = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (id, name, index) in [
        ("_f1", "someone-else", session_index.as_str()),
        ("_f2", name_id.as_str(), "_guessed"),
    ] {
        let res = other
            .post(format!("{}/saml/slo", app.address))
            .form(&[(
                "SAMLRequest",
                STANDARD
                    .encode(logout_request(&app, id, name, index))
                    .as_str(),
            )])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302, "the response goes back to the SP");
        assert!(logged_in(&app).await, "{id}: the session lives on");
    }
    // With both, from the SP's page (still no cookie): the session ends.
    let res = other
        .post(format!("{}/saml/slo", app.address))
        .form(&[(
            "SAMLRequest",
            STANDARD
                .encode(logout_request(&app, "_ok", &name_id, &session_index))
                .as_str(),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://sp.example.org/saml/slo?SAMLResponse="),
        "{location}"
    );
    assert!(!logged_in(&app).await, "the session is over");
}

#[tokio::test]
async fn an_sp_without_an_attribute_list_gets_its_entity_categories_bundle_within_its_requests() {
    // Research & Scholarship under the Code of Conduct, requesting mail and eduPersonPrincipalName.
    let xml = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:mdattr="urn:oasis:names:tc:SAML:metadata:attribute" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" entityID="{SP}"><md:Extensions><mdattr:EntityAttributes><saml:Attribute Name="http://macedir.org/entity-category"><saml:AttributeValue>http://refeds.org/category/research-and-scholarship</saml:AttributeValue><saml:AttributeValue>https://refeds.org/category/code-of-conduct/v2</saml:AttributeValue></saml:Attribute></mdattr:EntityAttributes></md:Extensions><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{ACS}" index="1"/><md:AttributeConsumingService index="0"><md:ServiceName xml:lang="en">Test</md:ServiceName><md:RequestedAttribute Name="urn:oid:0.9.2342.19200300.100.1.3"/><md:RequestedAttribute Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.6"/><md:RequestedAttribute Name="urn:oid:2.5.4.3"/></md:AttributeConsumingService></md:SPSSODescriptor></md:EntityDescriptor>"#
    );
    let path = std::env::temp_dir().join(format!(
        "sesame-rs-sp-{}.xml",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::write(&path, xml).unwrap();
    let metadata_file = path.display().to_string();
    let app = TestApp::builder()
        .with_saml(saml_service_provider(metadata_file, &[]))
        .spawn()
        .await;
    let login = person(&app, "samlrs").await;
    let (_, _, response) = saml_login_xml(&app, &login).await;
    let doc = roxmltree::Document::parse(&response).unwrap();
    let released: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("Attribute"))
        .filter_map(|n| n.attribute("FriendlyName"))
        .collect();
    // The R&S bundle, cut to what the SP requests (cn is requested but not in the bundle).
    assert_eq!(released, ["eduPersonPrincipalName", "mail"], "{response}");
}

/// The federation's signer: `xmlsec1 --sign` of an aggregate template with the federation's
/// key (RSA-SHA256, exclusive C14N), as federations sign their feeds.
fn federation_signs(template: &str, pkcs8: &[u8], cert: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!(
        "sesame-federation-{}",
        sesame_core::random::alphanumeric(12)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let body = STANDARD.encode(pkcs8);
    let mut key = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        key.push_str(std::str::from_utf8(line).unwrap());
        key.push('\n');
    }
    key.push_str("-----END PRIVATE KEY-----\n");
    let (key_file, cert_file, doc) = (
        dir.join("key.pem"),
        dir.join("cert.pem"),
        dir.join("feed.xml"),
    );
    std::fs::write(&key_file, key).unwrap();
    std::fs::write(&cert_file, keys::certificate_pem(cert)).unwrap();
    std::fs::write(&doc, template).unwrap();
    let out = Command::new("xmlsec1")
        .args(["--sign", "--privkey-pem"])
        .arg(format!("{},{}", key_file.display(), cert_file.display()))
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor",
        ])
        .arg(&doc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An aggregate as RENATER publishes one: the pysaml2 SP registered by the federation, and
/// an SP registered elsewhere (eduGAIN), valid until `valid_until`, with a signature template.
fn federation_template(sp_entity: &str, valid_until: time::OffsetDateTime) -> String {
    let sp_entity = match sp_entity.strip_prefix("<?xml") {
        Some(rest) => &rest[rest.find("?>").unwrap() + 2..],
        None => sp_entity,
    };
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:mdrpi="urn:oasis:names:tc:SAML:metadata:rpi" ID="_renater" Name="https://federation.example.org" validUntil="{until}" cacheDuration="PT1H">
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_renater"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/></ds:Signature>
  <md:EntitiesDescriptor Name="registered-here">
    <md:Extensions><mdrpi:RegistrationInfo registrationAuthority="https://federation.example.org/"/></md:Extensions>
    {sp_entity}
  </md:EntitiesDescriptor>
  <md:EntityDescriptor entityID="https://elsewhere.example.net/sp">
    <md:Extensions><mdrpi:RegistrationInfo registrationAuthority="http://www.edugain.org"/></md:Extensions>
    <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
      <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://elsewhere.example.net/acs" index="0"/>
    </md:SPSSODescriptor>
  </md:EntityDescriptor>
</md:EntitiesDescriptor>
"##,
        until = sesame_protocol::saml::format_instant(valid_until),
    )
}

/// Sesame reading the aggregate `publisher` serves, pinned to `pinned` (PEM), keeping it in
/// `backup`, letting in SPs the federation registered; the pysaml2 SP's own release set.
async fn federated_app(
    publisher: &sesame_tests::Publisher,
    pinned: &std::path::Path,
    backup: &std::path::Path,
) -> TestApp {
    let (url, pinned_file, backup_file) = (
        publisher.url.clone(),
        pinned.display().to_string(),
        backup.display().to_string(),
    );
    TestApp::builder()
        .with(move |s| {
            s.metrics.listen = "127.0.0.1:0".to_owned();
            s.saml.enabled = true;
            s.saml.scope = SCOPE.to_owned();
            s.saml.pairwise_salt = "a test salt of enough bytes".into();
            s.saml.metadata_sources.push(SamlMetadataSource {
                name: "renater".to_owned(),
                url,
                signing_certificate_file: pinned_file,
                backup_file,
                max_megabytes: 10,
                min_refresh_minutes: 10,
                max_refresh_minutes: 240,
                registration_authorities: vec!["https://federation.example.org/".to_owned()],
                entities: Vec::new(),
            });
            // The SP's own release, applied when the aggregate carries it.
            s.saml.service_providers.push(SamlServiceProviderSetting {
                metadata_file: String::new(),
                metadata_source: "renater".to_owned(),
                entity_id: SP.to_owned(),
                name: "Bibliothèque (fédération)".to_owned(),
                ..saml_service_provider("", &["mail", "eduPersonPrincipalName"])
            });
        })
        .spawn()
        .await
}

/// Waits until `count` fetches of the aggregate have ended with `outcome` in this process
/// (the metric is the process's: the apps of one test add up).
async fn fetches_ended(app: &TestApp, outcome: &str, count: u32) {
    let metrics = app.metrics_address.clone().expect("metrics on");
    let series = format!(
        r#"sesame_saml_metadata_refreshes_total{{source="renater",outcome="{outcome}"}} {count}"#
    );
    let mut text = String::new();
    for _ in 0..400 {
        text = reqwest::get(format!("{metrics}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.lines().any(|l| l == series) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let seen: Vec<_> = text
        .lines()
        .filter(|l| l.starts_with("sesame_saml"))
        .collect();
    panic!("not {count} fetches ended {outcome}: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a88_an_sp_of_the_federations_signed_aggregate_logs_in_and_one_the_filter_leaves_out_does_not(
) {
    if !pysaml2_available() {
        return;
    }
    let (keydir, metadata_file) = sp_metadata_file(false);
    let sp_entity = std::fs::read_to_string(&metadata_file).unwrap();
    let started = sesame_core::clock::SystemClock.now();
    let (fed_pkcs8, fed_cert) = keys::generate("federation.example.org", started).unwrap();
    let (intruder_pkcs8, intruder_cert) =
        keys::generate("federation.example.org", started).unwrap();
    let feed = federation_template(&sp_entity, started + time::Duration::days(7));
    let temp = federation_temp;
    let (pinned, backup) = (temp("signer.pem"), temp("backup.xml"));
    std::fs::write(&pinned, keys::certificate_pem(&fed_cert)).unwrap();
    // A feed signed by another key: nothing of it is used, nor kept.
    let publisher =
        sesame_tests::Publisher::start(federation_signs(&feed, &intruder_pkcs8, &intruder_cert))
            .await;
    let app = federated_app(&publisher, &pinned, &backup).await;
    fetches_ended(&app, "refused", 1).await;
    refused(
        &send(&app, &authn_request(SP, "_f0", now(&app), "")).await,
        "an SP of a wrongly signed aggregate",
    );
    assert!(!backup.exists(), "a refused aggregate is not kept");
    // The federation's own feed, fetched at the next start (the refresh is minutes away).
    publisher.set(federation_signs(&feed, &fed_pkcs8, &fed_cert));
    let app = federated_app(&publisher, &pinned, &backup).await;
    fetches_ended(&app, "loaded", 1).await;
    let login = person(&app, "samlfed").await;
    let result = login_over_redirect(&app, &keydir, &login);
    let attributes = &result["first"]["attributes"];
    assert_eq!(first_value(attributes, "mail"), &format!("{login}@{SCOPE}"));
    assert_eq!(
        first_value(attributes, "eduPersonPrincipalName"),
        &format!("{login}@{SCOPE}")
    );
    assert!(
        attributes["givenName"].is_null(),
        "only its release: {result}"
    );
    // Registered by another federation: outside the filter, unknown.
    refused(
        &send(
            &app,
            &authn_request("https://elsewhere.example.net/sp", "_f1", now(&app), ""),
        )
        .await,
        "an SP the registration-authority filter leaves out",
    );
    assert!(std::fs::read_to_string(&backup).unwrap().contains(SP));
    // The federation unreachable at the next start: the backup is used.
    publisher.set(String::from("<html>maintenance</html>"));
    let app = federated_app(&publisher, &pinned, &backup).await;
    fetches_ended(&app, "refused", 2).await;
    let res = send(&app, &authn_request(SP, "_f2", now(&app), "")).await;
    assert_eq!(res.status(), 303, "the SP of the backup aggregate is known");
}

/// A88 over HTTP as a federation runs it: an aggregate past its `validUntil` is refused
/// however well signed; while the federation rolls its key both certificates are pinned and the
/// aggregate signed with the new one is taken; once the old one is unpinned, what it signs is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a88_an_expired_aggregate_is_refused_and_the_federations_key_roll_is_followed() {
    let (_keydir, metadata_file) = sp_metadata_file(false);
    let sp_entity = std::fs::read_to_string(&metadata_file).unwrap();
    let started = sesame_core::clock::SystemClock.now();
    let (old_pkcs8, old_cert) = keys::generate("federation.example.org", started).unwrap();
    let (new_pkcs8, new_cert) = keys::generate("federation.example.org", started).unwrap();
    let temp = federation_temp;
    let pinned = temp("signer.pem");
    std::fs::write(&pinned, keys::certificate_pem(&old_cert)).unwrap();
    let valid = federation_template(&sp_entity, started + time::Duration::days(7));
    let expired = federation_template(&sp_entity, started - time::Duration::hours(1));

    let publisher =
        sesame_tests::Publisher::start(federation_signs(&expired, &old_pkcs8, &old_cert)).await;
    let app = federated_app(&publisher, &pinned, &temp("backup.xml")).await;
    fetches_ended(&app, "refused", 1).await;
    refused(
        &send(&app, &authn_request(SP, "_r0", now(&app), "")).await,
        "an SP of an aggregate past its validUntil",
    );

    std::fs::write(
        &pinned,
        keys::certificate_pem(&old_cert) + &keys::certificate_pem(&new_cert),
    )
    .unwrap();
    publisher.set(federation_signs(&valid, &new_pkcs8, &new_cert));
    let app = federated_app(&publisher, &pinned, &temp("backup.xml")).await;
    fetches_ended(&app, "loaded", 1).await;
    let res = send(&app, &authn_request(SP, "_r1", now(&app), "")).await;
    assert_eq!(res.status(), 303, "signed with the new pinned key: known");

    std::fs::write(&pinned, keys::certificate_pem(&new_cert)).unwrap();
    publisher.set(federation_signs(&valid, &old_pkcs8, &old_cert));
    let app = federated_app(&publisher, &pinned, &temp("backup.xml")).await;
    fetches_ended(&app, "refused", 2).await;
    refused(
        &send(&app, &authn_request(SP, "_r2", now(&app), "")).await,
        "an SP of an aggregate signed by the retired key",
    );
}
