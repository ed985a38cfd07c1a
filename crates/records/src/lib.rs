//! RecordBatch v2: header, CRC32C, offset patching, record iteration, compression.
