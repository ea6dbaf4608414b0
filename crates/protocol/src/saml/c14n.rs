//! Exclusive XML canonicalisation without comments (W3C `xml-exc-c14n`), of documents others
//! wrote: what a verifier hashes. Only what SAML signatures use: one element's subtree, less
//! one excluded subtree (the enveloped signature), with an optional `InclusiveNamespaces`
//! prefix list. No XPath, no node-sets of any other shape.
//!
//! The document is the one `roxmltree` parsed (DTDs refused, so no entity but the five
//! predefined ones and character references): its line ends and attribute values are already
//! normalised as XML requires. Prefixes are not kept by `roxmltree`'s model, so they are read
//! back from the source at each node's position; the namespace each prefix stands for comes
//! from the parser's own scope.

use std::collections::BTreeMap;

use roxmltree::{Node, NodeId};

use super::xml::{escape_attribute, escape_text};

/// The qualified name as written at `start` (just after `<`, or an attribute's start).
fn qname_at(source: &str, start: usize) -> &str {
    let rest = source.get(start..).unwrap_or("");
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '/' | '>' | '='))
        .unwrap_or(rest.len());
    &rest[..end]
}

fn prefix_of(qname: &str) -> &str {
    qname.split_once(':').map_or("", |(prefix, _)| prefix)
}

/// The namespace `prefix` stands for at `element` (`""`: the default namespace; unbound: `""`).
fn namespace_of<'a>(element: Node<'a, '_>, prefix: &str) -> &'a str {
    element
        .namespaces()
        .find(|ns| ns.name().unwrap_or("") == prefix)
        .map_or("", |ns| ns.uri())
}

