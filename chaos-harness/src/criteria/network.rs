//! Network criteria: whether a TCP endpoint can be reached, for judging partitions and links
//! from the outside (`Criterion::tcp_connect(addr).succeeds_within(d)` /
//! `.fails_for(d)`).

use std::net::SocketAddr;
use std::time::Duration;

use crate::BoxFuture;
use crate::criteria::{Criterion, Judge, JudgeContext, Verdict};

/// How long one connect attempt may take before it counts as failed.
const ATTEMPT: Duration = Duration::from_millis(250);

/// `Criterion::tcp_connect(addr)`: a TCP connect to `addr` is accepted within a time
/// ([`TcpConnect::succeeds_within`], the default with 5 s), or no connect is accepted during a
/// time ([`TcpConnect::fails_for`]). Each attempt may take 250 ms.
///
/// ```
/// use chaos_harness::criteria::Criterion;
/// use std::time::Duration;
/// let addr = "10.213.0.2:7000".parse().unwrap();
/// let up = Criterion::tcp_connect(addr).succeeds_within(Duration::from_secs(2));
/// let down = Criterion::tcp_connect(addr).fails_for(Duration::from_secs(1));
/// assert_eq!(down.describe_expectation(), "a TCP connect to 10.213.0.2:7000 fails throughout 1s");
/// # let _ = up;
/// ```
#[derive(Debug, Clone)]
pub struct TcpConnect {
    addr: SocketAddr,
    expect_ok: bool,
    d: Duration,
}

impl TcpConnect {
    /// Passes at the first accepted connect, fails if none is accepted within `d`.
    ///
    /// ```
    /// let c = chaos_harness::criteria::Criterion::tcp_connect("127.0.0.1:1".parse().unwrap())
    ///     .succeeds_within(std::time::Duration::from_secs(1));
    /// # let _ = c;
    /// ```
    pub fn succeeds_within(mut self, d: Duration) -> Self {
        self.expect_ok = true;
        self.d = d;
        self
    }

    /// Passes if every connect attempt during `d` fails (refused, unreachable or no answer);
    /// fails at the first accepted one.
    ///
    /// ```
    /// let c = chaos_harness::criteria::Criterion::tcp_connect("127.0.0.1:1".parse().unwrap())
    ///     .fails_for(std::time::Duration::from_millis(500));
    /// # let _ = c;
    /// ```
    pub fn fails_for(mut self, d: Duration) -> Self {
        self.expect_ok = false;
        self.d = d;
        self
    }

    /// The description used in verdicts.
    ///
    /// ```
    /// let c = chaos_harness::criteria::Criterion::tcp_connect("127.0.0.1:1".parse().unwrap());
    /// assert_eq!(c.describe_expectation(), "a TCP connect to 127.0.0.1:1 succeeds within 5s");
    /// ```
    pub fn describe_expectation(&self) -> String {
        if self.expect_ok {
            format!("a TCP connect to {} succeeds within {:?}", self.addr, self.d)
        } else {
            format!("a TCP connect to {} fails throughout {:?}", self.addr, self.d)
        }
    }
}

async fn attempt(addr: SocketAddr) -> Result<(), String> {
    match tokio::time::timeout(ATTEMPT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {ATTEMPT:?}")),
    }
}

impl Judge for TcpConnect {
    fn described(&self) -> Option<crate::params::Described> {
        let key = if self.expect_ok { "succeeds_within" } else { "fails_for" };
        Some(crate::params::Described::new(
            "tcp_connect",
            crate::params::Params::new().with("addr", self.addr.to_string()).with_duration(key, self.d),
        ))
    }

    fn describe(&self) -> String {
        self.describe_expectation()
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let criterion = self.describe();
            let t0 = cx.window_start;
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                let last = match attempt(self.addr).await {
                    Ok(()) if self.expect_ok => {
                        return Verdict {
                            criterion,
                            passed: true,
                            detail: format!(
                                "accepted after {:.1} ms (attempt {attempts})",
                                t0.elapsed().as_secs_f64() * 1000.0
                            ),
                        };
                    }
                    Ok(()) => {
                        return Verdict {
                            criterion,
                            passed: false,
                            detail: format!(
                                "attempt {attempts} was accepted {:.1} ms in",
                                t0.elapsed().as_secs_f64() * 1000.0
                            ),
                        };
                    }
                    Err(e) => e,
                };
                if t0.elapsed() >= self.d {
                    return Verdict {
                        criterion,
                        passed: !self.expect_ok,
                        detail: format!("all {attempts} attempts over {:?} failed; last: {last}", self.d),
                    };
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }
}

impl Criterion {
    /// Whether a TCP connect to `addr` is accepted: see [`TcpConnect`].
    ///
    /// ```
    /// let c = chaos_harness::criteria::Criterion::tcp_connect("127.0.0.1:8080".parse().unwrap());
    /// # let _ = c;
    /// ```
    pub fn tcp_connect(addr: SocketAddr) -> TcpConnect {
        TcpConnect { addr, expect_ok: true, d: Duration::from_secs(5) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn judges_open_and_closed_ports() {
        let sb = std::sync::Arc::new(
            crate::sandbox::Sandbox::with_options("unit::reach", crate::sandbox::SandboxOptions { cgroups: false })
                .unwrap(),
        );
        // A fresh window for each judgement.
        let cx = || JudgeContext::new(sb.clone(), 1);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = l.local_addr().unwrap();
        let closed = {
            let x = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            x.local_addr().unwrap()
        };
        let ms = Duration::from_millis;
        assert!(Criterion::tcp_connect(open).succeeds_within(ms(200)).judge(&cx()).await.passed);
        assert!(!Criterion::tcp_connect(open).fails_for(ms(200)).judge(&cx()).await.passed);
        assert!(Criterion::tcp_connect(closed).fails_for(ms(100)).judge(&cx()).await.passed);
        let v = Criterion::tcp_connect(closed).succeeds_within(ms(100)).judge(&cx()).await;
        assert!(!v.passed && v.detail.contains("refused"), "{v}");
        drop(l);
        sb.teardown().unwrap();
    }
}
