//! What every route shares: state, language choice, client address, cookies, page rendering
//! and the access log; the admin API's problem objects ([`problem`]), the cross-site check
//! of forms ([`origin`]) and the form tokens ([`csrf`]). Route modules import from here,
//! never from one another.

pub mod csrf;
pub mod error;
pub mod origin;
pub mod problem;

use std::net::IpAddr;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};
use sesame_core::i18n::Lang;
use time::OffsetDateTime;
use time_tz::{OffsetDateTimeExt, Tz};

use crate::config::{parse_cidr, Settings};
use crate::services::Services;
use crate::templates::Renderer;

/// Name of the language cookie set by the visible language switch.
pub const LANG_COOKIE: &str = "sesame_lang";

/// Query parameters that carry a secret (a reset or verification link's token, a code, a
/// ticket): a page whose address has one must not send that address on as a `Referer`.
const SECRET_PARAMETERS: &[&str] = &["token", "code", "ticket"];

/// The referrer policy of ordinary pages: their address, sent to this site only. Forms
/// rely on it: a browser sends `Origin: null` with a form posted from a `no-referrer`
/// page, which the cross-site check must refuse.
const PAGE_REFERRER_POLICY: &str = "same-origin";

/// The referrer policy of a page whose address carries a secret ([`SECRET_PARAMETERS`]):
/// its style sheet, logo and links get the site's origin as `Referer`, never the address
/// with the token (security spec A49), and its forms still send their `Origin`.
pub const SECRET_PAGE_REFERRER_POLICY: &str = "strict-origin";

/// Whether the query string of `req` carries a secret ([`SECRET_PARAMETERS`]).
pub fn carries_secret(req: &HttpRequest) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(name, value)| !value.is_empty() && SECRET_PARAMETERS.contains(&name.as_ref()))
}

/// Name of the cookie holding the id of the activation in progress (its pages, and the login
/// page when an activation code is typed as the password, start one).
pub const ACTIVATION_FLOW_COOKIE: &str = "sesame_activation";

/// Shared by all requests.
#[derive(Debug)]
pub struct AppState {
    /// Settings in force.
    pub settings: Settings,
    /// Domain services.
    pub services: Services,
    /// Templates and texts.
    pub renderer: Renderer,
    /// Name of the SSO cookie (`__Host-` prefixed over https).
    pub sso_cookie_name: String,
    /// Name of the device cookie (`__Host-` prefixed over https).
    pub device_cookie_name: String,
    /// Name of the cookie of a browser remembered for the second factor.
    pub mfa_browser_cookie_name: String,
    trusted_proxies: Vec<(IpAddr, u8)>,
    time_zone: &'static Tz,
}

impl AppState {
    /// State for these settings.
    pub fn new(settings: Settings, services: Services, renderer: Renderer) -> Self {
        let sso_cookie_name = if settings.is_https() {
            "__Host-sesame_tgc".to_owned()
        } else {
            "sesame_tgc".to_owned()
        };
        let device_cookie_name = if settings.is_https() {
            "__Host-sesame_device".to_owned()
        } else {
            "sesame_device".to_owned()
        };
        let mfa_browser_cookie_name = if settings.is_https() {
            "__Host-sesame_mfa_browser".to_owned()
        } else {
            "sesame_mfa_browser".to_owned()
        };
        let trusted_proxies = settings
            .server
            .trusted_proxies
            .iter()
            .filter_map(|p| parse_cidr(p))
            .collect();
        let time_zone = time_tz::timezones::get_by_name(&settings.ui.time_zone)
            .unwrap_or(time_tz::timezones::db::UTC);
        Self {
            settings,
            services,
            renderer,
            sso_cookie_name,
            device_cookie_name,
            mfa_browser_cookie_name,
            trusted_proxies,
            time_zone,
        }
    }

    /// The public base URL, without trailing slash.
    pub fn base(&self) -> &str {
        self.settings.public_base()
    }

    /// The path part of the public URL without trailing slash (`""` at the root, `/sso`
    /// under a prefix): pages link relatively, so they work behind any proxy host name.
    pub fn base_path(&self) -> String {
        url::Url::parse(self.base())
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }

