//! Federations' SAML metadata aggregates (`[[saml.metadata_sources]]`, docs/saml.md): each
//! one fetched from its URL and refreshed, verified with its pinned certificate
//! (`protocol::saml::aggregate`), and its service providers put in the registry whole. What
//! fails (unreachable, too large, a bad signature, expired, older than the one in use) changes
//! nothing: the last good aggregate stays until its own `validUntil`, and is kept on disk
//! (`backup_file`) so that a restart while the federation is unreachable still has it.
//!
//! Tens of megabytes are read and verified on a blocking thread: requests are never held up.
//! Each instance of a deployment fetches for itself; they converge at the next refresh.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use sesame_core::clock::Clock;
use sesame_protocol::saml::aggregate::{read_aggregate, Aggregate};
use sesame_protocol::saml::providers::SamlServiceProviders;
use sesame_protocol::saml::SamlError;
use time::OffsetDateTime;

use crate::config::saml::{SamlMetadataSource, SamlSettings};

/// How long one fetch may take (an aggregate of tens of megabytes on a slow link).
const FETCH_TIMEOUT: StdDuration = StdDuration::from_secs(300);

/// Why a fetch changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The URL could not be fetched (connection, status, timeout).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The aggregate is larger than `max_megabytes`.
    #[error("larger than {0} MB")]
    TooLarge(u32),
    /// It was fetched but is not one to trust (signature, expiry, age, form).
    #[error("refused: {0}")]
    Refused(#[from] SamlError),
}

/// What a fetch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedOutcome {
    /// A new aggregate is in use, bringing this many SPs.
    Loaded(usize),
    /// The publisher says it has not changed (HTTP 304).
    Unchanged,
}

#[derive(Debug, Default)]
struct InUse {
    valid_until: Option<OffsetDateTime>,
    cache_duration: Option<time::Duration>,
    etag: Option<String>,
}

/// One `[[saml.metadata_sources]]`.
pub struct FederationFeed {
    source: SamlMetadataSource,
    pinned: Vec<Vec<u8>>,
    settings: Arc<SamlSettings>,
    providers: Arc<SamlServiceProviders>,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    in_use: Mutex<InUse>,
}

impl std::fmt::Debug for FederationFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederationFeed")
            .field("source", &self.source.name)
            .finish_non_exhaustive()
    }
}

