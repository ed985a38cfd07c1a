//! One TCP connection to a broker: size-prefixed frames, pipelined requests matched to their
//! responses by correlation id, and the ApiVersions handshake that picks a version per API.
//!
//! A writer task sends frames in the order requests were submitted (Kafka answers in that
//! order, and the idempotent producer relies on it); a reader task routes each response to
//! the request waiting for it. When either side fails, every waiting request gets
//! [`Error::Disconnected`] and the connection is marked dead; the owner opens a new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use freshet_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use freshet_protocol::{ApiKey, Decode, Encode, RequestHeader, ResponseHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, KafkaCode};
use crate::versions::{self, VersionTable};

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub client_id: String,
    pub connect_timeout_ms: u64,
    /// How long a request may wait for its response.
    pub request_timeout_ms: u64,
    /// Largest response frame accepted; a bigger one closes the connection.
    pub response_bytes_max: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: "freshet".to_owned(),
            connect_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            // Fetch responses are bounded by fetch.max.bytes (50 MiB by default) plus headers.
            response_bytes_max: 100 * 1024 * 1024,
        }
    }
}

type Reply = oneshot::Sender<Result<Bytes, Error>>;

/// What the writer task sends.
struct Outgoing {
    frame: Bytes,
    correlation_id: i32,
    reply: ReplyKind,
}

enum ReplyKind {
    /// Wait for a response with this header version.
    Response { header_version: i16, reply: Reply },
    /// No response will come (Produce with acks=0): answer once the bytes are written.
    Written(oneshot::Sender<Result<(), Error>>),
}

/// Requests written and waiting for their response. `closed` is set, under the same lock,
/// by whichever task fails first, so no request can be registered after the drain.
#[derive(Default)]
struct Pending {
    closed: Option<String>,
    waiting: HashMap<i32, (i16, Reply)>,
}

/// A live connection. Cheap to share behind an `Arc`; dropping the last handle closes it.
pub struct Connection {
    addr: String,
    config: ConnectionConfig,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    pending: Arc<Mutex<Pending>>,
    dead: Arc<AtomicBool>,
    next_correlation_id: AtomicI32,
    versions: VersionTable,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .finish()
    }
}

/// A request written (or queued for writing) whose response has not been read yet.
pub struct PendingResponse {
    addr: String,
    api: ApiKey,
    version: i16,
    timeout_ms: u64,
    reply: oneshot::Receiver<Result<Bytes, Error>>,
}

impl PendingResponse {
    /// Waits for the response and decodes its body.
    pub async fn recv<T: Decode>(self) -> Result<T, Error> {
        let (addr, api, version) = (self.addr.clone(), self.api, self.version);
        let body = self.recv_raw().await?;
        decode_body(&addr, api, version, body)
    }

    /// Waits for the response and returns its body undecoded.
    pub async fn recv_raw(self) -> Result<Bytes, Error> {
        let waited = tokio::time::timeout(Duration::from_millis(self.timeout_ms), self.reply).await;
        match waited {
            Err(_) => Err(Error::Timeout {
                what: format!("{} request to {}", self.api.name(), self.addr),
                timeout_ms: self.timeout_ms,
            }),
            Ok(Err(_)) => Err(Error::Disconnected {
                addr: self.addr,
                reason: "connection closed".into(),
            }),
            Ok(Ok(result)) => result,
        }
    }
}

fn decode_body<T: Decode>(
    addr: &str,
    api: ApiKey,
    version: i16,
    mut body: Bytes,
) -> Result<T, Error> {
    T::decode(&mut body, version).map_err(|error| Error::Protocol {
        addr: addr.to_owned(),
        reason: format!("{} v{version} response: {error}", api.name()),
    })
}

