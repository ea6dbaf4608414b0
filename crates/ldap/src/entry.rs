//! Entries of Sesame's directory tree and what each reader sees of them.
//!
//! ```text
//! <base_dn>                                  organization / dcObject
//! ├── ou=people                               organizationalUnit
//! │   └── uid=<login>                         inetOrgPerson, eduPerson, supannPerson
//! ├── ou=groups                               organizationalUnit
//! │   └── cn=<affiliation>                    groupOfNames (member: the people of it)
//! └── ou=services                             (bind only: cn=<service account>)
//! ```
//!
//! A person's attributes come from the one release table (`sesame_protocol::attributes`, the
//! names CAS releases), plus what only the directory says: the mail routing chosen at
//! activation (`mailForwardingAddress`, `sesameMailKeepCopy`, `sesameMailDeliverTo`), the
//! directory opt-in as `supannListeRouge`, group membership, and `entryUUID` (the account's
//! stable id, which Nextcloud and other LDAP consumers key people on).

use ldap3_proto::proto::{LdapPartialAttribute, LdapSearchResultEntry};
use sesame_core::account::AccountWithProfile;
use sesame_core::ids::Affiliation;
use sesame_protocol::attributes::{cas_attributes, supann_liste_rouge};

use crate::dn::Dn;

/// What a reader sees of a person ([`crate::access`] decides which view applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Enough to find a person's DN from an identifier the reader already has (uid, mail):
    /// a service that only checks passwords (Dovecot's `auth_bind`).
    Locate,
    /// Mail routing: identifiers, name and the forwarding choice (Postfix, Dovecot).
    Mail,
    /// The public directory: names, mail, affiliation, of the people who opted in.
    Directory,
    /// Every attribute Sesame releases.
    Full,
}

/// One attribute type of the schema Sesame serves.
#[derive(Debug)]
pub struct AttributeType {
    /// The name as returned.
    pub name: &'static str,
    /// Other names clients may use (RFC 4519).
    pub aliases: &'static [&'static str],
    /// OID, for the subschema entry.
    pub oid: &'static str,
    /// Values are DNs (compared as DNs).
    pub dn_valued: bool,
    /// Operational (returned only when asked by name or by `+`).
    pub operational: bool,
}

const fn at(name: &'static str, oid: &'static str) -> AttributeType {
    AttributeType {
        name,
        aliases: &[],
        oid,
        dn_valued: false,
        operational: false,
    }
}

/// Every attribute type an entry of Sesame's tree may hold.
pub const SCHEMA: &[AttributeType] = &[
    at("objectClass", "2.5.4.0"),
    AttributeType {
        aliases: &["userid"],
        ..at("uid", "0.9.2342.19200300.100.1.1")
    },
    AttributeType {
        aliases: &["commonName"],
        ..at("cn", "2.5.4.3")
    },
    AttributeType {
        aliases: &["surname"],
        ..at("sn", "2.5.4.4")
    },
    AttributeType {
        aliases: &["gn"],
        ..at("givenName", "2.5.4.42")
    },
    at("displayName", "2.16.840.1.113730.3.1.241"),
    AttributeType {
        aliases: &["rfc822Mailbox"],
        ..at("mail", "0.9.2342.19200300.100.1.3")
    },
    at("eduPersonAffiliation", "1.3.6.1.4.1.5923.1.1.1.1"),
    at("eduPersonPrincipalName", "1.3.6.1.4.1.5923.1.1.1.6"),
    at("supannAliasLogin", "1.3.6.1.4.1.7135.1.2.1.4"),
    at("supannListeRouge", "1.3.6.1.4.1.7135.1.2.1.1"),
    at("mailForwardingAddress", "2.16.840.1.113730.3.1.212"),
    at(
        "sesameMailKeepCopy",
        "2.25.150033987060612297374646203435061447973.1.1",
    ),
    at(
        "sesameMailDeliverTo",
        "2.25.150033987060612297374646203435061447973.1.2",
    ),
    AttributeType {
        dn_valued: true,
        ..at("memberOf", "1.2.840.113556.1.2.102")
    },
    AttributeType {
        dn_valued: true,
        ..at("member", "2.5.4.31")
    },
    AttributeType {
        aliases: &["organizationalUnitName"],
        ..at("ou", "2.5.4.11")
    },
    AttributeType {
        aliases: &["domainComponent"],
        ..at("dc", "0.9.2342.19200300.100.1.25")
    },
    AttributeType {
        aliases: &["organizationName"],
        ..at("o", "2.5.4.10")
    },
    AttributeType {
        operational: true,
        ..at("entryUUID", "1.3.6.1.1.16.4")
    },
    AttributeType {
        operational: true,
        dn_valued: true,
        ..at("subschemaSubentry", "2.5.18.10")
    },
    at("namingContexts", "1.3.6.1.4.1.1466.101.120.5"),
    at("supportedLDAPVersion", "1.3.6.1.4.1.1466.101.120.15"),
    at("supportedExtension", "1.3.6.1.4.1.1466.101.120.7"),
    at("supportedControl", "1.3.6.1.4.1.1466.101.120.13"),
    at("supportedSASLMechanisms", "1.3.6.1.4.1.1466.101.120.14"),
    at("vendorName", "1.3.6.1.1.4"),
    at("vendorVersion", "1.3.6.1.1.5"),
    at("attributeTypes", "2.5.21.5"),
    at("objectClasses", "2.5.21.6"),
];

