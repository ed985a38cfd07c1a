//! The handle the broker holds: open the quorum, propose records, read the applied image.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use freshet_metadata::{kafka_code, MetadataImage, MetadataRecord};
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, RaftError};
use openraft::network::NetSnapshot;
use openraft::{BasicNode, Config, RaftNetworkFactory, SnapshotPolicy};
use tokio::sync::watch;

use crate::disk;
use crate::log_store::FileLogStore;
use crate::network::NoPeers;
use crate::state_machine::{AppliedImage, MetadataStateMachine};
use crate::types::{MetaRaft, MetadataBatch, RejectedRecord};

/// The openraft instance of the metadata log.
pub type MetaRaftHandle = openraft::Raft<MetaRaft, MetadataStateMachine>;

/// Timing and retention of the quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumOptions {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// A snapshot of the image is written after this many entries since the last one.
    pub snapshot_interval_entries: u64,
    /// Entries kept in the log behind a snapshot (so a lagging follower can catch up from
    /// the log rather than a whole snapshot).
    pub entries_kept_after_snapshot: u64,
    /// How long `open_single` waits to be leader with the log applied.
    pub ready_timeout_ms: u64,
}

impl Default for QuorumOptions {
    fn default() -> Self {
        // openraft also uses the heartbeat interval as the timeout of an AppendEntries call,
        // so it must cover a follower's fsync on a busy disk (often 10-100 ms). Elections
        // follow Kafka's KRaft default of about a second. A single voter does not wait for
        // either: it elects itself at once on first start and on restart.
        QuorumOptions {
            heartbeat_interval_ms: 250,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            snapshot_interval_entries: 1000,
            entries_kept_after_snapshot: 100,
            ready_timeout_ms: 10_000,
        }
    }
}

impl QuorumOptions {
    fn raft_config(&self) -> Result<Config, QuorumError> {
        let config = Config {
            cluster_name: "freshet-metadata".to_string(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_interval_entries),
            max_in_snapshot_log_to_keep: self.entries_kept_after_snapshot,
            ..Config::default()
        };
        config
            .validate()
            .map_err(|e| QuorumError::Config(e.to_string()))
    }
}

/// Starts building, on a thread of its own, the lookup tables behind openraft's runtime
/// statistics: every `Raft::new` needs them, and the first one builds them for all widths at
/// once (about 26 MB, 10-20 ms of CPU and page faults). Called first thing at process start,
/// this overlaps that work with configuration, runtime set-up and reading the data directory
/// instead of adding it to the broker's start-up time. Harmless if never awaited.
pub fn prewarm() {
    let _ = std::thread::Builder::new()
        .name("raft-prewarm".into())
        .spawn(|| {
            let _tables: base2histogram::Histogram = base2histogram::Histogram::new();
        });
}

/// The node id a directory belongs to, written on first open (`raft-node-id`). Opening it as
/// another node would make this node vote and append as someone it is not.
const NODE_ID_FILE: &str = "raft-node-id";

fn claim_directory(dir: &Path, node_id: u64) -> Result<(), QuorumError> {
    std::fs::create_dir_all(dir)?;
    match disk::read_optional(dir, NODE_ID_FILE)? {
        Some(bytes) => {
            let body = disk::unseal(&bytes)?;
            let stored: [u8; 8] = body
                .try_into()
                .map_err(|_| disk::invalid("raft-node-id: wrong length"))?;
            let stored = u64::from_be_bytes(stored);
            if stored != node_id {
                return Err(QuorumError::WrongNode {
                    stored,
                    requested: node_id,
                });
            }
            Ok(())
        }
        None => Ok(disk::write_atomic(
            dir,
            NODE_ID_FILE,
            &disk::seal(&node_id.to_be_bytes()),
            true,
        )?),
    }
}

/// Why the quorum could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuorumError {
    #[error("metadata store I/O: {0}")]
    Io(#[from] io::Error),
    #[error("invalid raft config: {0}")]
    Config(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("not ready in time: {0}")]
    NotReady(String),
    #[error("the metadata directory belongs to node {stored}, not node {requested}")]
    WrongNode { stored: u64, requested: u64 },
}

/// Why a proposal did not take effect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// This node is not the leader; retry on `leader_id` (when known).
    #[error("not the metadata leader (leader: {leader_id:?})")]
    NotLeader { leader_id: Option<u64> },
    /// Committed, but refused by the image's invariants: nothing changed.
    #[error(transparent)]
    Rejected(#[from] RejectedRecord),
    /// A leader change discarded the entry; it may or may not commit later.
    #[error("outcome unknown after a leader change")]
    Unknown,
    /// The Raft node has stopped.
    #[error("metadata quorum stopped: {0}")]
    Stopped(String),
}

impl ProposeError {
    /// The Kafka error code for a request whose proposal failed this way.
    pub fn error_code(&self) -> i16 {
        match self {
            ProposeError::NotLeader { .. } => kafka_code::NOT_CONTROLLER,
            ProposeError::Rejected(r) => r.error.error_code(),
            ProposeError::Unknown => kafka_code::REQUEST_TIMED_OUT,
            ProposeError::Stopped(_) => kafka_code::UNKNOWN_SERVER_ERROR,
        }
    }
}