/// The exclusive canonical form of `apex`'s subtree, without the subtree rooted at `excluded`
/// and without comments. `inclusive_prefixes` is the `InclusiveNamespaces` `PrefixList`
/// (`#default` for the default namespace).
pub fn canonicalize(
    apex: Node<'_, '_>,
    excluded: Option<NodeId>,
    inclusive_prefixes: &[&str],
) -> String {
    let source = apex.document().input_text();
    let inclusive: Vec<&str> = inclusive_prefixes
        .iter()
        .map(|p| if *p == "#default" { "" } else { *p })
        .collect();
    let mut out = String::with_capacity(apex.range().len());
    // The namespace declarations in force in the output, one map per open element.
    let mut rendered: Vec<BTreeMap<String, String>> = vec![BTreeMap::new()];
    // An explicit stack (no recursion: a deep document cannot exhaust the thread's stack).
    enum Step<'a, 'i> {
        Open(Node<'a, 'i>),
        Close(&'a str),
    }
    let mut stack = vec![Step::Open(apex)];
    while let Some(step) = stack.pop() {
        let node = match step {
            Step::Close(qname) => {
                out.push_str("</");
                out.push_str(qname);
                out.push('>');
                rendered.pop();
                continue;
            }
            Step::Open(node) => node,
        };
        if Some(node.id()) == excluded {
            continue;
        }
        if node.is_text() {
            escape_text(&mut out, node.text().unwrap_or(""));
            continue;
        }
        if node.is_pi() {
            if let Some(pi) = node.pi() {
                out.push_str("<?");
                out.push_str(pi.target);
                if let Some(value) = pi.value.filter(|v| !v.is_empty()) {
                    out.push(' ');
                    out.push_str(value);
                }
                out.push_str("?>");
            }
            continue;
        }
        if !node.is_element() {
            // Comments (this is the form without them).
            continue;
        }
        let qname = qname_at(source, node.range().start + 1);
        let mut attributes: Vec<(&str, &str, &str, &str)> = node
            .attributes()
            .map(|a| {
                let qname = source.get(a.range_qname()).unwrap_or(a.name());
                (a.namespace().unwrap_or(""), a.name(), qname, a.value())
            })
            .collect();
        attributes.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        // Visibly utilised prefixes: the element's own, its attributes' (unprefixed
        // attributes are in no namespace), and those the prefix list names.
        let mut utilised: Vec<&str> = vec![prefix_of(qname)];
        utilised.extend(
            attributes
                .iter()
                .map(|(_, _, q, _)| prefix_of(q))
                .filter(|p| !p.is_empty()),
        );
        utilised.extend(inclusive.iter().copied().filter(|p| {
            // A listed prefix counts only where it is bound (the default one always is).
            p.is_empty() || node.namespaces().any(|ns| ns.name() == Some(*p))
        }));
        let parent = rendered.last().cloned().unwrap_or_default();
        let mut declarations = BTreeMap::new();
        for prefix in utilised {
            if prefix == "xml" {
                continue;
            }
            let uri = namespace_of(node, prefix);
            let in_force = parent.get(prefix).map_or("", String::as_str);
            if uri != in_force {
                declarations.insert(prefix.to_owned(), uri.to_owned());
            }
        }
        out.push('<');
        out.push_str(qname);
        for (prefix, uri) in &declarations {
            if prefix.is_empty() {
                out.push_str(" xmlns=\"");
            } else {
                out.push_str(" xmlns:");
                out.push_str(prefix);
                out.push_str("=\"");
            }
            escape_attribute(&mut out, uri);
            out.push('"');
        }
        for (_, _, qname, value) in &attributes {
            out.push(' ');
            out.push_str(qname);
            out.push_str("=\"");
            escape_attribute(&mut out, value);
            out.push('"');
        }
        out.push('>');
        let mut now_in_force = parent;
        now_in_force.extend(declarations);
        rendered.push(now_in_force);
        stack.push(Step::Close(qname));
        let children: Vec<_> = node.children().collect();
        stack.extend(children.into_iter().rev().map(Step::Open));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str, inclusive: &[&str]) -> String {
        let doc = roxmltree::Document::parse(xml).unwrap();
        canonicalize(doc.root_element(), None, inclusive)
    }

    #[test]
    fn attributes_are_sorted_quoted_and_escaped_and_empty_elements_opened() {
        assert_eq!(
            c14n(
                "<r b='2' a=\"x&quot;&lt;&gt;&#9;&#10;\" xmlns:p='urn:p' p:c='3'><e/>t&amp;&lt;&gt;<![CDATA[<x>]]><!-- c --><?pi  v?></r>",
                &[]
            ),
            "<r xmlns:p=\"urn:p\" a=\"x&quot;&lt;>&#x9;&#xA;\" b=\"2\" p:c=\"3\"><e></e>t&amp;&lt;&gt;&lt;x&gt;<?pi v?></r>"
        );
    }

    #[test]
    fn only_visibly_utilised_namespaces_are_declared_where_first_used() {
        let xml = r#"<a:r xmlns:a="urn:a" xmlns:b="urn:b" xmlns="urn:d"><a:x><b:y/><z xmlns=""/></a:x><w/></a:r>"#;
        assert_eq!(
            c14n(xml, &[]),
            r#"<a:r xmlns:a="urn:a"><a:x><b:y xmlns:b="urn:b"></b:y><z></z></a:x><w xmlns="urn:d"></w></a:r>"#
        );
        // The prefix list makes `b` (and the default namespace) rendered where in scope.
        assert_eq!(
            c14n(xml, &["b", "#default"]),
            r#"<a:r xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b"><a:x><b:y></b:y><z xmlns=""></z></a:x><w></w></a:r>"#
        );
    }

    #[test]
    fn a_subtree_is_canonical_in_its_own_right_and_the_excluded_part_vanishes() {
        let xml = r#"<p:o xmlns:p="urn:p" xmlns:q="urn:q" xml:lang="fr"><p:i ID="_1"><q:sig/><p:v>1</p:v></p:i></p:o>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        let inner = doc
            .descendants()
            .find(|n| n.attribute("ID") == Some("_1"))
            .unwrap();
        let sig = inner.first_child().unwrap();
        assert_eq!(
            canonicalize(inner, Some(sig.id()), &[]),
            r#"<p:i xmlns:p="urn:p" ID="_1"><p:v>1</p:v></p:i>"#
        );
    }
}
