//! What a rules change would move, weighed by recent traffic (`switchyard rules plan`,
//! `PUT /rules?dry_run=true`, and the audit line of an accepted change).
//!
//! Every action the traffic lists is routed by the rules routing now and by the new rules as they
//! would route the moment they are accepted (a new ramp at its scheduled position, the kill latch
//! if it is on), with the same function requests route by: the actions and rates a plan names are
//! the ones the change moves. Traffic the sketch did not list action by action (a namespace's
//! "other actions") is estimated from the shares that would apply to it, and said so.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::decide::{Decision, DecisionReason, Invocation};
use crate::document::OverrideDocument;
use crate::field::FieldType;
use crate::model::{Override, StickyKey};
use crate::pool::Pool;
use crate::ramp::{format_rfc3339, Decisions, Position, Ramp};
use crate::ruleset::RuleSet;
use crate::share::Share;

/// Recent invocations: the input of a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    /// How many seconds the rates are taken over.
    pub span_s: f64,
    /// The busiest actions, each with its rate.
    pub actions: Vec<ActionRate>,
    /// Every namespace's whole rate (its listed actions included).
    pub namespaces: Vec<NamespaceRate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRate {
    pub namespace: String,
    /// `""` outside any package.
    pub package: String,
    pub action: String,
    pub per_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceRate {
    pub namespace: String,
    pub per_s: f64,
}

/// One action whose path changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionMove {
    pub namespace: String,
    pub package: String,
    pub action: String,
    pub per_s: f64,
    pub from: Pool,
    pub to: Pool,
    /// What decides it now and after: an override's label, `scheduler_share`, `kill_switch`.
    pub by_before: String,
    pub by_after: String,
}

/// What moves in one namespace, in invocations per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespaceMove {
    pub namespace: String,
    pub to_scheduler_per_s: f64,
    pub to_legacy_per_s: f64,
    /// Of the above, estimated for the namespace's actions the sketch did not list.
    pub estimated_per_s: f64,
}

/// An override (or pin: share 0 or 100) whose meaning changes: it is added, removed or edited, or
/// it decides other traffic than before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleChange {
    pub label: String,
    pub change: RuleChangeKind,
    /// Its share before and after (`None` where it does not exist).
    pub share_before: Option<Share>,
    pub share_after: Option<Share>,
    pub pin: bool,
    /// Listed traffic this override decides now and after, per second.
    pub decides_before_per_s: f64,
    pub decides_after_per_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RuleChangeKind {
    Added,
    Removed,
    /// Its document changed (share, seed, sticky key, shadow policy or ramp).
    Changed,
    /// Unchanged itself, it decides other listed traffic (an override before it appeared or went).
    DecidesOtherTraffic,
}

/// What happens to a shadow policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ShadowChangeKind {
    Starts,
    Stops,
    Changes,
}

/// One step of the new ramp's schedule, from now on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineStep {
    pub step: usize,
    pub share: Share,
    /// When the schedule begins it (RFC 3339); the gates, `min_invocations` and approvals may make
    /// it later.
    pub at: String,
    pub hold_s: u64,
    pub approve: bool,
    /// It begins at once (the schedule has reached it), or has passed already.
    pub reached: bool,
}

/// One ramp of the new rules (the global one, or an override's) and its schedule from now on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RampPlan {
    /// `global`, or the override's label.
    pub scope: String,
    pub steps: Vec<TimelineStep>,
}

/// A shadow policy that starts, stops or changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowChange {
    pub label: String,
    pub change: ShadowChangeKind,
    /// The sample before and after (`None` where there is no policy).
    pub sample_before: Option<Share>,
    pub sample_after: Option<Share>,
    /// Listed invocations per second its override matches after the change (before, for a stop).
    pub matching_per_s: f64,
}

