//! Incremental fetch sessions (KIP-227): a consumer of many partitions names them once, then
//! sends only what changed, and the broker answers only partitions with something new.
//!
//! The rules, from the KIP and Kafka's `FetchSession`:
//! - epoch 0 (full fetch) starts a new session holding the request's partitions; any
//!   session the request names is closed first. The response carries the new id (0 when
//!   the cache has no room: the client then fetches without a session).
//! - epoch -1 closes the named session; the fetch itself is served without one.
//! - epoch > 0 continues a session: the id must exist (else FETCH_SESSION_ID_NOT_FOUND) and
//!   the epoch be the one expected next (else INVALID_FETCH_SESSION_EPOCH). The request's
//!   partitions are added or updated, `forgotten_topics_data` removed, and the response
//!   omits partitions with no records, no error and the same high watermark and log start
//!   offset as last sent.
//! - the cache holds at most [`SESSIONS_MAX`] sessions (Kafka's
//!   `max.incremental.fetch.session.cache.slots`). A new session evicts the least recently
//!   used one idle for [`SESSION_EVICTION_MS`], or else the smallest session, if it has fewer
//!   partitions than the newcomer (Kafka's preference for large sessions, which save most).
//!
//! No I/O here: time is the caller's `now_ms`, and the fetch handler reads the logs.

use freshet_protocol::Uuid;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Kafka's `max.incremental.fetch.session.cache.slots` default.
pub const SESSIONS_MAX: usize = 1000;

/// Kafka's `min.incremental.fetch.session.eviction.ms` default: a session idle this long may
/// be evicted for any newcomer.
pub const SESSION_EVICTION_MS: i64 = 120_000;

/// Kafka error codes of session failures.
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

/// A session epoch that closes the session (Kafka's `FINAL_EPOCH`).
const FINAL_EPOCH: i32 = -1;
/// A session epoch that starts a new session (Kafka's `INITIAL_EPOCH`).
const INITIAL_EPOCH: i32 = 0;

/// A partition as the client names it: by topic id from Fetch v13 (the name is then empty),
/// by name before.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub topic_id: Uuid,
    pub topic: String,
    pub partition: i32,
}

/// What the client asks of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionParams {
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    pub current_leader_epoch: i32,
}

/// One partition to read, with what the client was last told about it (-1: nothing yet, or
/// no session), so the handler can decide whether an incremental response includes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPartition {
    pub key: PartitionKey,
    pub params: PartitionParams,
    pub sent_high_watermark: i64,
    pub sent_log_start_offset: i64,
}

/// The session part of a fetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    pub session_id: i32,
    pub session_epoch: i32,
    /// The request's partitions, in request order.
    pub partitions: Vec<(PartitionKey, PartitionParams)>,
    pub forgotten: Vec<PartitionKey>,
}

/// How to serve a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchPlan {
    /// Read these partitions and answer them all with this session id (0: no session).
    Full {
        session_id: i32,
        partitions: Vec<SessionPartition>,
    },
    /// Read the session's partitions; answer only those with news.
    Incremental {
        session_id: i32,
        partitions: Vec<SessionPartition>,
    },
    /// Answer with this top-level error and no partitions.
    Error(i16),
}

/// What a response told the client about one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPartition {
    pub key: PartitionKey,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Records were returned: the partition moves to the back of the session's order, so a
    /// busy partition cannot keep taking the whole response size from the others.
    pub had_records: bool,
}

/// One session's partitions in fetch order.
#[derive(Debug, Default)]
struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    last_used_ms: i64,
    /// Partition -> (position in `order`, cached state).
    partitions: HashMap<PartitionKey, (u64, SessionPartition)>,
    order: BTreeMap<u64, PartitionKey>,
    next_position: u64,
}

impl Session {
    fn upsert(&mut self, key: PartitionKey, params: PartitionParams) {
        if let Some((_, cached)) = self.partitions.get_mut(&key) {
            cached.params = params;
            return;
        }
        let position = self.next_position;
        self.next_position += 1;
        self.order.insert(position, key.clone());
        let cached = SessionPartition {
            key: key.clone(),
            params,
            sent_high_watermark: -1,
            sent_log_start_offset: -1,
        };
        self.partitions.insert(key, (position, cached));
    }

