//! A federation's signed metadata aggregate (RENATER's Fédération Éducation-Recherche,
//! eduGAIN): an `EntitiesDescriptor` of thousands of entities, signed by the federation's key.
//! It is trusted only as a whole and only if (SAML metadata interoperability profile; the
//! federations' own rules):
//!
//! - its enveloped signature verifies with the federation's **pinned** certificate (the key,
//!   not the certificate's dates or issuer, which federations let expire);
//! - it says until when it is valid (`validUntil`), and that is still ahead;
//! - it is not older than the one already in use (a replayed earlier aggregate, signed by the
//!   same key, would bring back removed SPs or rolled keys).
//!
//! Then its service providers are read, one by one: an entity Sesame cannot use (no SAML 2.0
//! SP role, no HTTP-POST consumer, its own `validUntil` past) is skipped with its reason, not
//! fatal to the others; the deployment's filter (registration authorities, entity IDs) picks
//! which of them may log in.

use time::{Duration, OffsetDateTime};

use super::metadata::ServiceProvider;
use super::verify::verify_enveloped;
use super::{parse_instant, SamlError, METADATA_NS};

/// The metadata registration and publication namespace (`mdrpi`).
const MDRPI_NS: &str = "urn:oasis:names:tc:SAML:metadata:rpi";

/// Which of an aggregate's service providers may log in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregateFilter {
    /// Only entities registered by one of these (`mdrpi:RegistrationInfo`); empty: any.
    pub registration_authorities: Vec<String>,
    /// Only these entity IDs; empty: any.
    pub entities: Vec<String>,
}

impl AggregateFilter {
    fn admits(&self, entity_id: &str, authority: Option<&str>) -> bool {
        (self.registration_authorities.is_empty()
            || authority.is_some_and(|a| self.registration_authorities.iter().any(|r| r == a)))
            && (self.entities.is_empty() || self.entities.iter().any(|e| e == entity_id))
    }
}

/// A verified aggregate, read.
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// Until when it may be used.
    pub valid_until: OffsetDateTime,
    /// How long it may be kept before fetching again (`cacheDuration`), if it says.
    pub cache_duration: Option<Duration>,
    /// Its service providers the filter admits.
    pub service_providers: Vec<ServiceProvider>,
    /// Entities it describes as SPs that could not be used, with why.
    pub skipped: Vec<(String, String)>,
    /// How many entities it holds in all (SPs, IdPs, others).
    pub entity_count: usize,
}

/// Most nodes an aggregate may have (eduGAIN's, of tens of megabytes, has a few million).
const MAX_NODES: u32 = 50_000_000;

/// Verifies and reads the aggregate `xml` with the federation's pinned `certificates` (DER),
/// at `now`, keeping the service providers `filter` admits. `newer_than`: the `validUntil` of
/// the aggregate in use, if any: an older one is refused.
///
/// # Errors
/// [`SamlError::Malformed`] if it is not an aggregate (or one entity's metadata) or lacks
/// `validUntil`; [`SamlError::Signature`] if the signature is absent or wrong; and
/// [`SamlError::Unsupported`] if it has expired or is older than the one in use.
pub fn read_aggregate(
    xml: &str,
    certificates: &[Vec<u8>],
    now: OffsetDateTime,
    newer_than: Option<OffsetDateTime>,
    filter: &AggregateFilter,
) -> Result<Aggregate, SamlError> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    let doc = roxmltree::Document::parse_with_options(xml, options)
        .map_err(|e| SamlError::Malformed(format!("XML: {e}")))?;
    let root = doc.root_element();
    if !root.has_tag_name((METADATA_NS, "EntitiesDescriptor"))
        && !root.has_tag_name((METADATA_NS, "EntityDescriptor"))
    {
        return Err(SamlError::Malformed(
            "not SAML metadata (EntitiesDescriptor or EntityDescriptor)".to_owned(),
        ));
    }
    verify_enveloped(root, certificates)?;
    let valid_until = root
        .attribute("validUntil")
        .ok_or_else(|| SamlError::Malformed("an aggregate without validUntil".to_owned()))
        .and_then(parse_instant)?;
    if valid_until <= now {
        return Err(SamlError::Unsupported(format!(
            "the aggregate expired at {valid_until}"
        )));
    }
    if let Some(current) = newer_than {
        if valid_until < current {
            return Err(SamlError::Unsupported(format!(
                "the aggregate (valid until {valid_until}) is older than the one in use \
                 (valid until {current})"
            )));
        }
    }
    let cache_duration = root.attribute("cacheDuration").and_then(parse_duration);
    let mut aggregate = Aggregate {
        valid_until,
        cache_duration,
        service_providers: Vec::new(),
        skipped: Vec::new(),
        entity_count: 0,
    };
    for entity in root
        .descendants()
        .filter(|n| n.has_tag_name((METADATA_NS, "EntityDescriptor")))
    {
        aggregate.entity_count += 1;
        let Some(entity_id) = entity.attribute("entityID") else {
            continue;
        };
        let is_sp = entity
            .children()
            .any(|n| n.has_tag_name((METADATA_NS, "SPSSODescriptor")));
        if !is_sp || !filter.admits(entity_id, registration_authority(entity)) {
            continue;
        }
        if let Some(expired) = entity
            .ancestors()
            .filter_map(|n| n.attribute("validUntil"))
            .filter_map(|v| parse_instant(v).ok())
            .find(|until| *until <= now)
        {
            aggregate
                .skipped
                .push((entity_id.to_owned(), format!("expired at {expired}")));
            continue;
        }
        match ServiceProvider::from_entity(entity) {
            Ok(sp) => aggregate.service_providers.push(sp),
            Err(e) => aggregate
                .skipped
                .push((entity_id.to_owned(), e.to_string())),
        }
    }
    Ok(aggregate)
}

