//! Sesame's SAML signatures checked by an independent implementation: `xmlsec1 --verify`
//! (libxmlsec1, Debian's `xmlsec1`), as a service provider's verifier would check them.

use std::path::PathBuf;
use std::process::Command;

use sesame_protocol::saml::encryption::EncryptionKey;
use sesame_protocol::saml::keys::{certificate_pem, generate};
use sesame_protocol::saml::metadata::{idp_metadata, IdpDescription};
use sesame_protocol::saml::response::{success, Assertion, NameId, ReleasedAttribute};
use sesame_protocol::saml::signature::SigningKey;
use sesame_protocol::saml::NAMEID_PERSISTENT;

/// Writes `content` to a new file of the temporary directory.
fn temp_file(name: &str, content: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "sesame-saml-{}-{name}",
        sesame_core::random::alphanumeric(12)
    ));
    std::fs::write(&path, content).expect("temporary file");
    path
}

/// `xmlsec1 --verify` of `document` with the certificate `cert_pem`, the signed element
/// named by its `ID` attribute (`id_attr`: `ID` of `namespace:Element`). `None` when xmlsec1
/// is not installed outside CI.
fn xmlsec1_verifies(document: &str, cert_pem: &str, id_attr: &str) -> Option<bool> {
    if Command::new("xmlsec1").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "xmlsec1 is not installed (CI=true: .ci/run installs it)"
        );
        eprintln!("skipped: xmlsec1 is not installed");
        return None;
    }
    let doc = temp_file("doc.xml", document);
    let cert = temp_file("cert.pem", cert_pem);
    let out = Command::new("xmlsec1")
        .args(["--verify", "--pubkey-cert-pem"])
        .arg(&cert)
        .args(["--id-attr:ID", id_attr])
        .arg(&doc)
        .output()
        .expect("xmlsec1 runs");
    let _ = std::fs::remove_file(doc);
    let _ = std::fs::remove_file(cert);
    if !out.status.success() {
        eprintln!("xmlsec1: {}", String::from_utf8_lossy(&out.stderr));
    }
    Some(out.status.success())
}

fn key() -> (SigningKey, String) {
    let (pkcs8, cert) = generate("idp.test", now()).expect("key");
    let pem = certificate_pem(&cert);
    (SigningKey::from_pkcs8(&pkcs8, cert).expect("key"), pem)
}

fn response(key: &SigningKey, sign_response: bool) -> String {
    response_for(key, sign_response, None)
}

fn response_for(
    key: &SigningKey,
    sign_response: bool,
    encrypt_for: Option<&EncryptionKey>,
) -> String {
    let attributes = [ReleasedAttribute {
        name: "urn:oid:1.3.6.1.4.1.5923.1.1.1.6".to_owned(),
        friendly_name: "eduPersonPrincipalName".to_owned(),
        values: vec!["ada.lovelace@univ.test".to_owned()],
        as_name_id: None,
    }];
    success(
        &Assertion {
            idp: "https://idp.test/saml/metadata",
            sp: "https://sp.test/shibboleth",
            consumer_url: "https://sp.test/Shibboleth.sso/SAML2/POST",
            in_response_to: Some("_r1"),
            name_id: NameId {
                format: NAMEID_PERSISTENT.to_owned(),
                value: "Zm9vYmFy".to_owned(),
            },
            authn_instant: now(),
            session_index: "_s1",
            authn_context: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
            attributes: &attributes,
            now: now(),
        },
        key,
        sign_response,
        encrypt_for,
    )
    .expect("response")
}

/// The wall clock: xmlsec1 checks nothing of the dates, the service providers would.
#[expect(
    clippy::disallowed_methods,
    reason = "an interop test against the real clock"
)]
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion";
const RESPONSE: &str = "urn:oasis:names:tc:SAML:2.0:protocol:Response";

#[test]
fn xmlsec1_verifies_the_signed_assertion_and_refuses_it_once_changed() {
    let (key, pem) = key();
    let xml = response(&key, false);
    let Some(verified) = xmlsec1_verifies(&xml, &pem, ASSERTION) else {
        return;
    };
    assert!(verified, "{xml}");
    let changed = xml.replace("ada.lovelace@univ.test", "eve@univ.test");
    assert_ne!(changed, xml);
    assert_eq!(xmlsec1_verifies(&changed, &pem, ASSERTION), Some(false));
    let (_, other_pem) = self::key();
    assert_eq!(
        xmlsec1_verifies(&xml, &other_pem, ASSERTION),
        Some(false),
        "another key does not verify it"
    );
}

#[test]
fn xmlsec1_verifies_a_signed_response_around_its_signed_assertion() {
    let (key, pem) = key();
    let xml = response(&key, true);
    // The first signature in document order is the response's: it covers the assertion and
    // the assertion's own signature.
    assert_ne!(xmlsec1_verifies(&xml, &pem, RESPONSE), Some(false), "{xml}");
}