/// What a change would do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub from_version: String,
    pub to_version: String,
    pub traffic_span_s: f64,
    pub to_scheduler_per_s: f64,
    pub to_legacy_per_s: f64,
    pub actions_to_scheduler: usize,
    pub actions_to_legacy: usize,
    /// Some listed action would move back to legacy (a share lowered, a pin, the kill switch).
    pub moves_back: bool,
    pub namespaces: Vec<NamespaceMove>,
    /// Every listed action that moves back, then the busiest that move to the scheduler.
    pub actions: Vec<ActionMove>,
    pub rules: Vec<RuleChange>,
    pub settings: Vec<String>,
    pub kill_switch: Option<String>,
    /// The global share right after acceptance, and the new ramps' schedules.
    pub global_share_before: Share,
    pub global_share_after: Share,
    pub ramps: Vec<RampPlan>,
    pub shadow: Vec<ShadowChange>,
    /// Routing uses the subject or a header for some key: a listed action's move is where its
    /// action key falls; its callers may split differently.
    pub estimated_keys: bool,
    pub summary: String,
}

/// How many moving actions a plan lists besides every one that moves back.
pub const MAX_LISTED_MOVES: usize = 50;

impl RuleSet {
    /// The plan for replacing `current` (the rules routing now, ramp share and kill latch
    /// included) by `self`, at `now_ms`. `latched`: the admin kill latch is on (it stays on).
    pub fn plan_from(&self, current: &RuleSet, traffic: &Traffic, now_ms: u64, latched: bool) -> Plan {
        let after = self.as_accepted(now_ms, latched);
        let mut listed_per_ns: BTreeMap<&str, f64> = BTreeMap::new();
        let mut namespaces: BTreeMap<String, NamespaceMove> = BTreeMap::new();
        let mut moves = Vec::new();
        let mut decides: BTreeMap<(bool, usize), f64> = BTreeMap::new();
        for a in &traffic.actions {
            *listed_per_ns.entry(a.namespace.as_str()).or_default() += a.per_s;
            let inv =
                Invocation { namespace: &a.namespace, package: &a.package, action: &a.action, ..Invocation::default() };
            let (old, new) = (current.decide(&inv), after.decide(&inv));
            for (is_after, d) in [(false, old), (true, new)] {
                if let DecisionReason::Override(i) = d.reason {
                    *decides.entry((is_after, i)).or_default() += a.per_s;
                }
            }
            if old.pool != new.pool {
                let ns = namespaces.entry(a.namespace.clone()).or_insert_with(|| NamespaceMove::named(&a.namespace));
                ns.add(new.pool, a.per_s);
                moves.push(ActionMove {
                    namespace: a.namespace.clone(),
                    package: a.package.clone(),
                    action: a.action.clone(),
                    per_s: a.per_s,
                    from: old.pool,
                    to: new.pool,
                    by_before: current.decided_by(&old),
                    by_after: after.decided_by(&new),
                });
            }
        }
        // A namespace's actions the sketch did not list: their expected move, from the shares that
        // would apply to an action no override names.
        for n in &traffic.namespaces {
            let unlisted = n.per_s - listed_per_ns.get(n.namespace.as_str()).copied().unwrap_or(0.0);
            if unlisted <= 1e-9 {
                continue;
            }
            let inv = Invocation { namespace: &n.namespace, action: "\u{0}", ..Invocation::default() };
            let (old, new) = (current.decide(&inv).share, after.decide(&inv).share);
            if old == new {
                continue;
            }
            let (pool, fraction) = if new > old {
                (Pool::Scheduler, new.as_fraction() - old.as_fraction())
            } else {
                (Pool::Legacy, old.as_fraction() - new.as_fraction())
            };
            let ns = namespaces.entry(n.namespace.clone()).or_insert_with(|| NamespaceMove::named(&n.namespace));
            ns.add(pool, unlisted * fraction);
            ns.estimated_per_s += unlisted * fraction;
        }
        let namespaces: Vec<NamespaceMove> = namespaces.into_values().collect();
        let to_scheduler_per_s = namespaces.iter().map(|n| n.to_scheduler_per_s).sum();
        let to_legacy_per_s = namespaces.iter().map(|n| n.to_legacy_per_s).sum();
        let actions_to_scheduler = moves.iter().filter(|m| m.to == Pool::Scheduler).count();
        let actions_to_legacy = moves.len() - actions_to_scheduler;
        moves.sort_by(|a, b| {
            (a.to == Pool::Scheduler)
                .cmp(&(b.to == Pool::Scheduler))
                .then(b.per_s.total_cmp(&a.per_s))
                .then_with(|| (&a.namespace, &a.package, &a.action).cmp(&(&b.namespace, &b.package, &b.action)))
        });
        moves.truncate(actions_to_legacy + MAX_LISTED_MOVES);
        let settings = self.diff_from(current).settings;
        let kill_switch = match (current.kill_switch, after.kill_switch) {
            (false, true) if latched => None,
            (false, true) => Some("turns on: every request goes to legacy".to_string()),
            (true, false) => Some("turns off: the shares apply again".to_string()),
            (true, true) if latched => Some("the admin kill latch is on: nothing moves until it is released".into()),
            (true, true) => Some("stays on: every request goes to legacy".to_string()),
            (false, false) => None,
        };
        let mut plan = Plan {
            from_version: current.version.clone(),
            to_version: self.version.clone(),
            traffic_span_s: traffic.span_s,
            to_scheduler_per_s,
            to_legacy_per_s,
            actions_to_scheduler,
            actions_to_legacy,
            moves_back: to_legacy_per_s > 0.0 || actions_to_legacy > 0,
            namespaces,
            actions: moves,
            rules: self.rule_changes(current, &decides),
            settings,
            kill_switch,
            global_share_before: current.global_share(),
            global_share_after: after.global_share(),
            ramps: self
                .ramps()
                .into_iter()
                .map(|(scope, r)| RampPlan { scope: self.scope_name(scope), steps: r.timeline(now_ms) })
                .collect(),
            shadow: self.shadow_changes(current, &decides),
            estimated_keys: current.keys_beyond_actions() || self.keys_beyond_actions(),
            summary: String::new(),
        };
        plan.summary = plan.one_line();
        plan
    }

