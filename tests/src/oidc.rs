//! Helpers shared by the OpenID Connect end-to-end tests.

use sesame_protocol::oidc::clients::OidcClient;

use crate::TestApp;

/// An app with these OpenID Connect clients registered.
pub async fn oidc_app(clients: Vec<OidcClient>) -> TestApp {
    TestApp::builder()
        .with(move |s| s.oidc.clients = clients)
        .spawn()
        .await
}

/// A client without cookies that does not follow redirects (a relying party's back end).
///
/// # Panics
/// If the client cannot be built.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build the HTTP client")
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The value of hidden field `name` in a page, unescaped as a browser posts it.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html_unescape(&html[start..start + end]))
}

/// Undoes the HTML escaping of an attribute value, as a browser does before posting it.
pub fn html_unescape(value: &str) -> String {
    value
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Base64url without padding, decoded (JWT parts).
///
/// # Panics
/// If `s` is not base64url.
pub fn base64_url_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}
