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

    /*
     * The attention kernels (Attention): positions are taken 4 at a time so that 4 independent FMA chains hide the
     * FMA latency; each position's own arithmetic does not depend on the grouping (a group of fewer positions runs
     * the same per-position operations), so results do not depend on where a block starts.
     */

    /**
     * scores[so + j] = dot(q[qo .. qo+n), row(p + j)[col .. col+n)) for j in [0, count), count 1..4, n a multiple of 8:
     * 8 lanes accumulated in order, then summed ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)).
     */
    abstract void scores(int p, int count, int col, float[] q, int qo, int n, float[] scores, int so);

    /** acc[ao + i] += w[wo + j] * row(p + j)[col + i] for i in [0, n), j = 0 .. count-1 in order; n a multiple of 8. */
    abstract void accumulate(int p, int count, int col, float[] w, int wo, float[] acc, int ao, int n);

    static float sum8(FloatVector v) {
        return ((v.lane(0) + v.lane(1)) + (v.lane(2) + v.lane(3))) + ((v.lane(4) + v.lane(5)) + (v.lane(6) + v.lane(7)));
    }

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
        void scores(int p, int count, int col, float[] q, int qo, int n, float[] scores, int so) {
            int b0 = p * width + col;
            if (count == 4) {
                int b1 = b0 + width, b2 = b1 + width, b3 = b2 + width;
                FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
                for (int i = 0; i < n; i += 8) {
                    FloatVector qv = FloatVector.fromArray(F, q, qo + i);
                    a0 = FloatVector.fromArray(F, data, b0 + i).fma(qv, a0);
                    a1 = FloatVector.fromArray(F, data, b1 + i).fma(qv, a1);
                    a2 = FloatVector.fromArray(F, data, b2 + i).fma(qv, a2);
                    a3 = FloatVector.fromArray(F, data, b3 + i).fma(qv, a3);
                }
                scores[so] = sum8(a0);
                scores[so + 1] = sum8(a1);
                scores[so + 2] = sum8(a2);
                scores[so + 3] = sum8(a3);
            } else {
                for (int j = 0; j < count; j++, b0 += width) {
                    FloatVector a = FloatVector.zero(F);
                    for (int i = 0; i < n; i += 8) a = FloatVector.fromArray(F, data, b0 + i).fma(FloatVector.fromArray(F, q, qo + i), a);
                    scores[so + j] = sum8(a);
                }
            }
        }

        @Override
        void accumulate(int p, int count, int col, float[] w, int wo, float[] acc, int ao, int n) {
            int b0 = p * width + col;
            if (count == 4) {
                int b1 = b0 + width, b2 = b1 + width, b3 = b2 + width;
                float w0 = w[wo], w1 = w[wo + 1], w2 = w[wo + 2], w3 = w[wo + 3];
                for (int i = 0; i < n; i += 8) {
                    FloatVector a = FloatVector.fromArray(F, acc, ao + i);
                    a = FloatVector.fromArray(F, data, b0 + i).fma(FloatVector.broadcast(F, w0), a);
                    a = FloatVector.fromArray(F, data, b1 + i).fma(FloatVector.broadcast(F, w1), a);
                    a = FloatVector.fromArray(F, data, b2 + i).fma(FloatVector.broadcast(F, w2), a);
                    a = FloatVector.fromArray(F, data, b3 + i).fma(FloatVector.broadcast(F, w3), a);
                    a.intoArray(acc, ao + i);
                }
            } else {
                for (int j = 0; j < count; j++, b0 += width) {
                    float wj = w[wo + j];
                    for (int i = 0; i < n; i += 8) {
                        FloatVector.fromArray(F, data, b0 + i).fma(FloatVector.broadcast(F, wj), FloatVector.fromArray(F, acc, ao + i)).intoArray(acc, ao + i);
                    }
                }
            }
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

        /** 8 halves as floats (exact): the bit trick of the F16 weight kernels; infinities and NaN fixed up. */
        private static FloatVector halves(short[] d, int off) {
            IntVector h = (IntVector) ShortVector.fromArray(S128, d, off).convertShape(VectorOperators.S2I, I256, 0);
            IntVector bits = h.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFFE000);
            FloatVector v = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f);
            VectorMask<Integer> special = h.and(0x7c00).compare(VectorOperators.EQ, 0x7c00);
            return special.anyTrue() ? (FloatVector) v.reinterpretAsInts().blend(bits.or(0x7f800000), special).reinterpretAsFloats() : v;
        }

        @Override
        void scores(int p, int count, int col, float[] q, int qo, int n, float[] scores, int so) {
            int b0 = p * width + col;
            if (count == 4) {
                int b1 = b0 + width, b2 = b1 + width, b3 = b2 + width;
                FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
                for (int i = 0; i < n; i += 8) {
                    FloatVector qv = FloatVector.fromArray(F, q, qo + i);
                    a0 = halves(data, b0 + i).fma(qv, a0);
                    a1 = halves(data, b1 + i).fma(qv, a1);
                    a2 = halves(data, b2 + i).fma(qv, a2);
                    a3 = halves(data, b3 + i).fma(qv, a3);
                }
                scores[so] = sum8(a0);
                scores[so + 1] = sum8(a1);
                scores[so + 2] = sum8(a2);
                scores[so + 3] = sum8(a3);
            } else {
                for (int j = 0; j < count; j++, b0 += width) {
                    FloatVector a = FloatVector.zero(F);
                    for (int i = 0; i < n; i += 8) a = halves(data, b0 + i).fma(FloatVector.fromArray(F, q, qo + i), a);
                    scores[so + j] = sum8(a);
                }
            }
        }

        @Override
        void accumulate(int p, int count, int col, float[] w, int wo, float[] acc, int ao, int n) {
            int b0 = p * width + col;
            for (int j = 0; j < count; j++, b0 += width) {
                float wj = w[wo + j];
                for (int i = 0; i < n; i += 8) {
                    halves(data, b0 + i).fma(FloatVector.broadcast(F, wj), FloatVector.fromArray(F, acc, ao + i)).intoArray(acc, ao + i);
                }
            }
        }
    }
}