    /// These rules as they would route the moment they are accepted.
    fn as_accepted(&self, now_ms: u64, latched: bool) -> RuleSet {
        let mut rules = if latched { self.with_kill_switch(true) } else { self.clone() };
        for (scope, ramp) in self.ramps() {
            let position = Position::initial(ramp, now_ms, 0, &Decisions::default());
            rules.set_ramp_share(scope, position.share(ramp, self.share_before_ramp(scope)));
        }
        rules
    }

    fn decided_by(&self, d: &Decision) -> String {
        match d.reason {
            DecisionReason::Override(i) => self.overrides[i].label(),
            DecisionReason::Global => "scheduler_share".into(),
            other => other.as_str().into(),
        }
    }

    fn keys_beyond_actions(&self) -> bool {
        let beyond = |k: &StickyKey| matches!(k, StickyKey::Subject | StickyKey::Header(_));
        beyond(&self.sticky_key) || self.overrides.iter().any(|o| beyond(&o.sticky_key))
    }

    /// Overrides added, removed or edited, and those that decide other listed traffic than before.
    fn rule_changes(&self, current: &RuleSet, decides: &BTreeMap<(bool, usize), f64>) -> Vec<RuleChange> {
        let mut out = Vec::new();
        let rate = |after: bool, i: Option<usize>| i.and_then(|i| decides.get(&(after, i)).copied()).unwrap_or(0.0);
        let is_pin = |s: Share| s == Share::ZERO || s == Share::ALL;
        for (i, o) in self.overrides.iter().enumerate() {
            let before = current.overrides.iter().position(|p| same_patterns(p, o));
            let (b, a) = (rate(false, before), rate(true, Some(i)));
            let old = before.map(|j| &current.overrides[j]);
            let change = match old {
                None => RuleChangeKind::Added,
                Some(p) if OverrideDocument::from(p).write() != OverrideDocument::from(o).write() => {
                    RuleChangeKind::Changed
                }
                Some(_) if (a - b).abs() > 1e-9 => RuleChangeKind::DecidesOtherTraffic,
                Some(_) => continue,
            };
            out.push(RuleChange {
                label: o.label(),
                change,
                share_before: old.map(|p| p.share),
                share_after: Some(o.share),
                pin: is_pin(o.share) || old.is_some_and(|p| is_pin(p.share)),
                decides_before_per_s: b,
                decides_after_per_s: a,
            });
        }
        for (j, o) in current.overrides.iter().enumerate() {
            if !self.overrides.iter().any(|n| same_patterns(n, o)) {
                out.push(RuleChange {
                    label: o.label(),
                    change: RuleChangeKind::Removed,
                    share_before: Some(o.share),
                    share_after: None,
                    pin: is_pin(o.share),
                    decides_before_per_s: rate(false, Some(j)),
                    decides_after_per_s: 0.0,
                });
            }
        }
        out
    }

