//! Toxics: kinds, parameters, JSON shapes and the pure parts of their semantics.
//!
//! The kinds, their parameters and units are Toxiproxy's (v2), and so is the JSON:
//!
//! ```json
//! {"attributes": {"latency": 100, "jitter": 10}, "name": "latency_downstream",
//!  "type": "latency", "stream": "downstream", "toxicity": 1.0}
//! ```
//!
//! | type | attributes | effect on the stream it is attached to |
//! |---|---|---|
//! | `latency` | `latency`, `jitter` (ms) | every chunk waits `latency ± jitter` after it was read |
//! | `bandwidth` | `rate` (KB/s, 1 KB = 1000 B; 0 = unlimited) | data flows at most at `rate` |
//! | `slow_close` | `delay` (ms) | the close (FIN) is forwarded `delay` later |
//! | `timeout` | `timeout` (ms) | data is dropped; the connection is closed after `timeout` (0 = never: a stall) |
//! | `reset_peer` | `timeout` (ms) | on the next data (or close), wait `timeout` then reset both sides (RST) |
//! | `slicer` | `average_size`, `size_variation` (bytes), `delay` (µs) | chunks are cut into small writes |
//! | `limit_data` | `bytes` | the connection is closed once `bytes` have passed |
//!
//! `stream` is `upstream` (client to server) or `downstream` (server to client, the
//! default); `toxicity` (0..=1, default 1) is the probability, drawn once per connection
//! from the proxy's seeded RNG, that the toxic applies to that connection.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;
use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};
use serde_json::{Map, Value};

use super::error::{NetError, NetResult};

/// The direction of a connection a toxic is attached to.
///
/// ```
/// use chaos_proxy::Stream;
/// assert_eq!("UPSTREAM".parse::<Stream>().unwrap(), Stream::Upstream);
/// assert_eq!(Stream::Downstream.as_str(), "downstream");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Stream {
    /// Client to server (what the client sends).
    Upstream,
    /// Server to client (what the client receives). Toxiproxy's default.
    #[default]
    Downstream,
}

impl Stream {
    /// The Toxiproxy name: `"upstream"` or `"downstream"`.
    ///
    /// ```
    /// assert_eq!(chaos_proxy::Stream::Upstream.as_str(), "upstream");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stream {
    type Err = NetError;
    fn from_str(s: &str) -> NetResult<Self> {
        match s.to_ascii_lowercase().as_str() {
            "upstream" => Ok(Stream::Upstream),
            "downstream" => Ok(Stream::Downstream),
            _ => Err(NetError::InvalidStream { stream: s.to_string() }),
        }
    }
}

/// A toxic's type and parameters, in Toxiproxy's units (milliseconds unless noted).
///
/// ```
/// use chaos_proxy::ToxicKind;
/// let k = ToxicKind::Latency { latency: 100, jitter: 10 };
/// assert_eq!(k.type_name(), "latency");
/// assert_eq!(ToxicKind::from_type("limit_data").unwrap(), ToxicKind::LimitData { bytes: 0 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToxicKind {
    /// Delay every chunk by `latency ± jitter` ms (jitter drawn per chunk).
    Latency {
        /// Milliseconds added.
        latency: u64,
        /// Milliseconds of uniform variation either side.
        jitter: u64,
    },
    /// Limit the rate to `rate` KB/s (1 KB = 1000 bytes); 0 means unlimited.
    Bandwidth {
        /// Kilobytes per second.
        rate: u64,
    },
    /// Delay the close (FIN) by `delay` ms.
    SlowClose {
        /// Milliseconds.
        delay: u64,
    },
    /// Drop all data; close the connection after `timeout` ms (0: never, stall forever).
    Timeout {
        /// Milliseconds.
        timeout: u64,
    },
    /// On the next data or close, wait `timeout` ms and reset the connection (RST).
    ResetPeer {
        /// Milliseconds.
        timeout: u64,
    },
    /// Cut chunks into pieces of about `average_size ± size_variation` bytes, `delay` µs apart.
    Slicer {
        /// Average piece size in bytes (at least 1).
        average_size: u64,
        /// Variation in bytes (less than `average_size`).
        size_variation: u64,
        /// Microseconds between pieces.
        delay: u64,
    },
    /// Close the connection after `bytes` bytes have passed.
    LimitData {
        /// Bytes let through.
        bytes: u64,
    },
}

