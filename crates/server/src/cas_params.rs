//! The query string of the CAS endpoints, read strictly (CAS Protocol 3.0 §2.4–2.8; security
//! spec A57): a parameter given twice, a broken percent-encoding, bytes that are not UTF-8 or
//! a query over [`MAX_CAS_QUERY_BYTES`] make the request malformed. The endpoints answer that
//! in CAS's own format (XML, JSON, `no\n\n`, SAML), never with the framework's plain-text
//! error, which no CAS client can read.

/// Longest query string a CAS endpoint reads, in bytes (as Apache's default request line).
/// A service URL with its own query fits many times over.
pub const MAX_CAS_QUERY_BYTES: usize = 8 * 1024;

/// Why a query string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedQuery {
    /// Over [`MAX_CAS_QUERY_BYTES`].
    #[error("the query string is over {MAX_CAS_QUERY_BYTES} bytes")]
    TooLong,
    /// A parameter given more than once (which one would count is ambiguous: A57).
    #[error("parameter {0} is given more than once")]
    Repeated(String),
    /// A `%` not followed by two hexadecimal digits, or bytes that are not UTF-8.
    #[error("parameter {0} is not validly encoded")]
    BadEncoding(String),
}

/// The decoded parameters of a query string, each name once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CasParams(Vec<(String, String)>);

impl CasParams {
    /// Reads `query` (without the `?`).
    ///
    /// # Errors
    /// [`MalformedQuery`].
    pub fn parse(query: &str) -> Result<Self, MalformedQuery> {
        if query.len() > MAX_CAS_QUERY_BYTES {
            return Err(MalformedQuery::TooLong);
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name =
                decode(raw_name).ok_or_else(|| MalformedQuery::BadEncoding(lossy(raw_name)))?;
            let value =
                decode(raw_value).ok_or_else(|| MalformedQuery::BadEncoding(name.clone()))?;
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(MalformedQuery::Repeated(name));
            }
            pairs.push((name, value));
        }
        Ok(Self(pairs))
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether a query, even a malformed one, asks for JSON (`format=JSON`): every `format` it
/// gives says so. The error about it is then written in JSON (CAS Protocol 3.0 §2.5.3).
pub fn asks_for_json(query: &str) -> bool {
    let mut formats = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .filter(|(n, _)| *n == "format")
        .map(|(_, v)| v)
        .peekable();
    formats.peek().is_some() && formats.all(|v| v.eq_ignore_ascii_case("json"))
}

/// A name as shown in an error: printable ASCII only, at most 40 characters.
fn lossy(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space), refusing a `%` without two
/// hexadecimal digits and bytes that are not UTF-8.
fn decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let text = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(text, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_decoded_once_each() {
        let p = CasParams::parse(
            "service=https%3A%2F%2Fapp.example%2F%3Fa%3D1%26b%3D2&ticket=ST-1&x=a+b",
        )
        .unwrap();
        assert_eq!(p.get("service"), Some("https://app.example/?a=1&b=2"));
        assert_eq!(p.get("ticket"), Some("ST-1"));
        assert_eq!(p.get("x"), Some("a b"));
        assert_eq!(p.get("renew"), None);
        assert_eq!(CasParams::parse("").unwrap(), CasParams::default());
        assert_eq!(CasParams::parse("renew").unwrap().get("renew"), Some(""));
    }

    #[test]
    fn repeats_bad_encodings_and_long_queries_are_malformed() {
        assert_eq!(
            CasParams::parse("service=a&ticket=b&service=c"),
            Err(MalformedQuery::Repeated("service".to_owned()))
        );
        assert_eq!(
            CasParams::parse("ticket=ST-%ZZ"),
            Err(MalformedQuery::BadEncoding("ticket".to_owned()))
        );
        assert_eq!(
            CasParams::parse("ticket=ST-%C3%28"),
            Err(MalformedQuery::BadEncoding("ticket".to_owned()))
        );
        assert_eq!(
            CasParams::parse("ticket=ST-1%"),
            Err(MalformedQuery::BadEncoding("ticket".to_owned()))
        );
        let long = format!("ticket={}", "a".repeat(MAX_CAS_QUERY_BYTES));
        assert_eq!(CasParams::parse(&long), Err(MalformedQuery::TooLong));
    }

    #[test]
    fn json_is_asked_only_by_every_format_given() {
        assert!(asks_for_json("ticket=x&format=JSON"));
        assert!(asks_for_json("format=json&format=Json"));
        assert!(!asks_for_json("format=JSON&format=XML"));
        assert!(!asks_for_json("ticket=x"));
    }
}
