//! The XML Sesame writes for SAML, built as a tree and written in its exclusive canonical form
//! (W3C Exclusive XML Canonicalization 1.0, without comments): the bytes a relying party's
//! verifier canonicalises are the bytes signed, without a canonicaliser of Sesame's own for
//! documents it did not write.
//!
//! Written so that the rules stay few: every element is in a namespace with a prefix (no
//! default namespace), every attribute is unprefixed or `xml:lang`, and an element declares
//! its own prefix unless an element above it in the output already did. Then the exclusive
//! canonical form of any element (what a signature over it covers) is that element written
//! as the apex of the output, and the document is its root's canonical form.

/// The prefixes Sesame writes, with their namespaces.
pub const NAMESPACES: &[(&str, &str)] = &[
    ("samlp", "urn:oasis:names:tc:SAML:2.0:protocol"),
    ("saml", "urn:oasis:names:tc:SAML:2.0:assertion"),
    ("ds", "http://www.w3.org/2000/09/xmldsig#"),
    ("md", "urn:oasis:names:tc:SAML:2.0:metadata"),
    ("mdui", "urn:oasis:names:tc:SAML:metadata:ui"),
    ("mdrpi", "urn:oasis:names:tc:SAML:metadata:rpi"),
    ("shibmd", "urn:mace:shibboleth:metadata:1.0"),
    ("xenc", "http://www.w3.org/2001/04/xmlenc#"),
];

/// The namespace of `prefix` (one of [`NAMESPACES`]).
fn namespace_of(prefix: &str) -> &'static str {
    NAMESPACES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map_or("", |(_, uri)| uri)
}

/// An element: `prefix:name`, its attributes and its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    prefix: &'static str,
    name: &'static str,
    attributes: Vec<(&'static str, String)>,
    children: Vec<Node>,
}

/// A child: an element or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data.
    Text(String),
}

impl Element {
    /// `<prefix:name>`; `prefix` must be one of [`NAMESPACES`].
    pub fn new(prefix: &'static str, name: &'static str) -> Self {
        debug_assert!(!namespace_of(prefix).is_empty(), "unknown prefix {prefix}");
        Self {
            prefix,
            name,
            attributes: Vec::new(),
            children: Vec::new(),
        }
    }

    /// With the attribute `name="value"` (unprefixed, or `xml:lang`).
    #[must_use]
    pub fn attr(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Sets the attribute `name` (replacing its value if it has one).
    pub fn set_attr(&mut self, name: &'static str, value: impl Into<String>) {
        let value = value.into();
        match self.attributes.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((name, value)),
        }
    }

    /// With `child` as its last child.
    #[must_use]
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// With each of `children` after its children.
    #[must_use]
    pub fn children(mut self, children: impl IntoIterator<Item = Element>) -> Self {
        self.children
            .extend(children.into_iter().map(Node::Element));
        self
    }

    /// With `text` as its last child.
    #[must_use]
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// Inserts `child` at `index` among its children.
    pub fn insert(&mut self, index: usize, child: Element) {
        let index = index.min(self.children.len());
        self.children.insert(index, Node::Element(child));
    }

    /// The value of the attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Its exclusive canonical form as the apex of the output: what a signature referencing
    /// it digests (once an enveloped signature is taken out), and, for the root, the
    /// document.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, &mut Vec::new());
        out
    }

    fn write(&self, out: &mut String, declared: &mut Vec<&'static str>) {
        out.push('<');
        self.write_name(out);
        // The only namespace an element visibly uses is its own prefix's (attributes are
        // unprefixed, or `xml:`, which is never declared).
        let declares = !declared.contains(&self.prefix);
        if declares {
            out.push_str(" xmlns:");
            out.push_str(self.prefix);
            out.push_str("=\"");
            escape_attribute(out, namespace_of(self.prefix));
            out.push('"');
            declared.push(self.prefix);
        }
        // Unprefixed attributes (no namespace) sort first, by name; `xml:lang` (the XML
        // namespace) after them.
        let mut attributes: Vec<_> = self.attributes.iter().collect();
        attributes.sort_by_key(|(name, _)| (name.starts_with("xml:"), *name));
        for (name, value) in attributes {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            escape_attribute(out, value);
            out.push('"');
        }
        out.push('>');
        for child in &self.children {
            match child {
                Node::Element(e) => e.write(out, declared),
                Node::Text(t) => escape_text(out, t),
            }
        }
        out.push_str("</");
        self.write_name(out);
        out.push('>');
        if declares {
            declared.pop();
        }
    }

    fn write_name(&self, out: &mut String) {
        out.push_str(self.prefix);
        out.push(':');
        out.push_str(self.name);
    }
}

