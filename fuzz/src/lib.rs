//! The fuzz targets: one function per parser or transformation that takes outside input, each
//! checking the property that must hold for *any* input (a panic is a finding). The AFL++ binaries
//! in `src/bin/` call them; the tests below replay the committed corpora and every past finding
//! through them without AFL++.

use serde_json::Value;
use switchyard::{classify as classify_request, RequestKind};
use switchyard_rules::{parse_rules, RulesFormat, MAX_ERRORS, MAX_ERROR_TEXT};
use switchyard_shadow::{compare, diff_json, normalize, AnswerClass, Observed, Outcome, Redactor, SECRET_FIELDS};

/// The request line the proxy sees: `METHOD path` (no space: a `POST`). Classification never
/// panics, is a pure function of its input, and an invocation always names its namespace and
/// entity. The same bytes as a `502` body exercise the answer classification's body parser.
pub fn classify(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (method, path) = text.split_once(' ').unwrap_or(("POST", &text));
    let once = classify_request(method, path);
    assert_eq!(once, classify_request(method, path), "classification is not deterministic");
    if matches!(once.kind, RequestKind::Invoke | RequestKind::TriggerFire) {
        assert!(!once.namespace.is_empty() && !once.action.is_empty(), "{once:?} from {path:?}");
    }
    if once.kind.is_invocation() {
        assert!(!once.namespace.is_empty(), "{once:?} from {path:?}");
    }
    let _ = AnswerClass::of(Some(502), true, data);
}

/// A rules document: the first byte picks the format (TOML, YAML, JSON). A rejected document
/// carries a bounded list of errors; an accepted one survives the trip every replica's copy takes
/// (canonical JSON on the rules topic, parsed again) with the same fingerprint.
pub fn rules(data: &[u8]) {
    let Some((&pick, doc)) = data.split_first() else { return };
    let format = [RulesFormat::Toml, RulesFormat::Yaml, RulesFormat::Json][usize::from(pick % 3)];
    match parse_rules(doc, format, "fuzz") {
        Ok(rules) => {
            let published = serde_json::to_vec(&rules.to_document()).expect("canonical JSON");
            let again = parse_rules(&published, RulesFormat::Json, "kafka")
                .unwrap_or_else(|e| panic!("the canonical form of accepted rules is rejected: {e}"));
            assert_eq!(rules.fingerprint, again.fingerprint, "the canonical form changes the rules");
        }
        Err(rejected) => {
            assert!(!rejected.errors.is_empty(), "a rejection without a reason");
            assert!(rejected.errors.len() <= MAX_ERRORS);
            // Quoted text is cut to MAX_ERROR_TEXT characters and control characters are shown
            // escaped (at most 10 characters each, `\u{10ffff}`), so no error is huge or forges a
            // log line.
            for text in rejected.errors.iter().flat_map(|e| [&e.path, &e.reason]) {
                assert!(text.chars().count() <= MAX_ERROR_TEXT * 10 + 1, "unbounded error text: {} bytes", text.len());
                assert!(!text.chars().any(char::is_control), "a control character in an error: {text:?}");
            }
        }
    }
}

/// Two answers, as `legacy-status(2 bytes) scheduler-status(2 bytes) legacy-body 0xFF
/// scheduler-body` (0xFF never occurs in UTF-8 JSON). Normalising and comparing never panics; an
/// answer compared with itself never differs; the structural diff of a document with itself is
/// empty and the diff is as long both ways.
pub fn diff(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let status = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]) % 600;
    let (legacy_status, scheduler_status) = (status(&data[..2]), status(&data[2..4]));
    let rest = &data[4..];
    let (a, b) = match rest.iter().position(|&b| b == 0xFF) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, rest),
    };
    let observed = |status, body| Observed {
        status: Some(status),
        body,
        latency_ms: 1.0,
        timed_out: false,
        error: None,
        transaction_id: Some("fuzz-txn"),
        blocking: true,
    };
    let same = compare(&observed(legacy_status, a), &observed(legacy_status, a), &[]);
    assert!(same.differences.is_empty(), "an answer differs from itself: {:?}", same.differences);
    assert_ne!(same.outcome, Outcome::Mismatch);
    let _ = compare(&observed(legacy_status, a), &observed(scheduler_status, b), &["/response/result/x".into()]);
    let (na, nb) = (normalize(legacy_status, a, None), normalize(scheduler_status, b, None));
    assert!(diff_json(&na.body, &na.body).is_empty());
    assert_eq!(diff_json(&na.body, &nb.body).len(), diff_json(&nb.body, &na.body).len());
}

/// The caller's credential, which the proxy redacts by value wherever it appears.
const CREDENTIAL: &str = "s3cr3t-key-material";

/// A JSON document (anything else is ignored: records only hold parsed JSON). After redaction no
/// value under a secret-named key survives at any depth, no string holds an OpenWhisk key or the
/// credential, and redacting again changes nothing.
pub fn redact(data: &[u8]) {
    let Ok(mut doc) = serde_json::from_slice::<Value>(data) else { return };
    let r = Redactor::new(vec!["/response/result/email".into()]);
    r.redact(&mut doc, "", &[CREDENTIAL]);
    if let Err(leak) = clean(&doc) {
        panic!("redaction left a secret: {leak}");
    }
    let mut again = doc.clone();
    r.redact(&mut again, "", &[CREDENTIAL]);
    assert_eq!(again, doc, "redaction is not idempotent");
}

fn clean(v: &Value) -> Result<(), String> {
    match v {
        Value::Object(map) => map.iter().try_for_each(|(k, child)| {
            if SECRET_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(k)) && child != "[redacted]" {
                return Err(format!("{k} kept {child}"));
            }
            clean(child)
        }),
        Value::Array(items) => items.iter().try_for_each(clean),
        Value::String(s) if s.contains(CREDENTIAL) || Redactor::is_secret_text(s, &[]) => Err(format!("text {s}")),
        _ => Ok(()),
    }
}

/// A fuzz target: panics on a finding.
pub type Target = fn(&[u8]);

/// The targets by name, as `scripts/fuzz` and the corpus directories name them.
pub const TARGETS: [(&str, Target); 4] = [("classify", classify), ("rules", rules), ("diff", diff), ("redact", redact)];

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every committed seed and every past finding (`regressions/<target>/`) runs through its
    /// target: a fixed finding stays fixed.
    #[test]
    fn corpora_and_regressions_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (name, target) in super::TARGETS {
            let mut ran = 0;
            for dir in [root.join("corpus").join(name), root.join("regressions").join(name)] {
                let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                for entry in entries {
                    let path = entry.unwrap().path();
                    let data = std::fs::read(&path).unwrap();
                    let result = std::panic::catch_unwind(|| target(&data));
                    assert!(result.is_ok(), "{name}: {} fails", path.display());
                    ran += 1;
                }
            }
            assert!(ran > 0, "{name}: no seeds");
        }
    }
}
