//! The SAML service provider of RENATER's federation and eduGAIN, Shibboleth SP (Debian's
//! `libapache2-mod-shib` in Apache, with its `shibd`), protects a page with Sesame as its
//! identity provider: a person opens the page, logs in on Sesame's login page, and the page
//! sees the attributes Shibboleth extracted and filtered (its default attribute policy checks
//! scoped values against the `shibmd:Scope` of Sesame's metadata) from an encrypted assertion;
//! logging out of the SP sends Sesame its signed `LogoutRequest`, which ends the Sesame
//! session too; logging out of Sesame ends the SP's session over SOAP.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sesame_core::account::{AccountState, NewAccount};
use sesame_core::credentials::Password;
use sesame_core::ids::{Affiliation, Email, LoginName};
use sesame_protocol::saml::keys;
use sesame_server::config::saml::SamlServiceProviderSetting;
use sesame_tests::{extract_lt, saml_service_provider, unique_login, TestApp, GOOD_PASSWORD};

const SP: &str = "https://shib-sp.test/shibboleth";
const SCOPE: &str = "univ.example.org";
const MOD_SHIB: &str = "/usr/lib/apache2/modules/mod_shib.so";
const MODULES: &str = "/usr/lib/apache2/modules";

fn shibboleth_available() -> bool {
    let ok = Path::new("/usr/sbin/shibd").exists()
        && Path::new("/usr/sbin/apache2").exists()
        && Path::new(MOD_SHIB).exists();
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "Shibboleth SP must be installed in CI (apt-get install apache2 libapache2-mod-shib)"
        );
        eprintln!("skipped: Shibboleth SP is not installed");
    }
    ok
}

/// shibd and Apache, stopped when dropped.
struct ShibbolethSp {
    dir: PathBuf,
    port: u16,
    shibd: Child,
    apache: Child,
}

impl Drop for ShibbolethSp {
    fn drop(&mut self) {
        // SIGTERM: Apache stops its children before it exits (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.apache.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.apache.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.apache.kill();
        let _ = self.shibd.kill();
        let _ = self.apache.wait();
        let _ = self.shibd.wait();
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &format!("{}/httpd.conf", self.dir.display())])
            .status();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl ShibbolethSp {
    fn logs(&self) -> String {
        ["shibd.out", "apache-error.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                format!(
                    "--- {f}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `der` as PEM under `label`.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// The time the SP's certificate starts at (its dates are not checked by Sesame).
#[expect(
    clippy::disallowed_methods,
    reason = "the certificate of a real SP, outside the app's clock"
)]
fn app_clock_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The SP's metadata as the federation would publish it (as Shibboleth SP writes it), with
/// its certificate (`cert_b64`, DER in base64) for signing and encryption; `soap`: with its
/// back-channel logout service.
fn sp_metadata(port: u16, cert_b64: &str, soap: bool) -> String {
    let soap = if soap {
        format!(
            r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="http://127.0.0.1:{port}/Shibboleth.sso/SLO/SOAP"/>"#
        )
    } else {
        String::new()
    };
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{SP}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    {soap}
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="http://127.0.0.1:{port}/Shibboleth.sso/SLO/Redirect"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="http://127.0.0.1:{port}/Shibboleth.sso/SAML2/POST" index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#
    )
}

const ATTRIBUTE_MAP: &str = r#"<Attributes xmlns="urn:mace:shibboleth:2.0:attribute-map" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
    <Attribute name="urn:oasis:names:tc:SAML:attribute:subject-id" id="subject-id">
        <AttributeDecoder xsi:type="ScopedAttributeDecoder" caseSensitive="false"/>
    </Attribute>
    <Attribute name="urn:oasis:names:tc:SAML:attribute:pairwise-id" id="pairwise-id">
        <AttributeDecoder xsi:type="ScopedAttributeDecoder" caseSensitive="false"/>
    </Attribute>
    <Attribute name="urn:oid:1.3.6.1.4.1.5923.1.1.1.6" id="eppn">
        <AttributeDecoder xsi:type="ScopedAttributeDecoder" caseSensitive="false"/>
    </Attribute>
    <Attribute name="urn:oid:1.3.6.1.4.1.5923.1.1.1.9" id="affiliation">
        <AttributeDecoder xsi:type="ScopedAttributeDecoder" caseSensitive="false"/>
    </Attribute>
    <Attribute name="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" id="persistent-id">
        <AttributeDecoder xsi:type="NameIDAttributeDecoder" formatter="$NameQualifier!$SPNameQualifier!$Name" defaultQualifiers="true"/>
    </Attribute>
    <Attribute name="urn:oid:0.9.2342.19200300.100.1.3" id="mail"/>
    <Attribute name="urn:oid:2.5.4.42" id="givenName"/>
    <Attribute name="urn:oid:2.5.4.4" id="sn"/>
    <Attribute name="urn:oid:2.16.840.1.113730.3.1.241" id="displayName"/>
