//! The named set of embedded proxies that the Toxiproxy HTTP API serves (Toxiproxy's
//! "proxy collection").

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::{NetError, NetResult};
use super::proxy::{Proxy, ProxyConfig, ProxyInfo};

/// A proxy to create through [`ProxyRegistry::populate`] (one element of Toxiproxy's
/// `POST /populate` body).
///
/// ```
/// use chaos_proxy::{PopulateEntry, ProxyConfig};
/// let e = PopulateEntry { config: ProxyConfig::new("db", "127.0.0.1:5432"), enabled: true };
/// assert!(e.enabled);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopulateEntry {
    /// Name, listen, upstream (the seed is replaced by the registry's per-name seed).
    pub config: ProxyConfig,
    /// Start enabled (Toxiproxy's default is true).
    pub enabled: bool,
}

struct Inner {
    seed: u64,
    proxies: Mutex<BTreeMap<String, Proxy>>,
}

/// A named set of embedded proxies, shared by the API server and the library.
/// Cloning shares the set. Dropping the last clone (and the last proxy handles) stops every
/// proxy.
///
/// ```
/// use chaos_proxy::{ProxyConfig, ProxyRegistry};
/// # #[tokio::main] async fn main() {
/// let reg = ProxyRegistry::new(7);
/// let p = reg.create(ProxyConfig::new("db", "127.0.0.1:9"), true).unwrap();
/// assert_eq!(reg.get("db").unwrap().listen_addr(), p.listen_addr());
/// assert_eq!(reg.create(ProxyConfig::new("db", "127.0.0.1:9"), true).unwrap_err().status(), 409);
/// reg.remove("db").await.unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct ProxyRegistry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ProxyRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyRegistry").field("proxies", &self.names()).finish()
    }
}