impl FederationFeed {
    /// The feed of `source` (whose settings were validated), filling `providers`.
    ///
    /// # Errors
    /// [`FeedError::Refused`] if its pinned certificate file cannot be read.
    pub fn new(
        source: SamlMetadataSource,
        settings: Arc<SamlSettings>,
        providers: Arc<SamlServiceProviders>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, FeedError> {
        let pinned = source
            .pinned_certificates(&format!("saml.metadata_sources {}", source.name))
            .map_err(|e| FeedError::Refused(SamlError::Key(e.0)))?;
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("Sesame/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FeedError::Unreachable(e.to_string()))?;
        Ok(Self {
            source,
            pinned,
            settings,
            providers,
            clock,
            client,
            in_use: Mutex::default(),
        })
    }

    fn in_use(&self) -> std::sync::MutexGuard<'_, InUse> {
        self.in_use
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Uses the backup file's aggregate, if there is one and it still verifies and is valid.
    pub async fn load_backup(&self) -> Result<FeedOutcome, FeedError> {
        if self.source.backup_file.is_empty() {
            return Err(FeedError::Unreachable("no backup_file".to_owned()));
        }
        let path = self.source.backup_file.clone();
        let xml = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
            .await
            .map_err(|e| FeedError::Unreachable(e.to_string()))?
            .map_err(|e| FeedError::Unreachable(format!("{}: {e}", self.source.backup_file)))?;
        self.adopt(xml, None, false).await
    }

    /// Fetches the aggregate once and uses it if it is to be trusted.
    ///
    /// # Errors
    /// [`FeedError`] saying why nothing changed.
    pub async fn refresh(&self) -> Result<FeedOutcome, FeedError> {
        let mut request = self.client.get(&self.source.url);
        if let Some(etag) = self.in_use().etag.clone() {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| FeedError::Unreachable(e.without_url().to_string()))?;
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(FeedOutcome::Unchanged);
        }
        if !response.status().is_success() {
            return Err(FeedError::Unreachable(format!(
                "HTTP {}",
                response.status()
            )));
        }
        let limit = u64::from(self.source.max_megabytes) * 1024 * 1024;
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(FeedError::TooLarge(self.source.max_megabytes));
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FeedError::Unreachable(e.without_url().to_string()))?
        {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(FeedError::TooLarge(self.source.max_megabytes));
            }
            body.extend_from_slice(&chunk);
        }
        let xml = String::from_utf8(body)
            .map_err(|_| SamlError::Malformed("the aggregate is not UTF-8".to_owned()))?;
        self.adopt(xml, etag, true).await
    }

    /// Verifies and reads `xml` off the async workers, then puts its SPs in place.
    async fn adopt(
        &self,
        xml: String,
        etag: Option<String>,
        keep_backup: bool,
    ) -> Result<FeedOutcome, FeedError> {
        let now = self.clock.now();
        let newer_than = self.in_use().valid_until;
        let pinned = self.pinned.clone();
        let filter = self.source.filter();
        let (xml, read) = tokio::task::spawn_blocking(move || {
            let read = read_aggregate(&xml, &pinned, now, newer_than, &filter);
            (xml, read)
        })
        .await
        .map_err(|e| FeedError::Unreachable(format!("reading the aggregate: {e}")))?;
        let aggregate: Aggregate = read?;
        let mut providers = Vec::with_capacity(aggregate.service_providers.len());
        for metadata in aggregate.service_providers {
            let entity_id = metadata.entity_id.clone();
            match self
                .settings
                .federated_provider(&self.source.name, metadata)
            {
                Ok(sp) => providers.push(sp),
                Err(e) => tracing::warn!(
                    source = %self.source.name, entity_id = %entity_id, error = %e,
                    "a service provider of the aggregate is left out"
                ),
            }
        }
        for (entity_id, why) in &aggregate.skipped {
            tracing::debug!(source = %self.source.name, entity_id = %entity_id, why = %why,
                "an entity of the aggregate cannot be used");
        }
        let count = providers.len();
        self.providers
            .replace_federated(&self.source.name, providers);
        {
            let mut in_use = self.in_use();
            in_use.valid_until = Some(aggregate.valid_until);
            in_use.cache_duration = aggregate.cache_duration;
            in_use.etag = etag;
        }
        tracing::info!(
            source = %self.source.name,
            service_providers = count,
            skipped = aggregate.skipped.len(),
            entities = aggregate.entity_count,
            valid_until = %aggregate.valid_until,
            "SAML metadata aggregate verified and in use"
        );
        if keep_backup && !self.source.backup_file.is_empty() {
            if let Err(e) = write_backup(&self.source.backup_file, xml).await {
                tracing::warn!(source = %self.source.name, error = %e,
                    "could not keep the aggregate in its backup file");
            }
        }
        Ok(FeedOutcome::Loaded(count))
    }

    /// Drops the aggregate in use once its `validUntil` has passed (fetches kept failing, or
    /// the publisher kept answering "not modified"): metadata past its validity is not used.
    fn expire(&self) {
        let now = self.clock.now();
        let expired = {
            let mut in_use = self.in_use();
            let expired = in_use.valid_until.is_some_and(|until| until <= now);
            if expired {
                in_use.valid_until = None;
                in_use.etag = None;
            }
            expired
        };
        if expired {
            self.providers
                .replace_federated(&self.source.name, Vec::new());
            tracing::error!(source = %self.source.name,
                "the SAML metadata aggregate in use has expired and none newer could be had: \
                 its service providers can no longer log in");
        }
    }

    /// How long until the next fetch: the aggregate's `cacheDuration` within the source's
    /// bounds, never past its `validUntil`; after a failure, the shortest.
    fn next_delay(&self, failed: bool) -> StdDuration {
        let minutes = |m: u32| time::Duration::minutes(i64::from(m));
        let (min, max) = (
            minutes(self.source.min_refresh_minutes),
            minutes(self.source.max_refresh_minutes),
        );
        let in_use = self.in_use();
        let mut delay = if failed {
            min
        } else {
            in_use.cache_duration.unwrap_or(max).clamp(min, max)
        };
        if let Some(until) = in_use.valid_until {
            let left = until - self.clock.now();
            if left < delay {
                delay = left.max(time::Duration::seconds(30));
            }
        }
        StdDuration::try_from(delay).unwrap_or(StdDuration::from_secs(60))
    }

    fn record(&self, outcome: &'static str) {
        let valid_until = self.in_use().valid_until;
        let valid = valid_until.map_or(0.0, |until| {
            (until - self.clock.now()).as_seconds_f64().max(0.0)
        });
        sesame_metrics::saml_metadata_refresh(
            &self.source.name,
            outcome,
            valid,
            self.providers.federated_count(&self.source.name),
        );
    }

    /// One fetch, logged and counted; the delay before the next.
    pub async fn refresh_and_report(&self) -> StdDuration {
        let result = self.refresh().await;
        let outcome = match &result {
            Ok(FeedOutcome::Loaded(_)) => "loaded",
            Ok(FeedOutcome::Unchanged) => "unchanged",
            Err(FeedError::Unreachable(_)) => "unreachable",
            Err(FeedError::TooLarge(_) | FeedError::Refused(_)) => "refused",
        };
        if let Err(e) = &result {
            tracing::warn!(source = %self.source.name, url = %self.source.url, error = %e,
                "SAML metadata aggregate not updated: the last good one stays in use");
        }
        // Whatever the fetch said (a 304 too): metadata past its validUntil is not used.
        self.expire();
        self.record(outcome);
        self.next_delay(result.is_err())
    }

    /// Refreshes in the background, for as long as the process runs.
    pub fn spawn(self: Arc<Self>) {
        tokio::spawn(async move {
            loop {
                let delay = self.refresh_and_report().await;
                tokio::time::sleep(delay).await;
            }
        });
    }
}