/// The toxic types this proxy implements, in Toxiproxy's spelling.
pub const TOXIC_TYPES: [&str; 7] =
    ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"];

impl ToxicKind {
    /// Toxiproxy's `type` string.
    ///
    /// ```
    /// use chaos_proxy::ToxicKind;
    /// assert_eq!(ToxicKind::ResetPeer { timeout: 0 }.type_name(), "reset_peer");
    /// ```
    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::LimitData { .. } => "limit_data",
        }
    }

    /// The kind for a `type` string with every parameter zero (Toxiproxy's zero values).
    ///
    /// ```
    /// use chaos_proxy::ToxicKind;
    /// assert!(ToxicKind::from_type("noise").is_err());
    /// ```
    pub fn from_type(kind: &str) -> NetResult<Self> {
        Ok(match kind {
            "latency" => ToxicKind::Latency { latency: 0, jitter: 0 },
            "bandwidth" => ToxicKind::Bandwidth { rate: 0 },
            "slow_close" => ToxicKind::SlowClose { delay: 0 },
            "timeout" => ToxicKind::Timeout { timeout: 0 },
            "reset_peer" => ToxicKind::ResetPeer { timeout: 0 },
            "slicer" => ToxicKind::Slicer { average_size: 0, size_variation: 0, delay: 0 },
            "limit_data" => ToxicKind::LimitData { bytes: 0 },
            other => {
                return Err(NetError::InvalidToxicType { kind: other.to_string() });
            }
        })
    }

    /// The parameters as (JSON attribute name, value) pairs, in Toxiproxy's order.
    ///
    /// ```
    /// use chaos_proxy::ToxicKind;
    /// assert_eq!(ToxicKind::Bandwidth { rate: 5 }.attributes(), vec![("rate", 5)]);
    /// ```
    pub fn attributes(&self) -> Vec<(&'static str, u64)> {
        match *self {
            ToxicKind::Latency { latency, jitter } => {
                vec![("latency", latency), ("jitter", jitter)]
            }
            ToxicKind::Bandwidth { rate } => vec![("rate", rate)],
            ToxicKind::SlowClose { delay } => vec![("delay", delay)],
            ToxicKind::Timeout { timeout } | ToxicKind::ResetPeer { timeout } => {
                vec![("timeout", timeout)]
            }
            ToxicKind::Slicer { average_size, size_variation, delay } => {
                vec![("average_size", average_size), ("size_variation", size_variation), ("delay", delay)]
            }
            ToxicKind::LimitData { bytes } => vec![("bytes", bytes)],
        }
    }

    fn set_attribute(&mut self, key: &str, v: u64) {
        match (self, key) {
            (ToxicKind::Latency { latency, .. }, "latency") => *latency = v,
            (ToxicKind::Latency { jitter, .. }, "jitter") => *jitter = v,
            (ToxicKind::Bandwidth { rate }, "rate") => *rate = v,
            (ToxicKind::SlowClose { delay }, "delay") => *delay = v,
            (ToxicKind::Timeout { timeout }, "timeout") => *timeout = v,
            (ToxicKind::ResetPeer { timeout }, "timeout") => *timeout = v,
            (ToxicKind::Slicer { average_size, .. }, "average_size") => *average_size = v,
            (ToxicKind::Slicer { size_variation, .. }, "size_variation") => *size_variation = v,
            (ToxicKind::Slicer { delay, .. }, "delay") => *delay = v,
            (ToxicKind::LimitData { bytes }, "bytes") => *bytes = v,
            _ => {}
        }
    }

    /// Decode Toxiproxy's `attributes` object over these parameters: keys present replace
    /// the current values, absent keys keep them, unknown keys are ignored (as Go's decoder does).
    /// Values must be non-negative integers.
    ///
    /// ```
    /// use chaos_proxy::ToxicKind;
    /// let mut k = ToxicKind::Latency { latency: 100, jitter: 5 };
    /// let attrs = serde_json::json!({"jitter": 20});
    /// k.merge_attributes(&attrs).unwrap();
    /// assert_eq!(k, ToxicKind::Latency { latency: 100, jitter: 20 });
    /// assert!(k.merge_attributes(&serde_json::json!({"latency": -1})).is_err());
    /// ```
    pub fn merge_attributes(&mut self, attrs: &Value) -> NetResult<()> {
        let map = match attrs {
            Value::Null => return Ok(()),
            Value::Object(m) => m,
            other => {
                return Err(NetError::bad_request(
                    format!("`attributes` must be an object, got {}", json_type(other)),
                    "send e.g. \"attributes\": {\"latency\": 100}",
                ));
            }
        };
        let keys: Vec<&'static str> = self.attributes().iter().map(|(k, _)| *k).collect();
        for key in keys {
            let Some(v) = map.get(key) else { continue };
            if v.is_null() {
                continue;
            }
            let n = v.as_u64().ok_or_else(|| {
                NetError::bad_request(
                    format!(
                        "attribute `{key}` of a {} toxic must be a non-negative integer, got {v}",
                        self.type_name()
                    ),
                    format!("send \"{key}\": 0 or a larger whole number"),
                )
            })?;
            self.set_attribute(key, n);
        }
        Ok(())
    }

    /// Check the parameters for values that cannot work.
    ///
    /// ```
    /// use chaos_proxy::ToxicKind;
    /// assert!(ToxicKind::Slicer { average_size: 0, size_variation: 0, delay: 0 }.validate().is_err());
    /// assert!(ToxicKind::Slicer { average_size: 64, size_variation: 8, delay: 0 }.validate().is_ok());
    /// ```
    pub fn validate(&self) -> NetResult<()> {
        if let ToxicKind::Slicer { average_size, size_variation, .. } = *self {
            if average_size == 0 {
                return Err(NetError::bad_request(
                    "slicer average_size must be at least 1",
                    "send \"average_size\": 1 or more bytes",
                ));
            }
            if size_variation >= average_size {
                return Err(NetError::bad_request(
                    format!("slicer size_variation ({size_variation}) must be less than average_size ({average_size})"),
                    "lower size_variation below average_size",
                ));
            }
        }
        Ok(())
    }
}

