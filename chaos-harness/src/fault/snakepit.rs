//! Snakepit faults no OS signal can cause: the target's admin actions (crash the pool process,
//! kill a worker's Elixir process without cleanup, restart the session store) and clients that
//! disconnect in the middle of their requests.
//!
//! ```no_run
//! # fn f(pit: &chaos_harness::fixture::snakepit::SnakepitHandle) {
//! use chaos_harness::fault::Fault;
//! use chaos_harness::fixture::snakepit::AdminAction;
//! let crash = Fault::snakepit_admin(pit, AdminAction::CrashPool);
//! let abandon = Fault::abandon_requests(pit, 2).holding(std::time::Duration::from_millis(300));
//! # let _ = (crash, abandon); }
//! ```

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::{ActiveFault, Confirmation, Fault, FaultContext, Inject, OneShot};
use crate::BoxFuture;
use crate::Error;
use crate::fixture::FixtureHandle;
use crate::fixture::snakepit::{AdminAction, SnakepitHandle};
use crate::params::{Described, Params};

fn not_injected(fault: &str, cause: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::NotInjected { fault: fault.to_string(), cause: cause.into(), fix: fix.into() }
}

impl Fault {
    /// An internal fault through the target's `POST /admin/...` API, confirmed by its reply.
    pub fn snakepit_admin(pit: &SnakepitHandle, action: AdminAction) -> SnakepitAdmin {
        SnakepitAdmin { pit: pit.clone(), action }
    }

    /// `n` clients each send an `/execute` of `sleep` (default 300 ms) and disconnect while it
    /// runs; confirmed when the pool reported the requests running (busy) and no reply had
    /// arrived when the connections were closed.
    pub fn abandon_requests(pit: &SnakepitHandle, n: u32) -> AbandonRequests {
        AbandonRequests { pit: pit.clone(), n: n.max(1), hold: Duration::from_millis(300) }
    }
}

/// The name of an admin action in specs.
pub fn admin_action_name(a: &AdminAction) -> &'static str {
    match a {
        AdminAction::CrashPool => "crash_pool",
        AdminAction::KillWorkerProcess(_) => "kill_worker_process",
        AdminAction::RestartSessionStore => "restart_session_store",
    }
}

/// See [`Fault::snakepit_admin`].
#[derive(Debug, Clone)]
pub struct SnakepitAdmin {
    pit: SnakepitHandle,
    action: AdminAction,
}

impl Inject for SnakepitAdmin {
    fn describe(&self) -> String {
        let what = match &self.action {
            AdminAction::CrashPool => "crash the pool process".to_string(),
            AdminAction::KillWorkerProcess(None) => "kill the Elixir process of the first worker".to_string(),
            AdminAction::KillWorkerProcess(Some(id)) => format!("kill the Elixir process of {id}"),
            AdminAction::RestartSessionStore => "restart the session store".to_string(),
        };
        format!("{what} of {} (admin API)", self.pit.target().name())
    }

    fn described(&self) -> Option<Described> {
        let mut p =
            Params::new().with("target", self.pit.target().name()).with("action", admin_action_name(&self.action));
        if let AdminAction::KillWorkerProcess(Some(id)) = &self.action {
            p = p.with("worker_id", id.as_str());
        }
        Some(Described::new("snakepit_admin", p))
    }