impl Connection {
    /// Connects and performs the ApiVersions handshake.
    pub async fn connect(addr: &str, config: ConnectionConfig) -> Result<Connection, Error> {
        let connect = TcpStream::connect(addr);
        let stream =
            match tokio::time::timeout(Duration::from_millis(config.connect_timeout_ms), connect)
                .await
            {
                Err(_) => {
                    return Err(Error::Timeout {
                        what: format!("connect to {addr}"),
                        timeout_ms: config.connect_timeout_ms,
                    })
                }
                Ok(Err(error)) => {
                    return Err(Error::Connect {
                        addr: addr.to_owned(),
                        error: Arc::new(error),
                    })
                }
                Ok(Ok(stream)) => stream,
            };
        // Requests are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let mut connection = Connection::start(addr, config, stream);
        connection.versions = connection.handshake().await?;
        Ok(connection)
    }

    fn start(addr: &str, config: ConnectionConfig, stream: TcpStream) -> Connection {
        let (read_half, write_half) = stream.into_split();
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let dead = Arc::new(AtomicBool::new(false));
        let shared = Shared {
            addr: addr.to_owned(),
            pending: pending.clone(),
            dead: dead.clone(),
        };
        tokio::spawn(write_loop(write_half, outgoing_rx, shared.clone()));
        tokio::spawn(read_loop(read_half, config.response_bytes_max, shared));
        Connection {
            addr: addr.to_owned(),
            config,
            outgoing,
            pending,
            dead,
            next_correlation_id: AtomicI32::new(0),
            versions: VersionTable::default(),
        }
    }

