//! SAML at the end of a login (Web Browser SSO profile, SAML 2.0 profiles §4.1.4.2): a signed
//! assertion about the person for one service provider, posted by the browser to one of the
//! SP's consumer services, with what the session must remember for single logout.

use async_trait::async_trait;
use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sesame_core::account::Account;
use sesame_core::ids::Affiliation;
use sesame_core::login::methods::Assurance;
use sesame_core::random;
use sesame_core::session::{AttachedProtocol, Attachment};
use time::OffsetDateTime;

use super::key_store::SamlKeySet;
use super::new_id;
use super::providers::{NameIdFormat, SamlServiceProvider};
use super::response::{self, Assertion, NameId, NameIdQualifiers, ReleasedAttribute};
use crate::attributes::saml_attributes;
use crate::issuer::{BrowserResponse, IssueError, Issued, Issuer, IssuingSession};

/// The authentication context of a login with a password (SAML 2.0 authentication
/// context §3.4.7).
pub const PASSWORD_PROTECTED_TRANSPORT: &str =
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
/// REFEDS MFA: a login with a second factor.
pub const REFEDS_MFA: &str = "https://refeds.org/profile/mfa";
/// The `pairwise-id` attribute (OASIS SAML V2.0 Subject Identifier Attributes §3.4).
pub const PAIRWISE_ID: &str = "urn:oasis:names:tc:SAML:attribute:pairwise-id";

/// What a session remembers of an assertion, for single logout (the payload of a SAML
/// [`Attachment`]): how the SP names the person and the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedAssertion {
    /// The `NameID` value.
    pub name_id: String,
    /// Its format.
    pub format: String,
    /// The `SessionIndex`.
    pub session_index: String,
}

/// What the SP asked, as the issuer needs it.
#[derive(Debug, Clone, Copy)]
pub struct SamlRequest<'a> {
    /// The service provider.
    pub sp: &'a SamlServiceProvider,
    /// The consumer service the response goes to: one of the SP's metadata, chosen by the
    /// caller (`ServiceProvider::consumer_for`).
    pub consumer_url: &'a str,
    /// The request answered; `None` for an unsolicited response.
    pub in_response_to: Option<&'a str>,
    /// `RelayState`, given back as it came.
    pub relay_state: Option<&'a str>,
    /// The `NameID` format to issue.
    pub name_id_format: NameIdFormat,
    /// The account, as just read and checked active by the caller.
    pub account: &'a Account,
}

/// The persistent, pairwise identifier of `account` for the SP `sp_entity_id`: an HMAC of
/// both under the deployment's salt, so that it is stable, different for every SP, and tells
/// nothing of the login or of the identifiers other SPs get.
pub fn pairwise_id(salt: &[u8], sp_entity_id: &str, account: &Account) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
    let mut context = hmac::Context::with_key(&key);
    context.update(sp_entity_id.as_bytes());
    context.update(&[0]);
    context.update(account.id.0.as_bytes());
    hex::encode(context.sign().as_ref())
}

/// The `SessionIndex` of the session `handle`: derived from it (so every SP of one session
/// gets the same), without giving out the handle itself.
pub fn session_index(handle: &str) -> String {
    format!(
        "_{}",
        &random::sha256_hex(&format!("saml-session-index:{handle}"))[..40]
    )
}

/// SAML's issuer.
#[derive(Debug, Clone, Copy)]
pub struct SamlIssuer<'a> {
    /// The identity provider's entity ID.
    pub entity_id: &'a str,
    /// The institution's scope.
    pub scope: &'a str,
    /// The signing keys.
    pub keys: &'a SamlKeySet,
    /// The salt of persistent identifiers.
    pub pairwise_salt: &'a [u8],
    /// The `eduPersonEntitlement` values of each affiliation, where the deployment gives some
    /// (`urn:mace:dir:entitlement:common-lib-terms` for publishers' platforms).
    pub entitlements: &'a [(Affiliation, Vec<String>)],
    /// The `eduPersonAssurance` values the institution asserts of everyone it describes
    /// (REFEDS Assurance Framework: identifier uniqueness, identity proofing, affiliation
    /// freshness).
    pub assurance: &'a [String],
    /// The institution's SUPANN code (`supannEtablissement`, `{UAI}0751717J`); empty: none.
    pub establishment: &'a str,
    /// Now.
    pub now: OffsetDateTime,
}