/// A toxic attached to one stream of a proxy.
///
/// ```
/// use chaos_proxy::{Stream, Toxic, ToxicKind};
/// let t = Toxic::new(ToxicKind::Latency { latency: 100, jitter: 0 }, Stream::Upstream);
/// assert_eq!(t.name, "latency_upstream");
/// let t = t.named("slow-db").toxicity(0.5);
/// let json = serde_json::to_value(&t).unwrap();
/// assert_eq!(json["attributes"]["latency"], 100);
/// assert_eq!(json["name"], "slow-db");
/// assert_eq!(json["toxicity"], 0.5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    /// Unique name within the proxy (default `{type}_{stream}`).
    pub name: String,
    /// Type and parameters.
    pub kind: ToxicKind,
    /// The direction it acts on.
    pub stream: Stream,
    /// Probability (0..=1) that it applies to a given connection.
    pub toxicity: f32,
}

impl Toxic {
    /// A toxic with Toxiproxy's defaults: name `{type}_{stream}`, toxicity 1.
    ///
    /// ```
    /// use chaos_proxy::{Stream, Toxic, ToxicKind};
    /// let t = Toxic::new(ToxicKind::Timeout { timeout: 0 }, Stream::Downstream);
    /// assert_eq!((t.name.as_str(), t.toxicity), ("timeout_downstream", 1.0));
    /// ```
    pub fn new(kind: ToxicKind, stream: Stream) -> Self {
        Toxic { name: format!("{}_{}", kind.type_name(), stream), kind, stream, toxicity: 1.0 }
    }

