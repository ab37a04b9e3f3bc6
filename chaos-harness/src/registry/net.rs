//! Network registry entries: the `link` (a proxy owned by the test) and `netns` (a network
//! namespace) target kinds, the toxic faults and `link_down` on a link, `partition` and
//! `packet_loss` on a namespace.
//!
//! Links and namespaces have no processes, so they are targets of their own kind: started
//! with [`StartedFixture::resource`] and reached by name only through typed lookups
//! ([`typed`]). A network fault's `target` names a `link` target (`db`), or a Snakepit's own
//! links as `<pit>.bridge` / `<pit>.api` (the pit started with `bridge_link = true` /
//! `api_link = true`); `partition` and `packet_loss` name a `netns` target.
//!
//! ```toml
//! [target.db]
//! kind = "link"
//! upstream = "127.0.0.1:5432"
//!
//! [[step]]
//! action = "inject"
//! fault = "latency"
//! target = "db"
//! latency = "200ms"
//! ```

use std::str::FromStr;
use std::sync::Arc;

use chaos_proxy::Stream;

use super::{
    Bindings, FaultEntry, FixtureEntry, Param, ParamKind as K, StartedFixture, need_duration, need_str, param_err,
    typed,
};
use crate::BoxFuture;
use crate::Error;
use crate::fault::Fault;
use crate::fault::net::ToxicFault;
use crate::params::Params;
use crate::sandbox::Sandbox;
use crate::topology::{Link, Netns};

fn start_link(
    name: String,
    p: &Params,
    sandbox: Arc<Sandbox>,
) -> Result<BoxFuture<'static, Result<StartedFixture, Error>>, Error> {
    let mut b = Link::builder(name, need_str(p, "upstream")?);
    if let Some(l) = p.str("listen").map_err(param_err)? {
        b = b.listen(l);
    }
    match p.str("backend").map_err(param_err)? {
        None => {}
        Some("embedded") => b = b.embedded(),
        Some(url) if url.starts_with("http://") => b = b.external(url),
        Some(other) => {
            return Err(Error::Config {
                what: format!("link backend `{other}`"),
                cause: "not a backend".into(),
                fix: "write backend = \"embedded\" or the URL of a Toxiproxy server (\"http://127.0.0.1:8474\")".into(),
            });
        }
    }
    Ok(Box::pin(async move { b.start(&sandbox).await.map(StartedFixture::resource) }))
}

fn start_netns(
    name: String,
    _: &Params,
    sandbox: Arc<Sandbox>,
) -> Result<BoxFuture<'static, Result<StartedFixture, Error>>, Error> {
    Ok(Box::pin(async move { Netns::create(&sandbox, &name).await.map(StartedFixture::resource) }))
}

inventory::submit! { FixtureEntry {
    name: "link",
    summary: "a TCP proxy owned by the test (embedded, or an external Toxiproxy): clients dial it, it forwards to `upstream`; network faults act on it",
    params: &[
        Param::maybe("name", K::Text, "the link's name (defaults to the target's key)"),
        Param::required("upstream", K::Text, "where it forwards to: IP:PORT"),
        Param::maybe("listen", K::Text, "the address it listens on (default 127.0.0.1:0, a free port)"),
        Param::maybe("backend", K::Text, "\"embedded\" or an external Toxiproxy URL (default: TOXIPROXY_URL if set, else embedded)"),
    ],
    roles: &[],
    start: start_link,
} }

inventory::submit! { FixtureEntry {
    name: "netns",
    summary: "a network namespace with a veth pair to the host (needs root and `ip`); partition and packet_loss act on it",
    params: &[Param::maybe("name", K::Text, "its name (defaults to the target's key)")],
    roles: &[],
    start: start_netns,
} }