    fn remove(&mut self, key: &PartitionKey) {
        if let Some((position, _)) = self.partitions.remove(key) {
            self.order.remove(&position);
        }
    }

    fn move_to_back(&mut self, key: &PartitionKey) {
        let Some((position, _)) = self.partitions.get_mut(key) else {
            return;
        };
        self.order.remove(position);
        *position = self.next_position;
        self.order.insert(self.next_position, key.clone());
        self.next_position += 1;
    }

    fn in_order(&self) -> Vec<SessionPartition> {
        self.order
            .values()
            .filter_map(|k| self.partitions.get(k).map(|(_, c)| c.clone()))
            .collect()
    }

    fn len(&self) -> usize {
        self.partitions.len()
    }
}

#[derive(Debug, Default)]
struct Cache {
    sessions: HashMap<i32, Session>,
    /// Source of session ids; see [`Cache::new_id`].
    id_state: u64,
}

/// The broker's fetch sessions.
#[derive(Debug)]
pub struct FetchSessionCache {
    sessions_max: usize,
    inner: Mutex<Cache>,
}

impl Default for FetchSessionCache {
    fn default() -> Self {
        FetchSessionCache::new(SESSIONS_MAX)
    }
}

impl FetchSessionCache {
    pub fn new(sessions_max: usize) -> FetchSessionCache {
        let seed = u64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8]
                .try_into()
                .expect("8 bytes"),
        );
        FetchSessionCache {
            sessions_max,
            inner: Mutex::new(Cache {
                sessions: HashMap::new(),
                id_state: seed,
            }),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.cache().sessions.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides how to serve a fetch and updates the session it names.
    pub fn begin(&self, request: SessionRequest, now_ms: i64) -> FetchPlan {
        let mut cache = self.cache();
        match request.session_epoch {
            INITIAL_EPOCH => {
                cache.sessions.remove(&request.session_id);
                let partitions = sessionless(&request.partitions);
                let session_id = self.create(&mut cache, &request.partitions, now_ms);
                FetchPlan::Full {
                    session_id,
                    partitions,
                }
            }
            epoch if epoch < INITIAL_EPOCH => {
                if epoch == FINAL_EPOCH {
                    cache.sessions.remove(&request.session_id);
                }
                FetchPlan::Full {
                    session_id: 0,
                    partitions: sessionless(&request.partitions),
                }
            }
            epoch => continue_session(&mut cache, request, epoch, now_ms),
        }
    }

    /// Records what a response told the client, for the next incremental response.
    pub fn finish(&self, session_id: i32, sent: &[SentPartition]) {
        let mut cache = self.cache();
        let Some(session) = cache.sessions.get_mut(&session_id) else {
            // Evicted or closed while the fetch waited: nothing to remember.
            return;
        };
        for s in sent {
            if let Some((_, cached)) = session.partitions.get_mut(&s.key) {
                cached.sent_high_watermark = s.high_watermark;
                cached.sent_log_start_offset = s.log_start_offset;
            }
            if s.had_records {
                session.move_to_back(&s.key);
            }
        }
    }

    /// Creates a session for a full fetch, evicting another if needed; 0 when there is no
    /// room (or nothing to fetch: Kafka gives an empty full fetch no session either).
    fn create(
        &self,
        cache: &mut Cache,
        partitions: &[(PartitionKey, PartitionParams)],
        now_ms: i64,
    ) -> i32 {
        if partitions.is_empty() || self.sessions_max == 0 {
            return 0;
        }
        if cache.sessions.len() >= self.sessions_max {
            match eviction_victim(&cache.sessions, partitions.len(), now_ms) {
                Some(victim) => {
                    cache.sessions.remove(&victim);
                }
                None => return 0,
            }
        }
        let id = cache.new_id();
        let mut session = Session {
            next_epoch: 1,
            last_used_ms: now_ms,
            ..Session::default()
        };
        for (key, params) in partitions {
            session.upsert(key.clone(), *params);
        }
        cache.sessions.insert(id, session);
        id
    }
}

