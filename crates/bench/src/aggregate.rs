//! A federation's metadata aggregate of tens of megabytes: generated, signed, then read and
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

/// One SP as federations describe them: two certificates, consumer and logout services, UI
/// names and descriptions in three languages; about 4.5 KB.
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

/// Generates an aggregate of `entities` SPs signed by a federation key into `file`; the
/// federation's certificate (DER).
///
/// # Errors
/// If signing or writing fails.
pub fn write(entities: usize, file: &std::path::Path) -> anyhow::Result<Vec<u8>> {
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
    std::fs::write(file, feed.canonical())?;
    Ok(cert)
}

/// Reads and verifies the aggregate in `file` with `certificate`, in this process, which
/// should do nothing else (its peak memory is the reading's): what Sesame's feed does.
///
/// # Errors
/// If the file cannot be read or the aggregate is refused.
pub fn read(file: &std::path::Path, certificate: Vec<u8>) -> anyhow::Result<AggregateRun> {
    let pid = std::process::id();
    let xml = std::fs::read_to_string(file)?;
    let before = procfs::rss_kib(pid)?;
    procfs::reset_peak_rss();
    let started = Instant::now();
    let read = read_aggregate(
        &xml,
        &[certificate],
        SystemClock.now(),
        None,
        &AggregateFilter::default(),
    )?;
    let elapsed = started.elapsed();
    let peak = procfs::peak_rss_kib(pid)?;
    Ok(AggregateRun {
        entities: read.entity_count,
        bytes: xml.len(),
        read: elapsed,
        service_providers: read.service_providers.len(),
        peak_growth_kib: peak.saturating_sub(before),
    })
}

/// [`write`] then [`read`] in a child process of this executable
/// (`sesame-bench saml-aggregate-read`), so that what generating took is not counted.
///
/// # Errors
/// If either step fails.
pub fn measure(entities: usize, work_dir: &std::path::Path) -> anyhow::Result<AggregateRun> {
    std::fs::create_dir_all(work_dir)?;
    let file = work_dir.join("federation-aggregate.xml");
    let cert = write(entities, &file)?;
    let cert_file = work_dir.join("federation-aggregate.der");
    std::fs::write(&cert_file, cert)?;
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("saml-aggregate-read")
        .arg(&file)
        .arg(&cert_file)
        .output()?;
    let _ = std::fs::remove_file(&file);
    anyhow::ensure!(
        out.status.success(),
        "reading the aggregate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let [entities, bytes, micros, sps, growth] = numbers[..] else {
        anyhow::bail!("unexpected answer from the reading process: {line}");
    };
    Ok(AggregateRun {
        entities: usize::try_from(entities)?,
        bytes: usize::try_from(bytes)?,
        read: Duration::from_micros(micros),
        service_providers: usize::try_from(sps)?,
        peak_growth_kib: growth,
    })
}

impl AggregateRun {
    /// The line [`measure`] reads back from the child process.
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.entities,
            self.bytes,
            self.read.as_micros(),
            self.service_providers,
            self.peak_growth_kib
        )
    }
}
