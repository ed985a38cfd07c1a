//! How Raft messages reach other voters. openraft asks a [`RaftNetworkFactory`] for a client
//! per peer; the quorum is generic over the factory, so a TCP transport plugs in beside these:
//!
//! - [`NoPeers`]: a single voter never sends a message; any attempt is answered "unreachable".
//! - [`InProcessRouter`]: several Raft nodes in one process calling each other directly, with
//!   links that tests can cut. This is what the cluster tests and a future deterministic
//!   simulation drive.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkFactory, RaftNetworkV2};

use crate::types::{MetaRaft, Snapshot, Vote};
use crate::MetaRaftHandle;

fn unreachable(why: &str) -> Unreachable<MetaRaft> {
    Unreachable::new(&io::Error::new(
        io::ErrorKind::NotConnected,
        why.to_string(),
    ))
}

/// The network of a single voter: there is nobody to talk to.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPeers;

impl RaftNetworkFactory<MetaRaft> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Self::Network {
        NoPeers
    }
}

impl RaftNetworkV2<MetaRaft> for NoPeers {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<MetaRaft>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<MetaRaft>, RPCError<MetaRaft>> {
        Err(unreachable("single voter: no peers").into())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<MetaRaft>,
        _option: RPCOption,
    ) -> Result<VoteResponse<MetaRaft>, RPCError<MetaRaft>> {
        Err(unreachable("single voter: no peers").into())
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<MetaRaft>, StreamingError<MetaRaft>> {
        Err(unreachable("single voter: no peers").into())
    }
}

/// Raft nodes of one process, addressed by node id, with links that can be cut.
#[derive(Clone, Default)]
pub struct InProcessRouter {
    state: Arc<Mutex<RouterState>>,
}

#[derive(Default)]
struct RouterState {
    nodes: BTreeMap<u64, MetaRaftHandle>,
    /// Nodes cut off from everyone (as if their network cable were pulled).
    isolated: BTreeSet<u64>,
}

impl InProcessRouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The network factory for node `source`'s Raft instance.
    pub fn network_for(&self, source: u64) -> InProcessNetwork {
        InProcessNetwork {
            router: self.clone(),
            source,
            target: source,
        }
    }

    /// Makes `node_id` reachable through `raft`.
    pub fn register(&self, node_id: u64, raft: MetaRaftHandle) {
        self.lock().nodes.insert(node_id, raft);
    }

    /// Removes a node (it stopped).
    pub fn unregister(&self, node_id: u64) {
        self.lock().nodes.remove(&node_id);
    }

    /// Cuts (`true`) or restores (`false`) every link of `node_id`.
    pub fn set_isolated(&self, node_id: u64, isolated: bool) {
        let mut state = self.lock();
        if isolated {
            state.isolated.insert(node_id);
        } else {
            state.isolated.remove(&node_id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RouterState> {
        // The router's maps are replaced whole under the lock; a panic while holding it can
        // only come from a bug in a test, which should stop the test.
        self.state.lock().expect("router lock poisoned")
    }

    /// The target's handle, unless either end is isolated or the target is gone.
    fn route(&self, source: u64, target: u64) -> Result<MetaRaftHandle, Unreachable<MetaRaft>> {
        let state = self.lock();
        if state.isolated.contains(&source) || state.isolated.contains(&target) {
            return Err(unreachable("link cut"));
        }
        state
            .nodes
            .get(&target)
            .cloned()
            .ok_or_else(|| unreachable("node not running"))
    }
}

/// One node's view of the in-process network: a factory, and (with `target` set) a client.
#[derive(Clone)]
pub struct InProcessNetwork {
    router: InProcessRouter,
    source: u64,
    target: u64,
}

impl RaftNetworkFactory<MetaRaft> for InProcessNetwork {
    type Network = InProcessNetwork;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Self::Network {
        InProcessNetwork {
            router: self.router.clone(),
            source: self.source,
            target,
        }
    }
}

impl RaftNetworkV2<MetaRaft> for InProcessNetwork {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<MetaRaft>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<MetaRaft>, RPCError<MetaRaft>> {
        let raft = self.router.route(self.source, self.target)?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| unreachable(&e.to_string()).into())
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<MetaRaft>,
        _option: RPCOption,
    ) -> Result<VoteResponse<MetaRaft>, RPCError<MetaRaft>> {
        let raft = self.router.route(self.source, self.target)?;
        raft.vote(rpc)
            .await
            .map_err(|e| unreachable(&e.to_string()).into())
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<MetaRaft>,
        _option: RPCOption,
    ) -> Result<VoteResponse<MetaRaft>, RPCError<MetaRaft>> {
        let raft = self.router.route(self.source, self.target)?;
        raft.pre_vote(rpc)
            .await
            .map_err(|e| unreachable(&e.to_string()).into())
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<MetaRaft>, StreamingError<MetaRaft>> {
        let raft = self.router.route(self.source, self.target)?;
        raft.install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| unreachable(&e.to_string()).into())
    }
}
