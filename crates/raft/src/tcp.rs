//! Raft messages between nodes over TCP: a client per peer ([`TcpNetwork`]) and a server
//! ([`serve`]) that hands what it receives to the local Raft node.
//!
//! Wire format (big-endian; entries, votes and log ids as in [`crate::disk`]):
//!
//! - request: `length: u32` (of what follows), `kind: u8`, body
//!   - 1 AppendEntries: vote, prev log id (optional), `u32` count × (`u32` length, entry),
//!     leader commit (optional)
//!   - 2 Vote and 3 PreVote: vote, last log id (optional), leadership transfer `u8`
//!   - 4 FullSnapshot: vote, last log id (optional), stored membership, `u32` length + image
//! - response: `length: u32`, `status: u8` (0 ok, 1 error), then the body or a UTF-8 message
//!   - AppendEntries: `u8` 0 success, 1 partial success + log id (optional), 2 conflict,
//!     3 higher vote + vote
//!   - Vote, PreVote: vote, granted `u8`, last log id (optional)
//!   - FullSnapshot: vote
//!
//! One request at a time per connection; a connection that fails is dropped and reopened on
//! the next call. No authentication: listen on a private network only.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkFactory, RaftNetworkV2};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::disk::{self, invalid, Reader, Writer, RECORD_BYTES_MAX};
use crate::types::{MetaRaft, Snapshot, SnapshotMeta, Vote};
use crate::MetaRaftHandle;

/// A message may hold many entries or a whole snapshot; beyond this it is refused.
pub const MESSAGE_BYTES_MAX: u32 = RECORD_BYTES_MAX;

/// How long a connection attempt may take before the peer counts as unreachable.
const CONNECT_TIMEOUT_MS: u64 = 1000;

mod kind {
    pub const APPEND_ENTRIES: u8 = 1;
    pub const VOTE: u8 = 2;
    pub const PRE_VOTE: u8 = 3;
    pub const FULL_SNAPSHOT: u8 = 4;
}

/// The network factory: peers are reached at their membership address (`BasicNode::addr`,
/// `host:port`).
#[derive(Clone, Debug, Default)]
pub struct TcpNetwork;

impl RaftNetworkFactory<MetaRaft> for TcpNetwork {
    type Network = TcpPeer;

    async fn new_client(&mut self, _target: u64, node: &BasicNode) -> Self::Network {
        TcpPeer {
            addr: node.addr.clone(),
            conn: None,
        }
    }
}

/// A connection to one peer, opened lazily.
pub struct TcpPeer {
    addr: String,
    conn: Option<TcpStream>,
}

/// Why one RPC failed: could not connect (the peer may be down) or broke mid-way.
enum CallError {
    Connect(io::Error),
    Exchange(io::Error),
}

impl CallError {
    fn into_rpc(self) -> RPCError<MetaRaft> {
        match self {
            CallError::Connect(e) => Unreachable::new(&e).into(),
            CallError::Exchange(e) => NetworkError::new(&e).into(),
        }
    }
    fn into_streaming(self) -> StreamingError<MetaRaft> {
        match self {
            CallError::Connect(e) => Unreachable::new(&e).into(),
            CallError::Exchange(e) => NetworkError::new(&e).into(),
        }
    }
}

impl TcpPeer {
    async fn connection(&mut self) -> Result<&mut TcpStream, CallError> {
        if self.conn.is_none() {
            let connect = TcpStream::connect(self.addr.as_str());
            let stream = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connect)
                .await
                .map_err(|_| CallError::Connect(io::Error::from(io::ErrorKind::TimedOut)))?
                .map_err(CallError::Connect)?;
            stream.set_nodelay(true).map_err(CallError::Connect)?;
            self.conn = Some(stream);
        }
        Ok(self.conn.as_mut().expect("connection set above"))
    }

    /// Sends one request and returns the response body; drops the connection on failure.
    async fn call(
        &mut self,
        kind: u8,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let stream = self.connection().await?;
        let exchange = async {
            write_message(stream, kind, &body).await?;
            read_response(stream).await
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::from(io::ErrorKind::TimedOut)),
        };
        if result.is_err() {
            self.conn = None;
        }
        result.map_err(CallError::Exchange)
    }
}

