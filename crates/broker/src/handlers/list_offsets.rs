//! ListOffsets: earliest, latest, max-timestamp and by-timestamp lookups, answered from the
//! log's indexes, refined to the exact record by decoding the one batch found.

use crate::broker::Context;
use crate::partitions::Partition;
use bytes::Bytes;
use freshet_log::{OffsetAndTimestamp, OffsetQuery};
use freshet_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use freshet_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

/// Special timestamps of the request (Kafka's ListOffsetsRequest constants).
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

/// Decompressing one batch to find a record must not inflate without bound.
const DECOMPRESSED_BYTES_MAX: usize = 64 * 1024 * 1024;

pub fn handle(ctx: &Context, request: ListOffsetsRequest, _version: i16) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        ..Default::default()
                    };
                    match ctx.partitions.get(&t.name, p.partition_index) {
                        None => ListOffsetsPartitionResponse {
                            error_code: ctx.unserved_partition_error(&t.name, p.partition_index),
                            timestamp: -1,
                            offset: -1,
                            leader_epoch: -1,
                            ..base
                        },
                        Some(led) => lookup(&led, p.timestamp, base),
                    }
                })
                .collect();
            ListOffsetsTopicResponse {
                name: t.name,
                partitions,
                ..Default::default()
            }
        })
        .collect();
    ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}

fn lookup(
    p: &Partition,
    timestamp: i64,
    base: ListOffsetsPartitionResponse,
) -> ListOffsetsPartitionResponse {
    let high_watermark = p.high_watermark();
    // An offline log answers KAFKA_STORAGE_ERROR even for the offsets kept in memory.
    let found = p.log.check_not_failed().and_then(|()| match timestamp {
        LATEST => Ok(Some((high_watermark, -1))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((p.log.log_start_offset(), -1))),
        MAX_TIMESTAMP => p
            .log
            .offset_for(OffsetQuery::MaxTimestamp)
            .map(|f| f.and_then(|f| refine(f, |ts, max| ts == max))),
        ts if ts >= 0 => p
            .log
            .offset_for(OffsetQuery::Timestamp(ts))
            .map(|f| f.and_then(|f| refine(f, |t, _| t >= ts))),
        _ => Ok(None),
    });
    match found {
        // An offset consumers cannot read yet is not an answer.
        Ok(Some((offset, ts))) if offset <= high_watermark => ListOffsetsPartitionResponse {
            offset,
            timestamp: ts,
            leader_epoch: p.leader_epoch,
            ..base
        },
        Ok(_) => ListOffsetsPartitionResponse {
            offset: -1,
            timestamp: -1,
            leader_epoch: p.leader_epoch,
            ..base
        },
        Err(e) => ListOffsetsPartitionResponse {
            error_code: e.kafka_error_code(),
            offset: -1,
            timestamp: -1,
            leader_epoch: -1,
            ..base
        },
    }
}

/// The first record of the batch the log found whose timestamp satisfies `wanted(ts, max)`,
/// as (offset, timestamp). Falls back to the log's batch-level answer if the batch cannot
/// be decoded.
fn refine(found: OffsetAndTimestamp, wanted: impl Fn(i64, i64) -> bool) -> Option<(i64, i64)> {
    let fallback = Some((found.offset, found.timestamp));
    let Some(slice) = found.batch else {
        return fallback;
    };
    let Ok(bytes) = slice.read_to_vec() else {
        return fallback;
    };
    let Ok(records) = freshet_records::records(&Bytes::from(bytes), DECOMPRESSED_BYTES_MAX) else {
        return fallback;
    };
    let max = records.header().max_timestamp;
    records
        .flatten()
        .find(|r| wanted(r.timestamp, max))
        .map(|r| (r.offset, r.timestamp))
        .or(fallback)
}