/// The link a network fault names: a `link` target (`db`), or a Snakepit's `pit.bridge` /
/// `pit.api`.
fn link_of(b: &dyn Bindings, reference: &str) -> Result<Link, Error> {
    let Some((name, role)) = reference.split_once('.') else {
        return typed::<Link>(b, reference, "link").cloned();
    };
    #[cfg(feature = "snakepit")]
    {
        use crate::fixture::snakepit::SnakepitHandle;
        let pit: &SnakepitHandle = typed(b, name, "snakepit")?;
        let (link, flag) = match role {
            "bridge" => (pit.bridge_link(), "bridge_link"),
            "api" => (pit.api_link(), "api_link"),
            other => {
                return Err(Error::Config {
                    what: format!("link `{reference}`"),
                    cause: format!("a snakepit has no link `{other}`"),
                    fix: crate::error::did_you_mean(other, &["bridge", "api"]),
                });
            }
        };
        link.ok_or_else(|| Error::Config {
            what: format!("link `{reference}`"),
            cause: format!("snakepit `{name}` was started without its {role} link"),
            fix: format!("set {flag} = true on target {name}"),
        })
    }
    #[cfg(not(feature = "snakepit"))]
    Err(Error::Config {
        what: format!("link `{reference}`"),
        cause: format!("`{name}.{role}` names a role, and only snakepit targets have links by role"),
        fix: "name a target of kind \"link\"".into(),
    })
}

fn netns_of<'a>(b: &'a dyn Bindings, name: &str) -> Result<&'a Netns, Error> {
    typed::<Netns>(b, name, "netns")
}

const LINK: Param =
    Param::required("target", K::Selector, "the link: a `link` target (db), or a snakepit's pit.bridge / pit.api");
const STREAM: Param =
    Param::optional("stream", K::Text, "downstream", "which direction: downstream (server to client) or upstream");
const TOXICITY: Param = Param::optional("toxicity", K::Number, "1", "the chance (0..1) a connection is affected");
const CONFIRM: Param =
    Param::optional("confirm_within", K::Duration, "5s", "how long the toxic may take to touch a connection");

/// Applies the common toxic parameters (stream, toxicity, confirm_within, the spec reference).
fn toxic(p: &Params, f: ToxicFault) -> Result<Fault, Error> {
    let s = need_str(p, "stream")?;
    let stream = Stream::from_str(s).map_err(|_| Error::Config {
        what: format!("stream `{s}`"),
        cause: "not a direction".into(),
        fix: crate::error::did_you_mean(s, &["downstream", "upstream"]),
    })?;
    let tox = p.f64("toxicity").map_err(param_err)?.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&tox) {
        return Err(Error::Config {
            what: "parameter `toxicity`".into(),
            cause: format!("{tox} is not a probability"),
            fix: "give a number from 0 to 1".into(),
        });
    }
    Ok(f.stream(stream)
        .toxicity(tox as f32)
        .confirm_within(need_duration(p, "confirm_within")?)
        .spec_ref(need_str(p, "target")?)
        .into())
}

fn link(p: &Params, b: &dyn Bindings) -> Result<Link, Error> {
    link_of(b, need_str(p, "target")?)
}

fn latency(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let mut f = Fault::latency(&link(p, b)?, need_duration(p, "latency")?);
    if let Some(j) = p.duration("jitter").map_err(param_err)? {
        f = f.jitter(j);
    }
    toxic(p, f.into_toxic())
}

fn bandwidth(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let rate = p.u64("rate_kbps").map_err(param_err)?.unwrap_or(0);
    toxic(p, Fault::bandwidth(&link(p, b)?, rate))
}

fn timeout(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    toxic(p, Fault::timeout(&link(p, b)?, need_duration(p, "timeout")?))
}

fn reset_peer(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let l = link(p, b)?;
    let f = match p.duration("after").map_err(param_err)? {
        Some(d) => Fault::reset_peer_after(&l, d),
        None => Fault::reset_peer(&l),
    };
    toxic(p, f)
}

fn slicer(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let avg = p.bytes("average_size").map_err(param_err)?.unwrap_or(64);
    let var = p.bytes("size_variation").map_err(param_err)?.unwrap_or(0);
    toxic(p, Fault::slicer(&link(p, b)?, avg, var, need_duration(p, "delay")?))
}

fn limit_data(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let n = p.bytes("bytes").map_err(param_err)?.unwrap_or(0);
    toxic(p, Fault::limit_data(&link(p, b)?, n))
}