/// `eduPersonTargetedID`: the pairwise identifier as a qualified `NameID` (eduPerson; SPs
/// that predate `pairwise-id` still ask for it).
pub const EDU_PERSON_TARGETED_ID: &str = "urn:oid:1.3.6.1.4.1.5923.1.1.1.10";
/// `eduPersonEntitlement`: rights the person holds (URIs), by affiliation.
pub const EDU_PERSON_ENTITLEMENT: &str = "urn:oid:1.3.6.1.4.1.5923.1.1.1.7";
/// `supannEtablissement`: the institution, as SUPANN codes it (`{UAI}…`).
pub const SUPANN_ETABLISSEMENT: &str = "urn:oid:1.3.6.1.4.1.7135.1.2.1.14";
/// `eduPersonAssurance`: the assurance the institution gives of the description (URIs).
pub const EDU_PERSON_ASSURANCE: &str = "urn:oid:1.3.6.1.4.1.5923.1.1.1.11";

/// The attributes the issuer itself makes (per SP, or from the deployment's settings), by
/// friendly name, beside those of the release table.
pub const ISSUER_ATTRIBUTES: &[&str] = &[
    "pairwise-id",
    "eduPersonTargetedID",
    "eduPersonEntitlement",
    "eduPersonAssurance",
    "supannEtablissement",
];

/// `fields` posted to `consumer_url` by the browser, with `RelayState` when there is one.
fn auto_post(
    consumer_url: &str,
    title: &str,
    response_xml: &str,
    relay_state: Option<&str>,
) -> BrowserResponse {
    let mut fields = vec![(
        "SAMLResponse".to_owned(),
        STANDARD.encode(response_xml.as_bytes()),
    )];
    if let Some(relay) = relay_state {
        fields.push(("RelayState".to_owned(), relay.to_owned()));
    }
    BrowserResponse::AutoPost {
        action: consumer_url.to_owned(),
        fields,
        title: title.to_owned(),
    }
}

impl SamlIssuer<'_> {
    /// A response saying no assertion is given (`status`, with a second-level `sub_status`
    /// such as `NoPassive`), posted to the SP's `consumer_url` like a success; `title` is the
    /// SP's name for the page.
    ///
    /// # Errors
    /// [`IssueError::Signing`] when no key may sign.
    pub fn refuse(
        &self,
        title: &str,
        consumer_url: &str,
        in_response_to: Option<&str>,
        relay_state: Option<&str>,
        status: &str,
        sub_status: &str,
    ) -> Result<BrowserResponse, IssueError> {
        let key = self
            .keys
            .current(self.now)
            .ok_or_else(|| IssueError::Signing("no SAML key may sign".to_owned()))?;
        let xml = response::failure(
            self.entity_id,
            consumer_url,
            in_response_to,
            status,
            Some(sub_status),
            self.now,
            &key.key,
        )
        .map_err(|e| IssueError::Signing(e.to_string()))?;
        Ok(auto_post(consumer_url, title, &xml, relay_state))
    }
}