    /// Shadow policies that start, stop (their override changed or removed) or change.
    fn shadow_changes(&self, current: &RuleSet, decides: &BTreeMap<(bool, usize), f64>) -> Vec<ShadowChange> {
        let sample = |o: Option<&Override>| o.and_then(|o| o.shadow.as_ref()).map(|p| p.sample);
        let mut out = Vec::new();
        for (i, o) in self.overrides.iter().enumerate() {
            let old = current.overrides.iter().find(|p| same_patterns(p, o));
            let policies = (old.and_then(|p| p.shadow.as_ref()), o.shadow.as_ref());
            let change = match policies {
                (None, Some(_)) => ShadowChangeKind::Starts,
                (Some(_), None) => ShadowChangeKind::Stops,
                (Some(p), Some(q)) if p != q => ShadowChangeKind::Changes,
                _ => continue,
            };
            out.push(ShadowChange {
                label: o.label(),
                change,
                sample_before: sample(old),
                sample_after: sample(Some(o)),
                matching_per_s: decides.get(&(true, i)).copied().unwrap_or(0.0),
            });
        }
        for (j, o) in current.overrides.iter().enumerate() {
            if o.shadow.is_some() && !self.overrides.iter().any(|n| same_patterns(n, o)) {
                out.push(ShadowChange {
                    label: o.label(),
                    change: ShadowChangeKind::Stops,
                    sample_before: sample(Some(o)),
                    sample_after: None,
                    matching_per_s: decides.get(&(false, j)).copied().unwrap_or(0.0),
                });
            }
        }
        out
    }
}

/// Two overrides with the same patterns are one override, before and after a change.
fn same_patterns(a: &Override, b: &Override) -> bool {
    (&a.namespace, &a.package, &a.action) == (&b.namespace, &b.package, &b.action)
}

impl NamespaceMove {
    fn named(namespace: &str) -> NamespaceMove {
        NamespaceMove { namespace: namespace.to_string(), ..NamespaceMove::default() }
    }

    fn add(&mut self, to: Pool, per_s: f64) {
        match to {
            Pool::Scheduler => self.to_scheduler_per_s += per_s,
            Pool::Legacy => self.to_legacy_per_s += per_s,
        }
    }
}

impl Ramp {
    /// The schedule from `now_ms` on, as a replica accepting these rules now would run it.
    pub fn timeline(&self, now_ms: u64) -> Vec<TimelineStep> {
        let mut at = self.start_ms;
        self.steps
            .iter()
            .enumerate()
            .map(|(step, s)| {
                let t = TimelineStep {
                    step,
                    share: s.share,
                    at: format_rfc3339(at),
                    hold_s: s.hold_s,
                    approve: s.approve,
                    reached: at <= now_ms,
                };
                at = at.saturating_add(s.hold_s.saturating_mul(1000));
                t
            })
            .collect()
    }
}

/// Invocations per second, short.
fn rate(per_s: f64) -> String {
    if per_s >= 10.0 || per_s == 0.0 {
        format!("{per_s:.0} req/s")
    } else {
        format!("{per_s:.2} req/s")
    }
}

impl Plan {
    /// "moves 312 req/s of 41 actions to the scheduler; 0 req/s back": the audit log's words.
    fn one_line(&self) -> String {
        let back = if self.moves_back {
            format!("; moves {} of {} actions BACK to legacy", rate(self.to_legacy_per_s), self.actions_to_legacy)
        } else {
            "; nothing moves back".into()
        };
        format!(
            "moves {} of {} actions to the scheduler{back} (traffic of the last {:.0} s)",
            rate(self.to_scheduler_per_s),
            self.actions_to_scheduler,
            self.traffic_span_s
        )
    }
}