impl Cache {
    /// A fresh positive session id: a splitmix64 sequence from a random seed, so ids are
    /// hard to guess (another client's session cannot be hijacked by counting) and unique.
    fn new_id(&mut self) -> i32 {
        loop {
            self.id_state = self.id_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.id_state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let id = (z & 0x7fff_ffff) as i32;
            if id != 0 && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

fn sessionless(partitions: &[(PartitionKey, PartitionParams)]) -> Vec<SessionPartition> {
    partitions
        .iter()
        .map(|(key, params)| SessionPartition {
            key: key.clone(),
            params: *params,
            sent_high_watermark: -1,
            sent_log_start_offset: -1,
        })
        .collect()
}

fn continue_session(
    cache: &mut Cache,
    request: SessionRequest,
    epoch: i32,
    now_ms: i64,
) -> FetchPlan {
    let Some(session) = cache.sessions.get_mut(&request.session_id) else {
        return FetchPlan::Error(FETCH_SESSION_ID_NOT_FOUND);
    };
    if session.next_epoch != epoch {
        return FetchPlan::Error(INVALID_FETCH_SESSION_EPOCH);
    }
    // Epochs wrap past i32::MAX to 1, never to 0 or -1, which mean something else.
    session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
    session.last_used_ms = now_ms;
    for (key, params) in request.partitions {
        session.upsert(key, params);
    }
    for key in &request.forgotten {
        session.remove(key);
    }
    FetchPlan::Incremental {
        session_id: request.session_id,
        partitions: session.in_order(),
    }
}

/// The session a newcomer with `new_len` partitions may replace: the least recently used
/// one idle for [`SESSION_EVICTION_MS`], else the smallest one if smaller than the newcomer.
fn eviction_victim(sessions: &HashMap<i32, Session>, new_len: usize, now_ms: i64) -> Option<i32> {
    let stale = sessions
        .iter()
        .filter(|(_, s)| now_ms.saturating_sub(s.last_used_ms) >= SESSION_EVICTION_MS)
        .min_by_key(|(id, s)| (s.last_used_ms, **id))
        .map(|(id, _)| *id);
    stale.or_else(|| {
        sessions
            .iter()
            .filter(|(_, s)| s.len() < new_len)
            .min_by_key(|(id, s)| (s.len(), s.last_used_ms, **id))
            .map(|(id, _)| *id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(topic: &str, partition: i32) -> PartitionKey {
        PartitionKey {
            topic_id: Uuid::ZERO,
            topic: topic.to_string(),
            partition,
        }
    }

    fn params(fetch_offset: i64) -> PartitionParams {
        PartitionParams {
            fetch_offset,
            partition_max_bytes: 1024,
            current_leader_epoch: -1,
        }
    }

    fn request(id: i32, epoch: i32, parts: &[(&str, i32, i64)]) -> SessionRequest {
        SessionRequest {
            session_id: id,
            session_epoch: epoch,
            partitions: parts
                .iter()
                .map(|(t, p, o)| (key(t, *p), params(*o)))
                .collect(),
            forgotten: Vec::new(),
        }
    }

    fn full_id(plan: &FetchPlan) -> i32 {
        match plan {
            FetchPlan::Full { session_id, .. } => *session_id,
            other => panic!("expected a full fetch, got {other:?}"),
        }
    }

    fn incremental(plan: FetchPlan) -> Vec<(String, i32, i64)> {
        match plan {
            FetchPlan::Incremental { partitions, .. } => partitions
                .into_iter()
                .map(|p| (p.key.topic, p.key.partition, p.params.fetch_offset))
                .collect(),
            other => panic!("expected an incremental fetch, got {other:?}"),
        }
    }

    #[test]
    fn full_fetch_creates_a_session_that_incremental_fetches_update() {
        let cache = FetchSessionCache::new(10);
        let id = full_id(&cache.begin(request(0, 0, &[("a", 0, 5), ("a", 1, 7)]), 0));
        assert_ne!(id, 0);
        assert_eq!(cache.len(), 1);
        // Epoch 1 updates a:0 and adds b:0; a:1 keeps its offset.
        let plan = cache.begin(request(id, 1, &[("a", 0, 9), ("b", 0, 0)]), 1);
        assert_eq!(
            incremental(plan),
            vec![
                ("a".to_string(), 0, 9),
                ("a".to_string(), 1, 7),
                ("b".to_string(), 0, 0)
            ]
        );
        let mut forget = request(id, 2, &[]);
        forget.forgotten = vec![key("a", 1)];
        assert_eq!(
            incremental(cache.begin(forget, 2)),
            vec![("a".to_string(), 0, 9), ("b".to_string(), 0, 0)]
        );
    }

    #[test]
    fn wrong_epoch_and_unknown_id_are_refused() {
        let cache = FetchSessionCache::new(10);
        let id = full_id(&cache.begin(request(0, 0, &[("a", 0, 0)]), 0));
        assert_eq!(
            cache.begin(request(id, 2, &[]), 0),
            FetchPlan::Error(INVALID_FETCH_SESSION_EPOCH)
        );
        assert_eq!(
            cache.begin(request(id.wrapping_add(1), 1, &[]), 0),
            FetchPlan::Error(FETCH_SESSION_ID_NOT_FOUND)
        );
        // The refused requests did not advance the epoch.
        assert!(matches!(
            cache.begin(request(id, 1, &[]), 0),
            FetchPlan::Incremental { .. }
        ));
    }

    #[test]
    fn final_epoch_closes_and_serves_without_a_session() {
        let cache = FetchSessionCache::new(10);
        let id = full_id(&cache.begin(request(0, 0, &[("a", 0, 0)]), 0));
        let plan = cache.begin(request(id, -1, &[("a", 0, 3)]), 0);
        assert_eq!(full_id(&plan), 0);
        assert!(cache.is_empty());
        assert_eq!(
            cache.begin(request(id, 1, &[]), 0),
            FetchPlan::Error(FETCH_SESSION_ID_NOT_FOUND)
        );
    }

    #[test]
    fn finish_records_what_was_sent_and_moves_busy_partitions_back() {
        let cache = FetchSessionCache::new(10);
        let id = full_id(&cache.begin(request(0, 0, &[("a", 0, 0), ("a", 1, 0)]), 0));
        let sent = |p, hw, had_records| SentPartition {
            key: key("a", p),
            high_watermark: hw,
            log_start_offset: 0,
            had_records,
        };
        cache.finish(id, &[sent(0, 10, true), sent(1, 0, false)]);
        let FetchPlan::Incremental { partitions, .. } = cache.begin(request(id, 1, &[]), 1) else {
            panic!("expected incremental");
        };
        let order: Vec<(i32, i64)> = partitions
            .iter()
            .map(|p| (p.key.partition, p.sent_high_watermark))
            .collect();
        assert_eq!(order, vec![(1, 0), (0, 10)]);
    }

    #[test]
    fn a_full_cache_evicts_stale_then_smaller_sessions() {
        let cache = FetchSessionCache::new(2);
        let small = full_id(&cache.begin(request(0, 0, &[("a", 0, 0)]), 0));
        let big = full_id(&cache.begin(request(0, 0, &[("b", 0, 0), ("b", 1, 0)]), 1));
        // Same size as the smallest, nothing stale: no room.
        assert_eq!(full_id(&cache.begin(request(0, 0, &[("c", 0, 0)]), 2)), 0);
        // Larger than the smallest: it replaces it.
        let two = &[("d", 0, 0), ("d", 1, 0)];
        let d = full_id(&cache.begin(request(0, 0, two), 3));
        assert_ne!(d, 0);
        assert_eq!(
            cache.begin(request(small, 1, &[]), 4),
            FetchPlan::Error(FETCH_SESSION_ID_NOT_FOUND)
        );
        // Once `big` is idle long enough, even a one-partition session may take its slot.
        assert!(matches!(
            cache.begin(request(d, 1, &[]), SESSION_EVICTION_MS),
            FetchPlan::Incremental { .. }
        ));
        let e = full_id(&cache.begin(request(0, 0, &[("e", 0, 0)]), SESSION_EVICTION_MS + 1));
        assert_ne!(e, 0);
        assert_eq!(
            cache.begin(request(big, 1, &[]), SESSION_EVICTION_MS + 1),
            FetchPlan::Error(FETCH_SESSION_ID_NOT_FOUND)
        );
        assert_eq!(cache.len(), 2);
    }
}
