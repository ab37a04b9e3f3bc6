//! [`Phase`]: where on a scenario's timeline something happened, as a type.
//!
//! * `baseline`: from the scenario's start until the first fault is confirmed;
//! * `fault`: from the first confirmation until the fault is cleared, or, for one-shot faults
//!   (kills), until the target is observed recovered (the expectations after the fault hold)
//!   or the scenario ends;
//! * `recovery`: after that;
//! * named custom phases (`Phase::named("warm-up")`), entered by a scenario step.
//!
//! ```
//! use chaos_harness::observe::Phase;
//! assert_eq!(Phase::Fault.to_string(), "fault");
//! assert_eq!("recovery".parse::<Phase>().unwrap(), Phase::Recovery);
//! assert_eq!("warm-up".parse::<Phase>().unwrap(), Phase::named("warm-up"));
//! assert_eq!(serde_json::to_string(&Phase::Baseline).unwrap(), "\"baseline\"");
//! ```

use std::fmt;
use std::str::FromStr;

/// A phase of a scenario (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Before the first fault took effect.
    Baseline,
    /// While a fault is in effect (or a one-shot fault's target has not recovered yet).
    Fault,
    /// After the fault was cleared or its target recovered.
    Recovery,
    /// A phase a scenario step named.
    Named(String),
}

impl Phase {
    /// A named custom phase.
    ///
    /// ```
    /// assert_eq!(chaos_harness::observe::Phase::named("soak").to_string(), "soak");
    /// ```
    pub fn named(name: impl Into<String>) -> Self {
        let name = name.into();
        name.parse().unwrap_or(Phase::Named(name))
    }

    /// The phase's name as written in scenario files and reports.
    pub fn as_str(&self) -> &str {
        match self {
            Phase::Baseline => "baseline",
            Phase::Fault => "fault",
            Phase::Recovery => "recovery",
            Phase::Named(n) => n,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "baseline" => Ok(Phase::Baseline),
            "fault" => Ok(Phase::Fault),
            "recovery" => Ok(Phase::Recovery),
            "" => Err("a phase name cannot be empty; use baseline, fault, recovery or a name of your own".into()),
            other => Ok(Phase::Named(other.to_string())),
        }
    }
}

impl serde::Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Phase {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One stretch of the timeline spent in a phase: `[from, to)` since the scenario started.
///
/// ```
/// use std::time::Duration;
/// use chaos_harness::observe::{Phase, PhaseSpan};
/// let s = PhaseSpan { phase: Phase::Fault, from: Duration::from_secs(1), to: Duration::from_secs(3) };
/// assert!(s.overlaps(Duration::from_millis(500), Duration::from_millis(1500)));
/// assert!(!s.overlaps(Duration::from_secs(3), Duration::from_secs(4)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhaseSpan {
    /// The phase.
    pub phase: Phase,
    /// Its start.
    #[serde(with = "crate::observe::event::duration_us")]
    pub from: std::time::Duration,
    /// Its end (exclusive).
    #[serde(with = "crate::observe::event::duration_us")]
    pub to: std::time::Duration,
}

impl PhaseSpan {
    /// Whether `[start, end]` overlaps this span.
    pub fn overlaps(&self, start: std::time::Duration, end: std::time::Duration) -> bool {
        start < self.to && end >= self.from
    }

    /// Whether `t` falls in this span.
    pub fn contains(&self, t: std::time::Duration) -> bool {
        t >= self.from && t < self.to
    }
}
