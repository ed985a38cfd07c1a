//! One partition's durable, segmented log.
