//! SAML at the end of a login (Web Browser SSO profile, SAML 2.0 profiles §4.1.4.2): a signed
//! assertion about the person for one service provider, posted by the browser to one of the
//! SP's consumer services, with what the session must remember for single logout.

use async_trait::async_trait;
use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sesame_core::account::{Account, AccountProfile};
use sesame_core::ids::Affiliation;
use sesame_core::login::methods::Assurance;
use sesame_core::random;
use sesame_core::session::{AttachedProtocol, Attachment};
use time::OffsetDateTime;

use super::key_store::SamlKeySet;
use super::new_id;
use super::providers::{NameIdFormat, SamlServiceProvider};
use super::response::{self, Assertion, NameId, NameIdQualifiers, ReleasedAttribute};
use crate::attributes::{saml_attributes, supann_liste_rouge};
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
    /// Its profile, read by the caller only when the SP is released an attribute that comes
    /// from it ([`needs_profile`]); without it those attributes are left out.
    pub profile: Option<&'a AccountProfile>,
}

/// Where the `GARPersonIdentifiant` released to the GAR comes from: it must be the
/// identifier under which the school's feed to the GAR (its `GARPersonIdentifiant`) lists
/// the person, or the GAR knows nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GarPersonIdentifier {
    /// The account's identifier (the OIDC `sub`, LDAP's `entryUUID`): for a feed built from
    /// what Sesame tells the applications.
    #[default]
    AccountId,
    /// The identifier of the HR or student system the account was imported with (`hr_id`):
    /// for a feed built from that system.
    HrId,
}

/// What the deployment says of its connection to the GAR.
#[derive(Debug, Clone, Copy, Default)]
pub struct GarRelease<'a> {
    /// The ENT's identifier the GAR gave it (`idEnt`); empty: not connected.
    pub ent_id: &'a str,
    /// Where `GARPersonIdentifiant` comes from.
    pub person_identifier: GarPersonIdentifier,
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
    /// The connection to the GAR.
    pub gar: GarRelease<'a>,
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

/// `supannEtuId`: the student number (SUPANN), the HR identifier of a student.
pub const SUPANN_ETU_ID: &str = "urn:oid:1.3.6.1.4.1.7135.1.2.1.10";
/// `supannEmpId`: the staff number (SUPANN), the HR identifier of staff and faculty.
pub const SUPANN_EMP_ID: &str = "urn:oid:1.3.6.1.4.1.7135.1.2.1.11";
/// `supannListeRouge`: `TRUE` when the person asked to be left out of public directories.
pub const SUPANN_LISTE_ROUGE: &str = "urn:oid:1.3.6.1.4.1.7135.1.2.1.1";
/// The GAR's person identifier, named in the basic format as the GAR reads it.
pub const GAR_PERSON_IDENTIFIER: &str = "GARPersonIdentifiant";
/// The ENT's identifier at the GAR, named in the basic format as the GAR reads it.
pub const GAR_ENT_ID: &str = "idEnt";

/// The attributes the issuer itself makes (per SP, or from the deployment's settings), by
/// friendly name, beside those of the release table.
pub const ISSUER_ATTRIBUTES: &[&str] = &[
    "pairwise-id",
    "eduPersonTargetedID",
    "eduPersonEntitlement",
    "eduPersonAssurance",
    "supannEtablissement",
    "supannEtuId",
    "supannEmpId",
    "supannListeRouge",
    GAR_PERSON_IDENTIFIER,
    GAR_ENT_ID,
];

/// The attributes that come from the account's profile: released only to the SPs that list
/// them, at the cost of one read of the profile per assertion (the other attributes come from
/// the account the session already holds).
const PROFILE_ATTRIBUTES: &[&str] = &["supannEtuId", "supannEmpId", "supannListeRouge"];

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

/// Whether an assertion for an SP released `attributes` needs the account's profile.
pub fn needs_profile(attributes: &[String], gar: &GarRelease<'_>) -> bool {
    attributes.iter().any(|a| {
        PROFILE_ATTRIBUTES.contains(&a.as_str())
            || (a == GAR_PERSON_IDENTIFIER && gar.person_identifier == GarPersonIdentifier::HrId)
    })
}

