//! The two controller fleets, as a label (metrics, documents, decisions).

use std::fmt;

/// One of the two controller fleets.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
    serde::Serialize,
    serde::Deserialize,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// Controllers with `ShardingContainerPoolBalancer` (the Kafka path).
    Legacy,
    /// Controllers with `FPCPoolBalancer` (the new scheduler).
    Scheduler,
}

impl Pool {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn other(self) -> Pool {
        match self {
            Pool::Legacy => Pool::Scheduler,
            Pool::Scheduler => Pool::Legacy,
        }
    }

    /// Dense index (0 or 1) for per-pool arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn parse(text: &str) -> Option<Pool> {
        match text {
            "legacy" => Some(Pool::Legacy),
            "scheduler" => Some(Pool::Scheduler),
            _ => None,
        }
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