#[test]
fn xmlsec1_verifies_the_identity_providers_metadata() {
    let (key, pem) = key();
    let xml = idp_metadata(
        &IdpDescription {
            entity_id: "https://idp.test/saml/metadata",
            sso_url: "https://idp.test/saml/SSO",
            slo_url: "https://idp.test/saml/SLO",
            scope: "univ.test",
            display_names: &[("fr", "Université de test")],
            valid_until: now() + time::Duration::days(7),
            logo: Some(("https://idp.test/logo.png", 80, 60)),
            information_url: None,
            organization: Some(("Université de test", "https://univ.test")),
            contacts: &[("technical", "dsi@univ.test")],
        },
        &key,
        &[],
    )
    .expect("metadata");
    let verified = xmlsec1_verifies(
        &xml,
        &pem,
        "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
    );
    assert_ne!(verified, Some(false), "{xml}");
}

/// `xmlsec1 --decrypt` of `document` with the PKCS#8 private key `pkcs8`: the decrypted
/// document, or `None` when it fails.
fn xmlsec1_decrypts(document: &str, pkcs8: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(pkcs8);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let doc = temp_file("enc.xml", document);
    let key = temp_file("sp-key.pem", &pem);
    let out = Command::new("xmlsec1")
        .args(["--decrypt", "--privkey-pem"])
        .arg(&key)
        .arg(&doc)
        .output()
        .expect("xmlsec1 runs");
    let _ = std::fs::remove_file(doc);
    let _ = std::fs::remove_file(key);
    if !out.status.success() {
        eprintln!("xmlsec1: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn xmlsec1_decrypts_an_encrypted_assertion_and_verifies_its_signature() {
    if Command::new("xmlsec1").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "xmlsec1 is not installed"
        );
        return;
    }
    let (key, pem) = key();
    let (sp_pkcs8, sp_cert) = generate("sp.test", now()).expect("SP key");
    let sp_key = EncryptionKey::from_certificate(&sp_cert).expect("SP encryption key");
    let xml = response_for(&key, false, Some(&sp_key));
    // Nothing of the person is readable in what the browser posts.
    assert!(!xml.contains("ada.lovelace"), "{xml}");
    assert!(xml.contains("<saml:EncryptedAssertion"), "{xml}");
    let decrypted = xmlsec1_decrypts(&xml, &sp_pkcs8).expect("the SP's key decrypts it");
    assert!(decrypted.contains("ada.lovelace@univ.test"), "{decrypted}");
    // The assertion inside is the signed one.
    assert_eq!(
        xmlsec1_verifies(&decrypted, &pem, ASSERTION),
        Some(true),
        "{decrypted}"
    );
    // Another SP's key does not decrypt it.
    let (other_pkcs8, _) = generate("other.test", now()).expect("key");
    assert!(xmlsec1_decrypts(&xml, &other_pkcs8).is_none());
}