impl RaftNetworkV2<MetaRaft> for TcpPeer {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<MetaRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<MetaRaft>, RPCError<MetaRaft>> {
        let body = encode_append_request(&rpc).map_err(|e| NetworkError::new(&e))?;
        let bytes = self
            .call(kind::APPEND_ENTRIES, body, option.hard_ttl())
            .await
            .map_err(CallError::into_rpc)?;
        decode_append_response(&bytes).map_err(|e| NetworkError::new(&e).into())
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<MetaRaft>,
        option: RPCOption,
    ) -> Result<VoteResponse<MetaRaft>, RPCError<MetaRaft>> {
        let bytes = self
            .call(kind::VOTE, encode_vote_request(&rpc), option.hard_ttl())
            .await
            .map_err(CallError::into_rpc)?;
        decode_vote_response(&bytes).map_err(|e| NetworkError::new(&e).into())
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<MetaRaft>,
        option: RPCOption,
    ) -> Result<VoteResponse<MetaRaft>, RPCError<MetaRaft>> {
        let bytes = self
            .call(kind::PRE_VOTE, encode_vote_request(&rpc), option.hard_ttl())
            .await
            .map_err(CallError::into_rpc)?;
        decode_vote_response(&bytes).map_err(|e| NetworkError::new(&e).into())
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<MetaRaft>, StreamingError<MetaRaft>> {
        let body = encode_snapshot_request(&vote, &snapshot).map_err(|e| NetworkError::new(&e))?;
        let bytes = self
            .call(kind::FULL_SNAPSHOT, body, option.hard_ttl())
            .await
            .map_err(CallError::into_streaming)?;
        let mut r = Reader::new(&bytes);
        let vote = r.vote().map_err(|e| NetworkError::new(&e))?;
        r.finish().map_err(|e| NetworkError::new(&e))?;
        Ok(SnapshotResponse::new(vote))
    }
}

/// Accepts Raft connections on `listener` and hands each request to `raft`, until the task
/// is aborted. A connection sending anything malformed is closed; others are unaffected.
pub fn serve(listener: TcpListener, raft: MetaRaftHandle) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _peer)) = listener.accept().await else {
                // Accept errors (e.g. too many open files) are transient: back off briefly.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let raft = raft.clone();
            tokio::spawn(async move {
                let _ = serve_connection(stream, raft).await;
            });
        }
    })
}

/// Binds `addr` and serves; returns the bound address (useful with port 0) and the task.
pub async fn bind_and_serve(
    addr: &str,
    raft: MetaRaftHandle,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, serve(listener, raft)))
}

async fn serve_connection(mut stream: TcpStream, raft: MetaRaftHandle) -> io::Result<()> {
    stream.set_nodelay(true)?;
    loop {
        let (kind, body) = match read_message(&mut stream).await {
            Ok(message) => message,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let response = handle(kind, &body, &raft).await;
        let (status, payload) = match response {
            Ok(payload) => (0u8, payload),
            Err(message) => (1u8, message.into_bytes()),
        };
        write_message(&mut stream, status, &payload).await?;
    }
}

/// One request: decode, call the local Raft node, encode. Errors become error responses.
async fn handle(kind: u8, body: &[u8], raft: &MetaRaftHandle) -> Result<Vec<u8>, String> {
    match kind {
        kind::APPEND_ENTRIES => {
            let rpc = decode_append_request(body).map_err(|e| e.to_string())?;
            let response = raft.append_entries(rpc).await.map_err(|e| e.to_string())?;
            Ok(encode_append_response(&response))
        }
        kind::VOTE | kind::PRE_VOTE => {
            let rpc = decode_vote_request(body).map_err(|e| e.to_string())?;
            let response = if kind == kind::VOTE {
                raft.vote(rpc).await
            } else {
                raft.pre_vote(rpc).await
            };
            Ok(encode_vote_response(&response.map_err(|e| e.to_string())?))
        }
        kind::FULL_SNAPSHOT => {
            let (vote, snapshot) = decode_snapshot_request(body).map_err(|e| e.to_string())?;
            let response = raft
                .install_full_snapshot(vote, snapshot)
                .await
                .map_err(|e| e.to_string())?;
            let mut w = Writer::default();
            w.vote(&response.vote);
            Ok(w.buf)
        }
        other => Err(format!("unknown request kind {other}")),
    }
}

async fn write_message(stream: &mut TcpStream, tag: u8, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len() + 1).map_err(|_| invalid("message too long"))?;
    if len > MESSAGE_BYTES_MAX {
        return Err(invalid("message above MESSAGE_BYTES_MAX"));
    }
    let mut buf = Vec::with_capacity(body.len() + 5);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.push(tag);
    buf.extend_from_slice(body);
    stream.write_all(&buf).await
}

