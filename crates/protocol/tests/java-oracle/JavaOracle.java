// Cross-checks freshet-protocol's encodings against Kafka's own generated Java classes.
//
// Reads samples written by the Rust test `write_java_oracle_samples` (message name, version,
// bytes encoded by our code), parses each with Kafka's `<Name>Data` class, re-serializes it with
// Kafka's code and compares the bytes. Usage: java JavaOracle SAMPLES_FILE
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.FileInputStream;
import java.lang.reflect.Constructor;
import java.nio.ByteBuffer;
import java.util.TreeMap;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Message;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.common.protocol.Readable;

public class JavaOracle {
    static Class<?> find(String name) {
        for (String candidate : new String[] {name + "Data", name}) {
            try {
                return Class.forName("org.apache.kafka.common.message." + candidate);
            } catch (ClassNotFoundException e) {
                // try the next spelling
            }
        }
        return null;
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) sb.append(String.format("%02x", x));
        return sb.toString();
    }

    public static void main(String[] args) throws Exception {
        int same = 0, different = 0, rejected = 0, noClass = 0;
        TreeMap<String, Integer> rejectedBy = new TreeMap<>();
        TreeMap<String, Integer> missing = new TreeMap<>();
        try (DataInputStream in = new DataInputStream(new FileInputStream(args[0]))) {
            while (true) {
                int nameLen;
                try {
                    nameLen = in.readUnsignedShort();
                } catch (EOFException e) {
                    break;
                }
                byte[] nameBytes = new byte[nameLen];
                in.readFully(nameBytes);
                String name = new String(nameBytes, "UTF-8");
                short version = in.readShort();
                byte[] ours = new byte[in.readInt()];
                in.readFully(ours);
                Class<?> cls = find(name);
                if (cls == null) {
                    noClass++;
                    missing.merge(name, 1, Integer::sum);
                    continue;
                }
                byte[] theirs;
                try {
                    Constructor<?> ctor = cls.getConstructor(Readable.class, short.class);
                    ByteBuffer buf = ByteBuffer.wrap(ours);
                    Message msg = (Message) ctor.newInstance(new ByteBufferAccessor(buf), version);
                    if (buf.hasRemaining()) {
                        throw new IllegalStateException(buf.remaining() + " bytes left");
                    }
                    ObjectSerializationCache cache = new ObjectSerializationCache();
                    ByteBuffer out = ByteBuffer.allocate(msg.size(cache, version));
                    msg.write(new ByteBufferAccessor(out), cache, version);
                    theirs = out.array();
                } catch (Exception e) {
                    Throwable cause = e.getCause() != null ? e.getCause() : e;
                    rejected++;
                    rejectedBy.merge(name + " v" + version + ": " + cause.getClass().getSimpleName() + ": " + cause.getMessage(), 1, Integer::sum);
                    continue;
                }
                if (java.util.Arrays.equals(ours, theirs)) {
                    same++;
                } else {
                    different++;
                    if (different <= 20) {
                        System.out.println("DIFFERENT " + name + " v" + version);
                        System.out.println("  ours   " + hex(ours));
                        System.out.println("  theirs " + hex(theirs));
                    }
                }
            }
        }
        for (var e : rejectedBy.entrySet()) System.out.println("rejected by Java: " + e.getKey() + " x" + e.getValue());
        for (var e : missing.entrySet()) System.out.println("no Java class: " + e.getKey() + " x" + e.getValue());
        System.out.printf("identical %d, different %d, rejected by Java %d, no Java class %d%n", same, different, rejected, noClass);
        if (different > 0) System.exit(1);
    }
}
