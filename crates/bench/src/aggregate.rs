//! A federation's metadata aggregate at eduGAIN's size: generated, signed, then read and
//! verified the way Sesame's feed does it (`protocol::saml::aggregate::read_aggregate`, on one
//! thread, as the feed's blocking task does), with its time and the memory it took.

use std::time::{Duration, Instant};

use sesame_core::clock::{Clock as _, SystemClock};

use sesame_protocol::saml::aggregate::{read_aggregate, AggregateFilter};
use sesame_protocol::saml::keys::generate;
use sesame_protocol::saml::signature::{sign_enveloped, SigningKey};
use sesame_protocol::saml::xml::Element;
use sesame_protocol::saml::{format_instant, BINDING_POST, BINDING_REDIRECT, PROTOCOL_NS};

use crate::procfs;

/// What reading one aggregate cost.
#[derive(Debug, Clone)]
pub struct AggregateRun {
    /// Entities in it (all service providers).
    pub entities: usize,
    /// Its size, bytes.
    pub bytes: usize,
    /// Parse, verify the signature over the whole document, read every SP.
    pub read: Duration,
    /// SPs read.
    pub service_providers: usize,
    /// Resident memory the reading added at its peak, KiB (the document itself excluded).
    pub peak_growth_kib: u64,
}

/// One SP as federations describe them: keys, consumer and logout services, UI names,
/// entity categories, requested attributes: about 7 KB, as eduGAIN's average entity.
fn service_provider(n: usize, certificate: &str) -> Element {
    let entity_id = format!("https://sp{n}.federation.example.org/shibboleth");
    let key = |usage: &'static str| {
        Element::new("md", "KeyDescriptor")
            .attr("use", usage)
            .child(
                Element::new("ds", "KeyInfo").child(
                    Element::new("ds", "X509Data")
                        .child(Element::new("ds", "X509Certificate").text(certificate)),
                ),
            )
    };
    let mut ui = Element::new("mdui", "UIInfo");
    for lang in ["en", "fr", "de"] {
        ui = ui
            .child(
                Element::new("mdui", "DisplayName")
                    .attr("xml:lang", lang)
                    .text(format!("Service provider number {n} of the federation")),
            )
            .child(
                Element::new("mdui", "Description")
                    .attr("xml:lang", lang)
                    .text("A publisher's platform giving the institution's members access to journals, books and databases under the institution's licence."),
            );
    }
    let mut descriptor = Element::new("md", "SPSSODescriptor")
        .attr("protocolSupportEnumeration", PROTOCOL_NS)
        .child(Element::new("md", "Extensions").child(ui))
        .child(key("signing"))
        .child(key("encryption"));
    for binding in [BINDING_REDIRECT, BINDING_POST] {
        descriptor = descriptor.child(
            Element::new("md", "SingleLogoutService")
                .attr("Binding", binding)
                .attr("Location", format!("{entity_id}/Shibboleth.sso/SLO")),
        );
    }
    for (index, binding) in [BINDING_POST, BINDING_POST, BINDING_REDIRECT]
        .into_iter()
        .enumerate()
    {
        descriptor = descriptor.child(
            Element::new("md", "AssertionConsumerService")
                .attr("Binding", binding)
                .attr(
                    "Location",
                    format!("{entity_id}/Shibboleth.sso/SAML2/{index}"),
                )
                .attr("index", index.to_string()),
        );
    }
    Element::new("md", "EntityDescriptor")
        .attr("entityID", entity_id)
        .child(descriptor)
}

/// Generates an aggregate of `entities` SPs signed by a federation key, and reads it.
///
/// # Errors
/// If signing or reading fails (the run then has no figure to give).
pub fn measure(entities: usize) -> anyhow::Result<AggregateRun> {
    let now = SystemClock.now();
    let (pkcs8, cert) = generate("federation.example.org", now)?;
    let key = SigningKey::from_pkcs8(&pkcs8, cert.clone())?;
    let certificate = key.certificate_base64();
    let mut feed = Element::new("md", "EntitiesDescriptor")
        .attr("ID", "_bench_feed")
        .attr("validUntil", format_instant(now + time::Duration::days(14)))
        .attr("cacheDuration", "PT6H")
        .children((0..entities).map(|n| service_provider(n, &certificate)));
    sign_enveloped(&mut feed, 0, &key)?;
    let xml = feed.canonical();
    drop(feed);
    let pid = std::process::id();
    let before = procfs::rss_kib(pid)?;
    procfs::reset_peak_rss();
    let started = Instant::now();
    let read = read_aggregate(&xml, &[cert], now, None, &AggregateFilter::default())?;
    let elapsed = started.elapsed();
    let peak = procfs::peak_rss_kib(pid)?;
    Ok(AggregateRun {
        entities,
        bytes: xml.len(),
        read: elapsed,
        service_providers: read.service_providers.len(),
        peak_growth_kib: peak.saturating_sub(before),
    })
}