/// Reads `length, tag, body`; the length is checked before anything is allocated.
async fn read_message(stream: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let len = stream.read_u32().await?;
    if len == 0 || len > MESSAGE_BYTES_MAX {
        return Err(invalid("message length out of range"));
    }
    let tag = stream.read_u8().await?;
    let mut body = vec![0u8; len as usize - 1];
    stream.read_exact(&mut body).await?;
    Ok((tag, body))
}

async fn read_response(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let (status, body) = read_message(stream).await?;
    match status {
        0 => Ok(body),
        1 => Err(io::Error::other(format!(
            "peer refused: {}",
            String::from_utf8_lossy(&body)
        ))),
        _ => Err(invalid("unknown response status")),
    }
}

fn encode_append_request(rpc: &AppendEntriesRequest<MetaRaft>) -> io::Result<Vec<u8>> {
    let mut w = Writer::default();
    w.vote(&rpc.vote);
    w.option_log_id(rpc.prev_log_id.as_ref());
    w.u32(u32::try_from(rpc.entries.len()).map_err(|_| invalid("too many entries"))?);
    for entry in &rpc.entries {
        w.bytes(&disk::encode_entry(entry)?)?;
    }
    w.option_log_id(rpc.leader_commit.as_ref());
    Ok(w.buf)
}

fn decode_append_request(bytes: &[u8]) -> io::Result<AppendEntriesRequest<MetaRaft>> {
    let mut r = Reader::new(bytes);
    let vote = r.vote()?;
    let prev_log_id = r.option_log_id()?;
    let count = r.u32()? as usize;
    // Each entry takes at least 4 + 25 bytes; never trust the count for allocation.
    let mut entries = Vec::with_capacity(count.min(bytes.len() / 29));
    for _ in 0..count {
        entries.push(disk::decode_entry(r.bytes()?)?);
    }
    let leader_commit = r.option_log_id()?;
    r.finish()?;
    Ok(AppendEntriesRequest {
        vote,
        prev_log_id,
        entries,
        leader_commit,
    })
}

fn encode_append_response(response: &AppendEntriesResponse<MetaRaft>) -> Vec<u8> {
    let mut w = Writer::default();
    match response {
        AppendEntriesResponse::Success => w.u8(0),
        AppendEntriesResponse::PartialSuccess(log_id) => {
            w.u8(1);
            w.option_log_id(log_id.as_ref());
        }
        AppendEntriesResponse::Conflict => w.u8(2),
        AppendEntriesResponse::HigherVote(vote) => {
            w.u8(3);
            w.vote(vote);
        }
    }
    w.buf
}

fn decode_append_response(bytes: &[u8]) -> io::Result<AppendEntriesResponse<MetaRaft>> {
    let mut r = Reader::new(bytes);
    let response = match r.u8()? {
        0 => AppendEntriesResponse::Success,
        1 => AppendEntriesResponse::PartialSuccess(r.option_log_id()?),
        2 => AppendEntriesResponse::Conflict,
        3 => AppendEntriesResponse::HigherVote(r.vote()?),
        _ => return Err(invalid("unknown append-entries response")),
    };
    r.finish()?;
    Ok(response)
}

fn encode_vote_request(rpc: &VoteRequest<MetaRaft>) -> Vec<u8> {
    let mut w = Writer::default();
    w.vote(&rpc.vote);
    w.option_log_id(rpc.last_log_id.as_ref());
    w.u8(u8::from(rpc.leadership_transfer));
    w.buf
}

fn decode_vote_request(bytes: &[u8]) -> io::Result<VoteRequest<MetaRaft>> {
    let mut r = Reader::new(bytes);
    let vote = r.vote()?;
    let last_log_id = r.option_log_id()?;
    let leadership_transfer = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(invalid("leadership transfer flag")),
    };
    r.finish()?;
    let mut rpc = VoteRequest::new(vote, last_log_id);
    rpc.leadership_transfer = leadership_transfer;
    Ok(rpc)
}

