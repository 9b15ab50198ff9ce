package io.userops;

import com.sun.jna.Callback;
import com.sun.jna.CallbackReference;
import com.sun.jna.Function;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.Structure;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;

/**
 * The Arrow C Data Interface as far as the wrappers need it: read the record batches the
 * library exports (and always release them), and hand it a string array it releases.
 */
final class Arrow {
    private Arrow() {}

    /** {@code struct ArrowArray}. */
    @Structure.FieldOrder({"length", "null_count", "offset", "n_buffers", "n_children", "buffers", "children",
        "dictionary", "release", "private_data"})
    public static final class CArray extends Structure {
        public long length;
        public long null_count;
        public long offset;
        public long n_buffers;
        public long n_children;
        public Pointer buffers;
        public Pointer children;
        public Pointer dictionary;
        public Pointer release;
        public Pointer private_data;

        static final int RELEASE_OFFSET = new CArray().fieldOffset("release");

        public CArray() {}

        CArray(Pointer p) {
            super(p);
            read();
        }

        CArray child(int i) {
            return new CArray(children.getPointer((long) i * Native.POINTER_SIZE));
        }

        Pointer buffer(int i) {
            return buffers.getPointer((long) i * Native.POINTER_SIZE);
        }
    }

    /** {@code struct ArrowSchema}. */
    @Structure.FieldOrder({"format", "name", "metadata", "flags", "n_children", "children", "dictionary", "release",
        "private_data"})
    public static final class CSchema extends Structure {
        public Pointer format;
        public Pointer name;
        public Pointer metadata;
        public long flags;
        public long n_children;
        public Pointer children;
        public Pointer dictionary;
        public Pointer release;
        public Pointer private_data;

        static final int RELEASE_OFFSET = new CSchema().fieldOffset("release");

        public CSchema() {}

        CSchema(Pointer p) {
            super(p);
            read();
        }

        CSchema child(int i) {
            return new CSchema(children.getPointer((long) i * Native.POINTER_SIZE));
        }

        String formatString() {
            return format.getString(0, "UTF-8");
        }

        String nameString() {
            return name == null ? "" : name.getString(0, "UTF-8");
        }
    }

    /** Call a struct's release callback (its first argument is the struct itself). */
    private static void callRelease(Pointer release, Pointer struct) {
        Function.getFunction(release).invoke(Void.class, new Object[] {struct});
    }

    /**
     * One exported record batch (a struct array, one child per column). {@link #close} calls
     * both release callbacks once, on every path: use it in try-with-resources.
     */
    static final class Batch implements AutoCloseable {
        final CArray array = new CArray();
        final CSchema schema = new CSchema();

        int rows() {
            return (int) array.length;
        }

        /**
         * The column named {@code name}, of Arrow format {@code format}: a missing column or
         * another type is a bug of the library, reported rather than misread.
         */
        Column column(String name, String format) {
            for (int i = 0; i < schema.n_children; i++) {
                CSchema s = schema.child(i);
                if (name.equals(s.nameString())) {
                    if (!format.equals(s.formatString())) {
                        throw UserOpsException.of(UserOpsException.INTERNAL,
                            "column " + name + " is " + s.formatString() + ", not " + format, null);
                    }
                    return new Column(array.child(i));
                }
            }
            throw UserOpsException.of(UserOpsException.INTERNAL, "the exported batch has no column " + name, null);
        }

        @Override
        public void close() {
            if (array.release != null) {
                Pointer release = array.release;
                array.release = null;
                callRelease(release, array.getPointer());
            }
            if (schema.release != null) {
                Pointer release = schema.release;
                schema.release = null;
                callRelease(release, schema.getPointer());
            }
        }
    }

    /** One column of a batch: reads values by row. */
    static final class Column {
        private final CArray a;

        Column(CArray a) {
            this.a = a;
        }

        private static boolean bit(Pointer bits, long i) {
            return ((bits.getByte(i / 8) >> (i % 8)) & 1) != 0;
        }

        boolean isNull(int row) {
            if (a.null_count == 0) {
                return false;
            }
            Pointer validity = a.buffer(0);
            return validity != null && !bit(validity, a.offset + row);
        }

