//! The CAS service registry: which `service` URLs may obtain tickets (CAS Protocol 3.0
//! §2.1.1 and §2.2.1, "non-open mode"; security decision 8, rows A08 and A09).
//!
//! Every endpoint that takes a `service` (`/login`, `/logout`, the validation endpoints,
//! `/proxy`'s `targetService`, `/samlValidate`'s `TARGET`) asks [`ServiceRegistry::find`]. A
//! service is registered in one of three ways:
//!
//! * `url`: the exact URL. The candidate must be byte-for-byte the registered string (so
//!   `HTTPS://APP…`, a trailing `/` or an extra query parameter do not match).
//! * `url_prefix`: an origin and a path prefix. Scheme, host and port are compared on the
//!   parsed URL (scheme and host case-insensitively, as URLs define them); the path must equal
//!   the prefix's path or continue it after a `/` (a prefix registered as `/moodle` matches
//!   `/moodle` and `/moodle/…`, never `/moodle2`). Any query may follow. This is what phpCAS
//!   needs: it sends the page the user was on as `service`.
//! * `url_regex`: an anchored regular expression over the whole URL, allowed only when the
//!   service also sets `allow_regex = true`. Discouraged: a regex is easy to get wrong (an
//!   unescaped `.` in a host name is enough to let `appXexample.org` in).
//!
//! Before any of that, [`parse_service_url`] refuses whatever is not a plain absolute
//! `http`/`https` URL: control characters, spaces, backslashes, user info, missing host,
//! other schemes, and dot segments in the path, raw or percent-encoded (once or several
//! times) or hidden behind `;` path parameters (`..;/`).

use std::collections::HashSet;

use regex::Regex;
use serde::{Deserialize, Serialize};
use url::Url;

/// Longest `service` URL accepted, in bytes.
pub const MAX_SERVICE_URL_BYTES: usize = 2048;

/// Names the CAS 3.0 response already uses inside `<cas:attributes>`: a service may not
/// release attributes under these names.
pub const RESERVED_ATTRIBUTE_NAMES: [&str; 3] = [
    "authenticationDate",
    "longTermAuthenticationRequestTokenUsed",
    "isFromNewLogin",
];

/// How a service is told that the user logged out (CAS Protocol 3.0 §2.3.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogoutType {
    /// The service is not told.
    None,
    /// Sesame POSTs a SAML `LogoutRequest` to the service (the CAS default).
    #[default]
    BackChannel,
    /// The browser is sent to the service's logout URL.
    FrontChannel,
}

fn yes() -> bool {
    true
}

/// One CAS client application, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisteredService {
    /// Unique identifier, e.g. `moodle`.
    pub id: String,
    /// Name shown to people (login page, consent, logs).
    pub name: String,
    /// Exact service URL; the candidate must be byte-for-byte equal.
    #[serde(default)]
    pub url: Option<String>,
    /// Origin and path prefix (see the module documentation).
    #[serde(default)]
    pub url_prefix: Option<String>,
    /// Regular expression over the whole URL, implicitly anchored (`^(?:…)$`). Only with
    /// `allow_regex = true`; discouraged.
    #[serde(default)]
    pub url_regex: Option<String>,
    /// Explicit opt-in for `url_regex`.
    #[serde(default)]
    pub allow_regex: bool,
    /// Attribute names released to this service (e.g. `mail`, `givenName`, `sn`,
    /// `displayName`, `eduPersonAffiliation`).
    #[serde(default)]
    pub attributes: Vec<String>,
    /// May obtain proxy-granting tickets (CAS 2.0 proxying).
    #[serde(default)]
    pub allow_proxy: bool,
    /// Where single logout goes; by default, the service URL the ticket was issued for.
    #[serde(default)]
    pub logout_url: Option<String>,
    /// How single logout reaches this service.
    #[serde(default)]
    pub logout_type: LogoutType,
    /// `false`: credentials are asked every time, whatever the SSO session.
    #[serde(default = "yes")]
    pub sso: bool,
    /// `true`: tickets only for sessions with a second factor (REFEDS MFA); a session with
    /// the password alone is stepped up (the person types a code), a person without a
    /// factor is asked to add one first.
    #[serde(default)]
    pub require_mfa: bool,
}