    /// Set the name.
    ///
    /// ```
    /// use chaos_proxy::{Stream, Toxic, ToxicKind};
    /// let t = Toxic::new(ToxicKind::LimitData { bytes: 10 }, Stream::Upstream).named("cut");
    /// assert_eq!(t.name, "cut");
    /// ```
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Set the toxicity (probability per connection, 0..=1).
    ///
    /// ```
    /// use chaos_proxy::{Stream, Toxic, ToxicKind};
    /// let t = Toxic::new(ToxicKind::Bandwidth { rate: 1 }, Stream::Downstream).toxicity(0.25);
    /// assert_eq!(t.toxicity, 0.25);
    /// ```
    pub fn toxicity(mut self, toxicity: f32) -> Self {
        self.toxicity = toxicity;
        self
    }

    /// Check name, toxicity and parameters.
    ///
    /// ```
    /// use chaos_proxy::{Stream, Toxic, ToxicKind};
    /// let t = Toxic::new(ToxicKind::Bandwidth { rate: 1 }, Stream::Downstream).toxicity(1.5);
    /// assert!(t.validate().is_err());
    /// ```
    pub fn validate(&self) -> NetResult<()> {
        if self.name.is_empty() {
            return Err(NetError::MissingField { field: "name".into() });
        }
        check_toxicity(f64::from(self.toxicity))?;
        self.kind.validate()
    }

    /// Parse a toxic-create request body exactly as Toxiproxy does: defaults (stream
    /// `downstream`, toxicity 1, name `{type}_{stream}`), then the stream, the type and the
    /// attributes are checked in Toxiproxy's order. Never panics on bad input.
    ///
    /// ```
    /// use chaos_proxy::{Stream, Toxic, ToxicKind};
    /// let t = Toxic::from_json(br#"{"type":"latency","attributes":{"latency":50}}"#).unwrap();
    /// assert_eq!(t.name, "latency_downstream");
    /// assert_eq!(t.kind, ToxicKind::Latency { latency: 50, jitter: 0 });
    /// assert_eq!(Toxic::from_json(b"{").unwrap_err().status(), 400);
    /// assert_eq!(Toxic::from_json(br#"{"type":"x"}"#).unwrap_err().api_message(), "invalid toxic type");
    /// ```
    pub fn from_json(body: &[u8]) -> NetResult<Self> {
        let v = parse_body(body)?;
        let obj = as_object(&v, "{\"type\": \"latency\", \"attributes\": {\"latency\": 100}}")?;
        let stream_s = opt_str(obj, "stream")?.unwrap_or("downstream");
        let stream = stream_s.parse::<Stream>()?;
        let kind_s = opt_str(obj, "type")?.unwrap_or("");
        let name = match opt_str(obj, "name")? {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("{kind_s}_{}", stream_s.to_ascii_lowercase()),
        };
        let mut kind = ToxicKind::from_type(kind_s)?;
        let toxicity = match obj.get("toxicity") {
            None | Some(Value::Null) => 1.0,
            Some(t) => parse_toxicity(t)?,
        };
        if let Some(attrs) = obj.get("attributes") {
            kind.merge_attributes(attrs)?;
        }
        kind.validate()?;
        Ok(Toxic { name, kind, stream, toxicity })
    }

