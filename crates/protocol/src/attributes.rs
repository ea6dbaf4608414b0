//! What Sesame releases about a person, in one table: each released item with its CAS 3.0
//! attribute names (the usual LDAP / eduPerson / SUPANN names, CAS Protocol 3.0 §2.5.4 leaves
//! them to the deployment), its OpenID Connect claims and the scope that releases them
//! (OpenID Connect Core 1.0 §5.1, §5.4) and its SAML attributes (friendly name and `urn:oid:`
//! name, as eduPerson, SCHAC and the OASIS subject identifier attributes define them). CAS
//! attributes, OIDC claims, SAML attributes and LDAP entries read this table, so one person is
//! described alike everywhere.

use serde_json::{Map, Value};
use sesame_core::account::{Account, AccountProfile};
use sesame_core::ids::Affiliation;

/// The scope that releases the affiliation claims.
pub const GROUPS_SCOPE: &str = "groups";

/// One item of a person's description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// The login.
    Login,
    /// `login@domain`: the deployment's `principal_scope`, else the institutional e-mail's domain.
    PrincipalName,
    /// The institutional e-mail address.
    Email,
    /// Whether the e-mail is verified (institutional addresses are, by construction).
    EmailVerified,
    /// The given name.
    GivenName,
    /// The family name.
    FamilyName,
    /// Given and family name.
    FullName,
    /// The affiliation (student, staff…).
    Affiliation,
    /// The language of the pages (OIDC `locale`).
    Locale,
    /// The affiliation in eduPerson's vocabulary, `value@scope` (SAML only).
    ScopedAffiliation,
    /// The institution's scope (`schacHomeOrganization`, SAML only).
    HomeOrganization,
    /// The account's stable, never reassigned identifier `id@scope` (OASIS `subject-id`,
    /// SAML only; the pairwise one is the issuer's, per service provider).
    SubjectId,
}

/// One row of the release table.
#[derive(Debug, Clone, Copy)]
pub struct Release {
    /// What is released.
    pub item: Item,
    /// Its CAS attribute names (a service lists which it is allowed).
    pub cas: &'static [&'static str],
    /// Its OpenID Connect claims.
    pub oidc: &'static [&'static str],
    /// The scope that releases the claims.
    pub scope: Option<&'static str>,
    /// Its SAML attributes: (friendly name, `Name` in the URI name format).
    pub saml: &'static [(&'static str, &'static str)],
}

/// The release table, in the order OIDC claims are built.
pub const RELEASES: &[Release] = &[
    Release {
        item: Item::FullName,
        cas: &["cn", "displayName"],
        oidc: &["name"],
        scope: Some("profile"),
        saml: &[
            ("displayName", "urn:oid:2.16.840.1.113730.3.1.241"),
            ("cn", "urn:oid:2.5.4.3"),
        ],
    },
    Release {
        item: Item::GivenName,
        cas: &["givenName"],
        oidc: &["given_name"],
        scope: Some("profile"),
        saml: &[("givenName", "urn:oid:2.5.4.42")],
    },
    Release {
        item: Item::FamilyName,
        cas: &["sn"],
        oidc: &["family_name"],
        scope: Some("profile"),
        saml: &[("sn", "urn:oid:2.5.4.4")],
    },
    Release {
        item: Item::Login,
        cas: &["uid", "supannAliasLogin"],
        oidc: &["preferred_username"],
        scope: Some("profile"),
        saml: &[("uid", "urn:oid:0.9.2342.19200300.100.1.1")],
    },
    Release {
        item: Item::Locale,
        cas: &[],
        oidc: &["locale"],
        scope: Some("profile"),
        saml: &[],
    },
    Release {
        item: Item::Email,
        cas: &["mail", "email"],
        oidc: &["email"],
        scope: Some("email"),
        saml: &[("mail", "urn:oid:0.9.2342.19200300.100.1.3")],
    },
    Release {
        item: Item::EmailVerified,
        cas: &[],
        oidc: &["email_verified"],
        scope: Some("email"),
        saml: &[],
    },
    Release {
        item: Item::Affiliation,
        cas: &["eduPersonAffiliation"],
        oidc: &["groups", "eduperson_affiliation"],
        scope: Some(GROUPS_SCOPE),
        saml: &[("eduPersonAffiliation", "urn:oid:1.3.6.1.4.1.5923.1.1.1.1")],
    },
    Release {
        item: Item::PrincipalName,
        cas: &["eduPersonPrincipalName"],
        oidc: &[],
        scope: None,
        saml: &[("eduPersonPrincipalName", "urn:oid:1.3.6.1.4.1.5923.1.1.1.6")],
    },
    Release {
        item: Item::ScopedAffiliation,
        cas: &[],
        oidc: &[],
        scope: None,
        saml: &[(
            "eduPersonScopedAffiliation",
            "urn:oid:1.3.6.1.4.1.5923.1.1.1.9",
        )],
    },
    Release {
        item: Item::HomeOrganization,
        cas: &[],
        oidc: &[],
        scope: None,
        saml: &[("schacHomeOrganization", "urn:oid:1.3.6.1.4.1.25178.1.2.9")],
    },
    Release {
        item: Item::SubjectId,
        cas: &[],
        oidc: &[],
        scope: None,
        saml: &[("subject-id", "urn:oasis:names:tc:SAML:attribute:subject-id")],
    },
];