/// Why a `service` URL was refused by [`parse_service_url`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceUrlError {
    /// Longer than [`MAX_SERVICE_URL_BYTES`].
    #[error("longer than {MAX_SERVICE_URL_BYTES} bytes")]
    TooLong,
    /// Empty.
    #[error("empty")]
    Empty,
    /// A control character, tab, line break, space or non-ASCII character.
    #[error("contains a control, space or non-ASCII character")]
    ForbiddenCharacter,
    /// A backslash (`https:/\evil` and friends).
    #[error("contains a backslash")]
    Backslash,
    /// No `scheme:` in front (`//evil`, `evil.example/x`).
    #[error("has no scheme")]
    MissingScheme,
    /// A scheme other than `http` or `https` (`javascript:`, `data:`, `ftp:`).
    #[error("scheme is not http or https")]
    UnsupportedScheme,
    /// The scheme is not followed by `//` (`https:/evil`, `https:evil`).
    #[error("scheme is not followed by //")]
    MissingAuthority,
    /// User info before the host (`user@host`, `a@b@evil`, `@evil`).
    #[error("contains user info")]
    UserInfo,
    /// No host (`https:///x`).
    #[error("has no host")]
    MissingHost,
    /// A percent sign in the host.
    #[error("host is percent-encoded")]
    EncodedHost,
    /// A `.` or `..` path segment, raw, percent-encoded or behind `;` parameters.
    #[error("path contains a dot segment")]
    DotSegment,
    /// The path is still percent-encoded after several rounds of decoding.
    #[error("path is encoded too many times")]
    NestedEncoding,
    /// Anything else the URL parser refused.
    #[error("not a valid URL: {0}")]
    Malformed(String),
}

/// Parses a `service` URL and refuses whatever is not a plain absolute `http`/`https` URL
/// (see the module documentation). The checks run on the raw string as well as on the
/// parsed URL, because the parser silently repairs some of the tricks (`https:/evil`,
/// `/a/%2e%2e/b`, `https://@evil`).
///
/// # Errors
/// One [`ServiceUrlError`] variant per kind of refusal.
pub fn parse_service_url(raw: &str) -> Result<Url, ServiceUrlError> {
    if raw.len() > MAX_SERVICE_URL_BYTES {
        return Err(ServiceUrlError::TooLong);
    }
    if raw.is_empty() {
        return Err(ServiceUrlError::Empty);
    }
    if raw.contains('\\') {
        return Err(ServiceUrlError::Backslash);
    }
    if raw
        .chars()
        .any(|c| !c.is_ascii() || c.is_ascii_control() || c == ' ')
    {
        return Err(ServiceUrlError::ForbiddenCharacter);
    }
    let Some((scheme, rest)) = raw.split_once(':') else {
        return Err(ServiceUrlError::MissingScheme);
    };
    let mut scheme_chars = scheme.chars();
    let scheme_is_valid = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_is_valid {
        return Err(ServiceUrlError::MissingScheme);
    }
    if !(scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")) {
        return Err(ServiceUrlError::UnsupportedScheme);
    }
    let Some(after_slashes) = rest.strip_prefix("//") else {
        return Err(ServiceUrlError::MissingAuthority);
    };
    let authority_end = after_slashes
        .find(['/', '?', '#'])
        .unwrap_or(after_slashes.len());
    let (authority, path_and_more) = after_slashes.split_at(authority_end);
    // The parser skips extra slashes (`https:///evil` becomes `https://evil/`).
    if authority.is_empty() {
        return Err(ServiceUrlError::MissingHost);
    }
    if authority.contains('@') {
        return Err(ServiceUrlError::UserInfo);
    }
    if authority.contains('%') {
        return Err(ServiceUrlError::EncodedHost);
    }
    let path_end = path_and_more
        .find(['?', '#'])
        .unwrap_or(path_and_more.len());
    check_dot_segments(&path_and_more[..path_end])?;

    let url = Url::parse(raw).map_err(|e| ServiceUrlError::Malformed(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ServiceUrlError::UnsupportedScheme);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ServiceUrlError::MissingHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ServiceUrlError::UserInfo);
    }
    Ok(url)
}