</Attributes>
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Starts shibd and Apache for the SP on `port`, with Sesame's metadata.
async fn start_sp(dir: PathBuf, port: u16, idp_metadata: &str, idp_entity: &str) -> ShibbolethSp {
    write(&dir, "idp-metadata.xml", idp_metadata);
    write(&dir, "attribute-map.xml", ATTRIBUTE_MAP);
    let d = dir.display();
    write(
        &dir,
        "shibboleth2.xml",
        &format!(
            r#"<SPConfig xmlns="urn:mace:shibboleth:3.0:native:sp:config" xmlns:conf="urn:mace:shibboleth:3.0:native:sp:config" clockSkew="180">
    <OutOfProcess logger="console.logger"/>
    <UnixListener address="{d}/shibd.sock"/>
    <StorageService type="Memory" id="mem" cleanupInterval="900"/>
    <SessionCache type="StorageService" StorageService="mem" cacheAssertions="false" cacheAllowance="900" inprocTimeout="900" cleanupInterval="900"/>
    <ReplayCache StorageService="mem"/>
    <ApplicationDefaults entityID="{SP}" REMOTE_USER="eppn pairwise-id persistent-id">
        <Sessions lifetime="28800" timeout="3600" relayState="ss:mem" checkAddress="false" handlerSSL="false" cookieProps="http" redirectLimit="exact">
            <SSO entityID="{idp_entity}">SAML2</SSO>
            <Logout>SAML2 Local</Logout>
            <Handler type="Session" Location="/Session" showAttributeValues="true"/>
        </Sessions>
        <Errors supportContact="root@localhost" helpLocation="/about.html" styleSheet="/shibboleth-sp/main.css"/>
        <MetadataProvider type="XML" validate="true" path="{d}/idp-metadata.xml"/>
        <AttributeExtractor type="XML" validate="true" reloadChanges="false" path="{d}/attribute-map.xml"/>
        <AttributeFilter type="XML" validate="true" path="/etc/shibboleth/attribute-policy.xml"/>
        <CredentialResolver type="File" key="{d}/sp-key.pem" certificate="{d}/sp-cert.pem"/>
    </ApplicationDefaults>
    <SecurityPolicyProvider type="XML" validate="true" path="/etc/shibboleth/security-policy.xml"/>
    <ProtocolProvider type="XML" validate="true" reloadChanges="false" path="/etc/shibboleth/protocols.xml"/>
</SPConfig>
"#
        ),
    );
    std::fs::create_dir_all(dir.join("htdocs/secure")).unwrap();
    write(
        &dir.join("htdocs/secure"),
        "index.shtml",
        "<html><body><pre>\n<!--#printenv -->\n</pre></body></html>\n",
    );
    write(
        &dir,
        "httpd.conf",
        &format!(
            r#"ServerRoot "{d}"
ServerName 127.0.0.1:{port}
Listen 127.0.0.1:{port}
PidFile "{d}/apache.pid"
DefaultRuntimeDir "{d}"
ErrorLog "{d}/apache-error.log"
LogLevel warn
TypesConfig /etc/mime.types
User www-data
Group www-data
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule authn_core_module {MODULES}/mod_authn_core.so
LoadModule mime_module {MODULES}/mod_mime.so
LoadModule include_module {MODULES}/mod_include.so
LoadModule mod_shib {MOD_SHIB}
ShibConfig "{d}/shibboleth2.xml"
ShibCompatValidUser Off
UseCanonicalName On
DocumentRoot "{d}/htdocs"
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
<Location /Shibboleth.sso>
  SetHandler shib
</Location>
<Directory "{d}/htdocs/secure">
  Options +Includes
  AuthType shibboleth
  ShibRequestSetting requireSession 1
  Require shib-session
</Directory>
"#
        ),
    );
    // Apache's children run as www-data: they read the page and reach shibd's socket.
    let _ = Command::new("chmod")
        .args(["-R", "a+rX", &d.to_string()])
        .status();
    let shibd = Command::new("/usr/sbin/shibd")
        .args(["-F", "-f", "-c"])
        .arg(dir.join("shibboleth2.xml"))
        .arg("-p")
        .arg(dir.join("shibd.pid"))
        .stdout(Stdio::from(
            std::fs::File::create(dir.join("shibd.out")).unwrap(),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("shibd.err")).unwrap(),
        ))
        .spawn()
        .expect("start shibd");
    for _ in 0..300 {
        if dir.join("shibd.sock").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("chmod")
        .args(["a+rw", &format!("{d}/shibd.sock")])
        .status();
    let apache = Command::new("/usr/sbin/apache2")
        .arg("-f")
        .arg(dir.join("httpd.conf"))
        .arg("-DFOREGROUND")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("apache.err")).unwrap(),
        ))
        .spawn()
        .expect("start apache2");
    let sp = ShibbolethSp {
        dir,
        port,
        shibd,
        apache,
    };
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return sp;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("Apache did not listen on {port}:\n{}", sp.logs());
}

