//! The index over a rule set's overrides, so a decision does not scan them all.

use std::collections::HashMap;

use crate::model::Override;

/// Index over the overrides so a decision does not scan them all.
///
/// Overrides whose three patterns are literal sit in a nested map (an exact hit is always the most
/// specific, since duplicates are rejected). Of the rest, those with a literal namespace sit in a
/// per-namespace list, those with a literal action (and a glob namespace) in a per-action list,
/// and the others in one list. Every list is in precedence order, so merging the (at most three)
/// candidate lists stops at the first match.
#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    exact: HashMap<String, HashMap<String, HashMap<String, usize>>>,
    by_namespace: HashMap<String, Vec<usize>>,
    by_action: HashMap<String, Vec<usize>>,
    wildcard: Vec<usize>,
    /// Precedence rank of each override (lower wins).
    rank: Vec<u32>,
}

impl Matcher {
    pub(crate) fn build(overrides: &[Override]) -> Matcher {
        let mut order: Vec<usize> = (0..overrides.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(overrides[i].specificity()), i));
        let mut rank = vec![0u32; overrides.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r as u32;
        }
        let mut m = Matcher { rank, ..Matcher::default() };
        for &i in &order {
            let o = &overrides[i];
            if o.namespace.is_literal() && o.package.is_literal() && o.action.is_literal() {
                m.exact
                    .entry(o.namespace.as_str().to_string())
                    .or_default()
                    .entry(o.package.as_str().to_string())
                    .or_default()
                    .insert(o.action.as_str().to_string(), i);
            } else if o.namespace.is_literal() {
                m.by_namespace.entry(o.namespace.as_str().to_string()).or_default().push(i);
            } else if o.action.is_literal() {
                m.by_action.entry(o.action.as_str().to_string()).or_default().push(i);
            } else {
                m.wildcard.push(i);
            }
        }
        m
    }

    pub(crate) fn find(&self, overrides: &[Override], namespace: &str, package: &str, action: &str) -> Option<usize> {
        if let Some(&i) = self.exact.get(namespace).and_then(|p| p.get(package)).and_then(|a| a.get(action)) {
            return Some(i);
        }
        let none: &[usize] = &[];
        let mut lists = [
            self.by_namespace.get(namespace).map_or(none, Vec::as_slice),
            self.by_action.get(action).map_or(none, Vec::as_slice),
            self.wildcard.as_slice(),
        ];
        // Merge by rank: always test the best-ranked head among the lists.
        loop {
            let (list, &i) = lists
                .iter()
                .enumerate()
                .filter_map(|(l, list)| list.first().map(|i| (l, i)))
                .min_by_key(|(_, &i)| self.rank[i])?;
            if overrides[i].matches(namespace, package, action) {
                return Some(i);
            }
            lists[list] = &lists[list][1..];
        }
    }
}