/// Rounds of percent-decoding tried when looking for hidden dot segments.
const MAX_DECODING_ROUNDS: usize = 4;

fn check_dot_segments(raw_path: &str) -> Result<(), ServiceUrlError> {
    let mut current = raw_path.to_owned();
    for _ in 0..MAX_DECODING_ROUNDS {
        if has_dot_segment(&current) {
            return Err(ServiceUrlError::DotSegment);
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return Ok(());
        }
        current = decoded;
    }
    if has_dot_segment(&current) {
        return Err(ServiceUrlError::DotSegment);
    }
    Err(ServiceUrlError::NestedEncoding)
}

/// `.` or `..` as a segment, with separators `/` or `\` (some servers accept both) and
/// ignoring `;` path parameters (Tomcat's `..;/`).
fn has_dot_segment(path: &str) -> bool {
    path.split(['/', '\\']).any(|segment| {
        let name = segment.split(';').next().unwrap_or(segment);
        name == "." || name == ".."
    })
}

/// Decodes `%XX` escapes (invalid ones are kept as they are); the result is read as UTF-8
/// with replacement, which is enough to look for dots and slashes.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            if let (Some(high), Some(low)) = (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            ) {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        out.push(byte);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// What is wrong with one service of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryProblem {
    /// Empty value.
    #[error("must not be empty")]
    Empty,
    /// Another service already uses this id.
    #[error("is already used by another service")]
    Duplicate,
    /// None of `url`, `url_prefix`, `url_regex` is set.
    #[error("one of url, url_prefix or url_regex is required")]
    NoPattern,
    /// More than one of `url`, `url_prefix`, `url_regex` is set.
    #[error("exactly one of url, url_prefix or url_regex may be set")]
    SeveralPatterns,
    /// `url_regex` without `allow_regex = true`.
    #[error("url_regex requires allow_regex = true (and is discouraged)")]
    RegexNotAllowed,
    /// The regular expression does not compile.
    #[error("invalid regular expression: {0}")]
    BadRegex(String),
    /// The URL is not an acceptable service URL.
    #[error("not an acceptable service URL: {0}")]
    BadUrl(ServiceUrlError),
    /// A prefix carries a query or a fragment.
    #[error("a prefix may not contain a query or a fragment")]
    PrefixWithQuery,
    /// An attribute name that is not a plain XML name (`[A-Za-z_][A-Za-z0-9_.-]*`) or that
    /// the protocol reserves.
    #[error("attribute name {0:?} is reserved or not a plain XML name")]
    BadAttributeName(String),
}

/// A configuration error, naming the service and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CAS service {service_id:?}, field `{field}`: {problem}")]
pub struct RegistryError {
    /// The service's `id` (possibly empty, when that is the problem).
    pub service_id: String,
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub problem: RegistryProblem,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Prefix {
        scheme: String,
        host: String,
        port: Option<u16>,
        path: String,
    },
    Regex(Regex),
}

impl Matcher {
    fn matches(&self, raw: &str, url: &Url) -> bool {
        match self {
            Self::Exact(registered) => raw == registered,
            Self::Prefix {
                scheme,
                host,
                port,
                path,
            } => {
                url.scheme() == scheme
                    && url.host_str() == Some(host.as_str())
                    && url.port_or_known_default() == *port
                    && path_has_prefix(url.path(), path)
            }
            Self::Regex(re) => re.is_match(raw),
        }
    }
}

/// `path` equals `prefix` or continues it after a `/`.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The registered CAS services, checked once at load.
#[derive(Debug, Clone)]
pub struct ServiceRegistry {
    services: Vec<RegisteredService>,
    matchers: Vec<Matcher>,
}

