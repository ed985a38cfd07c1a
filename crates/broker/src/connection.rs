//! One client connection: frames in, requests decoded and dispatched in order, responses out
//! in the same order (pipelining), whatever order their handlers finish in.
//!
//! Kafka's rules mirrored here: a frame over the size limit, an unknown API key, a header
//! that does not parse, or a body that does not parse at a supported version closes the
//! connection; an unsupported ApiVersions version is answered (KIP-511); a refused
//! Produce with acks=0 closes it too (there is no response to carry the error); everything
//! else is answered with error codes inside the response.

use crate::broker::Context;
use crate::handlers::{self, Reply};
use bytes::{Bytes, BytesMut};
use freshet_protocol::{frame, wire, ApiKey, Request, Response};
use futures::stream::{FuturesOrdered, StreamExt};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

/// Requests of one connection being handled at once. Beyond this the connection stops
/// reading until earlier responses are written (Kafka clients default to 5 in flight).
pub const IN_FLIGHT_REQUESTS_MAX: usize = 64;

/// Largest response frame written: a fetch answer is bounded by the client's max_bytes, so
/// this only guards against encoding bugs (Kafka's frames are i32-sized).
const RESPONSE_BYTES_MAX: usize = i32::MAX as usize;

/// How much the read buffer grows per read: a frame's declared size is never allocated up
/// front, so a client that claims 100 MiB and sends 10 bytes costs 10 bytes.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Responses are encoded into one buffer per connection, kept between responses so that a
/// response costs no allocation; a buffer that grew past this (a large fetch) is dropped.
const ENCODE_BUFFER_KEEP_BYTES: usize = 1024 * 1024;

type Pending = Pin<Box<dyn Future<Output = Option<Encoded>> + Send>>;

/// A response ready to write: its correlation id, version and body.
struct Encoded {
    correlation_id: i32,
    version: i16,
    response: Response,
}

/// Why a connection ends; logged at debug level since clients close all the time.
// The payloads are read only through Debug, in that log line.
#[allow(dead_code)]
#[derive(Debug)]
enum Close {
    Eof,
    Io(std::io::Error),
    Protocol(String),
    Shutdown,
}