impl ProxyRegistry {
    /// An empty registry; each proxy's RNG seed is derived from `seed` and its name.
    ///
    /// ```
    /// let reg = chaos_proxy::ProxyRegistry::new(1);
    /// assert!(reg.names().is_empty());
    /// ```
    pub fn new(seed: u64) -> Self {
        ProxyRegistry { inner: Arc::new(Inner { seed, proxies: Mutex::new(BTreeMap::new()) }) }
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Proxy>> {
        self.inner.proxies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The seed a proxy of this name gets: the registry seed mixed with an FNV-1a hash of the name.
    ///
    /// ```
    /// let reg = chaos_proxy::ProxyRegistry::new(1);
    /// assert_ne!(reg.seed_for("a"), reg.seed_for("b"));
    /// ```
    pub fn seed_for(&self, name: &str) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^ self.inner.seed
    }

    /// Create a proxy (409 `ProxyExists` if the name is taken). The config's seed is replaced
    /// by [`seed_for`](Self::seed_for) the name.
    ///
    /// ```
    /// # use chaos_proxy::{ProxyConfig, ProxyRegistry};
    /// # #[tokio::main] async fn main() {
    /// let reg = ProxyRegistry::new(0);
    /// let p = reg.create(ProxyConfig::new("db", "127.0.0.1:9"), false).unwrap();
    /// assert!(!p.enabled());
    /// # }
    /// ```
    pub fn create(&self, config: ProxyConfig, enabled: bool) -> NetResult<Proxy> {
        if config.name.is_empty() {
            return Err(NetError::MissingField { field: "name".into() });
        }
        let mut map = self.map();
        if map.contains_key(&config.name) {
            return Err(NetError::ProxyExists { name: config.name });
        }
        let seed = self.seed_for(&config.name);
        let proxy = Proxy::create(ProxyConfig { seed, ..config }, enabled)?;
        map.insert(proxy.name().to_string(), proxy.clone());
        Ok(proxy)
    }

    /// A handle to the proxy of this name.
    ///
    /// ```
    /// let reg = chaos_proxy::ProxyRegistry::new(0);
    /// assert_eq!(reg.get("x").unwrap_err().status(), 404);
    /// ```
    pub fn get(&self, name: &str) -> NetResult<Proxy> {
        self.map().get(name).cloned().ok_or_else(|| NetError::ProxyNotFound { name: name.into() })
    }

    /// The names of all proxies, sorted.
    ///
    /// ```
    /// let reg = chaos_proxy::ProxyRegistry::new(0);
    /// assert_eq!(reg.names(), Vec::<String>::new());
    /// ```
    pub fn names(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }

    /// Handles to all proxies, sorted by name.
    ///
    /// ```
    /// let reg = chaos_proxy::ProxyRegistry::new(0);
    /// assert!(reg.proxies().is_empty());
    /// ```
    pub fn proxies(&self) -> Vec<Proxy> {
        self.map().values().cloned().collect()
    }

    /// All proxies as the API shows them, sorted by name.
    ///
    /// ```
    /// let reg = chaos_proxy::ProxyRegistry::new(0);
    /// assert!(reg.infos().is_empty());
    /// ```
    pub fn infos(&self) -> Vec<ProxyInfo> {
        self.proxies().iter().map(Proxy::info).collect()
    }

    /// Remove a proxy and wait until its listener and connections are gone.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let reg = chaos_proxy::ProxyRegistry::new(0);
    /// assert_eq!(reg.remove("x").await.unwrap_err().status(), 404);
    /// # }
    /// ```
    pub async fn remove(&self, name: &str) -> NetResult<()> {
        let proxy = self.map().remove(name).ok_or_else(|| NetError::ProxyNotFound { name: name.into() })?;
        proxy.shutdown().await;
        Ok(())
    }

    /// Toxiproxy's `POST /reset`: enable every proxy and remove every toxic.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let reg = chaos_proxy::ProxyRegistry::new(0);
    /// reg.reset().await.unwrap();
    /// # }
    /// ```
    pub async fn reset(&self) -> NetResult<()> {
        // Every proxy is reset even if one cannot listen again (its address taken meanwhile):
        // the failure is returned after the others are done, and the proxy stays disabled
        // until a later reset (or update) finds the address free.
        let mut first_err = None;
        for proxy in self.proxies() {
            proxy.remove_all_toxics();
            if !proxy.enabled()
                && let Err(e) = proxy.enable().await
            {
                tracing::warn!(proxy = proxy.name(), error = %e, "reset: could not listen again");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Toxiproxy's `POST /populate`: validate every entry first (names and upstreams present,
    /// names unique), then create each proxy, keeping an existing proxy whose listen and
    /// upstream are unchanged and replacing one whose addresses differ.
    ///
    /// ```
    /// # use chaos_proxy::{PopulateEntry, ProxyConfig, ProxyRegistry};
    /// # #[tokio::main] async fn main() {
    /// let reg = ProxyRegistry::new(0);
    /// let entry = PopulateEntry { config: ProxyConfig::new("db", "127.0.0.1:9"), enabled: true };
    /// let made = reg.populate(vec![entry]).await.unwrap();
    /// assert_eq!(made[0].name(), "db");
    /// # }
    /// ```
    pub async fn populate(&self, entries: Vec<PopulateEntry>) -> NetResult<Vec<Proxy>> {
        let mut seen = std::collections::HashSet::new();
        for (i, e) in entries.iter().enumerate() {
            if e.config.name.is_empty() {
                return Err(NetError::MissingField { field: format!("name at proxy {}", i + 1) });
            }
            if e.config.upstream.is_empty() {
                return Err(NetError::MissingField { field: format!("upstream at proxy {}", i + 1) });
            }
            if !seen.insert(e.config.name.clone()) {
                return Err(NetError::bad_request(
                    format!("duplicate proxy name {:?}", e.config.name),
                    "give every proxy in the list its own name",
                ));
            }
        }
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            if let Ok(existing) = self.get(&e.config.name) {
                let listen = if e.config.listen.is_empty() { "127.0.0.1:0" } else { &e.config.listen };
                let info = existing.info();
                if info.listen == listen && info.upstream == e.config.upstream {
                    out.push(existing);
                    continue;
                }
                self.remove(&e.config.name).await?;
            }
            out.push(self.create(e.config, e.enabled)?);
        }
        Ok(out)
    }

    /// Remove every proxy and wait for their tasks to end.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let reg = chaos_proxy::ProxyRegistry::new(0);
    /// reg.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        let all: Vec<Proxy> = std::mem::take(&mut *self.map()).into_values().collect();
        for p in all {
            p.shutdown().await;
        }
    }
}
