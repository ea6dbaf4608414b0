//! Escaping for the XML documents Sesame writes (security row A17).

use std::fmt::Write as _;

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Escapes `&`, `<`, `>`, `"` and `'`, and replaces characters XML 1.0 cannot carry at all
/// (controls other than tab, LF, CR; U+FFFE; U+FFFF) with U+FFFD, so the output is always
/// well-formed, in text and in attribute values alike.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Appends `<prefix:name>escaped</prefix:name>`.
pub(crate) fn element(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>{}</{name}>", escape(text));
}

/// An XML name made safe: characters outside `[A-Za-z0-9_.-]` become `_`, and a `_` is put in
/// front when the first character cannot start a name (as Apereo's renderer does).
pub(crate) fn element_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    {
        out.insert(0, '_');
    }
    out
}

const SECONDS_UTC: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
const MILLIS_UTC: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// `xs:dateTime` in UTC with whole seconds, e.g. `2015-11-12T09:30:10Z`.
pub(crate) fn date_time_seconds(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(SECONDS_UTC)
        .unwrap_or_default()
}

/// `xs:dateTime` in UTC with milliseconds, e.g. `2008-12-10T14:12:14.817Z` (SAML 1.1).
pub(crate) fn date_time_millis(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(MILLIS_UTC)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn escapes_markup_and_drops_what_xml_cannot_carry() {
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(
            escape("a\u{0}b\u{1b}c\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        assert_eq!(escape("l1\nl2\tx\r"), "l1\nl2\tx&#13;");
    }

    #[test]
    fn element_names_are_sanitized() {
        assert_eq!(element_name("mail"), "mail");
        assert_eq!(element_name("a><b"), "a__b");
        assert_eq!(element_name("1x"), "_1x");
        assert_eq!(element_name(""), "_");
        assert_eq!(element_name("-x"), "_-x");
    }

    #[test]
    fn dates_are_utc() {
        let at = datetime!(2015-11-12 10:30:10.123 +01:00);
        assert_eq!(date_time_seconds(at), "2015-11-12T09:30:10Z");
        assert_eq!(date_time_millis(at), "2015-11-12T09:30:10.123Z");
    }
}