pub async fn serve(ctx: Arc<Context>, stream: TcpStream, peer: SocketAddr) {
    let (mut reader, writer) = stream.into_split();
    let mut writer = BufWriter::new(writer);
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    let mut in_flight: FuturesOrdered<Pending> = FuturesOrdered::new();
    let mut shutdown = ctx.shutdown.clone();
    let frame_bytes_max = ctx.config.socket_request_max_bytes as usize;
    // Set while a membership request (see `is_barrier`) is unanswered: nothing after it is
    // read or started until then.
    let mut barrier = false;
    let reason = loop {
        let can_read = in_flight.len() < IN_FLIGHT_REQUESTS_MAX && !barrier;
        tokio::select! {
            biased;
            _ = shutdown.changed() => break Close::Shutdown,
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(encoded) = done {
                    if let Err(e) = write_response(&mut writer, &mut out, encoded, RESPONSE_BYTES_MAX).await {
                        break e;
                    }
                }
                if barrier && in_flight.is_empty() {
                    // The membership request was the last one started: go on with the frames
                    // that arrived behind it.
                    match take_frames(&ctx, peer, &mut buf, frame_bytes_max, &mut in_flight) {
                        Ok(stopped) => barrier = stopped,
                        Err(reason) => break reason,
                    }
                }
                if in_flight.is_empty() || buf.is_empty() {
                    if let Err(e) = writer.flush().await { break Close::Io(e); }
                }
            }
            read = read_more(&mut reader, &mut buf), if can_read => {
                if let Err(reason) = read {
                    break reason;
                }
                match take_frames(&ctx, peer, &mut buf, frame_bytes_max, &mut in_flight) {
                    Ok(stopped) => barrier = stopped,
                    Err(reason) => break reason,
                }
            }
        }
    };
    // Finish what was accepted before the close, so pipelined requests before a bad frame
    // still get their answers, as they would from Kafka.
    if !matches!(reason, Close::Shutdown) {
        while let Some(done) = in_flight.next().await {
            if let Some(encoded) = done {
                if write_response(&mut writer, &mut out, encoded, RESPONSE_BYTES_MAX)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
        let _ = writer.flush().await;
    }
    tracing::debug!(%peer, ?reason, "connection closed");
}

async fn read_more(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
) -> Result<(), Close> {
    buf.reserve(READ_CHUNK_BYTES);
    match reader.read_buf(buf).await {
        Ok(0) => Err(Close::Eof),
        Ok(_) => Ok(()),
        Err(e) => Err(Close::Io(e)),
    }
}

/// Splits off complete frames in `buf` and dispatches them, stopping after a membership
/// request (see [`is_barrier`]); returns whether it stopped there (frames behind it stay in
/// `buf`).
fn take_frames(
    ctx: &Arc<Context>,
    peer: SocketAddr,
    buf: &mut BytesMut,
    frame_bytes_max: usize,
    in_flight: &mut FuturesOrdered<Pending>,
) -> Result<bool, Close> {
    while let Some(frame) =
        frame::decode_frame(buf, frame_bytes_max).map_err(|e| Close::Protocol(e.to_string()))?
    {
        let barrier = is_barrier(&frame);
        in_flight.push_back(dispatch_frame(ctx, peer, frame)?);
        if barrier {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Requests whose answer can change what the requests behind them mean: JoinGroup and
/// SyncGroup, which the coordinator may hold for a whole rebalance. Kafka handles one request
/// of a connection at a time, so an OffsetCommit pipelined behind a member's own rejoin is
/// judged against the generation the rebalance ends with; Freshet starts the requests of a
/// connection as they arrive (answering in order), except behind these.
fn is_barrier(frame: &Bytes) -> bool {
    matches!(
        wire::peek_key_and_version(frame).and_then(|(key, _)| ApiKey::from_i16(key)),
        Some(ApiKey::JoinGroup | ApiKey::SyncGroup)
    )
}

/// Decodes one request frame and starts handling it.
fn dispatch_frame(
    ctx: &Arc<Context>,
    peer: SocketAddr,
    mut frame: Bytes,
) -> Result<Pending, Close> {
    let (key, version) = wire::peek_key_and_version(&frame)
        .ok_or_else(|| Close::Protocol("frame too short for a request header".into()))?;
    let api_key =
        ApiKey::from_i16(key).ok_or_else(|| Close::Protocol(format!("unknown api key {key}")))?;
    let header = wire::decode_request_header(&mut frame)
        .map_err(|e| Close::Protocol(format!("bad request header: {e}")))?;
    if !handlers::is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: a newer ApiVersions than ours gets UNSUPPORTED_VERSION with our ranges,
            // encoded at v0 so that the client can read them and retry.
            let response = handlers::api_versions::unsupported_version_response();
            return Ok(ready(header.correlation_id, 0, response));
        }
        return Err(Close::Protocol(format!(
            "unsupported version {version} of {}",
            api_key.name()
        )));
    }
    let request = Request::decode(api_key, version, &mut frame)
        .map_err(|e| Close::Protocol(format!("cannot parse {} v{version}: {e}", api_key.name())))?;
    let correlation_id = header.correlation_id;
    Ok(
        match handlers::dispatch(ctx.clone(), header, request, peer) {
            Reply::Now(response) => ready(correlation_id, version, response),
            Reply::Later(future) => Box::pin(async move {
                Some(Encoded {
                    correlation_id,
                    version,
                    response: future.await,
                })
            }),
            Reply::Nothing => Box::pin(std::future::ready(None)),
            Reply::Close(reason) => return Err(Close::Protocol(reason)),
        },
    )
}

fn ready(correlation_id: i32, version: i16, response: Response) -> Pending {
    Box::pin(std::future::ready(Some(Encoded {
        correlation_id,
        version,
        response,
    })))
}

/// Encodes `e` into `out` (emptied first, its capacity reused) and writes it.
async fn write_response(
    writer: &mut BufWriter<OwnedWriteHalf>,
    out: &mut BytesMut,
    e: Encoded,
    frame_bytes_max: usize,
) -> Result<(), Close> {
    if out.capacity() > ENCODE_BUFFER_KEEP_BYTES {
        *out = BytesMut::new();
    }
    out.clear();
    if let Err(err) = wire::encode_response(
        e.correlation_id,
        e.version,
        &e.response,
        out,
        frame_bytes_max,
    ) {
        // A handler built a response its version cannot carry: a bug of ours, but the client
        // only loses this connection.
        let api = e.response.api_key().name();
        tracing::error!(api, version = e.version, error = %err, "cannot encode response");
        return Err(Close::Protocol(format!("response encoding failed: {err}")));
    }
    writer.write_all(out).await.map_err(Close::Io)
}
