//! Search filters (RFC 4511 §4.5.1.7, the grammar of RFC 4515 parsed by `ldap3_proto`):
//! evaluated on an entry as its reader sees it, so a filter can never test an attribute the
//! reader is not shown (no probing of hidden values one character at a time), and reduced to
//! a lookup plan: an equality on an identifier reads that account, an affiliation narrows the
//! scan, anything else is a scan bounded by the directory's limits.
//!
//! Evaluation is three-valued: an attribute type Sesame does not know, or an extensible match
//! (not supported), is *Undefined*, which `!` keeps Undefined and which never matches.
//! Every attribute Sesame serves is a directory string compared without case
//! (`caseIgnoreMatch`, `caseIgnoreOrderingMatch`, `caseIgnoreSubstringsMatch`); DN-valued
//! ones (`member`, `memberOf`) compare as DNs. Approximate matching is equality.

use ldap3_proto::proto::{LdapFilter, LdapSubstringFilter};
use sesame_core::ids::Affiliation;

use crate::dn::Dn;
use crate::entry::{attribute_type, Entry};

/// Whether `entry` matches `filter`.
pub fn matches(filter: &LdapFilter, entry: &Entry) -> bool {
    eval(filter, entry) == Some(true)
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

fn equal(attr: &str, a: &str, b: &str) -> bool {
    if attribute_type(attr).is_some_and(|t| t.dn_valued) {
        if let (Ok(x), Ok(y)) = (Dn::parse(a), Dn::parse(b)) {
            return x.same_as(&y);
        }
    }
    fold(a) == fold(b)
}

/// `Some(values)` for a known type (empty when the entry lacks it), `None` when unknown.
fn values_of<'e>(entry: &'e Entry, attr: &str) -> Option<&'e [String]> {
    attribute_type(attr)?;
    Some(entry.values(attr).unwrap_or(&[]))
}

fn any_value(entry: &Entry, attr: &str, test: impl Fn(&str) -> bool) -> Option<bool> {
    values_of(entry, attr).map(|vs| vs.iter().any(|v| test(v)))
}