impl ServiceRegistry {
    /// Checks and compiles the configuration.
    ///
    /// # Errors
    /// The first [`RegistryError`] found, naming the service id and the field: empty or
    /// duplicate id, empty name, not exactly one of `url`/`url_prefix`/`url_regex`, a regex
    /// without `allow_regex` or that does not compile, a URL or prefix (or `logout_url`) that
    /// [`parse_service_url`] refuses, a prefix with a query, a bad attribute name.
    pub fn new(services: Vec<RegisteredService>) -> Result<Self, RegistryError> {
        let mut ids = HashSet::new();
        let mut matchers = Vec::with_capacity(services.len());
        for service in &services {
            let err = |field: &'static str, problem: RegistryProblem| RegistryError {
                service_id: service.id.clone(),
                field,
                problem,
            };
            if service.id.trim().is_empty() {
                return Err(err("id", RegistryProblem::Empty));
            }
            if !ids.insert(service.id.as_str()) {
                return Err(err("id", RegistryProblem::Duplicate));
            }
            if service.name.trim().is_empty() {
                return Err(err("name", RegistryProblem::Empty));
            }
            for name in &service.attributes {
                if !is_plain_xml_name(name) || RESERVED_ATTRIBUTE_NAMES.contains(&name.as_str()) {
                    return Err(err(
                        "attributes",
                        RegistryProblem::BadAttributeName(name.clone()),
                    ));
                }
            }
            if let Some(logout_url) = &service.logout_url {
                parse_service_url(logout_url)
                    .map_err(|e| err("logout_url", RegistryProblem::BadUrl(e)))?;
            }
            let matcher = match (&service.url, &service.url_prefix, &service.url_regex) {
                (Some(url), None, None) => {
                    parse_service_url(url).map_err(|e| err("url", RegistryProblem::BadUrl(e)))?;
                    Matcher::Exact(url.clone())
                }
                (None, Some(prefix), None) => {
                    let parsed = parse_service_url(prefix)
                        .map_err(|e| err("url_prefix", RegistryProblem::BadUrl(e)))?;
                    if parsed.query().is_some() || parsed.fragment().is_some() {
                        return Err(err("url_prefix", RegistryProblem::PrefixWithQuery));
                    }
                    let Some(host) = parsed.host_str() else {
                        return Err(err(
                            "url_prefix",
                            RegistryProblem::BadUrl(ServiceUrlError::MissingHost),
                        ));
                    };
                    Matcher::Prefix {
                        scheme: parsed.scheme().to_owned(),
                        host: host.to_owned(),
                        port: parsed.port_or_known_default(),
                        path: parsed.path().to_owned(),
                    }
                }
                (None, None, Some(pattern)) => {
                    if !service.allow_regex {
                        return Err(err("url_regex", RegistryProblem::RegexNotAllowed));
                    }
                    let re = Regex::new(&format!("^(?:{pattern})$"))
                        .map_err(|e| err("url_regex", RegistryProblem::BadRegex(e.to_string())))?;
                    Matcher::Regex(re)
                }
                (None, None, None) => return Err(err("url", RegistryProblem::NoPattern)),
                _ => return Err(err("url", RegistryProblem::SeveralPatterns)),
            };
            matchers.push(matcher);
        }
        Ok(Self { services, matchers })
    }

    /// The service `service` belongs to, or `None` if the URL is not acceptable
    /// ([`parse_service_url`]) or matches no registration.
    ///
    /// When several registrations match, the most specific wins: an exact `url` first, then
    /// the longest `url_prefix` path, then the first `url_regex` in configuration order.
    pub fn find(&self, service: &str) -> Option<&RegisteredService> {
        let url = parse_service_url(service).ok()?;
        let mut best_prefix: Option<(usize, usize)> = None;
        let mut first_regex: Option<usize> = None;
        for (index, matcher) in self.matchers.iter().enumerate() {
            if !matcher.matches(service, &url) {
                continue;
            }
            match matcher {
                Matcher::Exact(_) => return self.services.get(index),
                Matcher::Prefix { path, .. } => {
                    if best_prefix.is_none_or(|(_, len)| path.len() > len) {
                        best_prefix = Some((index, path.len()));
                    }
                }
                Matcher::Regex(_) => {
                    first_regex.get_or_insert(index);
                }
            }
        }
        best_prefix
            .map(|(index, _)| index)
            .or(first_regex)
            .and_then(|index| self.services.get(index))
    }

    /// The service with this id.
    pub fn get(&self, id: &str) -> Option<&RegisteredService> {
        self.services.iter().find(|s| s.id == id)
    }

    /// Every registered service, in configuration order.
    pub fn services(&self) -> &[RegisteredService] {
        &self.services
    }
}

