//! What Sesame releases about a person, in one table: each released item with its CAS 3.0
//! attribute names (the usual LDAP / eduPerson / SUPANN names, CAS Protocol 3.0 §2.5.4 leaves
//! them to the deployment), its OpenID Connect claims and the scope that releases them
//! (OpenID Connect Core 1.0 §5.1, §5.4). CAS attributes, OIDC claims and, next, SAML
//! attributes and LDAP entries read this table, so one person is described alike everywhere.

use serde_json::{Map, Value};
use sesame_core::account::Account;

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
}

/// The release table, in the order OIDC claims are built.
pub const RELEASES: &[Release] = &[
    Release {
        item: Item::FullName,
        cas: &["cn", "displayName"],
        oidc: &["name"],
        scope: Some("profile"),
    },
    Release {
        item: Item::GivenName,
        cas: &["givenName"],
        oidc: &["given_name"],
        scope: Some("profile"),
    },
    Release {
        item: Item::FamilyName,
        cas: &["sn"],
        oidc: &["family_name"],
        scope: Some("profile"),
    },
    Release {
        item: Item::Login,
        cas: &["uid", "supannAliasLogin"],
        oidc: &["preferred_username"],
        scope: Some("profile"),
    },
    Release {
        item: Item::Locale,
        cas: &[],
        oidc: &["locale"],
        scope: Some("profile"),
    },
    Release {
        item: Item::Email,
        cas: &["mail", "email"],
        oidc: &["email"],
        scope: Some("email"),
    },
    Release {
        item: Item::EmailVerified,
        cas: &[],
        oidc: &["email_verified"],
        scope: Some("email"),
    },
    Release {
        item: Item::Affiliation,
        cas: &["eduPersonAffiliation"],
        oidc: &["groups", "eduperson_affiliation"],
        scope: Some(GROUPS_SCOPE),
    },
    Release {
        item: Item::PrincipalName,
        cas: &["eduPersonPrincipalName"],
        oidc: &[],
        scope: None,
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
        Item::EmailVerified | Item::Locale => Vec::new(),
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
        Item::PrincipalName => None,
    }
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
}