    /// The language of this request: `?lang=`, then the language cookie, then
    /// `Accept-Language`, then French.
    pub fn lang(&self, req: &HttpRequest, explicit: Option<&str>) -> Lang {
        explicit
            .and_then(Lang::from_tag)
            .or_else(|| {
                req.cookie(LANG_COOKIE)
                    .and_then(|c| Lang::from_tag(c.value()))
            })
            .or_else(|| {
                req.headers()
                    .get("accept-language")
                    .and_then(|v| v.to_str().ok())
                    .map(Lang::negotiate)
            })
            .unwrap_or_default()
    }

    /// The client's address. `X-Forwarded-For` is believed only when the peer is a configured
    /// trusted proxy, and then only up to the first address that is not one (A56).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.is_trusted(ip) => {}
                Ok(ip) => return Some(ip),
                Err(_) => return Some(peer),
            }
        }
        Some(peer)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|(net, len)| in_cidr(ip, *net, *len))
    }

    /// `HH:MM` in the institution's time zone (daylight saving included).
    pub fn local_time(&self, at: OffsetDateTime) -> String {
        let local = at.to_timezone(self.time_zone);
        format!("{:02}:{:02}", local.hour(), local.minute())
    }

    /// `DD/MM/YYYY HH:MM` in the institution's time zone (daylight saving included).
    pub fn local_datetime(&self, at: OffsetDateTime) -> String {
        let l = at.to_timezone(self.time_zone);
        format!(
            "{:02}/{:02}/{} {:02}:{:02}",
            l.day(),
            u8::from(l.month()),
            l.year(),
            l.hour(),
            l.minute()
        )
    }

    /// The SSO cookie for a new session: HttpOnly, SameSite=Lax, Path=/, Secure and
    /// `__Host-` over https; persistent only for "remember me".
    pub fn sso_cookie(&self, value: String, persistent_secs: Option<u64>) -> Cookie<'static> {
        let mut cookie = Cookie::build(self.sso_cookie_name.clone(), value)
            .path("/")
            .http_only(true)
            .secure(self.settings.is_https())
            .same_site(SameSite::Lax)
            .finish();
        if let Some(secs) = persistent_secs {
            cookie.set_max_age(CookieDuration::seconds(
                i64::try_from(secs).unwrap_or(i64::MAX),
            ));
        }
        cookie
    }

    /// A cookie that deletes the SSO cookie.
    pub fn sso_cookie_removal(&self) -> Cookie<'static> {
        let mut cookie = self.sso_cookie(String::new(), None);
        cookie.make_removal();
        cookie
    }

    /// Whether this browser is remembered for `account_id`'s second factor (its cookie names
    /// a live record of that account; the use is recorded). Any failure: `false` (the factor
    /// is asked: fail closed).
    pub async fn remembered_for_second_factor(
        &self,
        req: &HttpRequest,
        account_id: sesame_core::ids::AccountId,
    ) -> bool {
        let Some(cookie) = req.cookie(&self.mfa_browser_cookie_name) else {
            return false;
        };
        match self
            .services
            .remembered_browsers
            .recognises(account_id, cookie.value())
            .await
        {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!(error = %e, "could not read a remembered browser");
                false
            }
        }
    }

    /// Remembers this browser for `account_id`'s second factor (the person ticked "Ne plus
    /// demander sur cet appareil") and returns its cookie: HttpOnly, SameSite=Lax, Path=/,
    /// Secure and `__Host-` over https, lasting `mfa.remember_browser_days`. A failure only
    /// costs the browser its standing (logged; the login goes on).
    pub async fn remember_for_second_factor(
        &self,
        req: &HttpRequest,
        account_id: sesame_core::ids::AccountId,
    ) -> Option<Cookie<'static>> {
        let agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let label = sesame_mfa::remembered::label_from_user_agent(agent);
        match self
            .services
            .remembered_browsers
            .remember(account_id, &label)
            .await
        {
            Ok(Some(remembered)) => Some(
                Cookie::build(self.mfa_browser_cookie_name.clone(), remembered.token)
                    .path("/")
                    .http_only(true)
                    .secure(self.settings.is_https())
                    .same_site(SameSite::Lax)
                    .max_age(CookieDuration::seconds(remembered.max_age_secs))
                    .finish(),
            ),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not remember a browser for the second factor");
                None
            }
        }
    }

    /// The value of the browser's device cookie, if it sent one (security spec decision 1).
    pub fn presented_device(&self, req: &HttpRequest) -> Option<String> {
        req.cookie(&self.device_cookie_name)
            .map(|c| c.value().to_owned())
    }

    /// Makes this browser a known device of the account, after it proved itself (a password
    /// login that opened a session, a completed reset by a verified channel), and returns the
    /// device cookie to set: HttpOnly, SameSite=Lax, Path=/, Secure and `__Host-` over https,
    /// lasting `lockout.known_device_days`. A failure only costs the browser its standing:
    /// it is logged, and the login or reset goes on.
    pub async fn remember_device(
        &self,
        req: &HttpRequest,
        account_id: sesame_core::ids::AccountId,
    ) -> Option<Cookie<'static>> {
        let presented = self.presented_device(req);
        match self
            .services
            .devices
            .remember(account_id, presented.as_deref())
            .await
        {
            Ok(token) => {
                let lifetime = self.services.devices.lifetime().as_secs();
                Some(
                    Cookie::build(self.device_cookie_name.clone(), token)
                        .path("/")
                        .http_only(true)
                        .secure(self.settings.is_https())
                        .same_site(SameSite::Lax)
                        .max_age(CookieDuration::seconds(
                            i64::try_from(lifetime).unwrap_or(i64::MAX),
                        ))
                        .finish(),
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not remember the device of a login");
                None
            }
        }
    }

    /// The cookie that carries an activation in progress to its steps: Path=/activation,
    /// HttpOnly, SameSite=Strict, Secure over https, ending with the browser.
    pub fn activation_flow_cookie(&self, flow_id: String) -> Cookie<'static> {
        Cookie::build(ACTIVATION_FLOW_COOKIE, flow_id)
            .path("/activation")
            .http_only(true)
            .secure(self.settings.is_https())
            .same_site(SameSite::Strict)
            .finish()
    }

    /// Where the help links of error, lock and blocked pages lead: `ui.helpdesk_url` when
    /// set, else Sesame's own assistance form.
    pub fn help_url(&self) -> String {
        if self.settings.ui.helpdesk_url.is_empty() {
            format!("{}/assistance", self.base_path())
        } else {
            self.settings.ui.helpdesk_url.clone()
        }
    }

    /// The end of a logout: back to `service` (a registered service or client URI, checked
    /// by the caller), else the logged-out page.
    pub fn logged_out(
        &self,
        req: &HttpRequest,
        lang: Option<&str>,
        service: Option<&str>,
    ) -> HttpResponse {
        if let Some(service) = service {
            return HttpResponse::SeeOther()
                .insert_header(("Location", service.to_owned()))
                .finish();
        }
        let lang = self.lang(req, lang);
        self.page(
            StatusCode::OK,
            "logged_out.html",
            lang,
            req,
            minijinja::context! {},
        )
    }

    /// Renders a page. A rendering failure (broken theme) becomes a plain 500. A page whose
    /// address carries a token gets [`SECRET_PAGE_REFERRER_POLICY`], in its `<meta>` (which
    /// browsers obey over the header) and its header alike.
    pub fn page(
        &self,
        status: StatusCode,
        template: &str,
        lang: Lang,
        req: &HttpRequest,
        ctx: minijinja::Value,
    ) -> HttpResponse {
        let other = match lang {
            Lang::Fr => Lang::En,
            Lang::En => Lang::Fr,
        };
        let secret = carries_secret(req);
        let referrer_policy = if secret {
            SECRET_PAGE_REFERRER_POLICY
        } else {
            PAGE_REFERRER_POLICY
        };
        let base_ctx = minijinja::context! {
            referrer_policy => referrer_policy,
            lang => lang.tag(),
            other_lang => other.tag(),
            lang_switch_url => lang_switch_url(req, other),
            base => self.base_path(),
            institution => self.settings.ui.institution_name,
            helpdesk_url => self.settings.ui.helpdesk_url,
            help_url => self.help_url(),
            t => self.renderer.texts(lang),
        };
        let merged = minijinja::context! { ..ctx, ..base_ctx };
        match self.renderer.render(template, merged) {
            Ok(html) => {
                let mut res = HttpResponse::build(status);
                res.content_type("text/html; charset=utf-8");
                if secret {
                    res.insert_header((
                        actix_web::http::header::REFERRER_POLICY,
                        SECRET_PAGE_REFERRER_POLICY,
                    ));
                }
                res.body(html)
            }
            Err(e) => {
                tracing::error!(error = %e, "page rendering failed");
                HttpResponse::InternalServerError()
                    .content_type("text/plain; charset=utf-8")
                    .body("Internal error")
            }
        }
    }
}