fn slow_close(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    toxic(p, Fault::slow_close(&link(p, b)?, need_duration(p, "delay")?))
}

fn link_down(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    Ok(Fault::link_down(&link(p, b)?).spec_ref(need_str(p, "target")?).into())
}

fn partition(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let target = need_str(p, "target")?;
    Ok(Fault::partition(netns_of(b, target)?).spec_ref(target).into())
}

fn packet_loss(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let target = need_str(p, "target")?;
    let pct = p.u64("percent").map_err(param_err)?.unwrap_or(0);
    let pct = u8::try_from(pct).ok().filter(|p| (1..=100).contains(p)).ok_or_else(|| Error::Config {
        what: "parameter `percent`".into(),
        cause: format!("{pct} is not a percentage from 1 to 100"),
        fix: "write percent = 30".into(),
    })?;
    Ok(Fault::packet_loss(netns_of(b, target)?, pct).spec_ref(target).into())
}

inventory::submit! { FaultEntry {
    name: "latency",
    summary: "delay every chunk on a link by `latency` (± `jitter`); confirmed when it touched a connection",
    params: &[
        LINK,
        Param::required("latency", K::Duration, "the delay per chunk"),
        Param::maybe("jitter", K::Duration, "uniform variation either side"),
        STREAM, TOXICITY, CONFIRM,
    ],
    build: latency,
} }
inventory::submit! { FaultEntry {
    name: "bandwidth",
    summary: "limit a link to `rate_kbps` KB/s (1 KB = 1000 bytes)",
    params: &[LINK, Param::required("rate_kbps", K::Count, "KB per second"), STREAM, TOXICITY, CONFIRM],
    build: bandwidth,
} }
inventory::submit! { FaultEntry {
    name: "timeout",
    summary: "stop all data on a link and close each connection after `timeout` (\"0s\": stall forever)",
    params: &[LINK, Param::required("timeout", K::Duration, "when to close (0s: never)"), STREAM, TOXICITY, CONFIRM],
    build: timeout,
} }
inventory::submit! { FaultEntry {
    name: "reset_peer",
    summary: "reset (TCP RST) every connection on a link at its next data, or `after` it",
    params: &[LINK, Param::maybe("after", K::Duration, "reset this long after the data arrives"), STREAM, TOXICITY, CONFIRM],
    build: reset_peer,
} }
inventory::submit! { FaultEntry {
    name: "slicer",
    summary: "cut every chunk on a link into writes of average_size ± size_variation bytes, `delay` apart",
    params: &[
        LINK,
        Param::optional("average_size", K::Size, "64", "average write size"),
        Param::optional("size_variation", K::Size, "0", "variation either side"),
        Param::optional("delay", K::Duration, "0s", "pause between writes"),
        STREAM, TOXICITY, CONFIRM,
    ],
    build: slicer,
} }
inventory::submit! { FaultEntry {
    name: "limit_data",
    summary: "close each connection on a link once `bytes` have passed",
    params: &[LINK, Param::required("bytes", K::Size, "how much may pass (\"64KiB\")"), STREAM, TOXICITY, CONFIRM],
    build: limit_data,
} }
inventory::submit! { FaultEntry {
    name: "slow_close",
    summary: "delay each close (FIN) on a link by `delay`",
    params: &[LINK, Param::required("delay", K::Duration, "how long"), STREAM, TOXICITY, CONFIRM],
    build: slow_close,
} }
inventory::submit! { FaultEntry {
    name: "link_down",
    summary: "take a link down: close its connections and refuse new ones until cleared; confirmed by a refused connect",
    params: &[LINK],
    build: link_down,
} }
inventory::submit! { FaultEntry {
    name: "partition",
    summary: "cut a network namespace off (nft drops every packet on its veth) until cleared; needs nft",
    params: &[Param::required("target", K::Fixture, "the netns target")],
    build: partition,
} }
inventory::submit! { FaultEntry {
    name: "packet_loss",
    summary: "drop `percent` % of the packets in and out of a network namespace; needs nft",
    params: &[Param::required("target", K::Fixture, "the netns target"), Param::required("percent", K::Count, "1..100")],
    build: packet_loss,
} }
