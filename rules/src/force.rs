//! A path chosen by header, for testers (`force`): callers the rules list may send
//! `<header>: legacy` or `<header>: scheduler` with an invocation to pick its path, so they can try
//! the new path before any customer does. Everyone else's header is ignored (and the proxy removes
//! it before forwarding). The kill switch still wins.

use serde_json::Value;

use crate::error::Collector;
use crate::field::{document, parsed, text, Field, FieldType};
use crate::glob::Glob;
use crate::pool::Pool;

/// Who may choose the path, and with which header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Force {
    /// Lower case.
    pub header: String,
    /// Callers whose namespace matches one of these patterns are listed.
    pub namespaces: Vec<Glob>,
    /// And callers whose Basic-auth user (the namespace UUID, never the key) is one of these.
    pub subjects: Vec<String>,
}

impl Force {
    /// The most callers one rule set may list by subject.
    pub const MAX_SUBJECTS: usize = 1000;
    /// The most namespace patterns.
    pub const MAX_NAMESPACES: usize = 100;

    /// Whether a caller is listed.
    pub fn lists(&self, namespace: &str, subject: Option<&str>) -> bool {
        self.namespaces.iter().any(|g| g.matches(namespace))
            || subject.is_some_and(|s| self.subjects.iter().any(|listed| listed == s))
    }

    /// The path a header value asks for: `legacy` or `scheduler`, in any case; anything else asks
    /// for nothing.
    pub fn asked(value: &str) -> Option<Pool> {
        let value = value.trim();
        [Pool::Legacy, Pool::Scheduler].into_iter().find(|p| value.eq_ignore_ascii_case(p.as_str()))
    }

    pub(crate) fn document(&self) -> ForceDocument {
        ForceDocument {
            header: Field::Value(HeaderName(self.header.clone())),
            namespaces: Field::Value(self.namespaces.clone()),
            subjects: Field::Value(self.subjects.clone()),
        }
    }

    /// A force section with its checks; `None` when something did not read or validate (reported).
    pub(crate) fn compile(d: &ForceDocument, c: &mut Collector<'_>) -> Option<Force> {
        let namespaces = d.namespaces.value().cloned().unwrap_or_default();
        let subjects = d.subjects.value().cloned().unwrap_or_default();
        if namespaces.is_empty() && subjects.is_empty() && !d.namespaces.is_invalid() && !d.subjects.is_invalid() {
            c.error("force", "lists nobody: give `namespaces` or `subjects` (the callers who may choose their path)");
        }
        if namespaces.len() > Force::MAX_NAMESPACES {
            c.error(
                "force.namespaces",
                format!("{} patterns; the limit is {}", namespaces.len(), Force::MAX_NAMESPACES),
            );
        }
        if subjects.len() > Force::MAX_SUBJECTS {
            c.error("force.subjects", format!("{} subjects; the limit is {}", subjects.len(), Force::MAX_SUBJECTS));
        }
        for (i, g) in namespaces.iter().enumerate() {
            if g.specificity() == 0 {
                c.error(&format!("force.namespaces[{i}]"), "`*` lists every caller: name the testers' namespaces");
            }
        }
        for (i, s) in subjects.iter().enumerate() {
            if s.is_empty() || s.len() > 256 || s.chars().any(|ch| ch.is_control() || ch == ':') {
                c.error(
                    &format!("force.subjects[{i}]"),
                    "not a Basic-auth user (1 to 256 printable characters, no `:`)",
                );
            }
        }
        let HeaderName(header) = d.header.value()?.clone();
        (!d.namespaces.is_invalid() && !d.subjects.is_invalid()).then_some(Force { header, namespaces, subjects })
    }
}

/// An HTTP header name, kept in lower case.
#[derive(Debug, Clone)]
pub(crate) struct HeaderName(pub String);

impl FieldType for HeaderName {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let t = text(v, path, c)?;
        let ok = crate::model::is_header_name(t);
        parsed(
            ok.then(|| HeaderName(t.to_ascii_lowercase())).ok_or(format!("`{t}` is not a valid HTTP header name")),
            path,
            c,
        )
    }
    fn write(&self) -> Value {
        Value::String(self.0.clone())
    }
}

document! {
    /// Testers choosing their path by header (`force`).
    ForceDocument {
        header: HeaderName => required "the request header listed callers choose their path with",
        namespaces: Vec<Glob>,
        subjects: Vec<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_rules, RulesFormat};

    #[test]
    fn listed_callers_by_namespace_pattern_or_subject() {
        let r = parse_rules(
            b"version = \"f\"\nforce = { header = \"X-Switchyard-Path\", namespaces = [\"qa-*\"], subjects = [\"u-1\"] }\n",
            RulesFormat::Toml,
            "t",
        )
        .unwrap();
        let f = r.force.as_ref().unwrap();
        assert_eq!(f.header, "x-switchyard-path");
        assert!(f.lists("qa-team", None));
        assert!(f.lists("prod", Some("u-1")));
        assert!(!f.lists("prod", Some("u-2")));
        assert!(!f.lists("prod", None));
        assert_eq!(Force::asked(" Scheduler "), Some(Pool::Scheduler));
        assert_eq!(Force::asked("legacy"), Some(Pool::Legacy));
        assert_eq!(Force::asked("both"), None);
    }

    #[test]
    fn every_problem_is_named() {
        let err = parse_rules(
            b"version = \"f\"\nforce = { header = \"bad header\", namespaces = [\"*\"], subjects = [\"a:b\"], other = 1 }\n",
            RulesFormat::Toml,
            "t",
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "force.other: unknown field",
            "force.header: `bad header` is not a valid HTTP header name",
            "force.namespaces[0]: `*` lists every caller",
            "force.subjects[0]: not a Basic-auth user",
        ] {
            assert!(err.contains(expected), "{expected} not in {err}");
        }
        let nobody = parse_rules(b"version = \"f\"\nforce = { header = \"x-path\" }\n", RulesFormat::Toml, "t");
        assert!(nobody.unwrap_err().to_string().contains("force: lists nobody"));
    }
}