/// The metadata log of one node: a Raft member whose applied state is a [`MetadataImage`].
pub struct MetadataQuorum {
    node_id: u64,
    raft: MetaRaftHandle,
    applied: watch::Receiver<AppliedImage>,
}

impl MetadataQuorum {
    /// Opens the single-voter quorum of a one-node cluster stored in `dir`. The first start
    /// creates the cluster with this node as its only voter; a restart recovers the log and
    /// elects itself again. Returns once this node leads and has applied its whole log.
    /// `addr` is where other nodes would reach this one later (stored in the membership).
    pub async fn open_single(dir: &Path, node_id: u64, addr: &str) -> Result<Self, QuorumError> {
        Self::open_single_with(dir, node_id, addr, &QuorumOptions::default()).await
    }

    /// [`open_single`](Self::open_single) with explicit options.
    pub async fn open_single_with(
        dir: &Path,
        node_id: u64,
        addr: &str,
        options: &QuorumOptions,
    ) -> Result<Self, QuorumError> {
        let voters = BTreeMap::from([(node_id, BasicNode::new(addr))]);
        let ready_timeout = Duration::from_millis(options.ready_timeout_ms);
        let quorum = Self::open(dir, node_id, options, NoPeers, Some(voters)).await?;
        quorum.wait_leader_applied(node_id, ready_timeout).await?;
        Ok(quorum)
    }

    /// Opens a member of a quorum of any size, reaching the others through `network`.
    /// `initial_voters` initializes a brand-new cluster (pass it on one node only; ignored
    /// when the directory already holds a cluster). Does not wait for a leader.
    pub async fn open<N>(
        dir: &Path,
        node_id: u64,
        options: &QuorumOptions,
        network: N,
        initial_voters: Option<BTreeMap<u64, BasicNode>>,
    ) -> Result<Self, QuorumError>
    where
        N: RaftNetworkFactory<MetaRaft>,
        N::Network: NetSnapshot<MetaRaft, SnapshotData = Vec<u8>>,
    {
        let config = Arc::new(options.raft_config()?);
        claim_directory(dir, node_id)?;
        let log_store = FileLogStore::open(dir)?;
        let (state_machine, applied) = MetadataStateMachine::open(dir)?;
        let raft = MetaRaftHandle::new(node_id, config, network, log_store, state_machine)
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))?;
        let quorum = MetadataQuorum {
            node_id,
            raft,
            applied,
        };
        if let Some(voters) = initial_voters {
            quorum.initialize_if_new(voters).await?;
        }
        Ok(quorum)
    }

    async fn initialize_if_new(&self, voters: BTreeMap<u64, BasicNode>) -> Result<(), QuorumError> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))?;
        if !initialized {
            self.raft
                .initialize(voters)
                .await
                .map_err(|e| QuorumError::Raft(e.to_string()))?;
        }
        Ok(())
    }

    /// Waits until `leader` leads and this node has applied every entry it holds.
    pub async fn wait_leader_applied(
        &self,
        leader: u64,
        timeout: Duration,
    ) -> Result<(), QuorumError> {
        self.raft
            .wait(Some(timeout))
            .metrics(
                |m| {
                    m.current_leader == Some(leader)
                        && m.last_applied.map(|id| id.index) >= m.last_log_index
                },
                "leader elected and log applied",
            )
            .await
            .map(|_| ())
            .map_err(|e| QuorumError::NotReady(e.to_string()))
    }

    /// Appends `records` as one entry and returns its log index once it is committed and
    /// applied here. The records take effect all or nothing.
    pub async fn propose(&self, records: Vec<MetadataRecord>) -> Result<u64, ProposeError> {
        match self.raft.client_write(MetadataBatch(records)).await {
            Ok(response) => {
                response.data?;
                Ok(response.log_id.index)
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ProposeError::NotLeader {
                    leader_id: f.leader_id,
                })
            }
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(_))) => {
                Err(ProposeError::Unknown)
            }
            Err(e) => Err(ProposeError::Stopped(e.to_string())),
        }
    }

    /// The latest applied image. Cheap (an `Arc`); hold it as long as needed.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.applied.borrow().image.clone()
    }

    /// The latest applied image with its log index.
    pub fn applied(&self) -> AppliedImage {
        self.applied.borrow().clone()
    }

    /// A receiver that wakes on every applied entry (`changed().await`).
    pub fn watch(&self) -> watch::Receiver<AppliedImage> {
        self.applied.clone()
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The leader this node knows of, if any.
    pub fn current_leader(&self) -> Option<u64> {
        self.raft.metrics().borrow_watched().current_leader
    }

    /// The openraft handle, for the RPC server of a multi-node transport and for
    /// membership changes (add_learner, change_membership).
    pub fn raft(&self) -> &MetaRaftHandle {
        &self.raft
    }

    /// Stops the Raft tasks. Everything acknowledged is already on disk; call this before
    /// reopening the same directory.
    pub async fn shutdown(self) -> Result<(), QuorumError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))
    }
}