/// The plan as `switchyard rules plan` prints it.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rules {} → {}", self.from_version, self.to_version)?;
        writeln!(f, "{}", self.summary)?;
        writeln!(f, "global share: {} → {} (at acceptance)", self.global_share_before, self.global_share_after)?;
        if let Some(k) = &self.kill_switch {
            writeln!(f, "kill switch: {k}")?;
        }
        if self.moves_back {
            writeln!(f, "WARNING: some invocations move back to legacy (a share lowered, a pin, the kill switch)")?;
        }
        if !self.namespaces.is_empty() {
            writeln!(f, "\n  {:<32} {:>16} {:>16}", "namespace", "→ scheduler", "→ legacy")?;
            for n in &self.namespaces {
                let est = if n.estimated_per_s > 0.0 {
                    format!("  (~{} estimated)", rate(n.estimated_per_s))
                } else {
                    String::new()
                };
                writeln!(
                    f,
                    "  {:<32} {:>16} {:>16}{est}",
                    n.namespace,
                    rate(n.to_scheduler_per_s),
                    rate(n.to_legacy_per_s)
                )?;
            }
        }
        if !self.actions.is_empty() {
            writeln!(f, "\n  actions that move (every one that moves back, then the busiest):")?;
            for a in &self.actions {
                let name = if a.package.is_empty() {
                    format!("{}/{}", a.namespace, a.action)
                } else {
                    format!("{}/{}/{}", a.namespace, a.package, a.action)
                };
                let back = if a.to == Pool::Legacy { "  BACK" } else { "" };
                writeln!(
                    f,
                    "  {name:<40} {:>12}  {} → {}  (by {} → {}){back}",
                    rate(a.per_s),
                    a.from,
                    a.to,
                    a.by_before,
                    a.by_after
                )?;
            }
        }
        if !self.settings.is_empty() {
            writeln!(f, "\n  settings: {}", self.settings.join("; "))?;
        }
        if !self.rules.is_empty() {
            writeln!(f, "\n  overrides that change meaning:")?;
            for r in &self.rules {
                let pin = if r.pin { " (pin)" } else { "" };
                let shares = match (r.share_before, r.share_after) {
                    (Some(b), Some(a)) if b != a => format!(" ({b} → {a})"),
                    _ => String::new(),
                };
                let change: &str = r.change.into();
                writeln!(
                    f,
                    "  {}{pin}: {}{shares}; decides {} → {}",
                    r.label,
                    change.replace('_', " "),
                    rate(r.decides_before_per_s),
                    rate(r.decides_after_per_s)
                )?;
            }
        }
        for ramp in &self.ramps {
            writeln!(f, "\n  ramp ({}) from now on:", ramp.scope)?;
            for s in &ramp.steps {
                let when = if s.reached { "reached".to_string() } else { s.at.clone() };
                let approve = if s.approve { "  (waits for an approval)" } else { "" };
                writeln!(f, "  step {}  {:>8}  {when}  hold {} s{approve}", s.step, s.share.to_string(), s.hold_s)?;
            }
        }
        if !self.shadow.is_empty() {
            writeln!(f, "\n  shadow policies:")?;
            for s in &self.shadow {
                let sample = |s: Option<Share>| s.map_or("none".to_string(), |s| s.to_string());
                let change: &str = s.change.into();
                writeln!(
                    f,
                    "  {}: {change} (sample {} → {}); matches {}",
                    s.label,
                    sample(s.sample_before),
                    sample(s.sample_after),
                    rate(s.matching_per_s)
                )?;
            }
        }
        if self.estimated_keys {
            writeln!(
                f,
                "\n  note: a sticky key is the subject or a header; each action is placed where its action key falls"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_rules, RulesFormat};

    fn rules(text: &str) -> RuleSet {
        parse_rules(text.as_bytes(), RulesFormat::Toml, "p.toml").unwrap()
    }

    fn traffic() -> Traffic {
        let action = |ns: &str, a: &str, per_s| ActionRate {
            namespace: ns.into(),
            package: String::new(),
            action: a.into(),
            per_s,
        };
        Traffic {
            span_s: 600.0,
            actions: (0..40)
                .map(|i| action("guest", &format!("a{i}"), 1.0 + i as f64))
                .chain([action("billing", "pay", 50.0)])
                .collect(),
            namespaces: vec![
                NamespaceRate { namespace: "guest".into(), per_s: 820.0 + 100.0 },
                NamespaceRate { namespace: "billing".into(), per_s: 50.0 },
            ],
        }
    }

    #[test]
    fn a_plan_names_exactly_the_actions_whose_decision_changes() {
        let old = rules("version = \"1\"\nscheduler_share = 10\n");
        let new = rules("version = \"2\"\nscheduler_share = 50\n[[overrides]]\nnamespace = \"billing\"\nshare = 0\n");
        let t = traffic();
        let plan = new.plan_from(&old, &t, 0, false);
        for a in &t.actions {
            let inv = Invocation { namespace: &a.namespace, action: &a.action, ..Invocation::default() };
            let moved = old.decide(&inv).pool != new.decide(&inv).pool;
            let listed = plan.actions.iter().any(|m| m.action == a.action && m.namespace == a.namespace);
            assert_eq!(moved, listed, "{}", a.action);
        }
        assert!(plan.actions.iter().all(|m| m.to == Pool::Scheduler), "a share raised moves nothing back");
        let guest = plan.namespaces.iter().find(|n| n.namespace == "guest").unwrap();
        assert!((guest.estimated_per_s - 100.0 * 0.4).abs() < 1e-6, "unlisted traffic: 100 req/s × 40 %");
        assert!(plan.summary.starts_with("moves "), "{}", plan.summary);
        assert!(plan.rules.iter().any(|r| r.label == "billing/*/*" && r.pin && r.change == RuleChangeKind::Added));
    }

    #[test]
    fn lowering_a_share_flags_every_action_that_moves_back() {
        let old = rules("version = \"1\"\nscheduler_share = 60\n");
        let new = rules("version = \"2\"\nscheduler_share = 20\n");
        let t = traffic();
        let plan = new.plan_from(&old, &t, 0, false);
        assert!(plan.moves_back);
        let back: Vec<&ActionMove> = plan.actions.iter().filter(|m| m.to == Pool::Legacy).collect();
        let expected = t
            .actions
            .iter()
            .filter(|a| {
                let inv = Invocation { namespace: &a.namespace, action: &a.action, ..Invocation::default() };
                old.decide(&inv).pool == Pool::Scheduler && new.decide(&inv).pool == Pool::Legacy
            })
            .count();
        assert_eq!((back.len(), plan.actions_to_legacy), (expected, expected));
        assert!(expected > 0);
        assert!(plan.to_string().contains("BACK"));
    }

    #[test]
    fn the_kill_switch_the_ramp_and_shadow_policies_are_said() {
        let old = rules("version = \"1\"\nscheduler_share = 10\n[[overrides]]\nnamespace = \"guest\"\naction = \"a1\"\nshare = 10\nshadow = { sample = 5 }\n");
        let killed = rules("version = \"2\"\nscheduler_share = 10\nkill_switch = true\n");
        let plan = killed.plan_from(&old, &traffic(), 0, false);
        assert_eq!(plan.kill_switch.as_deref(), Some("turns on: every request goes to legacy"));
        assert!(plan.shadow.iter().any(|s| s.change == ShadowChangeKind::Stops && s.sample_before.is_some()));
        let ramped = rules(
            "version = \"3\"\nscheduler_share = 10\n[ramp]\nstart = 1000\nsteps = [{ share = 20, hold_s = 60 }, { share = 50, hold_s = 60, approve = true }]\n",
        );
        let plan = ramped.plan_from(&old, &traffic(), 1_030_000, false);
        assert_eq!(plan.global_share_after.to_string(), "20%", "the schedule's step at acceptance");
        let steps = &plan.ramps[0].steps;
        assert_eq!((plan.ramps[0].scope.as_str(), steps.len()), ("global", 2));
        assert!(steps[0].reached && !steps[1].reached && steps[1].approve);
        assert_eq!(steps[1].at, format_rfc3339(1_060_000));
        let latched = ramped.plan_from(&old.with_kill_switch(true), &traffic(), 1_030_000, true);
        assert_eq!(latched.to_scheduler_per_s, 0.0, "nothing moves under the latch");
    }
}