/// The attributes an SP listing `allowed` gets from the profile and the GAR settings.
fn profile_and_gar_attributes(
    gar: &GarRelease<'_>,
    allowed: &dyn Fn(&str) -> bool,
    account: &Account,
    profile: Option<&AccountProfile>,
) -> Vec<ReleasedAttribute> {
    let plain = |name: &str, friendly: &str, value: String| ReleasedAttribute {
        name: name.to_owned(),
        friendly_name: friendly.to_owned(),
        values: vec![value],
        as_name_id: None,
    };
    let mut released = Vec::new();
    let hr_id = profile.and_then(|p| p.hr_id.as_ref()).map(|h| h.as_str());
    if let Some(hr_id) = hr_id {
        match account.affiliation {
            Affiliation::Student if allowed("supannEtuId") => {
                released.push(plain(SUPANN_ETU_ID, "supannEtuId", hr_id.to_owned()));
            }
            Affiliation::Staff | Affiliation::Faculty if allowed("supannEmpId") => {
                released.push(plain(SUPANN_EMP_ID, "supannEmpId", hr_id.to_owned()));
            }
            _ => {}
        }
    }
    if let Some(profile) = profile {
        if allowed("supannListeRouge") {
            released.push(plain(
                SUPANN_LISTE_ROUGE,
                "supannListeRouge",
                supann_liste_rouge(profile).to_owned(),
            ));
        }
    }
    if allowed(GAR_PERSON_IDENTIFIER) {
        let identifier = match gar.person_identifier {
            GarPersonIdentifier::AccountId => Some(account.id.to_string()),
            GarPersonIdentifier::HrId => hr_id.map(str::to_owned),
        };
        if let Some(identifier) = identifier {
            released.push(plain(
                GAR_PERSON_IDENTIFIER,
                GAR_PERSON_IDENTIFIER,
                identifier,
            ));
        }
    }
    if allowed(GAR_ENT_ID) && !gar.ent_id.is_empty() {
        released.push(plain(GAR_ENT_ID, GAR_ENT_ID, gar.ent_id.to_owned()));
    }
    released
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
        attributes.extend(profile_and_gar_attributes(
            &self.gar,
            &allowed,
            request.account,
            request.profile,
        ));
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

    fn released(
        gar: &GarRelease<'_>,
        listed: &[&str],
        account: &Account,
        profile: Option<&AccountProfile>,
    ) -> Vec<(String, String, Vec<String>)> {
        let allowed = |name: &str| listed.contains(&name);
        profile_and_gar_attributes(gar, &allowed, account, profile)
            .into_iter()
            .map(|a| (a.name, a.friendly_name, a.values))
            .collect()
    }

    fn profile(hr_id: &str, directory_opt_in: bool) -> AccountProfile {
        AccountProfile {
            hr_id: Some(sesame_core::ids::HrId::parse(hr_id).unwrap()),
            directory_opt_in,
            ..AccountProfile::default()
        }
    }

    #[test]
    fn the_hr_identifier_is_released_as_the_supann_number_of_the_persons_kind_only() {
        let all = ["supannEtuId", "supannEmpId"];
        let gar = GarRelease::default();
        let mut student = account();
        student.affiliation = Affiliation::Student;
        let p = profile("e2024001", true);
        assert_eq!(
            released(&gar, &all, &student, Some(&p)),
            vec![(
                SUPANN_ETU_ID.to_owned(),
                "supannEtuId".to_owned(),
                vec!["E2024001".to_owned()]
            )]
        );
        // Staff: the staff number, never as a student number.
        assert_eq!(
            released(&gar, &all, &account(), Some(&p))[0].1,
            "supannEmpId"
        );
        // Not listed for the SP, or a pupil (the INE is not a SUPANN number): nothing.
        assert!(released(&gar, &["supannEmpId"], &student, Some(&p)).is_empty());
        let mut pupil = account();
        pupil.affiliation = Affiliation::Pupil;
        assert!(released(&gar, &all, &pupil, Some(&p)).is_empty());
        // No profile read: nothing, rather than a guess.
        assert!(released(&gar, &all, &student, None).is_empty());
    }

    #[test]
    fn the_red_list_says_true_for_whoever_did_not_opt_into_the_directory() {
        let gar = GarRelease::default();
        let listed = ["supannListeRouge"];
        let value = |opt_in| released(&gar, &listed, &account(), Some(&profile("1", opt_in)));
        assert_eq!(value(false)[0].2, vec!["TRUE".to_owned()]);
        assert_eq!(value(true)[0].2, vec!["FALSE".to_owned()]);
        assert_eq!(value(true)[0].0, SUPANN_LISTE_ROUGE);
    }

    #[test]
    fn the_gar_gets_the_chosen_person_identifier_and_the_ent_id_in_basic_names() {
        let listed = [GAR_PERSON_IDENTIFIER, GAR_ENT_ID];
        let a = account();
        let p = profile("123456789ab", true);
        let by_account = GarRelease {
            ent_id: "ENT-ACADEMIE",
            person_identifier: GarPersonIdentifier::AccountId,
        };
        assert_eq!(
            released(&by_account, &listed, &a, None),
            vec![
                (
                    "GARPersonIdentifiant".to_owned(),
                    "GARPersonIdentifiant".to_owned(),
                    vec![a.id.to_string()]
                ),
                (
                    "idEnt".to_owned(),
                    "idEnt".to_owned(),
                    vec!["ENT-ACADEMIE".to_owned()]
                ),
            ]
        );
        let by_hr_id = GarRelease {
            person_identifier: GarPersonIdentifier::HrId,
            ..by_account
        };
        assert_eq!(
            released(&by_hr_id, &listed, &a, Some(&p))[0].2,
            vec!["123456789AB".to_owned()]
        );
        // A person without an HR identifier is not given another one.
        assert_eq!(released(&by_hr_id, &listed, &a, None).len(), 1);
        // Not connected to the GAR: no idEnt.
        assert!(released(&GarRelease::default(), &[GAR_ENT_ID], &a, None).is_empty());
    }

    #[test]
    fn only_profile_attributes_make_the_issuer_read_the_profile() {
        let list = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let by_account = GarRelease::default();
        let by_hr_id = GarRelease {
            person_identifier: GarPersonIdentifier::HrId,
            ..GarRelease::default()
        };
        let usual = list(&[
            "mail",
            "eduPersonPrincipalName",
            GAR_PERSON_IDENTIFIER,
            GAR_ENT_ID,
        ]);
        assert!(!needs_profile(&usual, &by_account));
        assert!(needs_profile(&usual, &by_hr_id));
        assert!(needs_profile(&list(&["supannListeRouge"]), &by_account));
        assert!(needs_profile(&list(&["supannEtuId"]), &by_account));
    }

    #[test]
    fn the_session_index_names_the_session_without_giving_its_handle() {
        let index = session_index("handle-1");
        assert_eq!(index, session_index("handle-1"));
        assert_ne!(index, session_index("handle-2"));
        assert!(index.starts_with('_') && !index.contains("handle"));
    }
}