    fn inject<'a>(&'a self, _cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let t0 = Instant::now();
            let reply = self.pit.client().admin(&self.action).await.map_err(|e| {
                not_injected(&name, e.to_string(), "the target must serve POST /admin/... (see its README)")
            })?;
            let took = format!("{:.1} ms", t0.elapsed().as_secs_f64() * 1000.0);
            let s = |k: &str| reply.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
            let (detail, pids) = match &self.action {
                AdminAction::CrashPool => (format!("pool process {} killed (reply after {took})", s("killed")), vec![]),
                AdminAction::KillWorkerProcess(_) => {
                    let pid = reply.get("python_pid").and_then(|v| v.as_i64()).map(|p| p as i32);
                    (
                        format!(
                            "Elixir process of {} killed; its Python pid was {} (reply after {took})",
                            s("worker_id"),
                            pid.map_or("?".into(), |p| p.to_string())
                        ),
                        pid.into_iter().collect(),
                    )
                }
                AdminAction::RestartSessionStore => {
                    if reply.get("ok") != Some(&serde_json::Value::Bool(true)) {
                        return Err(not_injected(
                            &name,
                            format!("the session store did not come back: {reply}"),
                            "see the BEAM's log",
                        ));
                    }
                    (format!("session store {} replaced by {} (reply after {took})", s("old"), s("new")), vec![])
                }
            };
            Ok(Box::new(OneShot(Confirmation::new(name, detail, pids))) as Box<dyn ActiveFault>)
        })
    }
}

/// See [`Fault::abandon_requests`].
#[derive(Debug, Clone)]
pub struct AbandonRequests {
    pit: SnakepitHandle,
    n: u32,
    hold: Duration,
}

impl AbandonRequests {
    /// How long each abandoned request runs on its worker (the `sleep` tool's `ms`; default
    /// 300 ms). The clients disconnect as soon as the pool reports them running.
    pub fn holding(mut self, d: Duration) -> Self {
        self.hold = d;
        self
    }
}

impl Inject for AbandonRequests {
    fn describe(&self) -> String {
        format!(
            "{} client(s) disconnect mid-request ({} ms sleep) from {}",
            self.n,
            self.hold.as_millis(),
            self.pit.target().name()
        )
    }

    fn described(&self) -> Option<Described> {
        Some(Described::new(
            "abandon_requests",
            Params::new()
                .with("target", self.pit.target().name())
                .with("count", self.n)
                .with_duration("hold", self.hold),
        ))
    }

    fn inject<'a>(&'a self, _cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let addr = self.pit.http_addr();
            let busy0 = self.pit.client().health().await.map(|h| h.busy).unwrap_or(0);
            let body = serde_json::json!({"tool": "sleep", "args": {"ms": self.hold.as_millis() as u64}}).to_string();
            let req = format!(
                "POST /execute HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let mut conns = Vec::new();
            for _ in 0..self.n {
                let mut c = tokio::net::TcpStream::connect(addr).await.map_err(|e| {
                    not_injected(&name, format!("connecting to {addr}: {e}"), "is the target's API up?")
                })?;
                c.write_all(req.as_bytes())
                    .await
                    .map_err(|e| not_injected(&name, format!("sending to {addr}: {e}"), "is the target's API up?"))?;
                conns.push(c);
            }
            // The requests are running once the pool counts them busy; wait at most half the hold
            // so the disconnect lands while they run.
            let t0 = Instant::now();
            let seen = loop {
                let busy = self.pit.client().health().await.map(|h| h.busy).unwrap_or(0);
                if busy >= busy0 + self.n {
                    break busy;
                }
                if t0.elapsed() > self.hold / 2 {
                    return Err(not_injected(
                        &name,
                        format!(
                            "the pool reported {busy} busy worker(s) (want {}) within {:?}",
                            busy0 + self.n,
                            self.hold / 2
                        ),
                        "hold the requests longer (hold = \"1s\"), or use a pool with free workers",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            // No reply may have arrived: otherwise the disconnect was not mid-request.
            let mut buf = [0u8; 64];
            for c in &conns {
                match c.try_read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    other => {
                        return Err(not_injected(
                            &name,
                            format!(
                                "a request was answered (or its connection closed) before the disconnect: {other:?}"
                            ),
                            "hold the requests longer (hold = \"1s\")",
                        ));
                    }
                }
            }
            drop(conns);
            let detail = format!(
                "{} request(s) sent; pool busy {seen} (was {busy0}) after {:.1} ms; disconnected with no reply",
                self.n,
                t0.elapsed().as_secs_f64() * 1000.0
            );
            Ok(Box::new(OneShot(Confirmation::new(name, detail, vec![]))) as Box<dyn ActiveFault>)
        })
    }
}
