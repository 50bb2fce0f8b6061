//! A small read-through cache for what every request reads: the account
//! behind an access token and the caller's organisation and role.
//!
//! The database stays the only source of truth. An entry is reused only
//! while it is younger than its time to live *and* no write transaction has
//! committed on this server since it was read ([`Db::generation`]): a
//! revocation or a role change made here applies to the next request; one
//! made on another replica applies after at most the time to live
//! (`security.auth_cache_ms`).

use crate::db::Db;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many entries the cache starts again empty rather than grow.
const MAX_ENTRIES: usize = 20_000;

pub struct TtlCache<K, V> {
    ttl: Duration,
    map: Mutex<HashMap<K, Entry<V>>>,
}

struct Entry<V> {
    generation: u64,
    at: Instant,
    value: V,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache { ttl, map: Mutex::new(HashMap::new()) }
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The cached value, if it is still fresh for this database's generation.
    pub fn get(&self, db: &Db, key: &K) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let e = map.get(key)?;
        (e.generation == db.generation() && e.at.elapsed() < self.ttl).then(|| e.value.clone())
    }

    /// Stores a value read at `generation` (taken *before* the read, so that a
    /// write committed during the read makes the entry stale at once).
    pub fn put(&self, generation: u64, key: K, value: V) {
        if !self.enabled() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, Entry { generation, at: Instant::now(), value });
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
