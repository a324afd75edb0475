use std::fmt;

/// Errors reported for one document; past it the rest are counted ("and N more").
pub const MAX_ERRORS: usize = 100;
/// Longest field path or reason quoted in an error; longer ones are cut.
pub const MAX_ERROR_TEXT: usize = 200;

/// One problem found in a rule set: where it came from, which field, and why it is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleError {
    /// Where the rule set came from: a file path, `admin API`, a Kafka topic and offset.
    pub source: String,
    /// The field path inside the document, e.g. `overrides[2].share`; empty for the whole document.
    pub path: String,
    pub reason: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.source, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.source, self.path, self.reason)
        }
    }
}

/// A rule set that did not validate, with every error found (not just the first), up to
/// [`crate::MAX_ERRORS`]; the rest are counted in `more`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("rule set rejected ({} error{}):\n{}", self.total(), if self.total() == 1 { "" } else { "s" }, self.render())]
pub struct RulesRejected {
    pub errors: Vec<RuleError>,
    /// Errors found past the reported ones.
    #[serde(skip_serializing_if = "is_zero")]
    pub more: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl RulesRejected {
    /// One error (source, field path, reason; each cut to a bounded length).
    pub fn single(source: &str, path: &str, reason: impl Into<String>) -> Self {
        RulesRejected {
            errors: vec![RuleError { source: cut(source), path: cut(path), reason: cut(&reason.into()) }],
            more: 0,
        }
    }

    /// Every error found, reported or only counted.
    pub fn total(&self) -> usize {
        self.errors.len() + self.more
    }

    fn render(&self) -> String {
        let mut lines: Vec<String> = self.errors.iter().map(|e| format!("  - {e}")).collect();
        if self.more > 0 {
            lines.push(format!("  - and {} more", self.more));
        }
        lines.join("\n")
    }
}

/// Cuts text quoted from a document (keys, values, parser messages) to [`MAX_ERROR_TEXT`]
/// characters, and shows control characters escaped, so an error cannot be turned into a huge or
/// forged log line.
pub(crate) fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((end, _)) => format!("{}…", escape_controls(&text[..end])),
        None => escape_controls(text).into_owned(),
    }
}

/// Text from outside (a rule document, a record, a file name) as it may be written into a log
/// line or an error: every control character shown escaped (`\n`, `\u{1b}`), so the text can
/// neither start a forged line nor carry terminal escapes. The one helper for it: every value from
/// outside that reaches a text log goes through here.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Collects errors while a document is read: the first [`MAX_ERRORS`] in full, the rest counted.
pub(crate) struct Collector<'a> {
    source: &'a str,
    errors: Vec<RuleError>,
    more: usize,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(source: &'a str) -> Collector<'a> {
        Collector { source, errors: Vec::new(), more: 0 }
    }

    pub(crate) fn error(&mut self, path: &str, reason: impl Into<String>) {
        if self.errors.len() == MAX_ERRORS {
            self.more += 1;
            return;
        }
        self.errors.push(RuleError { source: cut(self.source), path: cut(path), reason: cut(&reason.into()) });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn rejected(self) -> RulesRejected {
        RulesRejected { errors: self.errors, more: self.more }
    }
}