fn substring_match(value: &str, f: &LdapSubstringFilter) -> bool {
    let value = fold(value);
    let mut rest = value.as_str();
    if let Some(initial) = &f.initial {
        let initial = fold(initial);
        match rest.strip_prefix(initial.as_str()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for any in &f.any {
        let any = fold(any);
        match rest.find(any.as_str()) {
            Some(i) => rest = &rest[i + any.len()..],
            None => return false,
        }
    }
    match &f.final_ {
        Some(fin) => rest.ends_with(fold(fin).as_str()),
        None => true,
    }
}

fn eval(filter: &LdapFilter, entry: &Entry) -> Option<bool> {
    match filter {
        LdapFilter::And(items) => {
            let mut result = Some(true);
            for item in items {
                match eval(item, entry) {
                    Some(false) => return Some(false),
                    None => result = None,
                    Some(true) => {}
                }
            }
            result
        }
        LdapFilter::Or(items) => {
            let mut result = Some(false);
            for item in items {
                match eval(item, entry) {
                    Some(true) => return Some(true),
                    None => result = None,
                    Some(false) => {}
                }
            }
            result
        }
        LdapFilter::Not(inner) => eval(inner, entry).map(|b| !b),
        LdapFilter::Equality(attr, wanted) | LdapFilter::Approx(attr, wanted) => {
            any_value(entry, attr, |v| equal(attr, v, wanted))
        }
        LdapFilter::Substring(attr, sub) => any_value(entry, attr, |v| substring_match(v, sub)),
        LdapFilter::GreaterOrEqual(attr, bound) => {
            let bound = fold(bound);
            any_value(entry, attr, |v| fold(v) >= bound)
        }
        LdapFilter::LessOrEqual(attr, bound) => {
            let bound = fold(bound);
            any_value(entry, attr, |v| fold(v) <= bound)
        }
        LdapFilter::Present(attr) => values_of(entry, attr)
            .map(|vs| !vs.is_empty() || attr.eq_ignore_ascii_case("objectClass")),
        LdapFilter::Extensible(_) => None,
    }
}

/// How to find the people a filter may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeoplePlan {
    /// Only the accounts holding one of these identifiers (logins or institutional e-mails)
    /// can match.
    Identifiers(Vec<String>),
    /// Every account may match; only those of `affiliation` if given.
    Scan {
        /// The affiliation the filter requires, if one.
        affiliation: Option<Affiliation>,
    },
}

/// Most identifiers an `|` of equalities is looked up by, one by one, before it is scanned.
const MAX_LOOKUPS: usize = 50;

/// The plan for `filter`: a sound over-approximation (the filter is still evaluated on every
/// entry read), the narrowest one the filter's shape allows. `groups` is where the groups
/// are, for `memberOf` equalities.
pub fn people_plan(filter: &LdapFilter, groups: &Dn) -> PeoplePlan {
    match filter {
        LdapFilter::Equality(attr, value) => {
            let Some(t) = attribute_type(attr) else {
                return PeoplePlan::Identifiers(Vec::new());
            };
            match t.name {
                "uid" | "mail" | "supannAliasLogin" => PeoplePlan::Identifiers(vec![value.clone()]),
                // `login@scope`: the login is the part before the last `@`.
                "eduPersonPrincipalName" => PeoplePlan::Identifiers(
                    value
                        .rsplit_once('@')
                        .map(|(login, _)| vec![login.to_owned()])
                        .unwrap_or_default(),
                ),
                "eduPersonAffiliation" => PeoplePlan::Scan {
                    affiliation: affiliation_named(value),
                },
                "memberOf" => PeoplePlan::Scan {
                    affiliation: Dn::parse(value)
                        .ok()
                        .filter(|dn| dn.parent().same_as(groups))
                        .and_then(|dn| dn.leaf().and_then(|r| affiliation_named(&r.value))),
                },
                _ => PeoplePlan::Scan { affiliation: None },
            }
        }
        LdapFilter::And(items) => {
            let plans: Vec<PeoplePlan> = items.iter().map(|f| people_plan(f, groups)).collect();
            if let Some(ids) = plans.iter().find_map(|p| match p {
                PeoplePlan::Identifiers(ids) => Some(ids.clone()),
                PeoplePlan::Scan { .. } => None,
            }) {
                return PeoplePlan::Identifiers(ids);
            }
            PeoplePlan::Scan {
                affiliation: plans.iter().find_map(|p| match p {
                    PeoplePlan::Scan { affiliation } => *affiliation,
                    PeoplePlan::Identifiers(_) => None,
                }),
            }
        }
        LdapFilter::Or(items) => {
            let mut ids = Vec::new();
            for item in items {
                match people_plan(item, groups) {
                    PeoplePlan::Identifiers(more) => ids.extend(more),
                    PeoplePlan::Scan { .. } => return PeoplePlan::Scan { affiliation: None },
                }
            }
            if ids.len() > MAX_LOOKUPS {
                return PeoplePlan::Scan { affiliation: None };
            }
            ids.sort();
            ids.dedup();
            PeoplePlan::Identifiers(ids)
        }
        _ => PeoplePlan::Scan { affiliation: None },
    }
}

/// The affiliation whose name (or group `cn`) is `value`.
pub fn affiliation_named(value: &str) -> Option<Affiliation> {
    let value = fold(value);
    Affiliation::ALL.into_iter().find(|a| a.as_str() == value)
}

#[cfg(test)]
mod tests {
    use ldap3_proto::parse_ldap_filter_str;

    use super::*;
    use crate::entry::tests::someone;
    use crate::entry::{person, View};

    fn entry() -> Entry {
        let people = Dn::parse("ou=people,dc=univ,dc=example").unwrap();
        let p = someone(
            "jdupont",
            true,
            Some(("jean@ailleurs.example", true, false)),
        );
        person(&p, &people, &groups(), View::Full, "univ.example").unwrap()
    }

    fn groups() -> Dn {
        Dn::parse("ou=groups,dc=univ,dc=example").unwrap()
    }

    fn m(filter: &str) -> bool {
        matches(&parse_ldap_filter_str(filter).unwrap(), &entry())
    }

    #[test]
    fn the_rfc_4515_operators_match_without_case() {
        assert!(m("(uid=JDupont)"));
        assert!(m("(userid=jdupont)"));
        assert!(!m("(uid=jdupon)"));
        assert!(m("(cn=jean*)"));
        // (`ldap3_proto`'s string parser, used by these tests only, stops at a space or an
        // `=` in a value; on the wire such values arrive as they are.)
        let sub = LdapFilter::Substring(
            "cn".into(),
            LdapSubstringFilter {
                initial: None,
                any: vec!["an D".into()],
                final_: Some("nt".into()),
            },
        );
        assert!(matches(&sub, &entry()));
        assert!(m("(cn=J*e*D*)"));
        assert!(!m("(cn=*xyz*)"));
        assert!(m("(mail=*@univ.example)"));
        assert!(m("(objectClass=inetOrgPerson)"));
        assert!(m("(objectClass=*)"));
        assert!(m("(mailForwardingAddress=*)"));
        assert!(!m("(sesameMailDeliverTo=jdupont@univ.example)"));
        assert!(m("(sn>=Dupont)"));
        assert!(m("(sn<=E)"));
        assert!(!m("(sn>=E)"));
        assert!(m("(givenName~=JEAN)"));
        assert!(m(
            "(&(uid=jdupont)(|(eduPersonAffiliation=student)(eduPersonAffiliation=staff)))"
        ));
        assert!(m("(!(eduPersonAffiliation=student))"));
        let member_of = LdapFilter::Equality(
            "memberOf".into(),
            "CN=Staff, OU=Groups,DC=univ,DC=example".into(),
        );
        assert!(matches(&member_of, &entry()));
    }

    #[test]
    fn unknown_types_and_extensible_matches_are_undefined_even_under_not() {
        assert!(!m("(nosuchattr=x)"));
        assert!(!m("(!(nosuchattr=x))"));
        assert!(!m("(uid:caseExactMatch:=jdupont)"));
        assert!(!m("(!(uid:caseExactMatch:=jdupont))"));
        // Undefined inside `|` does not hide a true branch, inside `&` does not hide false.
        assert!(m("(|(nosuchattr=x)(uid=jdupont))"));
        assert!(!m("(&(nosuchattr=x)(uid=other))"));
        // A known type the entry lacks is false, so its negation is true.
        assert!(m("(!(member=*))"));
    }

    #[test]
    fn a_filter_tests_only_what_the_view_shows() {
        let people = Dn::parse("ou=people,dc=univ,dc=example").unwrap();
        let p = someone(
            "jdupont",
            true,
            Some(("jean@ailleurs.example", true, false)),
        );
        let public = person(&p, &people, &groups(), View::Directory, "").unwrap();
        let probe = parse_ldap_filter_str("(mailForwardingAddress=j*)").unwrap();
        assert!(!matches(&probe, &public));
    }

    #[test]
    fn plans_look_up_identifiers_and_narrow_scans() {
        let plan = |f: &str| people_plan(&parse_ldap_filter_str(f).unwrap(), &groups());
        assert_eq!(plan("(uid=x)"), PeoplePlan::Identifiers(vec!["x".into()]));
        assert_eq!(
            plan("(&(objectClass=person)(mail=x@y))"),
            PeoplePlan::Identifiers(vec!["x@y".into()])
        );
        assert_eq!(
            plan("(|(uid=b)(uid=a)(mail=a))"),
            PeoplePlan::Identifiers(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            plan("(eduPersonPrincipalName=jd@univ.example)"),
            PeoplePlan::Identifiers(vec!["jd".into()])
        );
        assert_eq!(
            plan("(&(objectClass=*)(eduPersonAffiliation=Student))"),
            PeoplePlan::Scan {
                affiliation: Some(Affiliation::Student)
            }
        );
        let member_of = LdapFilter::Equality(
            "memberOf".into(),
            "cn=faculty,ou=groups,dc=univ,dc=example".into(),
        );
        assert_eq!(
            people_plan(&member_of, &groups()),
            PeoplePlan::Scan {
                affiliation: Some(Affiliation::Faculty)
            }
        );
        assert_eq!(
            plan("(|(uid=a)(cn=b*))"),
            PeoplePlan::Scan { affiliation: None }
        );
        assert_eq!(plan("(!(uid=a))"), PeoplePlan::Scan { affiliation: None });
        // An equality on a type Sesame does not know matches nobody: nothing to read.
        assert_eq!(plan("(nosuch=a)"), PeoplePlan::Identifiers(Vec::new()));
    }
}
