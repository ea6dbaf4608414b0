//! What a service provider gets by its entity categories (REFEDS, GÉANT), when the
//! deployment has not listed its attributes: the categories are registered by the federation
//! (RENATER, eduGAIN) after it checked the service, and each promises a purpose and a bundle.
//!
//! - REFEDS Research & Scholarship: `eduPersonPrincipalName`, `mail`, `displayName`,
//!   `givenName`, `sn`, `eduPersonScopedAffiliation` (and `pairwise-id` for a non-reassigned
//!   identifier).
//! - REFEDS Personalized Access: `subject-id`, `mail`, `displayName`, `givenName`, `sn`,
//!   `eduPersonScopedAffiliation`, `schacHomeOrganization`.
//! - REFEDS Pseudonymous Access: `pairwise-id`, `eduPersonScopedAffiliation`,
//!   `schacHomeOrganization`.
//! - REFEDS Anonymous Access: `eduPersonScopedAffiliation`, `schacHomeOrganization`.
//! - GÉANT Data Protection Code of Conduct (v1, and REFEDS CoCo v2): only what the SP's
//!   metadata requests (`RequestedAttribute`), whatever else would be released.

use super::issuer::{
    EDU_PERSON_ASSURANCE, EDU_PERSON_ENTITLEMENT, EDU_PERSON_TARGETED_ID, PAIRWISE_ID,
    SUPANN_ETABLISSEMENT,
};
use crate::attributes::saml_name;

/// REFEDS Research and Scholarship.
pub const RESEARCH_AND_SCHOLARSHIP: &str = "http://refeds.org/category/research-and-scholarship";
/// REFEDS Personalized Access.
pub const PERSONALIZED: &str = "https://refeds.org/category/personalized";
/// REFEDS Pseudonymous Access.
pub const PSEUDONYMOUS: &str = "https://refeds.org/category/pseudonymous";
/// REFEDS Anonymous Access.
pub const ANONYMOUS: &str = "https://refeds.org/category/anonymous";
/// GÉANT Data Protection Code of Conduct, v1.
pub const CODE_OF_CONDUCT_V1: &str = "http://www.geant.net/uri/dataprotection-code-of-conduct/v1";
/// REFEDS Data Protection Code of Conduct, v2.
pub const CODE_OF_CONDUCT_V2: &str = "https://refeds.org/category/code-of-conduct/v2";

const BUNDLES: &[(&str, &[&str])] = &[
    (
        RESEARCH_AND_SCHOLARSHIP,
        &[
            "eduPersonPrincipalName",
            "mail",
            "displayName",
            "givenName",
            "sn",
            "eduPersonScopedAffiliation",
            "pairwise-id",
        ],
    ),
    (
        PERSONALIZED,
        &[
            "subject-id",
            "mail",
            "displayName",
            "givenName",
            "sn",
            "eduPersonAssurance",
            "eduPersonScopedAffiliation",
            "schacHomeOrganization",
        ],
    ),
    (
        PSEUDONYMOUS,
        &[
            "pairwise-id",
            "eduPersonAssurance",
            "eduPersonScopedAffiliation",
            "schacHomeOrganization",
        ],
    ),
    (
        ANONYMOUS,
        &["eduPersonScopedAffiliation", "schacHomeOrganization"],
    ),
];

/// The `Name` of an attribute Sesame releases, by its friendly name.
fn name_of(friendly: &str) -> Option<&'static str> {
    match friendly {
        "pairwise-id" => Some(PAIRWISE_ID),
        "eduPersonTargetedID" => Some(EDU_PERSON_TARGETED_ID),
        "eduPersonEntitlement" => Some(EDU_PERSON_ENTITLEMENT),
        "eduPersonAssurance" => Some(EDU_PERSON_ASSURANCE),
        "supannEtablissement" => Some(SUPANN_ETABLISSEMENT),
        _ => saml_name(friendly),
    }
}

/// The attributes (friendly names) an SP gets: those `configured` for it, else, when
/// `by_category`, the bundles of its `categories`; for an SP under a Code of Conduct, only
/// those of them its metadata `requested` (by `Name`).
pub fn released_attributes(
    configured: &[String],
    by_category: bool,
    categories: &[String],
    requested: &[String],
) -> Vec<String> {
    let mut released: Vec<String> = if !configured.is_empty() {
        configured.to_vec()
    } else if by_category {
        let mut bundle: Vec<String> = Vec::new();
        for (category, attributes) in BUNDLES {
            if categories.iter().any(|c| c == category) {
                for attribute in *attributes {
                    if !bundle.iter().any(|a| a == attribute) {
                        bundle.push((*attribute).to_owned());
                    }
                }
            }
        }
        bundle
    } else {
        Vec::new()
    };
    let code_of_conduct = categories
        .iter()
        .any(|c| c == CODE_OF_CONDUCT_V1 || c == CODE_OF_CONDUCT_V2);
    if code_of_conduct {
        released.retain(|friendly| {
            name_of(friendly).is_some_and(|name| requested.iter().any(|r| r == name))
        });
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_configured_list_wins_and_a_category_gives_its_bundle_otherwise() {
        let rs = strings(&[RESEARCH_AND_SCHOLARSHIP]);
        assert_eq!(
            released_attributes(&strings(&["mail"]), true, &rs, &[]),
            ["mail"]
        );
        let bundle = released_attributes(&[], true, &rs, &[]);
        assert!(bundle.contains(&"eduPersonPrincipalName".to_owned()));
        assert!(!bundle.contains(&"subject-id".to_owned()));
        assert!(released_attributes(&[], false, &rs, &[]).is_empty());
        assert!(released_attributes(&[], true, &[], &[]).is_empty());
        // Two categories: their bundles joined, each attribute once.
        let both = released_attributes(
            &[],
            true,
            &strings(&[RESEARCH_AND_SCHOLARSHIP, PERSONALIZED]),
            &[],
        );
        assert!(both.contains(&"subject-id".to_owned()));
        assert_eq!(both.iter().filter(|a| *a == "mail").count(), 1);
        let anonymous = released_attributes(&[], true, &strings(&[ANONYMOUS]), &[]);
        assert_eq!(
            anonymous,
            ["eduPersonScopedAffiliation", "schacHomeOrganization"]
        );
    }

    #[test]
    fn under_a_code_of_conduct_only_what_the_sp_requests_is_released() {
        let categories = strings(&[RESEARCH_AND_SCHOLARSHIP, CODE_OF_CONDUCT_V2]);
        let requested = strings(&[
            "urn:oid:0.9.2342.19200300.100.1.3",
            "urn:oasis:names:tc:SAML:attribute:pairwise-id",
        ]);
        assert_eq!(
            released_attributes(&[], true, &categories, &requested),
            ["mail", "pairwise-id"]
        );
        // Also for a configured list; nothing requested, nothing released.
        assert_eq!(
            released_attributes(
                &strings(&["mail", "sn"]),
                true,
                &strings(&[CODE_OF_CONDUCT_V1]),
                &requested
            ),
            ["mail"]
        );
        assert!(released_attributes(&[], true, &categories, &[]).is_empty());
    }
}