/// Characters XML 1.0 cannot carry at all become U+FFFD, so the output is always well formed.
fn allowed(c: char) -> char {
    let forbidden = ((c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
        || c == '\u{FFFE}'
        || c == '\u{FFFF}';
    if forbidden {
        '\u{FFFD}'
    } else {
        c
    }
}

/// Text as canonical XML writes it.
pub(crate) fn escape_text(out: &mut String, text: &str) {
    for c in text.chars().map(allowed) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// An attribute value as canonical XML writes it.
pub(crate) fn escape_attribute(out: &mut String, value: &str) {
    for c in value.chars().map(allowed) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_declares_its_prefix_once_and_sorts_its_attributes() {
        let doc = Element::new("samlp", "Response")
            .attr("Version", "2.0")
            .attr("ID", "_1")
            .child(Element::new("saml", "Issuer").text("https://idp"))
            .child(
                Element::new("samlp", "Status")
                    .child(Element::new("samlp", "StatusCode").attr("Value", "urn:success")),
            );
        assert_eq!(
            doc.canonical(),
            "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"_1\" \
             Version=\"2.0\"><saml:Issuer xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">\
             https://idp</saml:Issuer><samlp:Status><samlp:StatusCode Value=\"urn:success\">\
             </samlp:StatusCode></samlp:Status></samlp:Response>"
        );
    }

    #[test]
    fn a_sibling_declares_again_what_a_previous_sibling_declared() {
        let doc = Element::new("samlp", "Response")
            .child(Element::new("saml", "Issuer"))
            .child(Element::new("saml", "Assertion"));
        let out = doc.canonical();
        assert_eq!(out.matches("xmlns:saml=").count(), 2, "{out}");
    }

    #[test]
    fn text_and_attributes_are_escaped_as_canonical_xml_does() {
        let e = Element::new("saml", "AttributeValue")
            .attr("xml:lang", "fr")
            .attr("Name", "a\"<&\t\n\r>")
            .text("x < y & z > w\r\u{1}'\"");
        assert_eq!(
            e.canonical(),
            "<saml:AttributeValue xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
             Name=\"a&quot;&lt;&amp;&#x9;&#xA;&#xD;>\" xml:lang=\"fr\">x &lt; y &amp; z &gt; w\
             &#xD;\u{FFFD}'\"</saml:AttributeValue>"
        );
    }

    #[test]
    fn what_is_written_parses_back_to_the_same_names_and_values() {
        let doc = Element::new("md", "EntityDescriptor")
            .attr("entityID", "https://idp/é?a=1&b=<2>")
            .child(Element::new("ds", "KeyInfo").text("  spaced  "));
        let text = doc.canonical();
        let parsed = roxmltree::Document::parse(&text).unwrap();
        let root = parsed.root_element();
        assert_eq!(root.tag_name().namespace(), Some(namespace_of("md")));
        assert_eq!(root.attribute("entityID"), Some("https://idp/é?a=1&b=<2>"));
        let key_info = root.first_element_child().unwrap();
        assert_eq!(key_info.tag_name().namespace(), Some(namespace_of("ds")));
        assert_eq!(key_info.text(), Some("  spaced  "));
    }
}