/// The row releasing CAS attribute `name`.
fn release_of_cas(name: &str) -> Option<&'static Release> {
    RELEASES.iter().find(|r| r.cas.contains(&name))
}

/// The row releasing OIDC claim `claim`.
fn release_of_claim(claim: &str) -> Option<&'static Release> {
    RELEASES.iter().find(|r| r.oidc.contains(&claim))
}

/// The scope that releases `claim`, if it is one Sesame releases.
pub fn scope_of_claim(claim: &str) -> Option<&'static str> {
    release_of_claim(claim).and_then(|r| r.scope)
}

/// The CAS values of `item` for `account` (empty when the account has none).
fn cas_values(item: Item, account: &Account, principal_scope: &str) -> Vec<String> {
    match item {
        Item::Login => vec![account.login.to_string()],
        Item::PrincipalName => {
            let domain = if principal_scope.is_empty() {
                account
                    .email
                    .as_ref()
                    .and_then(|e| e.as_str().split_once('@'))
                    .map(|(_, domain)| domain.to_owned())
            } else {
                Some(principal_scope.to_owned())
            };
            domain
                .iter()
                .map(|d| format!("{}@{d}", account.login))
                .collect()
        }
        Item::Email => account.email.iter().map(ToString::to_string).collect(),
        Item::GivenName => vec![account.given_name.clone()],
        Item::FamilyName => vec![account.family_name.clone()],
        Item::FullName => vec![format!("{} {}", account.given_name, account.family_name)],
        Item::Affiliation => vec![account.affiliation.to_string()],
        Item::EmailVerified
        | Item::Locale
        | Item::ScopedAffiliation
        | Item::HomeOrganization
        | Item::SubjectId => Vec::new(),
    }
}

/// The CAS attributes a service is allowed (`allowed`, in its order), with their values;
/// attributes without a value are left out. `principal_scope` is the
/// `eduPersonPrincipalName` domain; empty means the domain of the institutional e-mail.
pub fn cas_attributes(
    account: &Account,
    allowed: &[String],
    principal_scope: &str,
) -> Vec<(String, Vec<String>)> {
    allowed
        .iter()
        .filter_map(|name| {
            let release = release_of_cas(name)?;
            let values = cas_values(release.item, account, principal_scope);
            (!values.is_empty()).then(|| (name.clone(), values))
        })
        .collect()
}

/// The OIDC value of `item` for `account`, if it has one.
fn oidc_value(item: Item, account: &Account, locale: &str) -> Option<Value> {
    match item {
        Item::FullName => {
            let name = format!("{} {}", account.given_name, account.family_name);
            Some(Value::from(name.trim()))
        }
        Item::GivenName => Some(Value::from(account.given_name.as_str())),
        Item::FamilyName => Some(Value::from(account.family_name.as_str())),
        Item::Login => Some(Value::from(account.login.as_str())),
        Item::Locale => Some(Value::from(locale)),
        Item::Email => account.email.as_ref().map(|e| Value::from(e.as_str())),
        Item::EmailVerified => account.email.as_ref().map(|_| Value::from(true)),
        Item::Affiliation => Some(Value::from(vec![account.affiliation.as_str()])),
        Item::PrincipalName
        | Item::ScopedAffiliation
        | Item::HomeOrganization
        | Item::SubjectId => None,
    }
}