/// The form of a page: its action and hidden fields.
fn form_of(html: &str) -> (String, Vec<(String, String)>) {
    let doc_action = html
        .split("<form")
        .nth(1)
        .and_then(|f| f.split("action=\"").nth(1))
        .and_then(|a| a.split('"').next())
        .unwrap_or_default()
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&#x3a;", ":");
    let mut fields = Vec::new();
    for input in html.split("<input").skip(1) {
        let attr = |name: &str| {
            input
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|v| v.split('"').next())
                .map(|v| {
                    v.replace("&#x2b;", "+")
                        .replace("&#x2f;", "/")
                        .replace("&#x3d;", "=")
                        .replace("&#x3a;", ":")
                        .replace("&amp;", "&")
                })
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            fields.push((n, v));
        }
    }
    (doc_action, fields)
}

async fn follow(
    client: &reqwest::Client,
    mut res: reqwest::Response,
    base: &str,
) -> reqwest::Response {
    for _ in 0..10 {
        let Some(location) = res.headers().get("location") else {
            return res;
        };
        let location = location.to_str().unwrap().to_owned();
        let url = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        res = client.get(url).send().await.unwrap();
    }
    res
}

/// The SP's protected page, which must send the browser to Sesame with an `AuthnRequest`
/// (the SP holds no session); that redirect.
async fn asks_sesame(
    browser: &reqwest::Client,
    base: &str,
    app: &TestApp,
    sp: &ShibbolethSp,
) -> reqwest::Response {
    let again = browser
        .get(format!("{base}/secure/index.shtml"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 302, "{}", sp.logs());
    assert!(again.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(&format!("{}/saml/sso?SAMLRequest=", app.address)));
    again
}

/// Sesame, a Shibboleth SP (`soap`: offering back-channel logout) and a person logged in to
/// the SP's protected page through Sesame.
struct LoggedIn {
    app: TestApp,
    sp: ShibbolethSp,
    browser: reqwest::Client,
    base: String,
    login: String,
    idp_entity: String,
    /// The protected page: the environment Shibboleth gave it.
    env: String,
}

async fn logged_in_through_shibboleth(soap: bool) -> LoggedIn {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!(
        "sesame-shib-{}",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // The SP's RSA key (signing and decryption), made before Sesame reads its metadata.
    let (pkcs8, cert) = keys::generate("shib-sp.test", app_clock_now()).unwrap();
    write(&dir, "sp-key.pem", &pem("PRIVATE KEY", &pkcs8));
    write(&dir, "sp-cert.pem", &keys::certificate_pem(&cert));
    let cert_b64 = STANDARD.encode(&cert);
    let metadata_file = dir.join("sp-metadata.xml");
    std::fs::write(&metadata_file, sp_metadata(port, &cert_b64, soap)).unwrap();
    let metadata_file = metadata_file.display().to_string();
    let app = TestApp::builder()
        .with_saml(SamlServiceProviderSetting {
            entity_id: SP.to_owned(),
            name: "Shibboleth".to_owned(),
            encrypt_assertions: Some(true),
            ..saml_service_provider(
                metadata_file,
                &[
                    "mail",
                    "givenName",
                    "sn",
                    "displayName",
                    "eduPersonPrincipalName",
                    "eduPersonScopedAffiliation",
                    "pairwise-id",
                ],
            )
        })
        .spawn()
        .await;
    let login = unique_login("shib");
    let name = LoginName::parse(&login).unwrap();
    app.services
        .accounts
        .create(
            NewAccount {
                login: name.clone(),
                email: Some(Email::parse(&format!("{login}@{SCOPE}")).unwrap()),
                given_name: "Zoé".to_owned(),
                family_name: "Martin".to_owned(),
                affiliation: Affiliation::Student,
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
    let idp_entity = format!("{}/saml/metadata", app.address);
    let idp_metadata = app
        .client
        .get(&idp_entity)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sp = start_sp(dir, port, &idp_metadata, &idp_entity).await;
    let base = format!("http://127.0.0.1:{}", sp.port);
    let browser = sesame_tests::browser();

    // The protected page sends the browser to Sesame with an AuthnRequest, and Sesame to its
    // login page.
    let res = browser
        .get(format!("{base}/secure/index.shtml"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302, "{}", sp.logs());
    let login_page = follow(&browser, res, &base).await;
    let login_url = login_page.url().to_string();
    assert!(
        login_url.starts_with(&format!("{}/cas/login?saml=", app.address)),
        "{login_url}"
    );
    let html = login_page.text().await.unwrap();
    let lt = extract_lt(&html).unwrap();
    let posted = browser
        .post(&login_url)
        .form(&[
            ("lt", lt.as_str()),
            ("username", login.as_str()),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let (action, fields) = form_of(&posted.text().await.unwrap());
    assert_eq!(action, format!("{base}/Shibboleth.sso/SAML2/POST"));
    // Encrypted to the SP: the person's attributes are not in what the browser carries.
    let posted_response = fields
        .iter()
        .find(|(n, _)| n == "SAMLResponse")
        .map(|(_, v)| String::from_utf8(STANDARD.decode(v).unwrap()).unwrap())
        .unwrap();
    assert!(posted_response.contains("<saml:EncryptedAssertion"));
    assert!(!posted_response.contains(&login));
    // The browser posts the response to the SP, which sends it back to the page.
    let consumed = browser.post(&action).form(&fields).send().await.unwrap();
    assert_eq!(consumed.status(), 302, "{}", sp.logs());
    let page = follow(&browser, consumed, &base).await;
    assert_eq!(page.status(), 200, "{}", sp.logs());
    let env = page.text().await.unwrap();
    LoggedIn {
        app,
        sp,
        browser,
        base,
        login,
        idp_entity,
        env,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shibboleth_sp_logs_a_person_in_sees_the_released_attributes_and_logs_out() {
    if !shibboleth_available() {
        return;
    }
    let LoggedIn {
        app,
        sp,
        browser,
        base,
        login,
        idp_entity,
        env,
    } = logged_in_through_shibboleth(true).await;
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    };
    assert_eq!(
        var("Shib-Identity-Provider"),
        Some(idp_entity.clone()),
        "{env}"
    );
    assert_eq!(var("eppn"), Some(format!("{login}@{SCOPE}")), "{env}");
    assert_eq!(
        var("REMOTE_USER"),
        Some(format!("{login}@{SCOPE}")),
        "{env}"
    );
    assert_eq!(var("mail"), Some(format!("{login}@{SCOPE}")), "{env}");
    assert_eq!(var("givenName").as_deref(), Some("Zoé"), "{env}");
    // Scoped values pass Shibboleth's scope check against Sesame's metadata.
    let affiliation = var("affiliation").unwrap_or_default();
    assert!(
        affiliation.contains(&format!("student@{SCOPE}"))
            && affiliation.contains(&format!("member@{SCOPE}")),
        "{env}"
    );
    let pairwise = var("pairwise-id").unwrap_or_default();
    assert!(
        pairwise.ends_with(&format!("@{SCOPE}")) && !pairwise.contains(&login),
        "{env}"
    );
    let persistent = var("persistent-id").unwrap_or_default();
    assert!(
        persistent.starts_with(&format!("{idp_entity}!{SP}!")),
        "{env}"
    );
    assert_eq!(
        var("Shib-AuthnContext-Class").as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"),
        "{env}"
    );

    // Logging out of the SP (SAML 2.0 single logout): Shibboleth sends its LogoutRequest to
    // Sesame, which ends the Sesame session and answers; both sessions are over.
    let sesame_logged_in = |client: reqwest::Client| {
        let url = format!("{}/cas/login", app.address);
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .contains("id=\"current-user\"")
        }
    };
    assert!(sesame_logged_in(browser.clone()).await);
    let out = browser
        .get(format!("{base}/Shibboleth.sso/Logout"))
        .send()
        .await
        .unwrap();
    let out = if out.status().is_success() {
        // Shibboleth's HTTP-POST binding: a page that posts the request to Sesame.
        let (action, fields) = form_of(&out.text().await.unwrap());
        assert_eq!(action, format!("{}/saml/slo", app.address), "{}", sp.logs());
        browser.post(&action).form(&fields).send().await.unwrap()
    } else {
        out
    };
    let back = follow(&browser, out, &base).await;
    let (status, url) = (back.status(), back.url().to_string());
    let body = back.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "{status} {url}: {}\n{}",
        body.chars().take(1500).collect::<String>(),
        sp.logs()
    );
    assert!(
        !sesame_logged_in(browser.clone()).await,
        "the Sesame session ended with the SP's"
    );
    let again = asks_sesame(&browser, &base, &app, &sp).await;

    // Logged in again, then out at Sesame: Shibboleth is told over SOAP (a signed
    // LogoutRequest on the back channel), and its page asks Sesame again.
    let login_page = follow(&browser, again, &base).await;
    let login_url = login_page.url().to_string();
    let lt = extract_lt(&login_page.text().await.unwrap()).unwrap();
    let posted = browser
        .post(&login_url)
        .form(&[
            ("lt", lt.as_str()),
            ("username", login.as_str()),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let (action, fields) = form_of(&posted.text().await.unwrap());
    let consumed = browser.post(&action).form(&fields).send().await.unwrap();
    let page = follow(&browser, consumed, &base).await;
    assert_eq!(page.status(), 200, "{}", sp.logs());
    let out = browser
        .get(format!("{}/cas/logout", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let mut told = false;
    for _ in 0..50 {
        let res = browser
            .get(format!("{base}/secure/index.shtml"))
            .send()
            .await
            .unwrap();
        if res.status() == 302 {
            told = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        told,
        "Shibboleth's session outlived Sesame's:\n{}",
        sp.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shibboleth_sp_without_a_back_channel_is_logged_out_through_the_browser() {
    if !shibboleth_available() {
        return;
    }
    let LoggedIn {
        app,
        sp,
        browser,
        base,
        ..
    } = logged_in_through_shibboleth(false).await;
    // Out at Sesame: the browser goes to Shibboleth's logout service with Sesame's signed
    // LogoutRequest, Shibboleth ends its session and sends it back with its LogoutResponse,
    // and Sesame ends on its logged-out page.
    let out = browser
        .get(format!("{}/cas/logout", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 302, "sent to the SP first");
    let to_sp = out.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to_sp.starts_with(&format!("{base}/Shibboleth.sso/SLO/Redirect?SAMLRequest=")),
        "{to_sp}"
    );
    let end = follow(&browser, out, &base).await;
    let (status, url) = (end.status(), end.url().to_string());
    let page = end.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{url}: {page}\n{}", sp.logs());
    assert!(
        url.starts_with(&format!("{}/saml/slo?SAMLResponse=", app.address)),
        "back at Sesame with Shibboleth's answer: {url}\n{}",
        sp.logs()
    );
    assert!(
        page.contains("Déconnexion réussie") || page.contains("You are logged out"),
        "{page}"
    );
    // Shibboleth's session is over: its page asks Sesame again.
    asks_sesame(&browser, &base, &app, &sp).await;
}