        /** uint64 ("L"), int64 ("l") or a timestamp's milliseconds ("tsm:UTC"). */
        long getLong(int row) {
            return a.buffer(1).getLong(8 * (a.offset + row));
        }

        boolean getBoolean(int row) {
            return bit(a.buffer(1), a.offset + row);
        }

        Instant getInstant(int row) {
            return Instant.ofEpochMilli(getLong(row));
        }

        /** A utf8 string ("u": int32 offsets). */
        String getString(int row) {
            long i = a.offset + row;
            int start = a.buffer(1).getInt(4 * i);
            int end = a.buffer(1).getInt(4 * (i + 1));
            byte[] bytes = a.buffer(2).getByteArray(start, end - start);
            return new String(bytes, StandardCharsets.UTF_8);
        }

        /** A nullable string: null where the value is null. */
        String getStringOrNull(int row) {
            return isNull(row) ? null : getString(row);
        }
    }

    /** The release callback of what {@link Utf8Input} hands over: the memory stays Java's. */
    public interface Release extends Callback {
        void invoke(Pointer struct);
    }

    private static final class ReleaseArray implements Release {
        @Override
        public void invoke(Pointer struct) {
            struct.setPointer(CArray.RELEASE_OFFSET, null);
        }
    }

    private static final class ReleaseSchema implements Release {
        @Override
        public void invoke(Pointer struct) {
            struct.setPointer(CSchema.RELEASE_OFFSET, null);
        }
    }

    // Held for the life of the class: native code keeps their addresses.
    private static final Release RELEASE_ARRAY = new ReleaseArray();
    private static final Release RELEASE_SCHEMA = new ReleaseSchema();

    /**
     * Strings as a large_utf8 array ("U") to move into the library, which calls its release
     * callbacks before the call returns. The buffers are Java memory held by this object: keep
     * it reachable until the call returns.
     */
    static final class Utf8Input {
        final CArray array = new CArray();
        final CSchema schema = new CSchema();
        private final Memory offsets;
        private final Memory data;
        private final Memory buffers;
        private final Memory format;

        Utf8Input(List<String> values) {
            byte[][] encoded = new byte[values.size()][];
            long total = 0;
            for (int i = 0; i < encoded.length; i++) {
                String v = values.get(i);
                if (v == null) {
                    throw UserOpsException.of(UserOpsException.INVALID_ARGUMENT,
                        "invalid argument at `values[" + i + "]`: null", "values[" + i + "]");
                }
                encoded[i] = v.getBytes(StandardCharsets.UTF_8);
                total += encoded[i].length;
            }
            offsets = new Memory(8L * (encoded.length + 1));
            data = new Memory(Math.max(1, total)); // Memory refuses a size of 0
            long at = 0;
            offsets.setLong(0, 0);
            for (int i = 0; i < encoded.length; i++) {
                data.write(at, encoded[i], 0, encoded[i].length);
                at += encoded[i].length;
                offsets.setLong(8L * (i + 1), at);
            }
            buffers = new Memory(3L * Native.POINTER_SIZE);
            buffers.setPointer(0, null); // no validity bitmap: no nulls
            buffers.setPointer(Native.POINTER_SIZE, offsets);
            buffers.setPointer(2L * Native.POINTER_SIZE, data);
            format = new Memory(2);
            format.setString(0, "U", "US-ASCII");

            array.length = encoded.length;
            array.n_buffers = 3;
            array.buffers = buffers;
            array.release = CallbackReference.getFunctionPointer(RELEASE_ARRAY);
            schema.format = format;
            schema.name = null;
            schema.release = CallbackReference.getFunctionPointer(RELEASE_SCHEMA);
        }

        /** After the call: the library has released both (a guard for a path that did not). */
        void releaseIfHeld() {
            array.read();
            schema.read();
            if (array.release != null) {
                callRelease(array.release, array.getPointer());
            }
            if (schema.release != null) {
                callRelease(schema.release, schema.getPointer());
            }
        }
    }
}