/// The affiliation in eduPerson's vocabulary (eduPerson 202208 §2.2.2): what federations'
/// service providers read. Pupils are students; parents and others, affiliates.
fn edu_person_affiliations(account: &Account) -> &'static [&'static str] {
    match account.affiliation {
        Affiliation::Staff => &["staff", "employee", "member"],
        Affiliation::Faculty => &["faculty", "employee", "member"],
        Affiliation::Student | Affiliation::Pupil => &["student", "member"],
        Affiliation::Parent | Affiliation::Affiliate => &["affiliate"],
    }
}

/// The SAML values of `item` for `account`; `scope` is the institution's (the domain of
/// scoped attributes).
fn saml_values(item: Item, account: &Account, scope: &str) -> Vec<String> {
    match item {
        Item::Affiliation => edu_person_affiliations(account)
            .iter()
            .map(|a| (*a).to_owned())
            .collect(),
        Item::ScopedAffiliation => edu_person_affiliations(account)
            .iter()
            .map(|a| format!("{a}@{scope}"))
            .collect(),
        Item::HomeOrganization => vec![scope.to_owned()],
        Item::SubjectId => vec![format!("{}@{scope}", account.id.0.simple())],
        Item::FullName => {
            vec![format!("{} {}", account.given_name, account.family_name)
                .trim()
                .to_owned()]
        }
        other => cas_values(other, account, scope),
    }
    .into_iter()
    .filter(|v| !v.is_empty())
    .collect()
}

/// A SAML attribute released: `Name` (URI format), `FriendlyName`, values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlAttribute {
    /// `Name`, a URI (`urn:oid:…`).
    pub name: &'static str,
    /// `FriendlyName`.
    pub friendly_name: &'static str,
    /// The values.
    pub values: Vec<String>,
}

/// SUPANN's `supannListeRouge` of a person (an LDAP boolean): `TRUE` unless they chose to be
/// in the directory. The LDAP interface and SAML both release it.
pub fn supann_liste_rouge(profile: &AccountProfile) -> &'static str {
    if profile.directory_opt_in {
        "FALSE"
    } else {
        "TRUE"
    }
}

/// The SAML name of the attribute whose friendly name is `friendly` (`mail` →
/// `urn:oid:0.9.2342.19200300.100.1.3`), if Sesame releases it.
pub fn saml_name(friendly: &str) -> Option<&'static str> {
    RELEASES
        .iter()
        .flat_map(|r| r.saml.iter())
        .find(|(f, _)| *f == friendly)
        .map(|(_, name)| *name)
}

/// The SAML attributes a service provider is allowed (`allowed`: friendly names, in its
/// order), with their values; attributes without a value, or unknown, are left out. `scope`
/// is the institution's scope (`eduPersonPrincipalName`, scoped attributes).
pub fn saml_attributes(account: &Account, allowed: &[String], scope: &str) -> Vec<SamlAttribute> {
    allowed
        .iter()
        .filter_map(|friendly| {
            let release = RELEASES
                .iter()
                .find(|r| r.saml.iter().any(|(f, _)| f == friendly))?;
            let (friendly_name, name) = release.saml.iter().find(|(f, _)| f == friendly)?;
            let values = saml_values(release.item, account, scope);
            (!values.is_empty()).then_some(SamlAttribute {
                name,
                friendly_name,
                values,
            })
        })
        .collect()
}

/// The claims `account` releases for `scopes` (OpenID Connect Core §5.4): `profile` →
/// names, `preferred_username`, `locale`; `email` → `email`, `email_verified`;
/// [`GROUPS_SCOPE`] → `groups` and `eduperson_affiliation`.
pub fn oidc_claims(account: &Account, scopes: &[String], locale: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    for release in RELEASES {
        let Some(scope) = release.scope else {
            continue;
        };
        if !scopes.iter().any(|s| s == scope) {
            continue;
        }
        let Some(value) = oidc_value(release.item, account, locale) else {
            continue;
        };
        for claim in release.oidc {
            claims.insert((*claim).to_owned(), value.clone());
        }
    }
    claims
}