fn encode_vote_response(response: &VoteResponse<MetaRaft>) -> Vec<u8> {
    let mut w = Writer::default();
    w.vote(&response.vote);
    w.u8(u8::from(response.vote_granted));
    w.option_log_id(response.last_log_id.as_ref());
    w.buf
}

fn decode_vote_response(bytes: &[u8]) -> io::Result<VoteResponse<MetaRaft>> {
    let mut r = Reader::new(bytes);
    let vote = r.vote()?;
    let granted = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(invalid("vote granted flag")),
    };
    let last_log_id = r.option_log_id()?;
    r.finish()?;
    Ok(VoteResponse::new(vote, last_log_id, granted))
}

fn encode_snapshot_request(vote: &Vote, snapshot: &Snapshot) -> io::Result<Vec<u8>> {
    let mut w = Writer::default();
    w.vote(vote);
    w.option_log_id(snapshot.meta.last_log_id.as_ref());
    w.stored_membership(&snapshot.meta.last_membership)?;
    w.bytes(&snapshot.snapshot)?;
    Ok(w.buf)
}

fn decode_snapshot_request(bytes: &[u8]) -> io::Result<(Vote, Snapshot)> {
    let mut r = Reader::new(bytes);
    let vote = r.vote()?;
    let last_log_id = r.option_log_id()?;
    let last_membership = r.stored_membership()?;
    let data = r.bytes()?.to_vec();
    r.finish()?;
    let meta = SnapshotMeta {
        last_log_id,
        last_membership,
    };
    Ok((
        vote,
        Snapshot {
            meta,
            snapshot: data,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Entry, LogId, MetadataBatch};
    use freshet_metadata::MetadataRecord;
    use openraft::impls::leader_id_adv::LeaderId;
    use openraft::EntryPayload;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(LeaderId { term, node_id: 1 }, index)
    }

    #[test]
    fn append_requests_and_responses_round_trip() {
        let rpc = AppendEntriesRequest::<MetaRaft> {
            vote: Vote::new(3, 1),
            prev_log_id: Some(log_id(2, 4)),
            entries: vec![
                Entry {
                    log_id: log_id(3, 5),
                    payload: EntryPayload::Blank,
                },
                Entry {
                    log_id: log_id(3, 6),
                    payload: EntryPayload::Normal(MetadataBatch(vec![MetadataRecord::ClusterId(
                        "c".into(),
                    )])),
                },
            ],
            leader_commit: None,
        };
        let bytes = encode_append_request(&rpc).unwrap();
        let back = decode_append_request(&bytes).unwrap();
        assert_eq!(
            (
                back.vote,
                back.prev_log_id,
                back.entries,
                back.leader_commit
            ),
            (rpc.vote, rpc.prev_log_id, rpc.entries, rpc.leader_commit)
        );
        for cut in 0..bytes.len() {
            assert!(decode_append_request(&bytes[..cut]).is_err());
        }
        for response in [
            AppendEntriesResponse::Success,
            AppendEntriesResponse::PartialSuccess(Some(log_id(1, 2))),
            AppendEntriesResponse::Conflict,
            AppendEntriesResponse::HigherVote(Vote::new(9, 2)),
        ] {
            let bytes = encode_append_response(&response);
            assert_eq!(decode_append_response(&bytes).unwrap(), response);
        }
    }

    #[test]
    fn hostile_entry_count_does_not_allocate() {
        let mut w = Writer::default();
        w.vote(&Vote::new(1, 1));
        w.option_log_id(None);
        w.u32(u32::MAX);
        assert!(decode_append_request(&w.buf).is_err());
    }

    #[test]
    fn vote_messages_round_trip() {
        let mut rpc = VoteRequest::<MetaRaft>::new(Vote::new(4, 2), Some(log_id(3, 9)));
        rpc.leadership_transfer = true;
        let back = decode_vote_request(&encode_vote_request(&rpc)).unwrap();
        assert_eq!(
            (back.vote, back.last_log_id, back.leadership_transfer),
            (rpc.vote, rpc.last_log_id, true)
        );
        let response = VoteResponse::<MetaRaft>::new(Vote::new(4, 2), None, true);
        let back = decode_vote_response(&encode_vote_response(&response)).unwrap();
        assert_eq!(
            (back.vote, back.vote_granted, back.last_log_id),
            (response.vote, true, None)
        );
    }
}