    /// Apply a toxic-update request body (Toxiproxy's semantics): `attributes` are merged
    /// over the current ones, `toxicity` replaces the current one if present; name, type and
    /// stream cannot change. Returns the updated toxic.
    ///
    /// ```
    /// use chaos_proxy::{Stream, Toxic, ToxicKind};
    /// let t = Toxic::new(ToxicKind::Latency { latency: 100, jitter: 5 }, Stream::Upstream);
    /// let u = t.updated_from_json(br#"{"attributes":{"latency":7},"toxicity":0.5}"#).unwrap();
    /// assert_eq!(u.kind, ToxicKind::Latency { latency: 7, jitter: 5 });
    /// assert_eq!(u.toxicity, 0.5);
    /// ```
    pub fn updated_from_json(&self, body: &[u8]) -> NetResult<Toxic> {
        let v = parse_body(body)?;
        let obj = as_object(&v, "{\"attributes\": {\"latency\": 100}, \"toxicity\": 1.0}")?;
        let mut out = self.clone();
        if let Some(t) = obj.get("toxicity")
            && !t.is_null()
        {
            out.toxicity = parse_toxicity(t)?;
        }
        if let Some(attrs) = obj.get("attributes") {
            out.kind.merge_attributes(attrs)?;
        }
        out.kind.validate()?;
        Ok(out)
    }
}

impl Serialize for Toxic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Attrs<'a>(&'a ToxicKind);
        impl Serialize for Attrs<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let attrs = self.0.attributes();
                let mut m = s.serialize_map(Some(attrs.len()))?;
                for (k, v) in attrs {
                    m.serialize_entry(k, &v)?;
                }
                m.end()
            }
        }
        let mut st = s.serialize_struct("Toxic", 5)?;
        st.serialize_field("attributes", &Attrs(&self.kind))?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("type", self.kind.type_name())?;
        st.serialize_field("stream", self.stream.as_str())?;
        // f32 -> f64 through the decimal text, so 0.1 serializes as 0.1, not 0.10000000149.
        let tox: f64 = format!("{}", self.toxicity).parse().unwrap_or(f64::from(self.toxicity));
        st.serialize_field("toxicity", &tox)?;
        st.end()
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn parse_body(body: &[u8]) -> NetResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| NetError::bad_request(e.to_string(), "send a JSON object (Content-Type: application/json)"))
}

pub(crate) fn as_object<'a>(v: &'a Value, example: &str) -> NetResult<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        NetError::bad_request(
            format!("expected a JSON object, got {}", json_type(v)),
            format!("send an object such as {example}"),
        )
    })
}

pub(crate) fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str) -> NetResult<Option<&'a str>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(NetError::bad_request(
            format!("field `{key}` must be a string, got {}", json_type(other)),
            format!("send \"{key}\": \"...\""),
        )),
    }
}

pub(crate) fn opt_bool(obj: &Map<String, Value>, key: &str) -> NetResult<Option<bool>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(NetError::bad_request(
            format!("field `{key}` must be a boolean, got {}", json_type(other)),
            format!("send \"{key}\": true or false"),
        )),
    }
}

fn parse_toxicity(v: &Value) -> NetResult<f32> {
    let t = v.as_f64().ok_or_else(|| {
        NetError::bad_request(
            format!("field `toxicity` must be a number, got {}", json_type(v)),
            "send \"toxicity\": a number from 0 to 1",
        )
    })?;
    check_toxicity(t)?;
    Ok(t as f32)
}

fn check_toxicity(t: f64) -> NetResult<()> {
    if t.is_finite() && (0.0..=1.0).contains(&t) {
        Ok(())
    } else {
        Err(NetError::bad_request(
            format!("toxicity {t} is outside 0..1"),
            "send \"toxicity\": a number from 0 (never) to 1 (every connection)",
        ))
    }
}

/// Durations longer than this are treated as "forever" (avoids `Instant` overflow).
const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// `ms` milliseconds, capped at a year.
pub(crate) fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms).min(MAX_WAIT)
}

/// `us` microseconds, capped at a year.
pub(crate) fn micros(us: u64) -> Duration {
    Duration::from_micros(us).min(MAX_WAIT)
}