/// `claims` without those whose scope is not in `scopes` (a refresh that narrows the scope
/// narrows what UserInfo releases, RFC 6749 §6).
pub fn claims_for_scopes(claims: &Map<String, Value>, scopes: &[String]) -> Map<String, Value> {
    claims
        .iter()
        .filter(|(name, _)| scope_of_claim(name).is_some_and(|s| scopes.iter().any(|x| x == s)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use sesame_core::account::AccountState;
    use sesame_core::ids::{AccountId, Affiliation, Email, LoginName};

    use super::*;

    fn account(email: Option<&str>, given: &str, family: &str) -> Account {
        Account {
            id: AccountId::new_random(),
            login: LoginName::parse("jean.dupont").unwrap(),
            email: email.map(|e| Email::parse(e).unwrap()),
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            affiliation: Affiliation::Student,
            state: AccountState::Active,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn accounts() -> Vec<Account> {
        vec![
            account(Some("jean.dupont@univ.example.org"), "Jean", "Dupont"),
            account(None, "Jean", "Dupont"),
            account(Some("j@example.org"), "", "Dupont"),
        ]
    }

    /// The CAS attribute release as `routes/cas.rs` wrote it before the table.
    fn cas_before(
        account: &Account,
        allowed: &[String],
        scope: &str,
    ) -> Vec<(String, Vec<String>)> {
        let scope = if scope.is_empty() {
            account
                .email
                .as_ref()
                .and_then(|e| e.as_str().split_once('@'))
                .map(|(_, domain)| domain.to_owned())
        } else {
            Some(scope.to_owned())
        };
        let mut out = Vec::new();
        for name in allowed {
            let values = match name.as_str() {
                "uid" | "supannAliasLogin" => vec![account.login.to_string()],
                "eduPersonPrincipalName" => scope
                    .iter()
                    .map(|d| format!("{}@{d}", account.login))
                    .collect(),
                "mail" | "email" => account.email.iter().map(ToString::to_string).collect(),
                "givenName" => vec![account.given_name.clone()],
                "sn" => vec![account.family_name.clone()],
                "cn" | "displayName" => {
                    vec![format!("{} {}", account.given_name, account.family_name)]
                }
                "eduPersonAffiliation" => vec![account.affiliation.to_string()],
                _ => Vec::new(),
            };
            if !values.is_empty() {
                out.push((name.clone(), values));
            }
        }
        out
    }

    /// The OIDC claims as `oidc::tokens::released_claims` built them before the table.
    fn oidc_before(account: &Account, scopes: &[String], locale: &str) -> Map<String, Value> {
        let has = |s: &str| scopes.iter().any(|x| x == s);
        let mut claims = Map::new();
        if has("profile") {
            let name = format!("{} {}", account.given_name, account.family_name);
            claims.insert("name".to_owned(), Value::from(name.trim()));
            claims.insert(
                "given_name".to_owned(),
                Value::from(account.given_name.as_str()),
            );
            claims.insert(
                "family_name".to_owned(),
                Value::from(account.family_name.as_str()),
            );
            claims.insert(
                "preferred_username".to_owned(),
                Value::from(account.login.as_str()),
            );
            claims.insert("locale".to_owned(), Value::from(locale));
        }
        if has("email") {
            if let Some(email) = &account.email {
                claims.insert("email".to_owned(), Value::from(email.as_str()));
                claims.insert("email_verified".to_owned(), Value::from(true));
            }
        }
        if has(GROUPS_SCOPE) {
            let affiliation = account.affiliation.as_str();
            claims.insert("groups".to_owned(), Value::from(vec![affiliation]));
            claims.insert(
                "eduperson_affiliation".to_owned(),
                Value::from(vec![affiliation]),
            );
        }
        claims
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn cas_attributes_are_those_released_before_the_table() {
        let allowed = strings(&[
            "sn",
            "uid",
            "supannAliasLogin",
            "eduPersonPrincipalName",
            "mail",
            "email",
            "givenName",
            "cn",
            "displayName",
            "eduPersonAffiliation",
            "unknown",
            "locale",
            "name",
        ]);
        for account in accounts() {
            for scope in ["", "univ.example.org"] {
                assert_eq!(
                    cas_attributes(&account, &allowed, scope),
                    cas_before(&account, &allowed, scope)
                );
            }
        }
        let a = &accounts()[0];
        assert_eq!(
            cas_attributes(a, &strings(&["eduPersonPrincipalName", "sn"]), ""),
            vec![
                (
                    "eduPersonPrincipalName".to_owned(),
                    vec!["jean.dupont@univ.example.org".to_owned()]
                ),
                ("sn".to_owned(), vec!["Dupont".to_owned()]),
            ]
        );
    }

    #[test]
    fn oidc_claims_are_those_released_before_the_table() {
        let scope_sets = [
            strings(&["openid"]),
            strings(&["openid", "email"]),
            strings(&["openid", "profile"]),
            strings(&["openid", "groups"]),
            strings(&["openid", "profile", "email", "groups", "offline_access"]),
        ];
        for account in accounts() {
            for scopes in &scope_sets {
                assert_eq!(
                    oidc_claims(&account, scopes, "fr"),
                    oidc_before(&account, scopes, "fr")
                );
            }
        }
    }

    #[test]
    fn every_claim_has_its_scope() {
        for claim in [
            "name",
            "given_name",
            "family_name",
            "preferred_username",
            "locale",
        ] {
            assert_eq!(scope_of_claim(claim), Some("profile"));
        }
        assert_eq!(scope_of_claim("email_verified"), Some("email"));
        assert_eq!(scope_of_claim("eduperson_affiliation"), Some(GROUPS_SCOPE));
        assert_eq!(scope_of_claim("sub"), None);
        let a = &accounts()[0];
        let all = oidc_claims(a, &strings(&["profile", "email", "groups"]), "en");
        assert_eq!(
            claims_for_scopes(&all, &strings(&["email"])),
            oidc_claims(a, &strings(&["email"]), "en")
        );
    }

    #[test]
    fn saml_attributes_carry_their_oid_names_and_scoped_values() {
        let a = &accounts()[0];
        let allowed = strings(&[
            "mail",
            "eduPersonPrincipalName",
            "eduPersonScopedAffiliation",
            "schacHomeOrganization",
            "displayName",
            "subject-id",
            "unknown",
        ]);
        let released = saml_attributes(a, &allowed, "univ.example.org");
        let by_name = |friendly: &str| released.iter().find(|r| r.friendly_name == friendly);
        assert_eq!(released.len(), 6, "{released:?}");
        assert_eq!(
            by_name("mail").unwrap().name,
            "urn:oid:0.9.2342.19200300.100.1.3"
        );
        assert_eq!(
            by_name("eduPersonPrincipalName").unwrap().values,
            ["jean.dupont@univ.example.org"]
        );
        // A student is a student and a member, in eduPerson's words.
        assert_eq!(
            by_name("eduPersonScopedAffiliation").unwrap().values,
            ["student@univ.example.org", "member@univ.example.org"]
        );
        assert_eq!(
            by_name("schacHomeOrganization").unwrap().values,
            ["univ.example.org"]
        );
        let subject = &by_name("subject-id").unwrap().values[0];
        assert!(subject.ends_with("@univ.example.org") && !subject.contains("jean"));
        // No value, no attribute: an account without an e-mail releases no `mail`.
        assert!(saml_attributes(&accounts()[1], &strings(&["mail"]), "x.org").is_empty());
    }

    #[test]
    fn every_saml_friendly_name_and_oid_is_released_by_one_row() {
        let names: Vec<(&str, &str)> = RELEASES
            .iter()
            .flat_map(|r| r.saml.iter().copied())
            .collect();
        for (i, (friendly, oid)) in names.iter().enumerate() {
            assert!(
                names[i + 1..]
                    .iter()
                    .all(|(f, o)| f != friendly && o != oid),
                "{friendly} / {oid} twice"
            );
            assert_eq!(saml_name(friendly), Some(*oid));
        }
    }
}