/// Writes `xml` to `path` whole or not at all (a temporary file renamed over it).
async fn write_backup(path: &str, xml: String) -> std::io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let temporary = format!("{path}.{}.tmp", sesame_core::random::alphanumeric(8));
        std::fs::write(&temporary, xml)?;
        std::fs::rename(&temporary, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The feeds of `settings`' sources, each started from its backup file when it has a good
/// one, then refreshed in the background.
pub async fn start(
    settings: &SamlSettings,
    providers: &Arc<SamlServiceProviders>,
    clock: &Arc<dyn Clock>,
) -> Result<Vec<Arc<FederationFeed>>, FeedError> {
    let shared = Arc::new(settings.clone());
    let mut feeds = Vec::new();
    for source in &settings.metadata_sources {
        let feed = Arc::new(FederationFeed::new(
            source.clone(),
            Arc::clone(&shared),
            Arc::clone(providers),
            Arc::clone(clock),
        )?);
        if !source.backup_file.is_empty() {
            match feed.load_backup().await {
                Ok(_) => {}
                Err(e) => tracing::warn!(source = %source.name, error = %e,
                    "no usable backup of the SAML metadata aggregate: waiting for the first fetch"),
            }
        }
        Arc::clone(&feed).spawn();
        feeds.push(feed);
    }
    Ok(feeds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sesame_core::clock::ManualClock;
    use sesame_protocol::saml::keys::{certificate_pem, generate};
    use sesame_protocol::saml::signature::{sign_enveloped, SigningKey};
    use sesame_protocol::saml::xml::Element;
    use sesame_protocol::saml::{format_instant, BINDING_POST, PROTOCOL_NS};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// What the federation's test server answers: a status, a body, an `ETag`.
    #[derive(Default)]
    struct Served {
        status: u16,
        body: String,
        etag: Option<String>,
    }

    /// A one-file HTTP server (HTTP/1.1, one request per connection), answering `served`.
    async fn publisher(served: Arc<Mutex<Served>>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let served = Arc::clone(&served);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let request = String::from_utf8_lossy(&request).to_lowercase();
                    let (status, body, etag) = {
                        let s = served.lock().unwrap();
                        (s.status, s.body.clone(), s.etag.clone())
                    };
                    let not_modified = etag.as_ref().is_some_and(|e| {
                        request.contains(&format!("if-none-match: {}", e.to_lowercase()))
                    });
                    let (status, body) = if not_modified {
                        (304, String::new())
                    } else {
                        (status, body)
                    };
                    let etag_header = etag.map(|e| format!("ETag: {e}\r\n")).unwrap_or_default();
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{etag_header}Connection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                });
            }
        });
        format!("http://{address}/federation.xml")
    }

    fn key() -> (SigningKey, Vec<u8>) {
        let (pkcs8, cert) = generate("federation.test", OffsetDateTime::UNIX_EPOCH).unwrap();
        (SigningKey::from_pkcs8(&pkcs8, cert.clone()).unwrap(), cert)
    }

    fn sp(entity_id: &str) -> Element {
        Element::new("md", "EntityDescriptor")
            .attr("entityID", entity_id)
            .child(
                Element::new("md", "SPSSODescriptor")
                    .attr("protocolSupportEnumeration", PROTOCOL_NS)
                    .child(
                        Element::new("md", "AssertionConsumerService")
                            .attr("Binding", BINDING_POST)
                            .attr("Location", format!("{entity_id}/acs"))
                            .attr("index", "0"),
                    ),
            )
    }

    fn aggregate(key: &SigningKey, valid_until: OffsetDateTime, sps: &[&str]) -> String {
        let mut feed = Element::new("md", "EntitiesDescriptor")
            .attr("ID", "_feed")
            .attr("validUntil", format_instant(valid_until))
            .children(sps.iter().map(|e| sp(e)));
        sign_enveloped(&mut feed, 0, key).unwrap();
        feed.canonical()
    }

    fn temp_path(name: &str) -> String {
        std::env::temp_dir()
            .join(format!(
                "sesame-fed-{}-{name}",
                sesame_core::random::alphanumeric(10)
            ))
            .display()
            .to_string()
    }

    fn source(url: &str, certificates: &[&[u8]], backup: &str) -> SamlMetadataSource {
        let pem: String = certificates.iter().map(|c| certificate_pem(c)).collect();
        let file = temp_path("federation.pem");
        std::fs::write(&file, pem).unwrap();
        SamlMetadataSource {
            name: "federation".to_owned(),
            url: url.to_owned(),
            signing_certificate_file: file,
            backup_file: backup.to_owned(),
            max_megabytes: 1,
            min_refresh_minutes: 10,
            max_refresh_minutes: 240,
            registration_authorities: Vec::new(),
            entities: Vec::new(),
        }
    }

    fn feed(
        source: SamlMetadataSource,
        clock: &Arc<ManualClock>,
    ) -> (FederationFeed, Arc<SamlServiceProviders>) {
        let providers = Arc::new(SamlServiceProviders::default());
        let settings = Arc::new(SamlSettings {
            enabled: true,
            metadata_sources: vec![source.clone()],
            ..SamlSettings::default()
        });
        let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
        let feed = FederationFeed::new(source, settings, Arc::clone(&providers), clock).unwrap();
        (feed, providers)
    }

    #[tokio::test]
    async fn a88_only_a_good_newer_aggregate_replaces_the_one_in_use_and_a_restart_starts_from_its_backup(
    ) {
        let clock = Arc::new(ManualClock::starting_at(
            time::macros::datetime!(2026-12-07 12:00 UTC),
        ));
        let now = clock.now();
        let (federation, cert) = key();
        let (intruder, _) = key();
        let served = Arc::new(Mutex::new(Served {
            status: 200,
            body: aggregate(
                &federation,
                now + time::Duration::days(14),
                &["https://a.test", "https://b.test"],
            ),
            etag: None,
        }));
        let url = publisher(Arc::clone(&served)).await;
        let backup = temp_path("backup.xml");
        let (feed, providers) = feed(source(&url, &[&cert], &backup), &clock);
        assert_eq!(feed.refresh().await.unwrap(), FeedOutcome::Loaded(2));
        assert!(providers.get("https://a.test").is_some());
        assert!(providers.get("https://a.test/").is_none());
        assert_eq!(providers.federated_count("federation"), 2);
        assert!(std::fs::read_to_string(&backup)
            .unwrap()
            .contains("https://b.test"));

        // Each bad aggregate changes nothing.
        let set = |body: String| served.lock().unwrap().body = body;
        set(aggregate(
            &federation,
            now - time::Duration::minutes(1),
            &["https://evil.test"],
        ));
        assert!(
            matches!(feed.refresh().await, Err(FeedError::Refused(SamlError::Unsupported(e))) if e.contains("expired"))
        );
        set(aggregate(
            &intruder,
            now + time::Duration::days(30),
            &["https://evil.test"],
        ));
        assert!(matches!(
            feed.refresh().await,
            Err(FeedError::Refused(SamlError::Signature(_)))
        ));
        set(aggregate(
            &federation,
            now + time::Duration::days(7),
            &["https://evil.test"],
        ));
        assert!(
            matches!(feed.refresh().await, Err(FeedError::Refused(SamlError::Unsupported(e))) if e.contains("older"))
        );
        let good = aggregate(
            &federation,
            now + time::Duration::days(20),
            &["https://evil.test"],
        );
        let start = good.find("<ds:Signature").unwrap();
        let end = good.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        set(format!("{}{}", &good[..start], &good[end..]));
        assert!(
            matches!(feed.refresh().await, Err(FeedError::Refused(SamlError::Signature(e))) if e == "not signed")
        );
        set(format!("{good}{}", " ".repeat(1024 * 1024)));
        assert!(matches!(feed.refresh().await, Err(FeedError::TooLarge(1))));
        served.lock().unwrap().status = 503;
        assert!(
            matches!(feed.refresh().await, Err(FeedError::Unreachable(e)) if e.contains("503"))
        );
        assert!(providers.get("https://evil.test").is_none());
        assert_eq!(providers.federated_count("federation"), 2);
        assert!(std::fs::read_to_string(&backup)
            .unwrap()
            .contains("https://b.test"));

        // A newer good one replaces the whole set.
        *served.lock().unwrap() = Served {
            status: 200,
            body: aggregate(
                &federation,
                now + time::Duration::days(15),
                &["https://c.test"],
            ),
            etag: Some("\"v2\"".to_owned()),
        };
        assert_eq!(feed.refresh().await.unwrap(), FeedOutcome::Loaded(1));
        assert!(providers.get("https://a.test").is_none());
        assert!(providers.get("https://c.test").is_some());
        // Its ETag is sent back, and an unchanged aggregate is not read again.
        assert_eq!(feed.refresh().await.unwrap(), FeedOutcome::Unchanged);

        // A restart while the federation is down starts from the backup.
        served.lock().unwrap().status = 500;
        let (restarted, registry) = self::feed(source(&url, &[&cert], &backup), &clock);
        assert!(restarted.refresh().await.is_err());
        assert_eq!(
            restarted.load_backup().await.unwrap(),
            FeedOutcome::Loaded(1)
        );
        assert!(registry.get("https://c.test").is_some());

        // Once the aggregate in use expires and no newer one comes, its SPs go.
        clock.advance(time::Duration::days(16));
        restarted.refresh_and_report().await;
        assert!(registry.get("https://c.test").is_none());
        // Nor when the publisher keeps answering "not modified".
        assert!(providers.get("https://c.test").is_some());
        feed.refresh_and_report().await;
        assert!(providers.get("https://c.test").is_none());
    }

    #[tokio::test]
    async fn a_rolled_federation_key_is_trusted_once_pinned_beside_the_old_one() {
        let clock = Arc::new(ManualClock::starting_at(
            time::macros::datetime!(2026-12-07 12:00 UTC),
        ));
        let (old, old_cert) = key();
        let (new, new_cert) = key();
        let until = clock.now() + time::Duration::days(14);
        let served = Arc::new(Mutex::new(Served {
            status: 200,
            body: aggregate(&new, until, &["https://a.test"]),
            etag: None,
        }));
        let url = publisher(Arc::clone(&served)).await;
        let (only_old, providers) = feed(source(&url, &[&old_cert], ""), &clock);
        assert!(matches!(
            only_old.refresh().await,
            Err(FeedError::Refused(SamlError::Signature(_)))
        ));
        assert!(providers.get("https://a.test").is_none());
        let (both, providers) = feed(source(&url, &[&old_cert, &new_cert], ""), &clock);
        assert_eq!(both.refresh().await.unwrap(), FeedOutcome::Loaded(1));
        served.lock().unwrap().body =
            aggregate(&old, until + time::Duration::days(1), &["https://b.test"]);
        assert_eq!(both.refresh().await.unwrap(), FeedOutcome::Loaded(1));
        assert!(providers.get("https://b.test").is_some());
    }

    #[test]
    fn the_next_fetch_follows_cache_duration_within_bounds_and_never_past_valid_until() {
        let clock = Arc::new(ManualClock::starting_at(
            time::macros::datetime!(2026-12-07 12:00 UTC),
        ));
        let (feed, _) = feed(source("http://127.0.0.1:9/x", &[&key().1], ""), &clock);
        assert_eq!(feed.next_delay(false), StdDuration::from_secs(240 * 60));
        assert_eq!(feed.next_delay(true), StdDuration::from_secs(10 * 60));
        feed.in_use().cache_duration = Some(time::Duration::hours(1));
        assert_eq!(feed.next_delay(false), StdDuration::from_secs(3600));
        feed.in_use().cache_duration = Some(time::Duration::seconds(5));
        assert_eq!(feed.next_delay(false), StdDuration::from_secs(600));
        feed.in_use().valid_until = Some(clock.now() + time::Duration::minutes(3));
        assert_eq!(feed.next_delay(false), StdDuration::from_secs(180));
    }
}
