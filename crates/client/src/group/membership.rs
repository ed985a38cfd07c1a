//! Membership of one group through its coordinator: the coordinator connection (found with
//! FindCoordinator, found again when it moves), JoinGroup, SyncGroup, LeaveGroup, and the
//! heartbeat task. The member's state is shared between the consumer and that task.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use freshet_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use freshet_protocol::messages::leave_group_request::MemberIdentity;
use freshet_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use freshet_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use freshet_protocol::{ApiKey, Decode, Encode};

use crate::cluster::Cluster;
use crate::connection::{Connection, ConnectionConfig};
use crate::coordinator::{find_coordinator, CoordinatorType};
use crate::error::{Error, KafkaCode, KafkaError};

use super::protocol::PROTOCOL_TYPE;

pub(crate) const UNKNOWN_MEMBER_ID: i16 = 25;
pub(crate) const ILLEGAL_GENERATION: i16 = 22;
pub(crate) const REBALANCE_IN_PROGRESS: i16 = 27;
pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;
pub(crate) const FENCED_INSTANCE_ID: i16 = 82;
pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub(crate) const NOT_COORDINATOR: i16 = 16;

/// What the consumer and the heartbeat task both see of the membership.
#[derive(Debug)]
pub(crate) struct MemberState {
    /// Empty until the coordinator gives one.
    pub member_id: String,
    /// -1 outside a generation.
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: bool,
    /// Joined and synced: heartbeats flow and records may be fetched.
    pub stable: bool,
    /// The coordinator asked for a rebalance, or the subscription changed.
    pub rejoin_needed: bool,
    /// The membership was lost (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, poll interval passed):
    /// the partitions are lost, not revoked.
    pub lost: bool,
    /// An error after which the consumer cannot go on (FENCED_INSTANCE_ID).
    pub fatal: Option<Error>,
    pub connection: Option<Arc<Connection>>,
    pub last_poll: Instant,
    pub closed: bool,
    /// Why the last rebalance was asked for, for JoinGroup's reason (v8+).
    pub reason: String,
}

/// What to do after a group error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// Join again at once (new member id or generation; rebalance started).
    Rejoin,
    /// Find the coordinator again, after a back-off.
    Rediscover,
    /// Wait a back-off and try again (coordinator loading).
    Backoff,
    /// Give up.
    Fatal,
}

/// The group's coordinator as this member sees it.
#[derive(Debug)]
pub(crate) struct Coordinator {
    pub cluster: Arc<Cluster>,
    pub group_id: String,
    pub instance_id: Option<String>,
    /// For the coordinator connection: JoinGroup may wait a whole rebalance timeout.
    connection_config: ConnectionConfig,
    /// Every other request waits this long.
    pub request_timeout: Duration,
    pub retry_backoff: Duration,
    state: Mutex<MemberState>,
    lookup: tokio::sync::Mutex<()>,
}

