package io.moe4j.kernels.ops;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Keys or values of one layer for consecutive positions, each position a row of {@code width} floats
 * (kv heads × head size). Storage is float32 or float16; it grows as positions are written.
 */
public abstract sealed class KvBuffer permits KvBuffer.F32, KvBuffer.F16 {
    public enum Type { F32, F16 }

    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Integer> I256 = IntVector.SPECIES_256;
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;

    protected final int width;
    protected int capacity;

    protected KvBuffer(int width) {
        this.width = width;
    }

    public static KvBuffer create(Type type, int width) {
        return type == Type.F32 ? new F32(width) : new F16(width);
    }

    public int width() {
        return width;
    }

    /** Bytes held, for memory accounting. */
    public abstract long bytes();

    /** Stores {@code width} floats of {@code src} at {@code srcOff} as position {@code pos}. */
    public abstract void write(int pos, float[] src, int srcOff);

    /** Dot of {@code n} floats of position {@code pos} starting at column {@code col} with {@code q[qOff..]}. */
    public abstract float dot(int pos, int col, float[] q, int qOff, int n);

    /** out[outOff + i] += w * row(pos)[col + i] for i in [0, n). */
    public abstract void addScaled(int pos, int col, float w, float[] out, int outOff, int n);

    /**
     * Copies {@code n} floats of positions p .. p+count-1 from column {@code col} to {@code dst[dOff + j * n ..]},
     * exactly (an F16 cache converts with the SIMD bit trick of the F16 weight kernels): the attention kernels read
     * a block of positions once in this form for all the query heads and tokens that share it.
     */
    abstract void toFloats(int p, int count, int col, int n, float[] dst, int dOff);


    /** Drops all positions at or after {@code length} (memory is kept for reuse). */
    public void truncate(int length) {
        // Positions past the logical length are simply overwritten on the next write.
    }

    protected int grownCapacity(int needed) {
        return Math.max(needed, Math.max(16, capacity + (capacity >> 1)));
    }

    static final class F32 extends KvBuffer {
        private float[] data = new float[0];

        F32(int width) {
            super(width);
        }

        @Override
        public long bytes() {
            return 4L * data.length;
        }

        @Override
        public void write(int pos, float[] src, int srcOff) {
            if (pos >= capacity) {
                capacity = grownCapacity(pos + 1);
                data = Arrays.copyOf(data, Math.multiplyExact(capacity, width));
            }
            System.arraycopy(src, srcOff, data, pos * width, width);
        }

        @Override
        public float dot(int pos, int col, float[] q, int qOff, int n) {
            int b = pos * width + col;
            float s = 0;
            for (int i = 0; i < n; i++) s += data[b + i] * q[qOff + i];
            return s;
        }

        @Override
        public void addScaled(int pos, int col, float w, float[] out, int outOff, int n) {
            int b = pos * width + col;
            for (int i = 0; i < n; i++) out[outOff + i] += w * data[b + i];
        }

        @Override
        void toFloats(int p, int count, int col, int n, float[] dst, int dOff) {
            for (int j = 0; j < count; j++) System.arraycopy(data, (p + j) * width + col, dst, dOff + j * n, n);
        }
    }

    /** Half-precision storage (llama.cpp's default KV type): half the memory, values rounded to float16. */
    static final class F16 extends KvBuffer {
        private short[] data = new short[0];

        F16(int width) {
            super(width);
        }

        @Override
        public long bytes() {
            return 2L * data.length;
        }

        @Override
        public void write(int pos, float[] src, int srcOff) {
            if (pos >= capacity) {
                capacity = grownCapacity(pos + 1);
                data = Arrays.copyOf(data, Math.multiplyExact(capacity, width));
            }
            int b = pos * width;
            for (int i = 0; i < width; i++) data[b + i] = Float.floatToFloat16(src[srcOff + i]);
        }

        @Override
        public float dot(int pos, int col, float[] q, int qOff, int n) {
            int b = pos * width + col;
            float s = 0;
            for (int i = 0; i < n; i++) s += Float.float16ToFloat(data[b + i]) * q[qOff + i];
            return s;
        }

        @Override
        public void addScaled(int pos, int col, float w, float[] out, int outOff, int n) {
            int b = pos * width + col;
            for (int i = 0; i < n; i++) out[outOff + i] += w * Float.float16ToFloat(data[b + i]);
        }

        @Override
        void toFloats(int p, int count, int col, int n, float[] dst, int dOff) {
            for (int j = 0; j < count; j++) {
                int b = (p + j) * width + col, o = dOff + j * n, i = 0;
                for (; i + 8 <= n; i += 8) halves(data, b + i).intoArray(dst, o + i);
                for (; i < n; i++) dst[o + i] = Float.float16ToFloat(data[b + i]);
            }
        }

        /** 8 halves as floats (exact): the bit trick of the F16 weight kernels; infinities and NaN fixed up. */
        private static FloatVector halves(short[] d, int off) {
            IntVector h = (IntVector) ShortVector.fromArray(S128, d, off).convertShape(VectorOperators.S2I, I256, 0);
            IntVector bits = h.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFFE000);
            FloatVector v = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f);
            VectorMask<Integer> special = h.and(0x7c00).compare(VectorOperators.EQ, 0x7c00);
            return special.anyTrue() ? (FloatVector) v.reinterpretAsInts().blend(bits.or(0x7f800000), special).reinterpretAsFloats() : v;
        }
    }
}