    /// ApiVersions: try our highest version; a broker that does not know it answers in v0
    /// with the range it does support (KIP-511), and we retry with the highest common one.
    async fn handshake(&self) -> Result<VersionTable, Error> {
        let mut version = versions::API_VERSIONS_FIRST_TRY;
        for _ in 0..2 {
            let request = ApiVersionsRequest {
                client_software_name: "freshet-client".into(),
                client_software_version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            };
            let body = self
                .send(ApiKey::ApiVersions, version, &request)?
                .recv_raw()
                .await?;
            // A broker that does not know our version answers in v0 (KIP-511).
            let response: ApiVersionsResponse = match decode_body::<ApiVersionsResponse>(
                &self.addr,
                ApiKey::ApiVersions,
                version,
                body.clone(),
            ) {
                Ok(response) if response.error_code != KafkaCode::UNSUPPORTED_VERSION.0 => response,
                _ => decode_body(&self.addr, ApiKey::ApiVersions, 0, body)?,
            };
            if response.error_code == KafkaCode::UNSUPPORTED_VERSION.0 {
                let broker_max = response
                    .api_keys
                    .iter()
                    .find(|api| api.api_key == ApiKey::ApiVersions.as_i16())
                    .map_or(0, |api| api.max_version);
                version = broker_max.clamp(0, version - 1);
                continue;
            }
            crate::error::check(response.error_code, None)?;
            return Ok(VersionTable::from_response(&response));
        }
        Err(Error::Protocol {
            addr: self.addr.clone(),
            reason: "ApiVersions handshake did not converge".into(),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection has failed; a dead connection fails every request.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// The version of `api` to use: the highest both this client and the broker support.
    pub fn version(&self, api: ApiKey) -> Result<i16, Error> {
        self.versions.choose(api).ok_or_else(|| {
            let (min, max) = versions::client_range(api);
            Error::UnsupportedVersion {
                addr: self.addr.clone(),
                api: api.name(),
                min,
                max,
            }
        })
    }

    /// Queues a request for writing and returns the handle to its response. Requests are
    /// written in the order of these calls.
    pub fn send<R: Encode>(
        &self,
        api: ApiKey,
        version: i16,
        request: &R,
    ) -> Result<PendingResponse, Error> {
        let (reply, reply_rx) = oneshot::channel();
        let header_version = api.response_header_version(version);
        self.submit(
            api,
            version,
            request,
            ReplyKind::Response {
                header_version,
                reply,
            },
        )?;
        Ok(PendingResponse {
            addr: self.addr.clone(),
            api,
            version,
            timeout_ms: self.config.request_timeout_ms,
            reply: reply_rx,
        })
    }

    /// Sends a request and waits for its decoded response, at the negotiated version.
    pub async fn call<R: Encode, T: Decode>(
        &self,
        api: ApiKey,
        request: &R,
    ) -> Result<(i16, T), Error> {
        let version = self.version(api)?;
        let response = self.send(api, version, request)?.recv().await?;
        Ok((version, response))
    }

    /// Queues a request that gets no response (Produce with acks=0); the receiver resolves
    /// once its bytes are written.
    pub fn send_oneway<R: Encode>(
        &self,
        api: ApiKey,
        version: i16,
        request: &R,
    ) -> Result<oneshot::Receiver<Result<(), Error>>, Error> {
        let (written, written_rx) = oneshot::channel();
        self.submit(api, version, request, ReplyKind::Written(written))?;
        Ok(written_rx)
    }

    fn submit<R: Encode>(
        &self,
        api: ApiKey,
        version: i16,
        request: &R,
        reply: ReplyKind,
    ) -> Result<(), Error> {
        if let Some(reason) = self.pending.lock().expect("pending lock").closed.clone() {
            return Err(Error::Disconnected {
                addr: self.addr.clone(),
                reason,
            });
        }
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_frame(
            api,
            version,
            correlation_id,
            &self.config.client_id,
            request,
        )?;
        self.outgoing
            .send(Outgoing {
                frame,
                correlation_id,
                reply,
            })
            .map_err(|_| Error::Disconnected {
                addr: self.addr.clone(),
                reason: "writer stopped".into(),
            })
    }
}

/// Builds `length | request header | body`.
fn encode_frame<R: Encode>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    request: &R,
) -> Result<Bytes, Error> {
    let header = RequestHeader {
        request_api_key: api.as_i16(),
        request_api_version: version,
        correlation_id,
        client_id: Some(client_id.to_owned()),
        unknown_tagged_fields: Vec::new(),
    };
    let header_version = api.request_header_version(version);
    let len = header.encoded_len(header_version).map_err(Error::Encode)?
        + request.encoded_len(version).map_err(Error::Encode)?;
    let len_i32 = i32::try_from(len)
        .map_err(|_| Error::Config(format!("request of {len} bytes is too large")))?;
    let mut frame = BytesMut::with_capacity(4 + len);
    frame.put_i32(len_i32);
    header
        .encode(&mut frame, header_version)
        .map_err(Error::Encode)?;
    request.encode(&mut frame, version).map_err(Error::Encode)?;
    assert_eq!(frame.len(), 4 + len, "encoded_len matches encode");
    Ok(frame.freeze())
}

#[derive(Clone)]
struct Shared {
    addr: String,
    pending: Arc<Mutex<Pending>>,
    dead: Arc<AtomicBool>,
}

impl Shared {
    /// Marks the connection dead and fails every waiting request.
    fn fail(&self, reason: String) {
        self.dead.store(true, Ordering::Release);
        let waiting = {
            let mut pending = self.pending.lock().expect("pending lock");
            if pending.closed.is_none() {
                pending.closed = Some(reason.clone());
            }
            std::mem::take(&mut pending.waiting)
        };
        for (_, (_, reply)) in waiting {
            let _ = reply.send(Err(Error::Disconnected {
                addr: self.addr.clone(),
                reason: reason.clone(),
            }));
        }
    }

    /// Registers a request before it is written so the reader can always find it.
    fn register(
        &self,
        correlation_id: i32,
        header_version: i16,
        reply: Reply,
    ) -> Result<(), Reply> {
        let mut pending = self.pending.lock().expect("pending lock");
        if pending.closed.is_some() {
            return Err(reply);
        }
        pending
            .waiting
            .insert(correlation_id, (header_version, reply));
        Ok(())
    }

    fn take(&self, correlation_id: i32) -> Option<(i16, Reply)> {
        self.pending
            .lock()
            .expect("pending lock")
            .waiting
            .remove(&correlation_id)
    }
}

async fn write_loop(
    mut stream: OwnedWriteHalf,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    shared: Shared,
) {
    while let Some(message) = outgoing.recv().await {
        let written_reply = match message.reply {
            ReplyKind::Response {
                header_version,
                reply,
            } => {
                if let Err(reply) = shared.register(message.correlation_id, header_version, reply) {
                    let _ = reply.send(Err(Error::Disconnected {
                        addr: shared.addr.clone(),
                        reason: "connection closed".into(),
                    }));
                    continue;
                }
                None
            }
            ReplyKind::Written(written) => Some(written),
        };
        if let Err(error) = stream.write_all(&message.frame).await {
            if let Some(written) = written_reply {
                let _ = written.send(Err(Error::Disconnected {
                    addr: shared.addr.clone(),
                    reason: error.to_string(),
                }));
            }
            shared.fail(format!("write failed: {error}"));
            break;
        }
        if let Some(written) = written_reply {
            let _ = written.send(Ok(()));
        }
    }
    // Every handle is gone (or the socket failed): close our side.
    let _ = stream.shutdown().await;
    shared.fail("connection closed by the client".into());
}

async fn read_loop(mut stream: OwnedReadHalf, response_bytes_max: usize, shared: Shared) {
    let reason = loop {
        match read_frame(&mut stream, response_bytes_max).await {
            Ok(frame) => {
                if let Err(reason) = route(frame, &shared) {
                    break reason;
                }
            }
            Err(reason) => break reason,
        }
    };
    shared.fail(reason);
}

async fn read_frame(
    stream: &mut OwnedReadHalf,
    response_bytes_max: usize,
) -> Result<Bytes, String> {
    let len = match stream.read_i32().await {
        Ok(len) => len,
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err("closed by the broker".into())
        }
        Err(error) => return Err(format!("read failed: {error}")),
    };
    let len = usize::try_from(len).map_err(|_| format!("negative frame length {len}"))?;
    if len > response_bytes_max {
        return Err(format!(
            "response of {len} bytes exceeds the {response_bytes_max}-byte limit"
        ));
    }
    let mut frame = vec![0u8; len];
    stream
        .read_exact(&mut frame)
        .await
        .map_err(|error| format!("read failed: {error}"))?;
    Ok(Bytes::from(frame))
}

/// Hands a response to its request. An unknown correlation id breaks the protocol.
fn route(mut frame: Bytes, shared: &Shared) -> Result<(), String> {
    if frame.remaining() < 4 {
        return Err("response shorter than its header".into());
    }
    let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let Some((header_version, reply)) = shared.take(correlation_id) else {
        return Err(format!(
            "response with unknown correlation id {correlation_id}"
        ));
    };
    match ResponseHeader::decode(&mut frame, header_version) {
        Ok(_) => {
            let _ = reply.send(Ok(frame));
            Ok(())
        }
        Err(error) => {
            let reason = format!("bad response header: {error}");
            let _ = reply.send(Err(Error::Protocol {
                addr: shared.addr.clone(),
                reason: reason.clone(),
            }));
            Err(reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_protocol::messages::{MetadataRequest, MetadataResponse};
    use tokio::net::TcpListener;

    /// Reads one request frame and returns (api key, version, correlation id, body).
    async fn read_request(stream: &mut TcpStream) -> (i16, i16, i32, Bytes) {
        let len = stream.read_i32().await.unwrap();
        let mut frame = vec![0u8; len as usize];
        stream.read_exact(&mut frame).await.unwrap();
        let mut frame = Bytes::from(frame);
        let api = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let header_version = ApiKey::from_i16(api)
            .unwrap()
            .request_header_version(version);
        let header = RequestHeader::decode(&mut frame, header_version).unwrap();
        (api, version, header.correlation_id, frame)
    }

    async fn write_response<T: Encode>(
        stream: &mut TcpStream,
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &T,
    ) {
        let mut buf = BytesMut::new();
        let header = ResponseHeader {
            correlation_id,
            unknown_tagged_fields: Vec::new(),
        };
        header
            .encode(&mut buf, api.response_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        stream.write_i32(buf.len() as i32).await.unwrap();
        stream.write_all(&buf).await.unwrap();
    }

    fn api_versions_response() -> ApiVersionsResponse {
        let api_keys = [ApiKey::ApiVersions, ApiKey::Metadata]
            .iter()
            .map(
                |api| freshet_protocol::messages::api_versions_response::ApiVersion {
                    api_key: api.as_i16(),
                    min_version: 0,
                    max_version: api.valid_versions().1,
                    ..Default::default()
                },
            )
            .collect();
        ApiVersionsResponse {
            api_keys,
            ..Default::default()
        }
    }

    /// A fake broker that answers ApiVersions, then answers two pipelined Metadata requests
    /// in reverse order: the client must match responses by correlation id.
    #[tokio::test]
    async fn pipelined_responses_are_matched_by_correlation_id() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (api, version, correlation_id, _) = read_request(&mut stream).await;
            assert_eq!(api, ApiKey::ApiVersions.as_i16());
            write_response(
                &mut stream,
                ApiKey::ApiVersions,
                version,
                correlation_id,
                &api_versions_response(),
            )
            .await;
            let first = read_request(&mut stream).await;
            let second = read_request(&mut stream).await;
            for (_, version, correlation_id, _) in [second, first] {
                let response = MetadataResponse {
                    cluster_id: Some(format!("answer-{correlation_id}")),
                    ..Default::default()
                };
                write_response(
                    &mut stream,
                    ApiKey::Metadata,
                    version,
                    correlation_id,
                    &response,
                )
                .await;
            }
        });
        let connection = Connection::connect(&addr, ConnectionConfig::default())
            .await
            .unwrap();
        let version = connection.version(ApiKey::Metadata).unwrap();
        assert_eq!(version, versions::client_range(ApiKey::Metadata).1);
        let request = MetadataRequest::default();
        let a = connection
            .send(ApiKey::Metadata, version, &request)
            .unwrap();
        let b = connection
            .send(ApiKey::Metadata, version, &request)
            .unwrap();
        let a: MetadataResponse = a.recv().await.unwrap();
        let b: MetadataResponse = b.recv().await.unwrap();
        assert_eq!(a.cluster_id.as_deref(), Some("answer-1"));
        assert_eq!(b.cluster_id.as_deref(), Some("answer-2"));
        server.await.unwrap();
        // The fake broker hung up: the next request fails instead of hanging.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let error = connection
            .send(ApiKey::Metadata, version, &request)
            .map(|pending| async { pending.recv::<MetadataResponse>().await });
        match error {
            Err(Error::Disconnected { .. }) => {}
            Ok(pending) => assert!(matches!(pending.await, Err(Error::Disconnected { .. }))),
            Err(other) => panic!("unexpected {other}"),
        }
        assert!(connection.is_dead());
    }

    /// A broker that does not know ApiVersions v3 answers in v0 with its range (KIP-511).
    #[tokio::test]
    async fn handshake_falls_back_to_the_broker_version() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (_, version, correlation_id, _) = read_request(&mut stream).await;
            assert_eq!(version, versions::API_VERSIONS_FIRST_TRY);
            let mut refusal = api_versions_response();
            refusal.error_code = KafkaCode::UNSUPPORTED_VERSION.0;
            refusal.api_keys[0].max_version = 2;
            write_response(
                &mut stream,
                ApiKey::ApiVersions,
                0,
                correlation_id,
                &refusal,
            )
            .await;
            let (_, version, correlation_id, _) = read_request(&mut stream).await;
            assert_eq!(version, 2);
            write_response(
                &mut stream,
                ApiKey::ApiVersions,
                2,
                correlation_id,
                &api_versions_response(),
            )
            .await;
        });
        let connection = Connection::connect(&addr, ConnectionConfig::default())
            .await
            .unwrap();
        server.await.unwrap();
        assert!(connection.version(ApiKey::Metadata).is_ok());
        assert!(matches!(
            connection.version(ApiKey::Produce),
            Err(Error::UnsupportedVersion { .. })
        ));
    }

    #[tokio::test]
    async fn oversized_response_closes_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = read_request(&mut stream).await;
            stream.write_i32(i32::MAX).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
        let error = Connection::connect(&addr, ConnectionConfig::default())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Disconnected { .. }), "{error}");
    }
}