/// The schema's type named `name` (or one of its aliases), without case.
pub fn attribute_type(name: &str) -> Option<&'static AttributeType> {
    SCHEMA.iter().find(|t| {
        t.name.eq_ignore_ascii_case(name) || t.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// An entry: its DN and attributes (canonical names, values as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The DN, as returned.
    pub dn: String,
    attrs: Vec<(&'static str, Vec<String>)>,
}

/// Which attributes a search asked for (RFC 4511 §4.5.1.8).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    all_user: bool,
    all_operational: bool,
    named: Vec<&'static str>,
}

impl Selection {
    /// From the request's attribute list: empty or `*` → every user attribute, `+` → every
    /// operational one, `1.1` alone → none, otherwise the names given (unknown ones ignored).
    pub fn from_request(attrs: &[String]) -> Self {
        let mut s = Self {
            all_user: attrs.is_empty(),
            ..Self::default()
        };
        for a in attrs {
            match a.as_str() {
                "*" => s.all_user = true,
                "+" => s.all_operational = true,
                "1.1" => {}
                name => {
                    if let Some(t) = attribute_type(name) {
                        s.named.push(t.name);
                    }
                }
            }
        }
        s
    }

    fn includes(&self, t: &AttributeType) -> bool {
        self.named.contains(&t.name)
            || if t.operational {
                self.all_operational
            } else {
                self.all_user
            }
    }
}

impl Entry {
    /// An entry with no attributes.
    pub fn new(dn: String) -> Self {
        Self {
            dn,
            attrs: Vec::new(),
        }
    }

    /// Adds `values` of the schema's attribute `name` (nothing if `values` is empty).
    ///
    /// # Panics
    /// If `name` is not in [`SCHEMA`]: a programming error, caught by the tests.
    pub fn with(mut self, name: &str, values: Vec<String>) -> Self {
        let t = attribute_type(name).unwrap_or_else(|| panic!("{name} is not in SCHEMA"));
        if !values.is_empty() {
            self.attrs.push((t.name, values));
        }
        self
    }

    /// The values of attribute `name` (an alias works), if the entry has it.
    pub fn values(&self, name: &str) -> Option<&[String]> {
        let t = attribute_type(name)?;
        self.attrs
            .iter()
            .find(|(n, _)| *n == t.name)
            .map(|(_, v)| v.as_slice())
    }

    /// The entry as a search result, with the attributes `selection` asks for (names only
    /// when `types_only`).
    pub fn to_result(&self, selection: &Selection, types_only: bool) -> LdapSearchResultEntry {
        let attributes = self
            .attrs
            .iter()
            .filter(|(name, _)| attribute_type(name).is_some_and(|t| selection.includes(t)))
            .map(|(name, values)| LdapPartialAttribute {
                atype: (*name).to_owned(),
                vals: if types_only {
                    Vec::new()
                } else {
                    values.iter().map(|v| v.as_bytes().to_vec()).collect()
                },
            })
            .collect();
        LdapSearchResultEntry {
            dn: self.dn.clone(),
            attributes,
        }
    }
}

/// The DN of the group of `affiliation`.
pub fn group_dn(groups: &Dn, affiliation: Affiliation) -> Dn {
    groups.child("cn", affiliation.as_str())
}

/// The release-table attributes each view shows (CAS names, in this order).
fn released_names(view: View) -> &'static [&'static str] {
    match view {
        View::Locate => &["uid"],
        View::Mail => &["uid", "cn", "displayName"],
        View::Directory => &[
            "uid",
            "cn",
            "displayName",
            "givenName",
            "sn",
            "eduPersonAffiliation",
        ],
        View::Full => &[
            "uid",
            "cn",
            "displayName",
            "givenName",
            "sn",
            "eduPersonAffiliation",
            "eduPersonPrincipalName",
            "supannAliasLogin",
        ],
    }
}

