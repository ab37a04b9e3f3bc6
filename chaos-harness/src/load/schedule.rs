//! Open-loop send schedules: a rate profile (piecewise linear, last segment held forever) and
//! the intended send times it produces, evenly spaced or as a Poisson process.
//!
//! The k-th tick is where the integral of the rate reaches k (evenly spaced) or the sum of k
//! exponential(1) draws (Poisson), so a ramp or a step changes the rate exactly where the
//! profile says, with no drift from rounding intervals.

use std::time::Duration;

use rand::{Rng, SeedableRng};

/// One piece of a rate profile: the rate goes linearly from `from` to `to` over `len`
/// (`None`: forever, at `from`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Segment {
    pub(crate) len: Option<f64>,
    pub(crate) from: f64,
    pub(crate) to: f64,
}

/// A rate profile in requests per second.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Profile {
    pub(crate) segments: Vec<Segment>,
    /// `Some(seed)`: Poisson arrivals (exponential gaps) instead of even spacing.
    pub(crate) poisson: Option<u64>,
}

impl Profile {
    pub(crate) fn constant(rate: f64) -> Self {
        Self { segments: vec![Segment { len: None, from: rate.max(0.0), to: rate.max(0.0) }], poisson: None }
    }

    pub(crate) fn ramp(from: f64, to: f64, over: Duration) -> Self {
        let (from, to) = (from.max(0.0), to.max(0.0));
        Self {
            segments: vec![Segment { len: Some(over.as_secs_f64()), from, to }, Segment { len: None, from: to, to }],
            poisson: None,
        }
    }

    pub(crate) fn steps(steps: &[(Duration, f64)]) -> Self {
        let mut segments: Vec<Segment> = steps
            .iter()
            .map(|(d, r)| Segment { len: Some(d.as_secs_f64()), from: r.max(0.0), to: r.max(0.0) })
            .collect();
        let last = segments.last().map(|s| s.to).unwrap_or(0.0);
        segments.push(Segment { len: None, from: last, to: last });
        Self { segments, poisson: None }
    }

    /// Expected requests in the first `t`.
    pub(crate) fn expected(&self, t: Duration) -> f64 {
        let mut left = t.as_secs_f64();
        let mut n = 0.0;
        for s in &self.segments {
            let len = s.len.unwrap_or(f64::INFINITY);
            let u = left.min(len);
            let slope = if s.len.is_some() && len > 0.0 { (s.to - s.from) / len } else { 0.0 };
            n += s.from * u + slope * u * u / 2.0;
            left -= u;
            if left <= 0.0 {
                break;
            }
        }
        n
    }

    pub(crate) fn ticks(&self) -> Ticks {
        Ticks {
            profile: self.clone(),
            seg: 0,
            u: 0.0,
            seg_start: 0.0,
            rng: self.poisson.map(rand_chacha::ChaCha8Rng::seed_from_u64),
        }
    }
}

/// The intended send times of a profile, in order. `None` once the rate stays at zero.
pub(crate) struct Ticks {
    profile: Profile,
    seg: usize,
    /// Offset into the current segment, seconds.
    u: f64,
    seg_start: f64,
    rng: Option<rand_chacha::ChaCha8Rng>,
}

impl Iterator for Ticks {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let mut need = match &mut self.rng {
            // Exponential(1) by inversion; 1 - x is in (0, 1].
            Some(rng) => -(1.0 - rng.random::<f64>()).ln(),
            None => 1.0,
        };
        loop {
            let s = self.profile.segments.get(self.seg)?;
            let len = s.len.unwrap_or(f64::INFINITY);
            let slope = if s.len.is_some() && len > 0.0 { (s.to - s.from) / len } else { 0.0 };
            let r = s.from + slope * self.u;
            // Solve slope/2 d^2 + r d = need for the smallest d >= 0.
            let d = if slope.abs() < 1e-12 {
                if r > 0.0 { need / r } else { f64::INFINITY }
            } else {
                let disc = r * r + 2.0 * slope * need;
                if disc < 0.0 { f64::INFINITY } else { (-r + disc.sqrt()) / slope }
            };
            if d.is_finite() && d >= 0.0 && self.u + d <= len {
                self.u += d;
                return Some(Duration::from_secs_f64(self.seg_start + self.u));
            }
            // The last segment holds forever: a rate of zero there ends the schedule.
            s.len?;
            let rest = len - self.u;
            need -= r * rest + slope * rest * rest / 2.0;
            self.seg_start += len;
            self.seg += 1;
            self.u = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_until(p: &Profile, secs: f64) -> usize {
        p.ticks().take_while(|t| t.as_secs_f64() < secs).count()
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let t: Vec<Duration> = Profile::constant(100.0).ticks().take(3).collect();
        assert_eq!(t.iter().map(|d| d.as_micros()).collect::<Vec<_>>(), vec![10_000, 20_000, 30_000]);
        assert_eq!(count_until(&Profile::constant(100.0), 10.0), 999);
    }

    #[test]
    fn ramp_integrates_the_rate_and_then_holds() {
        // 0 -> 100/s over 2 s: 100 requests in the ramp, then 100/s.
        let p = Profile::ramp(0.0, 100.0, Duration::from_secs(2));
        let n = count_until(&p, 2.0);
        assert!((99..=100).contains(&n), "{n}");
        assert!((p.expected(Duration::from_secs(3)) - 200.0).abs() < 1e-9);
        let n3 = count_until(&p, 3.0);
        assert!((199..=200).contains(&n3), "{n3}");
    }

    #[test]
    fn ramp_down_to_zero_ends() {
        let p = Profile::ramp(100.0, 0.0, Duration::from_secs(1));
        // 50 by the integral; the last may fall to rounding.
        assert!((49..=50).contains(&p.ticks().count()));
    }

    #[test]
    fn steps_change_rate_at_their_boundaries() {
        let p = Profile::steps(&[
            (Duration::from_secs(1), 10.0),
            (Duration::from_secs(1), 0.0),
            (Duration::from_secs(1), 50.0),
        ]);
        let t: Vec<f64> = p.ticks().take_while(|t| t.as_secs_f64() < 3.0).map(|t| t.as_secs_f64()).collect();
        // The 10th tick of the first second falls on its end; none in the silent second.
        assert_eq!(t.iter().filter(|&&x| x <= 1.0).count(), 10);
        assert_eq!(t.iter().filter(|&&x| x > 1.0 && x < 2.0).count(), 0);
        let last = t.iter().filter(|&&x| x >= 2.0).count();
        assert!((49..=51).contains(&last), "{last}");
    }

    #[test]
    fn poisson_has_the_mean_rate_and_irregular_gaps_and_is_seeded() {
        let p = Profile { poisson: Some(7), ..Profile::constant(1000.0) };
        let n = count_until(&p, 10.0);
        assert!((9_500..10_500).contains(&n), "{n}");
        let gaps: Vec<f64> =
            p.ticks().take(1000).collect::<Vec<_>>().windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        // Exponential gaps: standard deviation equals the mean.
        assert!((sd / mean - 1.0).abs() < 0.15, "sd/mean {}", sd / mean);
        assert_eq!(p.ticks().take(5).collect::<Vec<_>>(), p.ticks().take(5).collect::<Vec<_>>());
    }
}