/// The registration authority of `entity`: its own `mdrpi:RegistrationInfo`, else the
/// nearest enclosing `EntitiesDescriptor`'s.
fn registration_authority<'a>(entity: roxmltree::Node<'a, '_>) -> Option<&'a str> {
    entity.ancestors().find_map(|node| {
        node.children()
            .filter(|n| n.has_tag_name((METADATA_NS, "Extensions")))
            .flat_map(|e| e.children())
            .find(|n| n.has_tag_name((MDRPI_NS, "RegistrationInfo")))
            .and_then(|n| n.attribute("registrationAuthority"))
    })
}

/// An `xs:duration` (`PT6H`, `P1D`, `P0Y0M1DT2H30M15.5S`); years as 365 days and months as 30.
/// `None` if it is not one, or is negative.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let rest = text.trim().strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut seconds = 0f64;
    let mut any = false;
    let mut add = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut number = String::new();
        let mut unit_at = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let position = units.iter().position(|(u, _)| *u == c)?;
            // Units come in order, each once.
            if position < unit_at || number.is_empty() {
                return None;
            }
            unit_at = position + 1;
            seconds += number.parse::<f64>().ok()? * units[position].1;
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    add(
        date,
        &[
            ('Y', 365.0 * 86_400.0),
            ('M', 30.0 * 86_400.0),
            ('D', 86_400.0),
        ],
    )?;
    if let Some(time) = time {
        add(time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    (any && seconds.is_finite()).then(|| Duration::seconds_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::keys::generate;
    use crate::saml::signature::{sign_enveloped, SigningKey};
    use crate::saml::xml::Element;

    #[test]
    fn durations_read_as_xml_schema_writes_them() {
        assert_eq!(parse_duration("PT6H"), Some(Duration::hours(6)));
        assert_eq!(parse_duration("P1D"), Some(Duration::days(1)));
        assert_eq!(
            parse_duration("P0Y0M1DT2H30M15.5S"),
            Some(Duration::seconds_f64(86_400.0 + 9_015.5))
        );
        for bad in ["", "P", "PT", "6H", "PT6", "P1H", "PT1D", "PT1M1H", "-PT1H"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    fn key() -> (SigningKey, Vec<u8>) {
        let (pkcs8, cert) = generate("fed.test", OffsetDateTime::UNIX_EPOCH).unwrap();
        (SigningKey::from_pkcs8(&pkcs8, cert.clone()).unwrap(), cert)
    }

    fn sp(entity_id: &str, authority: Option<&str>, valid_until: Option<&str>) -> Element {
        let mut entity = Element::new("md", "EntityDescriptor").attr("entityID", entity_id);
        if let Some(until) = valid_until {
            entity = entity.attr("validUntil", until);
        }
        if let Some(authority) = authority {
            entity = entity.child(Element::new("md", "Extensions").child(
                Element::new("mdrpi", "RegistrationInfo").attr("registrationAuthority", authority),
            ));
        }
        entity.child(
            Element::new("md", "SPSSODescriptor")
                .attr("protocolSupportEnumeration", super::super::PROTOCOL_NS)
                .child(
                    Element::new("md", "AssertionConsumerService")
                        .attr("Binding", super::super::BINDING_POST)
                        .attr("Location", format!("{entity_id}/acs"))
                        .attr("index", "0"),
                ),
        )
    }

    fn aggregate(key: &SigningKey, valid_until: &str) -> String {
        let mut feed = Element::new("md", "EntitiesDescriptor")
            .attr("ID", "_feed")
            .attr("validUntil", valid_until)
            .attr("cacheDuration", "PT6H")
            .child(sp(
                "https://a.test",
                Some("https://federation.renater.fr/"),
                None,
            ))
            .child(sp("https://b.test", Some("http://www.edugain.org"), None))
            .child(sp("https://old.test", None, Some("2020-01-01T00:00:00Z")))
            .child(
                Element::new("md", "EntityDescriptor")
                    .attr("entityID", "https://broken.test")
                    .child(
                        Element::new("md", "SPSSODescriptor")
                            .attr("protocolSupportEnumeration", super::super::PROTOCOL_NS),
                    ),
            )
            .child(
                Element::new("md", "EntityDescriptor")
                    .attr("entityID", "https://idp.test")
                    .child(Element::new("md", "IDPSSODescriptor")),
            );
        sign_enveloped(&mut feed, 0, key).unwrap();
        feed.canonical()
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-12-07 12:00 UTC)
    }

    #[test]
    fn a_good_aggregate_gives_its_usable_sps_and_says_why_others_are_skipped() {
        let (k, cert) = key();
        let xml = aggregate(&k, "2026-12-21T00:00:00Z");
        let read = read_aggregate(&xml, &[cert], now(), None, &AggregateFilter::default()).unwrap();
        let ids: Vec<_> = read
            .service_providers
            .iter()
            .map(|s| s.entity_id.as_str())
            .collect();
        assert_eq!(ids, ["https://a.test", "https://b.test"]);
        assert_eq!(read.entity_count, 5);
        assert_eq!(read.cache_duration, Some(Duration::hours(6)));
        let skipped: Vec<_> = read.skipped.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(skipped, ["https://old.test", "https://broken.test"]);
        assert!(
            read.skipped[1].1.contains("HTTP-POST"),
            "{:?}",
            read.skipped
        );
    }

    #[test]
    fn the_filter_keeps_a_registration_authority_or_a_list() {
        let (k, cert) = key();
        let xml = aggregate(&k, "2026-12-21T00:00:00Z");
        let certs = std::slice::from_ref(&cert);
        let by_authority = AggregateFilter {
            registration_authorities: vec!["https://federation.renater.fr/".to_owned()],
            entities: Vec::new(),
        };
        let read = read_aggregate(&xml, certs, now(), None, &by_authority).unwrap();
        assert_eq!(read.service_providers.len(), 1);
        assert_eq!(read.service_providers[0].entity_id, "https://a.test");
        let listed = AggregateFilter {
            registration_authorities: Vec::new(),
            entities: vec!["https://b.test".to_owned(), "https://a.test/".to_owned()],
        };
        let read = read_aggregate(&xml, certs, now(), None, &listed).unwrap();
        assert_eq!(read.service_providers.len(), 1);
        assert_eq!(read.service_providers[0].entity_id, "https://b.test");
    }

    #[test]
    fn a88_expired_older_unsigned_or_wrongly_signed_aggregates_are_refused() {
        let (k, cert) = key();
        let (other, _) = key();
        let certs = std::slice::from_ref(&cert);
        let all = AggregateFilter::default();
        let expired = aggregate(&k, "2026-12-07T11:59:59Z");
        assert!(matches!(
            read_aggregate(&expired, certs, now(), None, &all),
            Err(SamlError::Unsupported(e)) if e.contains("expired")
        ));
        let good = aggregate(&k, "2026-12-21T00:00:00Z");
        let later = time::macros::datetime!(2026-12-28 00:00 UTC);
        assert!(matches!(
            read_aggregate(&good, certs, now(), Some(later), &all),
            Err(SamlError::Unsupported(e)) if e.contains("older than the one in use")
        ));
        let wrong_key = aggregate(&other, "2026-12-21T00:00:00Z");
        assert!(matches!(
            read_aggregate(&wrong_key, certs, now(), None, &all),
            Err(SamlError::Signature(_))
        ));
        let unsigned = good.replace(
            &good[good.find("<ds:Signature").unwrap()..good.find("</ds:Signature>").unwrap() + 15],
            "",
        );
        assert!(matches!(
            read_aggregate(&unsigned, certs, now(), None, &all),
            Err(SamlError::Signature(e)) if e == "not signed"
        ));
        let no_valid_until = good.replace("validUntil=\"2026-12-21T00:00:00Z\"", "");
        assert!(read_aggregate(&no_valid_until, certs, now(), None, &all).is_err());
    }
}
