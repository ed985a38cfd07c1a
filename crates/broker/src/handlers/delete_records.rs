//! DeleteRecords: moves a partition's log start offset forward (durably) and drops the
//! segments wholly below it. Offset -1 means the high watermark; beyond it is
//! OFFSET_OUT_OF_RANGE, as in Kafka.

use crate::broker::Context;
use crate::codes;
use freshet_log::LogError;
use freshet_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use freshet_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use std::sync::Arc;

/// The request's "up to the high watermark" offset.
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(ctx: Arc<Context>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    // Log start offsets are checkpointed with fsyncs: off the async workers.
    tokio::task::spawn_blocking(move || delete_all(&ctx, request))
        .await
        .unwrap_or_default()
}

fn delete_all(ctx: &Context, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| DeleteRecordsTopicResult {
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    partition_result(
                        p.partition_index,
                        delete_one(ctx, &t.name, p.partition_index, p.offset),
                    )
                })
                .collect(),
            name: t.name,
            ..Default::default()
        })
        .collect();
    DeleteRecordsResponse {
        topics,
        ..Default::default()
    }
}

/// The new low watermark, or the error code.
fn delete_one(ctx: &Context, topic: &str, partition: i32, offset: i64) -> Result<i64, i16> {
    let p = ctx
        .partitions
        .get(topic, partition)
        .ok_or_else(|| ctx.unserved_partition_error(topic, partition))?;
    let high_watermark = p.high_watermark();
    let target = if offset == HIGH_WATERMARK {
        high_watermark
    } else {
        offset
    };
    if !(0..=high_watermark).contains(&target) {
        return Err(codes::OFFSET_OUT_OF_RANGE);
    }
    p.log.delete_records_before(target).map_err(|e| match e {
        LogError::OffsetOutOfRange { .. } => codes::OFFSET_OUT_OF_RANGE,
        other => other.kafka_error_code(),
    })
}

fn partition_result(
    partition_index: i32,
    result: Result<i64, i16>,
) -> DeleteRecordsPartitionResult {
    let (low_watermark, error_code) = match result {
        Ok(low_watermark) => (low_watermark, codes::NONE),
        Err(code) => (-1, code),
    };
    DeleteRecordsPartitionResult {
        partition_index,
        low_watermark,
        error_code,
        ..Default::default()
    }
}