#[async_trait]
impl Issuer for SamlIssuer<'_> {
    type Request<'r> = SamlRequest<'r>;

    async fn issue<'r>(
        &self,
        session: IssuingSession<'_>,
        request: SamlRequest<'r>,
    ) -> Result<Issued, IssueError> {
        let key = self
            .keys
            .current(self.now)
            .ok_or_else(|| IssueError::Signing("no SAML key may sign".to_owned()))?;
        let sp = request.sp;
        let entity = sp.metadata.entity_id.as_str();
        let pairwise = pairwise_id(self.pairwise_salt, entity, request.account);
        let name_id = match request.name_id_format {
            NameIdFormat::Persistent => pairwise.clone(),
            NameIdFormat::Transient => new_id(),
        };
        let mut attributes: Vec<ReleasedAttribute> =
            saml_attributes(request.account, &sp.attributes, self.scope)
                .into_iter()
                .map(|a| ReleasedAttribute {
                    name: a.name.to_owned(),
                    friendly_name: a.friendly_name.to_owned(),
                    values: a.values,
                    as_name_id: None,
                })
                .collect();
        let allowed = |name: &str| sp.attributes.iter().any(|a| a == name);
        if allowed("pairwise-id") {
            attributes.push(ReleasedAttribute {
                name: PAIRWISE_ID.to_owned(),
                friendly_name: "pairwise-id".to_owned(),
                values: vec![format!("{pairwise}@{}", self.scope)],
                as_name_id: None,
            });
        }
        if allowed("eduPersonTargetedID") {
            attributes.push(ReleasedAttribute {
                name: EDU_PERSON_TARGETED_ID.to_owned(),
                friendly_name: "eduPersonTargetedID".to_owned(),
                values: vec![pairwise.clone()],
                as_name_id: Some(NameIdQualifiers {
                    idp: self.entity_id.to_owned(),
                    sp: entity.to_owned(),
                }),
            });
        }
        if allowed("eduPersonEntitlement") {
            let values: Vec<String> = self
                .entitlements
                .iter()
                .filter(|(affiliation, _)| *affiliation == request.account.affiliation)
                .flat_map(|(_, values)| values.iter().cloned())
                .collect();
            if !values.is_empty() {
                attributes.push(ReleasedAttribute {
                    name: EDU_PERSON_ENTITLEMENT.to_owned(),
                    friendly_name: "eduPersonEntitlement".to_owned(),
                    values,
                    as_name_id: None,
                });
            }
        }
        if allowed("supannEtablissement") && !self.establishment.is_empty() {
            attributes.push(ReleasedAttribute {
                name: SUPANN_ETABLISSEMENT.to_owned(),
                friendly_name: "supannEtablissement".to_owned(),
                values: vec![self.establishment.to_owned()],
                as_name_id: None,
            });
        }
        if allowed("eduPersonAssurance") && !self.assurance.is_empty() {
            attributes.push(ReleasedAttribute {
                name: EDU_PERSON_ASSURANCE.to_owned(),
                friendly_name: "eduPersonAssurance".to_owned(),
                values: self.assurance.to_vec(),
                as_name_id: None,
            });
        }
        let session_index = session_index(session.handle);
        let authn_context = if session.session.methods.assurance() >= Some(Assurance::MultiFactor) {
            REFEDS_MFA
        } else {
            PASSWORD_PROTECTED_TRANSPORT
        };
        let assertion = Assertion {
            idp: self.entity_id,
            sp: entity,
            consumer_url: request.consumer_url,
            in_response_to: request.in_response_to,
            name_id: NameId {
                format: request.name_id_format.uri().to_owned(),
                value: name_id.clone(),
            },
            authn_instant: session.session.authenticated_at,
            session_index: &session_index,
            authn_context,
            attributes: &attributes,
            now: self.now,
        };
        let xml = response::success(
            &assertion,
            &key.key,
            sp.sign_response,
            sp.encryption_key.as_deref(),
        )
        .map_err(|e| IssueError::Signing(e.to_string()))?;
        let record = IssuedAssertion {
            name_id,
            format: request.name_id_format.uri().to_owned(),
            session_index,
        };
        let payload = serde_json::to_string(&record)
            .map_err(|e| IssueError::Signing(format!("session record: {e}")))?;
        Ok(Issued {
            response: auto_post(request.consumer_url, &sp.name, &xml, request.relay_state),
            attachment: Some(Attachment::new(AttachedProtocol::Saml, entity, payload)),
        })
    }
}

#[cfg(test)]
mod tests {
    use sesame_core::account::AccountState;
    use sesame_core::ids::{AccountId, Affiliation, LoginName};

    use super::*;

    fn account() -> Account {
        Account {
            id: AccountId::new_random(),
            login: LoginName::parse("jean.dupont").unwrap(),
            email: None,
            given_name: "Jean".to_owned(),
            family_name: "Dupont".to_owned(),
            affiliation: Affiliation::Staff,
            state: AccountState::Active,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_persistent_identifier_is_stable_per_sp_and_differs_between_sps_and_salts() {
        let a = account();
        let id = pairwise_id(b"salt of the deployment", "https://sp1.test", &a);
        assert_eq!(
            id,
            pairwise_id(b"salt of the deployment", "https://sp1.test", &a)
        );
        assert_eq!(id.len(), 64);
        assert!(!id.contains("jean"));
        assert_ne!(
            id,
            pairwise_id(b"salt of the deployment", "https://sp2.test", &a)
        );
        assert_ne!(id, pairwise_id(b"another salt", "https://sp1.test", &a));
        assert_ne!(
            id,
            pairwise_id(b"salt of the deployment", "https://sp1.test", &account())
        );
    }

    #[test]
    fn the_session_index_names_the_session_without_giving_its_handle() {
        let index = session_index("handle-1");
        assert_eq!(index, session_index("handle-1"));
        assert_ne!(index, session_index("handle-2"));
        assert!(index.starts_with('_') && !index.contains("handle"));
    }
}
