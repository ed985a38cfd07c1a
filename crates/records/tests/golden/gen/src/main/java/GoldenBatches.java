// Test-data driver, not product code: writes RecordBatch v2 files with Kafka's own Java
// batch writer (MemoryRecordsBuilder, kafka-clients 4.1.0), one per compression codec, plus a
// transaction-marker control batch. The Rust test crates/records/tests/golden.rs rebuilds the
// same expected records (keep expectedRecords() in step with golden_records() there).

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.ControlRecordType;
import org.apache.kafka.common.record.EndTransactionMarker;
import org.apache.kafka.common.record.MemoryRecords;
import org.apache.kafka.common.record.MemoryRecordsBuilder;
import org.apache.kafka.common.record.RecordBatch;
import org.apache.kafka.common.record.TimestampType;

public final class GoldenBatches {
    static final long BASE_OFFSET = 1000L;
    static final long BASE_TIMESTAMP_MS = 1_700_000_000_000L;
    static final long PRODUCER_ID = 4242L;
    static final short PRODUCER_EPOCH = 3;
    static final int BASE_SEQUENCE = 17;
    static final int PARTITION_LEADER_EPOCH = 5;
    /// Large enough to span several 32 KiB snappy (xerial) chunks and 64 KiB lz4 blocks.
    static final int BIG_VALUE_BYTES = 150_000;

    record Rec(long timestampMs, byte[] key, byte[] value, Header[] headers) {}

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /// Compressible but not trivial: a byte pattern with a slow drift.
    static byte[] bigValue() {
        byte[] out = new byte[BIG_VALUE_BYTES];
        for (int i = 0; i < out.length; i++) out[i] = (byte) ((i % 251) ^ (i / 1000));
        return out;
    }

    static List<Rec> expectedRecords() {
        List<Rec> recs = new ArrayList<>();
        recs.add(new Rec(BASE_TIMESTAMP_MS, utf8("key-0"), utf8("value-0"), new Header[] {
            new RecordHeader("dup", utf8("first")),
            new RecordHeader("dup", utf8("second")),
            new RecordHeader("null-value", (byte[]) null),
            new RecordHeader("empty", new byte[0]),
        }));
        recs.add(new Rec(BASE_TIMESTAMP_MS + 50, null, utf8("value with a null key"), new Header[0]));
        recs.add(new Rec(BASE_TIMESTAMP_MS + 20, utf8("tombstone"), null, new Header[] {
            new RecordHeader("ünïcödé", utf8("✓")),
        }));
        recs.add(new Rec(BASE_TIMESTAMP_MS + 30, utf8("big"), bigValue(), new Header[0]));
        recs.add(new Rec(BASE_TIMESTAMP_MS - 10, new byte[0], new byte[0], new Header[0]));
        return recs;
    }

    static MemoryRecords build(Compression compression, boolean transactional) {
        ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
        MemoryRecordsBuilder builder = MemoryRecords.builder(buffer, RecordBatch.MAGIC_VALUE_V2,
            compression, TimestampType.CREATE_TIME, BASE_OFFSET, RecordBatch.NO_TIMESTAMP,
            PRODUCER_ID, PRODUCER_EPOCH, BASE_SEQUENCE, transactional, false, PARTITION_LEADER_EPOCH);
        for (Rec r : expectedRecords()) builder.append(r.timestampMs(), r.key(), r.value(), r.headers());
        return builder.build();
    }

    static void write(Path dir, String name, MemoryRecords records) throws IOException {
        ByteBuffer buf = records.buffer();
        byte[] bytes = new byte[buf.remaining()];
        buf.get(bytes);
        Files.write(dir.resolve(name), bytes);
        System.out.println("wrote " + name + " (" + bytes.length + " bytes)");
    }

    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args.length > 0 ? args[0] : "..");
        write(dir, "none.bin", build(Compression.NONE, false));
        write(dir, "gzip.bin", build(Compression.gzip().build(), false));
        write(dir, "snappy.bin", build(Compression.snappy().build(), false));
        write(dir, "lz4.bin", build(Compression.lz4().build(), false));
        write(dir, "zstd.bin", build(Compression.zstd().build(), false));
        write(dir, "zstd-transactional.bin", build(Compression.zstd().build(), true));
        write(dir, "control-commit.bin", MemoryRecords.withEndTransactionMarker(2000L,
            BASE_TIMESTAMP_MS, PARTITION_LEADER_EPOCH, PRODUCER_ID, PRODUCER_EPOCH,
            new EndTransactionMarker(ControlRecordType.COMMIT, 77)));
    }
}