/// `[A-Za-z_][A-Za-z0-9_.-]*`: safe as an XML element name (and in JSON, SAML).
pub(crate) fn is_plain_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

    use super::*;

    fn service(id: &str) -> RegisteredService {
        RegisteredService {
            id: id.to_owned(),
            name: format!("{id} app"),
            url: None,
            url_prefix: None,
            url_regex: None,
            allow_regex: false,
            attributes: vec!["mail".to_owned(), "eduPersonAffiliation".to_owned()],
            allow_proxy: false,
            logout_url: None,
            logout_type: LogoutType::default(),
            sso: true,
            require_mfa: false,
        }
    }

    fn exact(id: &str, url: &str) -> RegisteredService {
        RegisteredService {
            url: Some(url.to_owned()),
            ..service(id)
        }
    }

    fn prefix(id: &str, prefix: &str) -> RegisteredService {
        RegisteredService {
            url_prefix: Some(prefix.to_owned()),
            ..service(id)
        }
    }

    const EXACT: &str = "https://app.example.com/cb";

    /// Security row A09, against an exact registration.
    #[test]
    fn a09_variants_are_refused_except_the_exact_string() {
        let registry = ServiceRegistry::new(vec![exact("app", EXACT)]).unwrap();
        assert_eq!(registry.find(EXACT).map(|s| s.id.as_str()), Some("app"));
        let refused = [
            "https://app.example.com.evil.com/cb",
            "https://app.example.com@evil.com/cb",
            "https://a@b@evil.com/cb",
            "https://@app.example.com/cb",
            "//evil.com/cb",
            "//app.example.com/cb",
            "https:/\\evil.com/cb",
            "https:\\\\evil.com/cb",
            "https:/app.example.com/cb",
            "https:app.example.com/cb",
            "HTTPS://APP.EXAMPLE.COM/cb",
            "https://APP.example.com/cb",
            "https://app.example.com/cb/../x",
            "https://app.example.com/cb/./x",
            "https://app.example.com/x/../cb",
            "https://app.example.com/cb/%2E%2E/x",
            "https://app.example.com/cb/%2e%2e/x",
            "https://app.example.com/cb/%252E%252E/x",
            "https://app.example.com/cb/%252e%252e/x",
            "https://app.example.com/cb/..;/x",
            "https://app.example.com/cb/%2e%2e;/x",
            "https://app.example.com/cb\t",
            "https://app.example.com/cb\n",
            "https://app.example.com/c\tb",
            "https://app.example.com/cb\r\nLocation: https://evil.com",
            "https://app.example.com/cb ",
            " https://app.example.com/cb",
            "javascript:alert(1)//https://app.example.com/cb",
            "javascript://app.example.com/cb%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/cb#frag",
            "https://app.example.com:443/cb",
            "http://app.example.com/cb",
            "https://app.example.com/CB",
            "https://app.example.com./cb",
            "https://app.ex%61mple.com/cb",
            "https://evil.com/https://app.example.com/cb",
            "https:///app.example.com/cb",
            "",
        ];
        for candidate in refused {
            assert!(
                registry.find(candidate).is_none(),
                "{candidate:?} must be refused"
            );
        }
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let cases: [(&str, ServiceUrlError); 15] = [
            ("https://a.org/\t", ServiceUrlError::ForbiddenCharacter),
            ("https://a.org/\n", ServiceUrlError::ForbiddenCharacter),
            ("https://a.org/ x", ServiceUrlError::ForbiddenCharacter),
            ("https://a.org/é", ServiceUrlError::ForbiddenCharacter),
            ("https:/\\evil", ServiceUrlError::Backslash),
            ("//evil", ServiceUrlError::MissingScheme),
            ("javascript:alert(1)", ServiceUrlError::UnsupportedScheme),
            ("data:text/html,x", ServiceUrlError::UnsupportedScheme),
            ("https:/evil", ServiceUrlError::MissingAuthority),
            ("https://user@host/", ServiceUrlError::UserInfo),
            ("https://a@b@evil/", ServiceUrlError::UserInfo),
            ("https:///x", ServiceUrlError::MissingHost),
            ("https:////evil.com/x", ServiceUrlError::MissingHost),
            ("https://a.org/x/%252e%252e/y", ServiceUrlError::DotSegment),
            ("https://a.org/x/..;/y", ServiceUrlError::DotSegment),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_service_url(raw).unwrap_err(), expected, "{raw:?}");
        }
        assert_eq!(
            parse_service_url(&format!("https://a.org/{}", "x".repeat(2048))).unwrap_err(),
            ServiceUrlError::TooLong
        );
        assert_eq!(
            parse_service_url("https://a.org/%25252525252e").unwrap_err(),
            ServiceUrlError::NestedEncoding
        );
        // Dots that are not whole segments, and dots in the query, are fine.
        for ok in [
            "https://a.org/x/.well-known/y",
            "https://a.org/x/...",
            "https://a.org/x/a..b",
            "https://a.org/x?next=/../y",
            "http://a.org:8080/",
            "https://a.org",
        ] {
            assert!(parse_service_url(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn prefix_matches_on_a_slash_boundary_of_the_same_origin() {
        let registry =
            ServiceRegistry::new(vec![prefix("moodle", "https://app.example.org/moodle/")])
                .unwrap();
        for ok in [
            "https://app.example.org/moodle/",
            "https://app.example.org/moodle/login/index.php?x=1",
            "https://app.example.org:443/moodle/x",
            "HTTPS://APP.EXAMPLE.ORG/moodle/x",
        ] {
            assert_eq!(
                registry.find(ok).map(|s| s.id.as_str()),
                Some("moodle"),
                "{ok:?}"
            );
        }
        for refused in [
            "https://app.example.org/moodle",
            "https://app.example.org/moodle2",
            "https://app.example.org/moodle2/x",
            "https://app.example.org.evil.com/moodle/",
            "https://app.example.org@evil.com/moodle/",
            "http://app.example.org/moodle/",
            "https://app.example.org:8443/moodle/",
            "https://app.example.org/Moodle/",
            "https://app.example.org/moodle/../admin",
            "https://app.example.org/moodle/%2e%2e/admin",
            "https://app.example.org/moodle/..;/admin",
            "https://evil.com/?https://app.example.org/moodle/",
        ] {
            assert!(registry.find(refused).is_none(), "{refused:?}");
        }
    }

    #[test]
    fn prefix_without_trailing_slash_still_stops_at_a_segment() {
        let registry =
            ServiceRegistry::new(vec![prefix("moodle", "https://app.example.org/moodle")]).unwrap();
        for ok in [
            "https://app.example.org/moodle",
            "https://app.example.org/moodle?x=1",
            "https://app.example.org/moodle/",
            "https://app.example.org/moodle/course/view.php?id=2",
        ] {
            assert!(registry.find(ok).is_some(), "{ok:?}");
        }
        for refused in [
            "https://app.example.org/moodle2",
            "https://app.example.org/moodle.evil",
            "https://app.example.org/moodle%2f..%2fadmin",
            "https://app.example.org/moodl",
        ] {
            assert!(registry.find(refused).is_none(), "{refused:?}");
        }
    }

    #[test]
    fn most_specific_registration_wins() {
        let registry = ServiceRegistry::new(vec![
            prefix("all", "https://app.example.org/"),
            prefix("moodle", "https://app.example.org/moodle/"),
            exact("moodle-admin", "https://app.example.org/moodle/admin"),
        ])
        .unwrap();
        let id = |s: &str| registry.find(s).map(|s| s.id.clone());
        assert_eq!(id("https://app.example.org/x").as_deref(), Some("all"));
        assert_eq!(
            id("https://app.example.org/moodle/x").as_deref(),
            Some("moodle")
        );
        assert_eq!(
            id("https://app.example.org/moodle/admin").as_deref(),
            Some("moodle-admin")
        );
        assert_eq!(
            registry.get("moodle").map(|s| s.name.as_str()),
            Some("moodle app")
        );
        assert!(registry.get("nope").is_none());
        assert_eq!(registry.services().len(), 3);
    }

    #[test]
    fn regex_needs_the_flag_and_is_anchored() {
        let mut svc = RegisteredService {
            url_regex: Some(r"https://[a-z]+\.example\.org/app".to_owned()),
            ..service("re")
        };
        let err = ServiceRegistry::new(vec![svc.clone()]).unwrap_err();
        assert_eq!(err.problem, RegistryProblem::RegexNotAllowed);
        assert_eq!(err.service_id, "re");
        assert_eq!(err.field, "url_regex");
        svc.allow_regex = true;
        let registry = ServiceRegistry::new(vec![svc]).unwrap();
        assert!(registry.find("https://one.example.org/app").is_some());
        // Anchored: nothing before or after.
        assert!(registry.find("https://one.example.org/app/x").is_none());
        assert!(registry
            .find("https://evil.com/?https://one.example.org/app")
            .is_none());
        // The URL checks still apply before the regex.
        assert!(registry.find("https://x@one.example.org/app").is_none());
    }

    #[test]
    fn configuration_errors_name_service_and_field() {
        let check = |services: Vec<RegisteredService>, id: &str, field: &str| {
            let err = ServiceRegistry::new(services).unwrap_err();
            assert_eq!((err.service_id.as_str(), err.field), (id, field), "{err}");
            err.problem
        };
        assert_eq!(
            check(vec![exact("a", EXACT), exact("a", EXACT)], "a", "id"),
            RegistryProblem::Duplicate
        );
        assert_eq!(
            check(vec![service("a")], "a", "url"),
            RegistryProblem::NoPattern
        );
        let both = RegisteredService {
            url_prefix: Some(EXACT.to_owned()),
            ..exact("a", EXACT)
        };
        assert_eq!(
            check(vec![both], "a", "url"),
            RegistryProblem::SeveralPatterns
        );
        assert!(matches!(
            check(vec![exact("a", "https://u@app.example.com/")], "a", "url"),
            RegistryProblem::BadUrl(ServiceUrlError::UserInfo)
        ));
        assert_eq!(
            check(
                vec![prefix("a", "https://app.example.com/x?y=1")],
                "a",
                "url_prefix"
            ),
            RegistryProblem::PrefixWithQuery
        );
        let bad_regex = RegisteredService {
            url_regex: Some("(".to_owned()),
            allow_regex: true,
            ..service("a")
        };
        assert!(matches!(
            check(vec![bad_regex], "a", "url_regex"),
            RegistryProblem::BadRegex(_)
        ));
        let bad_attr = RegisteredService {
            attributes: vec!["mail><x".to_owned()],
            ..exact("a", EXACT)
        };
        assert!(matches!(
            check(vec![bad_attr], "a", "attributes"),
            RegistryProblem::BadAttributeName(_)
        ));
        let reserved = RegisteredService {
            attributes: vec!["isFromNewLogin".to_owned()],
            ..exact("a", EXACT)
        };
        assert!(matches!(
            check(vec![reserved], "a", "attributes"),
            RegistryProblem::BadAttributeName(_)
        ));
        let bad_logout = RegisteredService {
            logout_url: Some("javascript:alert(1)".to_owned()),
            ..exact("a", EXACT)
        };
        assert!(matches!(
            check(vec![bad_logout], "a", "logout_url"),
            RegistryProblem::BadUrl(ServiceUrlError::UnsupportedScheme)
        ));
        assert_eq!(
            check(vec![exact(" ", EXACT)], " ", "id"),
            RegistryProblem::Empty
        );
    }

    #[test]
    fn configuration_deserializes_with_defaults_and_refuses_unknown_fields() {
        let svc: RegisteredService = serde_json::from_str(
            r#"{"id":"moodle","name":"Moodle","url_prefix":"https://app.example.org/moodle/"}"#,
        )
        .unwrap();
        assert!(svc.sso);
        assert_eq!(svc.logout_type, LogoutType::BackChannel);
        assert!(!svc.allow_proxy && !svc.allow_regex && svc.attributes.is_empty());
        let front: RegisteredService = serde_json::from_str(
            r#"{"id":"a","name":"A","url":"https://a.org/","logout_type":"front_channel","sso":false}"#,
        )
        .unwrap();
        assert_eq!(front.logout_type, LogoutType::FrontChannel);
        assert!(!front.sso);
        assert!(serde_json::from_str::<RegisteredService>(
            r#"{"id":"a","name":"A","url":"https://a.org/","urll":"x"}"#
        )
        .is_err());
    }

    /// Strings close to `https://app.example.org/moodle/…`, with the A09 tricks mixed in.
    const URL_LIKE: &str = r"(https|https|https|HTTPS|http|javascript|data)(://|://|://|:|:/|:///|:\\|:/\\)(app\.example\.org|app\.example\.org|APP\.EXAMPLE\.ORG|evil\.com|app\.example\.org\.evil\.com|app\.example\.org@evil\.com|a@app\.example\.org|app\.ex%61mple\.org)(:443|:8443|:)?(/moodle/|/moodle/|/moodle|/moodle2/|/)((x|x|index\.php|moodle|\.\.|\.|%2e%2e|%2E|%252e%252e|\.\.;|@|\\|%2f)/?){0,3}(\?[a-z=/.@]*)?(#[a-z]*)?";

    /// If the prefix service accepts `s`, `s` has its scheme, host, port and path prefix.
    fn prefix_property_holds(s: &str) -> bool {
        let registry =
            ServiceRegistry::new(vec![prefix("p", "https://app.example.org/moodle/")]).unwrap();
        if registry.find(s).is_none() {
            return true;
        }
        parse_service_url(s).is_ok_and(|url| {
            url.scheme() == "https"
                && url.host_str() == Some("app.example.org")
                && url.port_or_known_default() == Some(443)
                && url.path().starts_with("/moodle/")
        })
    }

    /// The generator above is not vacuous: it produces accepted and refused URLs alike.
    #[test]
    fn url_like_generator_reaches_both_outcomes() {
        use proptest::strategy::{Strategy, ValueTree};
        use proptest::test_runner::TestRunner;

        let registry =
            ServiceRegistry::new(vec![prefix("p", "https://app.example.org/moodle/")]).unwrap();
        let strategy = proptest::string::string_regex(URL_LIKE).unwrap();
        let mut runner = TestRunner::deterministic();
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..5000 {
            let s = strategy.new_tree(&mut runner).unwrap().current();
            assert!(prefix_property_holds(&s), "{s:?}");
            if registry.find(&s).is_some() {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        assert!(
            accepted >= 20 && refused >= 20,
            "{accepted} accepted, {refused} refused"
        );
    }

    proptest! {
        #[test]
        fn random_strings_never_panic(s in ".{0,300}") {
            let registry = ServiceRegistry::new(vec![
                prefix("p", "https://app.example.org/moodle/"),
                exact("e", EXACT),
            ]).unwrap();
            let _ = parse_service_url(&s);
            let _ = registry.find(&s);
        }

        #[test]
        fn url_like_strings_matching_a_prefix_keep_its_origin(s in URL_LIKE) {
            prop_assert!(prefix_property_holds(&s));
        }

        #[test]
        fn suffixes_of_a_registered_prefix_keep_its_origin(
            suffix in r"(/moodle)?(/|\?|#|%2f|2)?[ -~]{0,60}"
        ) {
            let registry =
                ServiceRegistry::new(vec![prefix("p", "https://app.example.org/moodle")]).unwrap();
            let candidate = format!("https://app.example.org{suffix}");
            if registry.find(&candidate).is_some() {
                let url = parse_service_url(&candidate).unwrap();
                prop_assert_eq!(url.scheme(), "https");
                prop_assert_eq!(url.host_str(), Some("app.example.org"));
                prop_assert_eq!(url.port_or_known_default(), Some(443));
                prop_assert!(url.path() == "/moodle" || url.path().starts_with("/moodle/"));
            }
        }
    }
}
