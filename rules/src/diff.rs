//! What changed between two rule sets, for the audit log.

use std::collections::HashMap;
use std::fmt;

use crate::document::OverrideDocument;
use crate::field::FieldType;
use crate::model::Override;
use crate::ramp::Ramp;
use crate::ruleset::RuleSet;

/// A summary of the differences between an old and a new rule set.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct RulesDiff {
    /// Each entry: `field: old → new`.
    pub settings: Vec<String>,
    /// Overrides by `namespace/package/action` (or their name).
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl RulesDiff {
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty() && self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

fn triple(o: &Override) -> (String, String, String) {
    (o.namespace.to_string(), o.package.to_string(), o.action.to_string())
}

impl RuleSet {
    /// What differs from `old` to `self`.
    pub fn diff_from(&self, old: &RuleSet) -> RulesDiff {
        let mut d = RulesDiff::default();
        let mut setting = |name: &str, a: String, b: String| {
            if a != b {
                d.settings.push(format!("{name}: {a} → {b}"));
            }
        };
        setting("scheduler_share", old.scheduler_share.to_string(), self.scheduler_share.to_string());
        setting("kill_switch", on_off(old.kill_switch), on_off(self.kill_switch));
        setting("default_pool", old.default_pool.to_string(), self.default_pool.to_string());
        setting("seed", old.seed.to_string(), self.seed.to_string());
        setting("sticky_key", old.sticky_key.to_string(), self.sticky_key.to_string());
        setting(
            "ramp",
            old.ramp.as_ref().map_or("none".into(), Ramp::summary),
            self.ramp.as_ref().map_or("none".into(), Ramp::summary),
        );
        let force = |r: &RuleSet| {
            r.force.as_ref().map_or("none".into(), |f| {
                format!("{} for {} namespace patterns and {} subjects", f.header, f.namespaces.len(), f.subjects.len())
            })
        };
        setting("force", force(old), force(self));
        let before: HashMap<_, &Override> = old.overrides.iter().map(|o| (triple(o), o)).collect();
        let after: HashMap<_, &Override> = self.overrides.iter().map(|o| (triple(o), o)).collect();
        for o in &self.overrides {
            match before.get(&triple(o)) {
                None => d.added.push(format!("{} ({})", o.label(), o.share)),
                Some(prev) if OverrideDocument::from(*prev).write() != OverrideDocument::from(o).write() => {
                    d.changed.push(format!("{} ({} → {})", o.label(), prev.share, o.share))
                }
                Some(_) => {}
            }
        }
        for o in old.overrides.iter().filter(|o| !after.contains_key(&triple(o))) {
            d.removed.push(o.label());
        }
        d
    }
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.to_string()
}

/// One line: `scheduler_share: 1% → 5%; overrides +1 -0 ~2 [...]`.
impl fmt::Display for RulesDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no routing change");
        }
        let mut parts = self.settings.clone();
        if !(self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()) {
            let mut o = format!("overrides +{} -{} ~{}", self.added.len(), self.removed.len(), self.changed.len());
            let list = |label: &str, items: &[String]| -> String {
                let shown: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
                let more = items.len().saturating_sub(5);
                format!(
                    " {label}[{}{}]",
                    shown.join(", "),
                    if more > 0 { format!(", +{more} more") } else { String::new() }
                )
            };
            if !self.added.is_empty() {
                o.push_str(&list("added", &self.added));
            }
            if !self.removed.is_empty() {
                o.push_str(&list("removed", &self.removed));
            }
            if !self.changed.is_empty() {
                o.push_str(&list("changed", &self.changed));
            }
            parts.push(o);
        }
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse_rules, RulesFormat};

    fn rules(text: &str) -> crate::RuleSet {
        parse_rules(text.as_bytes(), RulesFormat::Toml, "d.toml").unwrap()
    }

    #[test]
    fn summarises_settings_and_overrides() {
        let old = rules("version = \"1\"\nscheduler_share = 1\n[[overrides]]\nnamespace = \"a\"\nshare = 0\n[[overrides]]\nnamespace = \"b\"\nshare = 10\n");
        let new = rules("version = \"2\"\nscheduler_share = 5\nkill_switch = true\n[[overrides]]\nnamespace = \"b\"\nshare = 20\n[[overrides]]\nname = \"c first\"\nnamespace = \"c\"\nshare = 100\n");
        let d = new.diff_from(&old);
        assert_eq!(d.settings, vec!["scheduler_share: 1% → 5%", "kill_switch: off → on"]);
        assert_eq!(d.added, vec!["c first (100%)"]);
        assert_eq!(d.removed, vec!["a/*/*"]);
        assert_eq!(d.changed, vec!["b/*/* (10% → 20%)"]);
        assert_eq!(
            d.to_string(),
            "scheduler_share: 1% → 5%; kill_switch: off → on; overrides +1 -1 ~1 added[c first (100%)] removed[a/*/*] changed[b/*/* (10% → 20%)]"
        );
        assert_eq!(new.diff_from(&new).to_string(), "no routing change");
    }
}