/// One latency draw: `latency + U[-jitter, jitter)` ms, at least zero (Toxiproxy's formula).
pub(crate) fn latency_draw(latency: u64, jitter: u64, rng: &mut impl Rng) -> Duration {
    let mut d = i128::from(latency);
    if jitter > 0 {
        let j = i128::from(jitter);
        d += rng.random_range(0..2 * j) - j;
    }
    millis(u64::try_from(d.max(0)).unwrap_or(u64::MAX))
}

/// How long `len` bytes take at `rate` KB/s (1 KB = 1000 bytes).
pub(crate) fn bandwidth_time(len: usize, rate: u64) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    let nanos = (len as u128) * 1_000_000 / u128::from(rate);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)).min(MAX_WAIT)
}

/// The slicer's cut points for a chunk of `len` bytes, as Toxiproxy computes them: split in
/// about half (± variation) until every piece is within `variation` of `average`.
/// Returns piece boundaries `[0, b1, b2, ..., len]`.
pub(crate) fn slice_points(len: usize, average: u64, variation: u64, rng: &mut impl Rng) -> Vec<usize> {
    let average = usize::try_from(average.max(1)).unwrap_or(usize::MAX);
    let variation = usize::try_from(variation).unwrap_or(usize::MAX).min(average - 1);
    let mut points = vec![0usize];
    // Depth-first over ranges, left before right, with an explicit stack.
    let mut stack = vec![(0usize, len)];
    while let Some((start, end)) = stack.pop() {
        let size = end - start;
        if size <= average.saturating_add(variation) {
            if end > start {
                points.push(end);
            }
            continue;
        }
        let mut mid = start + size / 2;
        if variation > 0 {
            let v = rng.random_range(0..2 * variation) as isize - variation as isize;
            mid = (mid as isize + v).clamp(start as isize + 1, end as isize - 1) as usize;
        }
        stack.push((mid, end));
        stack.push((start, mid));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn slice_points_cover_the_chunk_in_small_pieces() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for len in [0usize, 1, 5, 100, 1000, 65536] {
            let p = slice_points(len, 10, 3, &mut rng);
            assert_eq!(p[0], 0);
            assert_eq!(*p.last().unwrap(), len);
            for w in p.windows(2) {
                assert!(w[1] > w[0]);
                assert!(w[1] - w[0] <= 13, "piece {} too large", w[1] - w[0]);
            }
        }
    }

    #[test]
    fn latency_draw_stays_within_jitter() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..1000 {
            let d = latency_draw(100, 10, &mut rng).as_millis();
            assert!((90..110).contains(&d));
        }
        for _ in 0..100 {
            assert!(latency_draw(5, 10, &mut rng) < Duration::from_millis(15));
        }
    }

    #[test]
    fn bandwidth_time_uses_kilobytes_of_1000() {
        assert_eq!(bandwidth_time(1000, 1), Duration::from_secs(1));
        assert_eq!(bandwidth_time(5000, 10), Duration::from_millis(500));
        assert_eq!(bandwidth_time(123, 0), Duration::ZERO);
    }

    #[test]
    fn bad_json_never_panics() {
        let bodies: [&[u8]; 12] = [
            b"",
            b"null",
            b"[]",
            b"42",
            b"\"x\"",
            b"{\"type\": 3}",
            b"{\"type\":\"latency\",\"attributes\":[]}",
            b"{\"type\":\"latency\",\"attributes\":{\"latency\":1.5}}",
            b"{\"type\":\"latency\",\"toxicity\":\"high\"}",
            b"{\"type\":\"latency\",\"stream\":\"sideways\"}",
            b"\xff\xfe",
            b"{\"type\":\"slicer\"}",
        ];
        for b in bodies {
            let e = Toxic::from_json(b).unwrap_err();
            assert_eq!(e.status(), 400, "{e}");
        }
    }
}