/// `person` as `view` shows it, or `None` when that view does not show them (the public
/// directory shows only people who opted in). `principal_scope` is the
/// `eduPersonPrincipalName` domain, as for CAS.
pub fn person(
    person: &AccountWithProfile,
    people: &Dn,
    groups: &Dn,
    view: View,
    principal_scope: &str,
) -> Option<Entry> {
    let profile = &person.profile;
    if view == View::Directory && !profile.directory_opt_in {
        return None;
    }
    let account = &person.account;
    let dn = people.child("uid", account.login.as_str());
    let mut entry = Entry::new(dn.to_string()).with(
        "objectClass",
        [
            "top",
            "person",
            "organizationalPerson",
            "inetOrgPerson",
            "eduPerson",
            "supannPerson",
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    let allowed: Vec<String> = released_names(view)
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for (name, values) in cas_attributes(account, &allowed, principal_scope) {
        entry = entry.with(&name, values);
    }
    // The institutional address is how a mail system or a directory finds the person.
    entry = entry.with(
        "mail",
        account.email.iter().map(ToString::to_string).collect(),
    );
    if matches!(view, View::Mail | View::Full) {
        // Only a forwarding address its owner proved they receive at routes mail.
        let redirect = profile.mail_redirect.as_ref().filter(|r| r.verified);
        let keep_copy = redirect.is_some_and(|r| r.keep_copy);
        entry = entry
            .with(
                "mailForwardingAddress",
                redirect.iter().map(|r| r.address.to_string()).collect(),
            )
            .with(
                "sesameMailKeepCopy",
                vec![if keep_copy { "TRUE" } else { "FALSE" }.to_owned()],
            );
        let mut deliver_to: Vec<String> = redirect.iter().map(|r| r.address.to_string()).collect();
        if keep_copy {
            deliver_to.extend(account.email.iter().map(ToString::to_string));
        }
        entry = entry.with("sesameMailDeliverTo", deliver_to);
    }
    if view == View::Full {
        entry = entry.with(
            "supannListeRouge",
            vec![supann_liste_rouge(profile).to_owned()],
        );
    }
    if matches!(view, View::Directory | View::Full) {
        entry = entry.with(
            "memberOf",
            vec![group_dn(groups, account.affiliation).to_string()],
        );
    }
    Some(entry.with("entryUUID", vec![account.id.to_string()]))
}

/// The group of `affiliation`, with its `members` (DNs).
pub fn group(groups: &Dn, affiliation: Affiliation, members: Vec<String>) -> Entry {
    Entry::new(group_dn(groups, affiliation).to_string())
        .with(
            "objectClass",
            vec!["top".to_owned(), "groupOfNames".to_owned()],
        )
        .with("cn", vec![affiliation.as_str().to_owned()])
        .with("member", members)
}

/// An organizational unit.
pub fn organizational_unit(dn: &Dn) -> Entry {
    let name = dn.leaf().map(|r| r.value.clone()).unwrap_or_default();
    Entry::new(dn.to_string())
        .with(
            "objectClass",
            vec!["top".to_owned(), "organizationalUnit".to_owned()],
        )
        .with("ou", vec![name])
}

/// The base entry.
pub fn base(dn: &Dn, organization: &str) -> Entry {
    let mut entry = Entry::new(dn.to_string()).with(
        "objectClass",
        vec![
            "top".to_owned(),
            "organization".to_owned(),
            "dcObject".to_owned(),
        ],
    );
    if let Some(leaf) = dn.leaf() {
        if leaf.attr == "dc" {
            entry = entry.with("dc", vec![leaf.value.clone()]);
        }
    }
    entry.with("o", vec![organization.to_owned()])
}

/// The root DSE (RFC 4512 §5.1): what the server supports, readable before any bind.
pub fn root_dse(base: &Dn, start_tls: bool) -> Entry {
    let mut extensions = vec![ldap3_proto::proto::OID_WHOAMI.to_owned()];
    if start_tls {
        extensions.push(crate::server::OID_START_TLS.to_owned());
    }
    Entry::new(String::new())
        .with("objectClass", vec!["top".to_owned()])
        .with("namingContexts", vec![base.to_string()])
        .with("supportedLDAPVersion", vec!["3".to_owned()])
        .with("supportedExtension", extensions)
        .with(
            "supportedControl",
            vec![crate::directory::OID_PAGED_RESULTS.to_owned()],
        )
        .with("vendorName", vec!["Sesame".to_owned()])
        .with("vendorVersion", vec![env!("CARGO_PKG_VERSION").to_owned()])
        .with("subschemaSubentry", vec![SUBSCHEMA_DN.to_owned()])
}

/// Where the subschema entry is.
pub const SUBSCHEMA_DN: &str = "cn=subschema";

/// The subschema entry (RFC 4512 §4.2): the attribute types and object classes served.
pub fn subschema() -> Entry {
    let types = SCHEMA
        .iter()
        .map(|t| {
            let names = std::iter::once(t.name)
                .chain(t.aliases.iter().copied())
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(" ");
            let syntax = if t.dn_valued {
                "1.3.6.1.4.1.1466.115.121.1.12"
            } else {
                "1.3.6.1.4.1.1466.115.121.1.15"
            };
            let usage = if t.operational {
                " NO-USER-MODIFICATION USAGE directoryOperation"
            } else {
                ""
            };
            format!("( {} NAME ( {names} ) SYNTAX {syntax}{usage} )", t.oid)
        })
        .collect();
    let classes = [
        "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )",
        "( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) )",
        "( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL )",
        "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL MAY ( uid $ mail $ givenName $ displayName ) )",
        "( 1.3.6.1.4.1.5923.1.1.2 NAME 'eduPerson' AUXILIARY MAY ( eduPersonAffiliation $ eduPersonPrincipalName ) )",
        "( 1.3.6.1.4.1.7135.1.2.2.1 NAME 'supannPerson' AUXILIARY MAY ( supannAliasLogin $ supannListeRouge ) )",
        "( 2.5.6.17 NAME 'groupOfNames' SUP top STRUCTURAL MUST ( member $ cn ) )",
        "( 2.5.6.5 NAME 'organizationalUnit' SUP top STRUCTURAL MUST ou )",
        "( 2.5.6.4 NAME 'organization' SUP top STRUCTURAL MUST o )",
        "( 1.3.6.1.4.1.1466.344 NAME 'dcObject' SUP top AUXILIARY MUST dc )",
    ]
    .map(str::to_owned)
    .to_vec();
    Entry::new(SUBSCHEMA_DN.to_owned())
        .with(
            "objectClass",
            vec!["top".to_owned(), "subschema".to_owned()],
        )
        .with("cn", vec!["subschema".to_owned()])
        .with("attributeTypes", types)
        .with("objectClasses", classes)
}

#[cfg(test)]
pub(crate) mod tests {
    use sesame_core::account::{Account, AccountProfile, AccountState, MailRedirect};
    use sesame_core::ids::{AccountId, Email, LoginName};

    use super::*;

    pub(crate) fn someone(
        login: &str,
        opt_in: bool,
        redirect: Option<(&str, bool, bool)>,
    ) -> AccountWithProfile {
        AccountWithProfile {
            account: Account {
                id: AccountId::new_random(),
                login: LoginName::parse(login).unwrap(),
                email: Some(Email::parse(&format!("{login}@univ.example")).unwrap()),
                given_name: "Jean".to_owned(),
                family_name: "Dupont".to_owned(),
                affiliation: Affiliation::Staff,
                state: AccountState::Active,
                created_at: time::OffsetDateTime::UNIX_EPOCH,
                updated_at: time::OffsetDateTime::UNIX_EPOCH,
            },
            profile: AccountProfile {
                directory_opt_in: opt_in,
                mail_redirect: redirect.map(|(a, verified, keep_copy)| MailRedirect {
                    address: Email::parse(a).unwrap(),
                    verified,
                    keep_copy,
                }),
                ..AccountProfile::default()
            },
        }
    }

    fn dns() -> (Dn, Dn) {
        (
            Dn::parse("ou=people,dc=univ,dc=example").unwrap(),
            Dn::parse("ou=groups,dc=univ,dc=example").unwrap(),
        )
    }

    #[test]
    fn each_view_shows_its_attributes_and_no_more() {
        let (people, groups) = dns();
        let p = someone("jdupont", true, Some(("jean@ailleurs.example", true, true)));
        let full = person(&p, &people, &groups, View::Full, "univ.example").unwrap();
        assert_eq!(full.dn, "uid=jdupont,ou=people,dc=univ,dc=example");
        assert_eq!(full.values("uid").unwrap(), ["jdupont"]);
        assert_eq!(full.values("userid").unwrap(), ["jdupont"]);
        assert_eq!(full.values("cn").unwrap(), ["Jean Dupont"]);
        assert_eq!(
            full.values("eduPersonPrincipalName").unwrap(),
            ["jdupont@univ.example"]
        );
        assert_eq!(full.values("supannListeRouge").unwrap(), ["FALSE"]);
        assert_eq!(
            full.values("sesameMailDeliverTo").unwrap(),
            ["jean@ailleurs.example", "jdupont@univ.example"]
        );
        assert_eq!(
            full.values("memberOf").unwrap(),
            ["cn=staff,ou=groups,dc=univ,dc=example"]
        );

        let directory = person(&p, &people, &groups, View::Directory, "").unwrap();
        assert!(directory.values("mailForwardingAddress").is_none());
        assert!(directory.values("supannListeRouge").is_none());
        assert!(directory.values("eduPersonPrincipalName").is_none());
        assert_eq!(directory.values("mail").unwrap(), ["jdupont@univ.example"]);

        let mail = person(&p, &people, &groups, View::Mail, "").unwrap();
        assert_eq!(
            mail.values("mailForwardingAddress").unwrap(),
            ["jean@ailleurs.example"]
        );
        assert!(mail.values("givenName").is_none());

        let locate = person(&p, &people, &groups, View::Locate, "").unwrap();
        assert!(locate.values("cn").is_none());
        assert!(locate.values("mail").is_some());
    }

    #[test]
    fn the_public_directory_shows_only_those_who_opted_in() {
        let (people, groups) = dns();
        let hidden = someone("discret", false, None);
        assert!(person(&hidden, &people, &groups, View::Directory, "").is_none());
        let full = person(&hidden, &people, &groups, View::Full, "").unwrap();
        assert_eq!(full.values("supannListeRouge").unwrap(), ["TRUE"]);
    }

    #[test]
    fn an_unproven_redirect_routes_nothing() {
        let (people, groups) = dns();
        let p = someone("x", true, Some(("x@ailleurs.example", false, true)));
        let e = person(&p, &people, &groups, View::Mail, "").unwrap();
        assert!(e.values("mailForwardingAddress").is_none());
        assert!(e.values("sesameMailDeliverTo").is_none());
        assert_eq!(e.values("sesameMailKeepCopy").unwrap(), ["FALSE"]);
    }

    #[test]
    fn the_selection_follows_rfc_4511() {
        let (people, groups) = dns();
        let p = someone("x", true, None);
        let e = person(&p, &people, &groups, View::Full, "").unwrap();
        let names = |attrs: &[&str]| -> Vec<String> {
            let attrs: Vec<String> = attrs.iter().map(|s| (*s).to_owned()).collect();
            e.to_result(&Selection::from_request(&attrs), false)
                .attributes
                .into_iter()
                .map(|a| a.atype)
                .collect()
        };
        assert!(names(&[]).contains(&"uid".to_owned()));
        assert!(!names(&[]).contains(&"entryUUID".to_owned()));
        assert_eq!(names(&["1.1"]), Vec::<String>::new());
        assert_eq!(names(&["MAIL", "surname"]), ["sn", "mail"]);
        assert_eq!(names(&["+"]), ["entryUUID"]);
        assert!(names(&["*", "+"]).contains(&"entryUUID".to_owned()));
        let typed = e.to_result(&Selection::from_request(&["uid".to_owned()]), true);
        assert!(typed.attributes[0].vals.is_empty());
    }

    #[test]
    fn the_subschema_lists_every_served_attribute() {
        let s = subschema();
        let types = s.values("attributeTypes").unwrap();
        assert_eq!(types.len(), SCHEMA.len());
        assert!(types.iter().any(|t| t.contains("'sesameMailDeliverTo'")));
    }
}