/// The current path with `lang` set to `to`, other query parameters kept.
fn lang_switch_url(req: &HttpRequest, to: Lang) -> String {
    let mut pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .filter(|(k, _)| k != "lang")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    pairs.push(("lang".to_owned(), to.tag().to_owned()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{}?{query}", req.path())
}

fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            (u32::from(a) & mask) == (u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            (u128::from(a) & mask) == (u128::from(n) & mask)
        }
        _ => false,
    }
}

/// Paths polled by machines (probes, relying parties refreshing metadata, browsers fetching
/// assets): their access log line is at debug level, so that at the usual `info` they cost no
/// span and no log write. Anything they log at `info` or above still shows.
fn is_quiet_path(path: &str) -> bool {
    path.starts_with("/health/")
        || path.starts_with("/static/")
        || path.starts_with("/.well-known/")
        || path == "/jwks"
}

/// Every request runs in a span carrying a fresh `request.id` (also sent back as
/// `X-Request-Id`, so a person can quote it to the helpdesk), and ends with one log line:
/// method, path (never the query string, which carries tickets and codes), status and
/// duration. The line is at `info`, or at `debug` for the quiet paths ([`is_quiet_path`]).
///
/// This runs on every request, so it allocates nothing for a line that is filtered out.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use tracing::Instrument;

    let started = Instant::now();
    let request_id = crate::request_id::RequestId::next();
    let quiet = is_quiet_path(req.path());
    let logged = if quiet {
        tracing::enabled!(tracing::Level::DEBUG)
    } else {
        tracing::enabled!(tracing::Level::INFO)
    };
    let span = match (logged, quiet) {
        (false, _) => tracing::Span::none(),
        (true, true) => tracing::debug_span!("request", request.id = %request_id),
        (true, false) => tracing::info_span!("request", request.id = %request_id),
    };
    let mut res = next.call(req).instrument(span.clone()).await?;
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(request_id.as_str()) {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            value,
        );
    }
    let status = res.status().as_u16();
    if !logged && status < 500 {
        return Ok(res);
    }
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let method = res.request().method();
    let path = res.request().path();
    let _entered = span.enter();
    if status >= 500 && !logged {
        // A quiet path's span was not made: the id goes in the line.
        tracing::warn!(request.id = %request_id, http.method = %method, http.path = %path, http.status = status, duration_ms, "request");
    } else if status >= 500 {
        tracing::warn!(http.method = %method, http.path = %path, http.status = status, duration_ms, "request");
    } else if quiet {
        tracing::debug!(http.method = %method, http.path = %path, http.status = status, duration_ms, "request");
    } else {
        tracing::info!(http.method = %method, http.path = %path, http.status = status, duration_ms, "request");
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_the_institution_time_zone_with_daylight_saving() {
        let mut settings = Settings::default();
        settings.ui.time_zone = "Europe/Paris".to_owned();
        let tz = time_tz::timezones::get_by_name(&settings.ui.time_zone).unwrap();
        let winter = time::macros::datetime!(2026-01-15 13:05 UTC);
        let summer = time::macros::datetime!(2026-07-15 13:05 UTC);
        let hm = |at: OffsetDateTime| {
            let l = at.to_timezone(tz);
            format!("{:02}:{:02}", l.hour(), l.minute())
        };
        assert_eq!(hm(winter), "14:05");
        assert_eq!(hm(summer), "15:05");
    }

    #[test]
    fn only_machine_polled_paths_are_quiet() {
        for quiet in [
            "/health/live",
            "/health/ready",
            "/static/sesame.css",
            "/.well-known/openid-configuration",
            "/jwks",
        ] {
            assert!(is_quiet_path(quiet), "{quiet}");
        }
        for loud in [
            "/cas/login",
            "/token",
            "/jwks/x",
            "/healthz",
            "/cas/p3/serviceValidate",
        ] {
            assert!(!is_quiet_path(loud), "{loud}");
        }
    }

    #[test]
    fn cidr_membership() {
        let net: IpAddr = "10.0.0.0".parse().unwrap();
        assert!(in_cidr("10.1.2.3".parse().unwrap(), net, 8));
        assert!(!in_cidr("11.1.2.3".parse().unwrap(), net, 8));
        assert!(in_cidr("::1".parse().unwrap(), "::1".parse().unwrap(), 128));
        assert!(!in_cidr("::1".parse().unwrap(), net, 8));
    }
}
