// Test driver, not product code: reads batches that freshet-records built (see
// verify-ours.sh) with Kafka's own Java reader, checks their CRC and that every record equals
// GoldenBatches.expectedRecords(). Exits non-zero on the first difference.

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;

import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.record.MemoryRecords;
import org.apache.kafka.common.record.Record;
import org.apache.kafka.common.record.RecordBatch;

public final class VerifyOurs {
    static byte[] bytes(ByteBuffer buffer) {
        if (buffer == null) return null;
        byte[] out = new byte[buffer.remaining()];
        buffer.duplicate().get(out);
        return out;
    }

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] args) throws Exception {
        List<GoldenBatches.Rec> expected = GoldenBatches.expectedRecords();
        for (String name : args) {
            byte[] file = Files.readAllBytes(Path.of(name));
            MemoryRecords records = MemoryRecords.readableRecords(ByteBuffer.wrap(file));
            int batches = 0;
            for (RecordBatch batch : records.batches()) {
                batches++;
                batch.ensureValid();
                check(batch.baseOffset() == GoldenBatches.BASE_OFFSET, name + " base offset");
                check(batch.producerId() == GoldenBatches.PRODUCER_ID, name + " producer id");
                check(batch.baseSequence() == GoldenBatches.BASE_SEQUENCE, name + " base sequence");
                check(batch.maxTimestamp() == GoldenBatches.BASE_TIMESTAMP_MS + 50, name + " max ts");
                check(batch.countOrNull() == expected.size(), name + " count");
                Iterator<Record> it = batch.iterator();
                for (int i = 0; i < expected.size(); i++) {
                    Record r = it.next();
                    GoldenBatches.Rec e = expected.get(i);
                    check(r.offset() == GoldenBatches.BASE_OFFSET + i, name + " offset " + i);
                    check(r.timestamp() == e.timestampMs(), name + " timestamp " + i);
                    check(Arrays.equals(bytes(r.key()), e.key()), name + " key " + i);
                    check(Arrays.equals(bytes(r.value()), e.value()), name + " value " + i);
                    Header[] headers = r.headers();
                    check(headers.length == e.headers().length, name + " header count " + i);
                    for (int h = 0; h < headers.length; h++) {
                        check(headers[h].key().equals(e.headers()[h].key()), name + " header key");
                        check(Arrays.equals(headers[h].value(), e.headers()[h].value()), name + " header value");
                    }
                }
                check(!it.hasNext(), name + " extra records");
                System.out.println("ok " + name + " (" + batch.compressionType() + ", " + file.length + " bytes)");
            }
            check(batches == 1, name + " batch count");
        }
    }
}