impl Coordinator {
    pub fn new(
        cluster: Arc<Cluster>,
        group_id: String,
        instance_id: Option<String>,
        rebalance_timeout_ms: u64,
    ) -> Coordinator {
        let mut connection_config = cluster.config().connection.clone();
        let request_timeout = Duration::from_millis(connection_config.request_timeout_ms);
        // Kafka's clients wait rebalance timeout plus five seconds for a JoinGroup answer.
        connection_config.request_timeout_ms = connection_config
            .request_timeout_ms
            .max(rebalance_timeout_ms.saturating_add(5_000));
        let retry_backoff = Duration::from_millis(cluster.config().retry_backoff_ms.max(1));
        Coordinator {
            cluster,
            group_id,
            instance_id,
            connection_config,
            request_timeout,
            retry_backoff,
            state: Mutex::new(MemberState {
                member_id: String::new(),
                generation: -1,
                protocol: None,
                leader: false,
                stable: false,
                rejoin_needed: true,
                lost: false,
                fatal: None,
                connection: None,
                last_poll: Instant::now(),
                closed: false,
                reason: "joining the group".into(),
            }),
            lookup: tokio::sync::Mutex::new(()),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, MemberState> {
        self.state.lock().expect("group member state lock")
    }

    /// The connection to the coordinator, looked up (retrying retriable errors for up to one
    /// request timeout) when unknown or broken.
    pub async fn connection(&self) -> Result<Arc<Connection>, Error> {
        if let Some(connection) = self.live_connection() {
            return Ok(connection);
        }
        let _lookup = self.lookup.lock().await;
        if let Some(connection) = self.live_connection() {
            return Ok(connection);
        }
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let attempt = async {
                let info =
                    find_coordinator(&self.cluster, CoordinatorType::Group, &self.group_id).await?;
                Connection::connect(&info.addr(), self.connection_config.clone()).await
            };
            match attempt.await {
                Ok(connection) => {
                    let connection = Arc::new(connection);
                    self.state().connection = Some(connection.clone());
                    return Ok(connection);
                }
                Err(error) if error.is_retriable() && Instant::now() < deadline => {
                    tokio::time::sleep(self.retry_backoff).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn live_connection(&self) -> Option<Arc<Connection>> {
        let state = self.state();
        state
            .connection
            .as_ref()
            .filter(|connection| !connection.is_dead())
            .cloned()
    }

    /// Forgets the coordinator so the next request looks it up again.
    pub fn coordinator_unknown(&self) {
        self.state().connection = None;
    }

    /// Sends `request` at `version` and waits for the answer up to `timeout`; a timeout or a
    /// broken connection forgets the coordinator.
    pub async fn call<R: Encode, T: Decode>(
        &self,
        connection: &Connection,
        api: ApiKey,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<T, Error> {
        let pending = connection.send(api, version, request)?;
        let result = match tokio::time::timeout(timeout, pending.recv::<T>()).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                what: format!("{} request to {}", api.name(), connection.addr()),
                timeout_ms: timeout.as_millis() as u64,
            }),
        };
        if let Err(error) = &result {
            if error.is_retriable() {
                self.coordinator_unknown();
            }
        }
        result
    }

    /// Applies a group error from any group request to the member state and says how to
    /// go on. `generation` is the one the request carried: answers to older requests do
    /// not reset a newer membership.
    pub fn on_group_error(&self, code: i16, message: Option<&str>, generation: i32) -> Recovery {
        let mut state = self.state();
        match code {
            REBALANCE_IN_PROGRESS => {
                if state.generation == generation {
                    state.rejoin_needed = true;
                    state.reason = "the coordinator started a rebalance".into();
                }
                Recovery::Rejoin
            }
            UNKNOWN_MEMBER_ID => {
                if state.generation == generation {
                    state.member_id.clear();
                    reset_generation(&mut state, "the coordinator no longer knows this member");
                }
                Recovery::Rejoin
            }
            ILLEGAL_GENERATION => {
                if state.generation == generation {
                    reset_generation(&mut state, "the group moved to a newer generation");
                }
                Recovery::Rejoin
            }
            FENCED_INSTANCE_ID => {
                state.fatal = Some(Error::Kafka(KafkaError {
                    code: KafkaCode(code),
                    message: Some(message.map_or_else(
                        || {
                            format!(
                                "another consumer joined group {} with group.instance.id {}",
                                self.group_id,
                                self.instance_id.as_deref().unwrap_or("")
                            )
                        },
                        str::to_owned,
                    )),
                }));
                state.stable = false;
                Recovery::Fatal
            }
            NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE => {
                state.connection = None;
                Recovery::Rediscover
            }
            COORDINATOR_LOAD_IN_PROGRESS => Recovery::Backoff,
            _ => Recovery::Fatal,
        }
    }

    /// Marks the member as rebalancing: heartbeats stop until the next SyncGroup succeeds.
    pub fn begin_join(&self) {
        let mut state = self.state();
        state.stable = false;
        state.rejoin_needed = false;
    }

    /// Sends JoinGroup and waits for the rebalance to reach this member.
    pub async fn join(
        &self,
        protocols: Vec<(String, bytes::Bytes)>,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
    ) -> Result<JoinGroupResponse, Error> {
        let connection = self.connection().await?;
        let version = connection.version(ApiKey::JoinGroup)?;
        let (member_id, reason) = {
            let state = self.state();
            (state.member_id.clone(), state.reason.clone())
        };
        let request = JoinGroupRequest {
            group_id: self.group_id.clone(),
            session_timeout_ms,
            rebalance_timeout_ms,
            member_id,
            group_instance_id: self.instance_id.clone(),
            protocol_type: PROTOCOL_TYPE.to_owned(),
            protocols: protocols
                .into_iter()
                .map(|(name, metadata)| JoinGroupRequestProtocol {
                    name,
                    metadata,
                    ..Default::default()
                })
                .collect(),
            reason: Some(reason),
            ..Default::default()
        };
        let timeout = Duration::from_millis(self.connection_config.request_timeout_ms);
        self.call(&connection, ApiKey::JoinGroup, version, &request, timeout)
            .await
    }

    /// Sends SyncGroup (with every member's assignment when leader) and returns this
    /// member's assignment bytes.
    pub async fn sync(
        &self,
        generation: i32,
        member_id: &str,
        protocol: &str,
        assignments: Vec<(String, bytes::Bytes)>,
    ) -> Result<SyncGroupResponse, Error> {
        let connection = self.connection().await?;
        let version = connection.version(ApiKey::SyncGroup)?;
        let request = SyncGroupRequest {
            group_id: self.group_id.clone(),
            generation_id: generation,
            member_id: member_id.to_owned(),
            group_instance_id: self.instance_id.clone(),
            protocol_type: Some(PROTOCOL_TYPE.to_owned()),
            protocol_name: Some(protocol.to_owned()),
            assignments: assignments
                .into_iter()
                .map(|(member_id, assignment)| SyncGroupRequestAssignment {
                    member_id,
                    assignment,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        // SyncGroup waits for the leader's assignment, up to the rebalance timeout.
        let timeout = Duration::from_millis(self.connection_config.request_timeout_ms);
        self.call(&connection, ApiKey::SyncGroup, version, &request, timeout)
            .await
    }

    /// Leaves the group (dynamic members; static ones are only fenced by a newcomer or
    /// dropped after the session timeout) and forgets the membership.
    pub async fn leave(&self, reason: &str) -> Result<(), Error> {
        let (member_id, generation) = {
            let state = self.state();
            (state.member_id.clone(), state.generation)
        };
        {
            let mut state = self.state();
            state.member_id.clear();
            state.generation = -1;
            state.stable = false;
        }
        if member_id.is_empty() {
            return Ok(());
        }
        let connection = self.connection().await?;
        let version = connection.version(ApiKey::LeaveGroup)?;
        let request = LeaveGroupRequest {
            group_id: self.group_id.clone(),
            member_id: if version < 3 {
                member_id.clone()
            } else {
                String::new()
            },
            members: if version >= 3 {
                vec![MemberIdentity {
                    member_id,
                    group_instance_id: self.instance_id.clone(),
                    reason: Some(reason.to_owned()),
                    ..Default::default()
                }]
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let response: LeaveGroupResponse = self
            .call(
                &connection,
                ApiKey::LeaveGroup,
                version,
                &request,
                self.request_timeout,
            )
            .await?;
        let code = response
            .members
            .iter()
            .map(|member| member.error_code)
            .find(|&code| code != 0)
            .unwrap_or(response.error_code);
        // The member is gone either way; UNKNOWN_MEMBER_ID means it already was.
        if code != 0 && code != UNKNOWN_MEMBER_ID {
            let _ = self.on_group_error(code, None, generation);
            return Err(Error::Kafka(KafkaError {
                code: KafkaCode(code),
                message: None,
            }));
        }
        Ok(())
    }

    /// One heartbeat, when the member is stable.
    async fn heartbeat_once(&self) {
        let (member_id, generation) = {
            let state = self.state();
            if !state.stable || state.closed {
                return;
            }
            (state.member_id.clone(), state.generation)
        };
        let connection = match self.connection().await {
            Ok(connection) => connection,
            Err(_) => return,
        };
        let version = match connection.version(ApiKey::Heartbeat) {
            Ok(version) => version,
            Err(error) => {
                self.state().fatal = Some(error);
                return;
            }
        };
        let request = HeartbeatRequest {
            group_id: self.group_id.clone(),
            generation_id: generation,
            member_id,
            group_instance_id: self.instance_id.clone(),
            ..Default::default()
        };
        let response: Result<HeartbeatResponse, Error> = self
            .call(
                &connection,
                ApiKey::Heartbeat,
                version,
                &request,
                self.request_timeout,
            )
            .await;
        if let Ok(response) = response {
            if response.error_code != 0 {
                self.on_group_error(response.error_code, None, generation);
            }
        }
    }
}

fn reset_generation(state: &mut MemberState, reason: &str) {
    state.generation = -1;
    state.stable = false;
    state.rejoin_needed = true;
    state.lost = true;
    state.reason = reason.to_owned();
}

/// Heartbeats every `interval` while the member is stable; leaves the group when the
/// application has not polled within `max_poll_interval` (Kafka's `max.poll.interval.ms`).
/// Ends when the consumer closes; the consumer aborts it when dropped.
pub(crate) async fn heartbeat_loop(
    coordinator: Arc<Coordinator>,
    interval: Duration,
    max_poll_interval: Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        let poll_overdue = {
            let state = coordinator.state();
            if state.closed {
                return;
            }
            state.stable && state.last_poll.elapsed() > max_poll_interval
        };
        if poll_overdue {
            // Give the partitions to the others now rather than after a session timeout.
            if coordinator.instance_id.is_none() {
                let _ = coordinator
                    .leave("consumer poll timeout has expired (max.poll.interval.ms)")
                    .await;
            }
            let mut state = coordinator.state();
            reset_generation(&mut state, "the application did not poll in time");
            continue;
        }
        coordinator.heartbeat_once().await;
    }
}
