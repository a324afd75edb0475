use std::fmt;

/// A name pattern for a namespace, package or action: literal text with `*` matching any run of
/// characters (including none). Nothing else is special.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    kind: GlobKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobKind {
    /// `*`: matches everything.
    Any,
    /// No `*`: matches exactly this text.
    Literal,
    /// Text pieces separated by `*`; the first must start the name, the last must end it.
    Pieces { parts: Vec<String>, anchored_start: bool, anchored_end: bool },
}

/// Characters OpenWhisk allows in entity names (`[\w@ .-]`), plus `*` for globs.
fn allowed(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '@' | ' ' | '.' | '-' | '*')
}

impl Glob {
    /// Compiles a pattern. `allow_empty` admits `""`, which only matches an empty name (used for
    /// "actions outside any package").
    pub fn parse(text: &str, allow_empty: bool) -> Result<Glob, String> {
        if text.is_empty() {
            return if allow_empty {
                Ok(Glob { text: String::new(), kind: GlobKind::Literal })
            } else {
                Err("empty pattern (use \"*\" to match everything)".to_string())
            };
        }
        if let Some(bad) = text.chars().find(|c| !allowed(*c)) {
            return Err(format!(
                "bad glob `{text}`: character {bad:?} cannot appear in an OpenWhisk name \
                 (only letters, digits, `_ @ . -`, space, and `*` as a wildcard)"
            ));
        }
        if text.contains("**") {
            return Err(format!("bad glob `{text}`: `**` is meaningless, use a single `*`"));
        }
        let kind = if text == "*" {
            GlobKind::Any
        } else if !text.contains('*') {
            GlobKind::Literal
        } else {
            GlobKind::Pieces {
                parts: text.split('*').filter(|p| !p.is_empty()).map(str::to_string).collect(),
                anchored_start: !text.starts_with('*'),
                anchored_end: !text.ends_with('*'),
            }
        };
        Ok(Glob { text: text.to_string(), kind })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_literal(&self) -> bool {
        matches!(self.kind, GlobKind::Literal)
    }

    /// How specific the pattern is: 2 for a literal, 1 for a glob with some literal text, 0 for `*`.
    pub fn specificity(&self) -> u8 {
        match self.kind {
            GlobKind::Literal => 2,
            GlobKind::Pieces { .. } => 1,
            GlobKind::Any => 0,
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        match &self.kind {
            GlobKind::Any => true,
            GlobKind::Literal => self.text == name,
            GlobKind::Pieces { parts, anchored_start, anchored_end } => {
                let mut rest = name;
                let last = parts.len() - 1;
                for (i, part) in parts.iter().enumerate() {
                    if i == 0 && *anchored_start {
                        match rest.strip_prefix(part.as_str()) {
                            Some(r) => rest = r,
                            None => return false,
                        }
                    } else if i == last && *anchored_end {
                        return rest.len() >= part.len() && rest.ends_with(part.as_str());
                    } else {
                        match rest.find(part.as_str()) {
                            Some(at) => rest = &rest[at + part.len()..],
                            None => return false,
                        }
                    }
                }
                !*anchored_end || rest.is_empty()
            }
        }
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        Glob::parse(p, true).unwrap().matches(n)
    }

    #[test]
    fn matching() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("hello", "hello"));
        assert!(!m("hello", "hello2"));
        assert!(m("img-*", "img-resize"));
        assert!(!m("img-*", "xmg-resize"));
        assert!(m("*-v2", "resize-v2"));
        assert!(!m("*-v2", "resize-v21"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(m("a*b*c", "abc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("*mid*", "amidb"));
        assert!(!m("ab*ba", "aba"), "pieces may not overlap");
        assert!(m("", ""));
        assert!(!m("", "pkg"));
    }

    #[test]
    fn specificity_orders_literal_over_glob_over_any() {
        let s = |p| Glob::parse(p, false).unwrap().specificity();
        assert!(s("hello") > s("hel*"));
        assert!(s("hel*") > s("*"));
    }

    #[test]
    fn rejects_bad_globs() {
        for bad in ["a/b", "a?", "[ab]", "a**", "é\u{0}"] {
            assert!(Glob::parse(bad, false).is_err(), "{bad}");
        }
        assert!(Glob::parse("", false).is_err());
    }
}
