//! InitProducerId: hands an idempotent producer a fresh producer id with epoch 0.
//!
//! Ids come from blocks the metadata quorum assigns to this broker (so no two brokers, and
//! no two incarnations of this one, hand out the same id). A block is asked for when the
//! manager wants one: at start, and when the current block is 90% used. Transactional
//! producers are refused as `freshet-txn` decides until the transaction coordinator exists.

use crate::broker::Context;
use crate::codes;
use freshet_metadata::controller;
use freshet_metadata::MetadataRecord;
use freshet_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use freshet_txn::{
    InitProducerIdRequest as TxnRequest, ProducerIdManager, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};
use tokio::sync::Mutex;

/// The broker's producer-id manager. An async mutex: a request that must wait for a block
/// holds it across the metadata proposal, so concurrent requests share that one block.
#[derive(Debug, Default)]
pub struct ProducerIds {
    manager: Mutex<ProducerIdManager>,
}

pub async fn handle(ctx: &Context, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut manager = ctx.producer_ids.manager.lock().await;
    if manager.wants_block() {
        fetch_block(ctx, &mut manager).await;
    }
    let txn_request = TxnRequest {
        transactional_id: request.transactional_id.as_deref(),
        transaction_timeout_ms: request.transaction_timeout_ms,
        producer_id: request.producer_id,
        producer_epoch: request.producer_epoch,
    };
    match manager.init_producer_id(&txn_request) {
        Ok(granted) => InitProducerIdResponse {
            error_code: codes::NONE,
            producer_id: granted.producer_id,
            producer_epoch: granted.producer_epoch,
            ..Default::default()
        },
        Err(e) => InitProducerIdResponse {
            error_code: e.kafka_error_code(),
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            ..Default::default()
        },
    }
}

/// Asks the quorum for the next block and hands it to the manager. Failures are logged and
/// leave the manager able to ask again; the request is then answered from what it has
/// (COORDINATOR_LOAD_IN_PROGRESS, retriable, when it has nothing).
async fn fetch_block(ctx: &Context, manager: &mut ProducerIdManager) {
    let records = match controller::allocate_producer_ids(&ctx.quorum.image(), ctx.node_id()) {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!(error = %e, "cannot allocate producer ids");
            return;
        }
    };
    let Some(MetadataRecord::ProducerIds(block)) = records.first().cloned() else {
        unreachable!("allocate_producer_ids returns one ProducerIds record");
    };
    manager.block_request_sent();
    let added = match ctx.propose(records).await {
        // Another proposal may have taken the same ids first; the applied image says which
        // block is ours.
        Ok(()) if ctx.quorum.image().last_producer_ids_block() == Some(block) => manager
            .add_block(block.first_producer_id, block.block_size)
            .map_err(|e| e.to_string()),
        Ok(()) => Err("block taken by a concurrent allocation".to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(why) = added {
        tracing::warn!(error = %why, "producer id block not added");
        manager.block_request_failed();
    }
}