fn private_key_pem(pkcs8: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(pkcs8);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// `xmlsec1 --sign` of the template `document` (its `ds:Signature` left empty) with the key
/// `pkcs8` and its certificate: what a federation's signer or an SP's library sends.
fn xmlsec1_signs(document: &str, pkcs8: &[u8], cert_pem: &str, id_attr: &str) -> String {
    let doc = temp_file("template.xml", document);
    let key = temp_file("signer-key.pem", &private_key_pem(pkcs8));
    let cert = temp_file("signer-cert.pem", cert_pem);
    let key_and_cert = format!("{},{}", key.display(), cert.display());
    let out = Command::new("xmlsec1")
        .args([
            "--sign",
            "--privkey-pem",
            &key_and_cert,
            "--id-attr:ID",
            id_attr,
        ])
        .arg(&doc)
        .output()
        .expect("xmlsec1 runs");
    for path in [doc, key, cert] {
        let _ = std::fs::remove_file(path);
    }
    assert!(
        out.status.success(),
        "xmlsec1 --sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// A signature template: exclusive canonicalisation, RSA-SHA256, one reference to `#{id}`
/// (`ds` bound to the signature namespace by `ds_declaration`, `prefix` before each name).
fn signature_template(id: &str, ds_declaration: &str, prefix: &str, prefix_list: &str) -> String {
    let inclusive = if prefix_list.is_empty() {
        String::new()
    } else {
        format!(
            r#"<ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="{prefix_list}"/>"#
        )
    };
    format!(
        r##"<{p}Signature {ds_declaration}>
  <{p}SignedInfo>
    <{p}CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
    <{p}SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
    <{p}Reference URI="#{id}">
      <{p}Transforms>
        <{p}Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
        <{p}Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#">{inclusive}</{p}Transform>
      </{p}Transforms>
      <{p}DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
      <{p}DigestValue/>
    </{p}Reference>
  </{p}SignedInfo>
  <{p}SignatureValue/>
  <{p}KeyInfo><{p}X509Data/></{p}KeyInfo>
</{p}Signature>"##,
        p = prefix
    )
}

/// Documents written the ways others write them: namespaces declared far from their use,
/// a default namespace and its undeclaration, `xsi:type` values naming a prefix (hence
/// `InclusiveNamespaces`), `xml:lang`, comments, CDATA, character references, CR LF line
/// ends, tabs and newlines in attribute values, processing instructions.
fn foreign_documents() -> Vec<(&'static str, String)> {
    let aggregate = |signature: String| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<!-- federation feed -->\r\n\
<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" xmlns:mdui=\"urn:oasis:names:tc:SAML:metadata:ui\" \
xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" \
xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:unused=\"urn:unused\" \
ID=\"_feed\" Name=\"urn:fed:test\" validUntil=\"2030-01-01T00:00:00Z\" cacheDuration=\"PT6H\">\r\n\
  {signature}\r\n\
  <md:EntityDescriptor entityID=\"https://sp.univ.test/shibboleth\">\r\n\
    <md:Extensions><?pi data ?>\r\n\
      <mdattr:EntityAttributes xmlns:mdattr=\"urn:oasis:names:tc:SAML:metadata:attribute\">\r\n\
        <saml:Attribute Name=\"http://macedir.org/entity-category\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\">\r\n\
          <saml:AttributeValue xsi:type=\"xs:string\">http://refeds.org/category/research-and-scholarship</saml:AttributeValue>\r\n\
        </saml:Attribute>\r\n\
      </mdattr:EntityAttributes>\r\n\
      <mdui:UIInfo><mdui:DisplayName xml:lang=\"fr\">Biblioth&#xE8;que &amp; <![CDATA[<archives>]]> \u{e9}t\u{e9}</mdui:DisplayName></mdui:UIInfo>\r\n\
    </md:Extensions>\r\n\
    <md:SPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\" note=\"a&#9;b&#10;c\td\">\r\n\
      <!-- keys rolled 2026 -->\r\n\
      <md:AssertionConsumerService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"https://sp.univ.test/Shibboleth.sso/SAML2/POST?a=1&amp;b=2\" index=\"1\"/>\r\n\
      <Organization xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\"><OrganizationName xml:lang=\"en\">Univ</OrganizationName><x xmlns=\"\">raw</x></Organization>\r\n\
    </md:SPSSODescriptor>\r\n\
  </md:EntityDescriptor>\r\n\
</md:EntitiesDescriptor>\r\n"
        )
    };
    let ds = r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#""#;
    vec![
        (
            "urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor",
            aggregate(signature_template("_feed", ds, "ds:", "xs")),
        ),
        (
            "urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor",
            aggregate(signature_template(
                "_feed",
                r#"xmlns="http://www.w3.org/2000/09/xmldsig#""#,
                "",
                "",
            )),
        ),
        (
            "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest",
            format!(
                r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="id-7f3a" Version="2.0" IssueInstant="2026-12-07T06:00:00Z" Destination="https://idp.test/saml/sso" AssertionConsumerServiceURL="https://sp.test/acs"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">https://sp.test/metadata</saml:Issuer>{}<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/></samlp:AuthnRequest>"#,
                signature_template("id-7f3a", ds, "ds:", "")
            ),
        ),
    ]
}

#[test]
fn a87_what_xmlsec1_signs_sesame_verifies_and_nothing_changed_or_under_another_key() {
    use sesame_protocol::saml::verify::verify_enveloped;
    if Command::new("xmlsec1").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "xmlsec1 is not installed"
        );
        return;
    }
    let (pkcs8, cert) = generate("fed.test", now()).expect("key");
    let (_, other_cert) = generate("fed.test", now()).expect("key");
    let pem = certificate_pem(&cert);
    let verify = |xml: &str, certs: &[Vec<u8>]| {
        let doc = roxmltree::Document::parse(xml).expect("XML");
        verify_enveloped(doc.root_element(), certs)
    };
    for (id_attr, template) in foreign_documents() {
        let signed = xmlsec1_signs(&template, &pkcs8, &pem, id_attr);
        assert!(signed.contains("<ds:DigestValue>") || signed.contains("<DigestValue>"));
        assert_eq!(
            verify(&signed, std::slice::from_ref(&cert)),
            Ok(()),
            "{id_attr}: {signed}"
        );
        assert!(verify(&signed, std::slice::from_ref(&other_cert)).is_err());
        let mut changes = 0;
        for (from, to) in [
            ("https://sp", "https://sq"),
            ("PT6H", "PT7H"),
            ("AllowCreate=\"true\"", "AllowCreate=\"false\""),
        ] {
            if signed.contains(from) {
                let changed = signed.replacen(from, to, 1);
                let err = verify(&changed, std::slice::from_ref(&cert)).unwrap_err();
                assert!(err.to_string().contains("digest"), "{from}: {err}");
                changes += 1;
            }
        }
        assert!(
            changes >= 2,
            "each document is changed at least twice: {id_attr}"
        );
    }
}
