//! Load criteria: `no_lost_requests` and `error_rate`, judged from the scenario's load report.
//!
//! ```
//! use chaos_harness::criteria::Criterion;
//! let c = Criterion::error_rate().at_most(0.01);
//! assert!(Criterion::from(c).describe().contains("error rate"));
//! ```

use super::{Criterion, Judge, JudgeContext, Verdict};
use crate::BoxFuture;

impl Criterion {
    /// Every request of the scenario's load got a reply (success or a structured error): none
    /// was dropped, reset or left hanging past the load's timeout.
    pub fn no_lost_requests() -> NoLostRequests {
        NoLostRequests
    }

    /// The scenario's error rate (structured errors plus lost requests, over all requests) is
    /// at most the given fraction.
    pub fn error_rate() -> ErrorRate {
        ErrorRate { max: 0.0 }
    }
}

/// See [`Criterion::no_lost_requests`].
pub struct NoLostRequests;

impl Judge for NoLostRequests {
    fn described(&self) -> Option<crate::params::Described> {
        Some(crate::params::Described::new("no_lost_requests", crate::params::Params::new()))
    }

    fn describe(&self) -> String {
        "no lost requests".into()
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(report) = &cx.load else {
                return Verdict {
                    criterion: name,
                    passed: false,
                    detail: "the scenario runs no load (add .load(..))".into(),
                };
            };
            let s = report.stats();
            let lost: Vec<String> = report
                .records()
                .iter()
                .filter(|r| r.outcome.is_lost())
                .take(5)
                .map(|r| format!("#{} at +{}ms: {:?}", r.seq, r.started.as_millis(), r.outcome))
                .collect();
            let summary = format!("{} requests: {} ok, {} errors, {} lost", s.total, s.ok, s.errors, s.lost);
            if s.total == 0 {
                return Verdict {
                    criterion: name,
                    passed: false,
                    detail: format!("{summary}: the load issued nothing"),
                };
            }
            Verdict {
                criterion: name,
                passed: s.lost == 0,
                detail: if lost.is_empty() { summary } else { format!("{summary}; first lost: {}", lost.join("; ")) },
            }
        })
    }
}

/// See [`Criterion::error_rate`].
pub struct ErrorRate {
    max: f64,
}

impl ErrorRate {
    /// The largest allowed fraction (0.0 to 1.0).
    pub fn at_most(mut self, max: f64) -> Self {
        self.max = max;
        self
    }
}

impl Judge for ErrorRate {
    fn described(&self) -> Option<crate::params::Described> {
        Some(crate::params::Described::new("error_rate", crate::params::Params::new().with("at_most", self.max)))
    }

    fn describe(&self) -> String {
        format!("error rate at most {:.1}%", self.max * 100.0)
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(report) = &cx.load else {
                return Verdict {
                    criterion: name,
                    passed: false,
                    detail: "the scenario runs no load (add .load(..))".into(),
                };
            };
            let s = report.stats();
            Verdict {
                criterion: name,
                passed: s.total > 0 && s.error_rate <= self.max,
                detail: format!(
                    "{:.2}% of {} requests failed ({} errors, {} lost)",
                    s.error_rate * 100.0,
                    s.total,
                    s.errors,
                    s.lost
                ),
            }
        })
    }
}
