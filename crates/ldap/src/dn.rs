//! Distinguished names (RFC 4514), as far as Sesame's tree needs them: single-valued RDNs of
//! string attributes. Attribute types compare without case; values compare after the
//! directory's matching rule for every attribute Sesame serves (`caseIgnoreMatch`: trimmed,
//! lowercase). A multi-valued RDN (`a=1+b=2`) names nothing in Sesame's tree and is refused.

use std::fmt;

/// One `type=value` component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    /// The attribute type, lowercase.
    pub attr: String,
    /// The value, unescaped, as written.
    pub value: String,
}

impl Rdn {
    /// The value as it compares: trimmed, lowercase.
    pub fn normalized_value(&self) -> String {
        self.value.trim().to_lowercase()
    }
}

/// A parsed DN, leaf first (as written).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dn {
    /// The components, leaf first; empty for the root DSE.
    pub rdns: Vec<Rdn>,
}

/// Why a string is not a DN Sesame can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    /// No `=` in a component, an empty type, or a bad escape.
    #[error("invalid DN syntax")]
    Syntax,
    /// `a=1+b=2`.
    #[error("multi-valued RDNs are not supported")]
    MultiValued,
}

/// Longest DN accepted, in bytes (a client's string, bounded before any work on it).
const MAX_DN_BYTES: usize = 4096;

impl Dn {
    /// Parses `s` (RFC 4514 §3: `,` separates components, `\` escapes a special character or
    /// gives two hex digits of a UTF-8 byte).
    ///
    /// # Errors
    /// [`DnError`] for anything else.
    pub fn parse(s: &str) -> Result<Self, DnError> {
        if s.len() > MAX_DN_BYTES {
            return Err(DnError::Syntax);
        }
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let mut rdns = Vec::new();
        let mut bytes: Vec<u8> = Vec::new();
        let mut attr: Option<String> = None;
        let mut chars = s.chars().peekable();
        let finish = |attr: &mut Option<String>, bytes: &mut Vec<u8>, rdns: &mut Vec<Rdn>| {
            let a = attr.take().ok_or(DnError::Syntax)?;
            let value = String::from_utf8(std::mem::take(bytes)).map_err(|_| DnError::Syntax)?;
            let a = a.trim().to_ascii_lowercase();
            if a.is_empty()
                || !a
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(DnError::Syntax);
            }
            rdns.push(Rdn {
                attr: a,
                value: value.trim().to_owned(),
            });
            Ok(())
        };
        let mut key = String::new();
        while let Some(c) = chars.next() {
            match (attr.is_some(), c) {
                (false, '=') => {
                    attr = Some(std::mem::take(&mut key));
                }
                (false, ',' | '+' | '\\') => return Err(DnError::Syntax),
                (false, c) => key.push(c),
                (true, '\\') => {
                    let first = chars.next().ok_or(DnError::Syntax)?;
                    if first.is_ascii_hexdigit() {
                        let second = chars.next().ok_or(DnError::Syntax)?;
                        let hex = [first, second].iter().collect::<String>();
                        let byte = u8::from_str_radix(&hex, 16).map_err(|_| DnError::Syntax)?;
                        bytes.push(byte);
                    } else {
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(first.encode_utf8(&mut buf).as_bytes());
                    }
                }
                (true, ',') => finish(&mut attr, &mut bytes, &mut rdns)?,
                (true, '+') => return Err(DnError::MultiValued),
                (true, c) => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        if attr.is_none() {
            return Err(DnError::Syntax);
        }
        finish(&mut attr, &mut bytes, &mut rdns)?;
        Ok(Self { rdns })
    }

    /// Whether `self` is `ancestor` or below it.
    pub fn is_within(&self, ancestor: &Dn) -> bool {
        self.rdns.len() >= ancestor.rdns.len()
            && self
                .rdns
                .iter()
                .rev()
                .zip(ancestor.rdns.iter().rev())
                .all(|(a, b)| a.attr == b.attr && a.normalized_value() == b.normalized_value())
    }

    /// Whether `self` and `other` name the same entry.
    pub fn same_as(&self, other: &Dn) -> bool {
        self.rdns.len() == other.rdns.len() && self.is_within(other)
    }

    /// The leaf component.
    pub fn leaf(&self) -> Option<&Rdn> {
        self.rdns.first()
    }

    /// The DN without its leaf.
    pub fn parent(&self) -> Dn {
        Dn {
            rdns: self.rdns.iter().skip(1).cloned().collect(),
        }
    }

    /// `attr=value` under `self`.
    pub fn child(&self, attr: &str, value: &str) -> Dn {
        let mut rdns = Vec::with_capacity(self.rdns.len() + 1);
        rdns.push(Rdn {
            attr: attr.to_ascii_lowercase(),
            value: value.to_owned(),
        });
        rdns.extend(self.rdns.iter().cloned());
        Dn { rdns }
    }
}

/// `value` escaped for a DN string (RFC 4514 §2.4).
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && matches!(c, ' ' | '#'))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
        } else {
            if special {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", rdn.attr, escape_value(&rdn.value))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_split_on_unescaped_commas_and_types_lowercased() {
        let dn = Dn::parse("UID=jean.dupont, ou=People,dc=univ,dc=example").unwrap();
        assert_eq!(dn.rdns.len(), 4);
        assert_eq!(dn.rdns[0].attr, "uid");
        assert_eq!(dn.rdns[0].value, "jean.dupont");
        assert_eq!(dn.rdns[1].normalized_value(), "people");
        let escaped = Dn::parse(r"cn=Dupont\, Jean\2C Jr,ou=people,dc=x").unwrap();
        assert_eq!(escaped.rdns[0].value, "Dupont, Jean, Jr");
        assert_eq!(
            Dn::parse(r"cn=caf\c3\a9,dc=x").unwrap().rdns[0].value,
            "café"
        );
    }

    #[test]
    fn malformed_and_multi_valued_dns_are_refused() {
        for bad in [
            "uid",
            "=x,dc=y",
            "uid=x,,dc=y",
            r"uid=x\",
            r"uid=\zz\c3",
            "u id=x",
        ] {
            assert!(Dn::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Dn::parse("uid=a+cn=b,dc=x"), Err(DnError::MultiValued));
        assert_eq!(Dn::parse(&"a".repeat(5000)), Err(DnError::Syntax));
        assert_eq!(Dn::parse("").unwrap().rdns.len(), 0);
    }

    #[test]
    fn containment_ignores_case_and_spaces() {
        let base = Dn::parse("dc=Univ,dc=Example").unwrap();
        let person = Dn::parse("uid=x, ou=people, dc=univ, dc=example").unwrap();
        assert!(person.is_within(&base));
        assert!(base.is_within(&base));
        assert!(!base.is_within(&person));
        assert!(!Dn::parse("dc=other,dc=example").unwrap().is_within(&base));
        assert!(person.parent().parent().same_as(&base));
    }

    #[test]
    fn values_are_escaped_on_output_and_read_back_alike() {
        let dn = Dn::parse("dc=x").unwrap().child("cn", " Dupont, Jean+#1 ");
        let text = dn.to_string();
        assert_eq!(text, r"cn=\ Dupont\, Jean\+#1\ ,dc=x");
        // Leading and trailing spaces are trimmed on parse (they are not part of the names
        // Sesame builds), everything else comes back.
        assert_eq!(Dn::parse(&text).unwrap().rdns[0].value, r"Dupont, Jean+#1");
    }
}
