package io.moe4j.kernels.ops;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * exp(x) in float, SIMD and scalar, giving the same bits: range reduction to x = n ln2 + r (|r| &le; ln2 / 2), a
 * degree-6 polynomial for e^r (Cephes' expf coefficients, about 1 ulp), times 2^n built in the exponent bits. Only
 * IEEE add, multiply and fused multiply-add are used, which the Vector API computes identically in compiled code and
 * in the interpreter (its EXP operator does not: compiled code calls an intrinsic, the interpreter Math.exp).
 * Inputs are clamped to [-87, 88] (so the result is never 0 or infinite): what the engine feeds it are softmax
 * arguments (at most 0; below -87 the weight is under float resolution anyway) and SiLU arguments (where 1 + e^88
 * and infinity give the same quotient).
 */
public final class VectorMath {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 12582912f; // 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits
    private static final float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f,
            P3 = 4.1665795894E-2f, P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;
    private static final float LO = -87f, HI = 88f;

    private VectorMath() {
    }

    /**
     * x[off + i] = exp(x[off + i] - shift) for i in [0, n). The loops that need exp call this (or inline the same
     * code) rather than {@link #exp(FloatVector)}: C2 does not inline that method into large loops, and a vector passed
     * to a call that is not inlined is boxed (an allocation per call).
     */
    public static void expShifted(float[] x, int off, int n, float shift) {
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            FloatVector v = FloatVector.fromArray(F, x, off + i).sub(shift).max(LO).min(HI);
            FloatVector t = v.fma(LOG2E, ROUND);
            FloatVector k = t.sub(ROUND);
            FloatVector r = k.fma(FloatVector.broadcast(F, -LN2_HI), v);
            r = k.fma(FloatVector.broadcast(F, -LN2_LO), r);
            FloatVector p = r.fma(P0, P1);
            p = p.fma(r, FloatVector.broadcast(F, P2));
            p = p.fma(r, FloatVector.broadcast(F, P3));
            p = p.fma(r, FloatVector.broadcast(F, P4));
            p = p.fma(r, FloatVector.broadcast(F, P5));
            p = p.fma(r.mul(r), r).add(1f);
            IntVector e = ((IntVector) t.reinterpretAsInts()).sub(0x4B400000 - 127).lanewise(VectorOperators.LSHL, 23);
            p.mul((FloatVector) e.reinterpretAsFloats()).intoArray(x, off + i);
        }
        for (; i < n; i++) x[off + i] = exp(x[off + i] - shift);
    }

    /**
     * silu(gate) * up, or gpt-oss's clamped variant, over [0, n): gate[i] = g / (1 + exp(-alpha * g)) * u, with
     * g = min(gate, limit) and u = up clamped to [-limit, limit] plus 1 when {@code clamped}. The exp is inlined (see
     * {@link #expShifted}); the scalar tail uses {@link #exp(float)}, which gives the same bits.
     */
    static void gated(float[] gate, int gOff, float[] up, int uOff, int n, boolean clamped, float alpha, float limit) {
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            FloatVector g = FloatVector.fromArray(F, gate, gOff + i), u = FloatVector.fromArray(F, up, uOff + i);
            if (clamped) {
                g = g.min(limit);
                u = u.min(limit).max(-limit).add(1f);
            }
            FloatVector v = g.mul(-alpha).max(LO).min(HI);
            FloatVector t = v.fma(LOG2E, ROUND);
            FloatVector k = t.sub(ROUND);
            FloatVector r = k.fma(FloatVector.broadcast(F, -LN2_HI), v);
            r = k.fma(FloatVector.broadcast(F, -LN2_LO), r);
            FloatVector p = r.fma(P0, P1);
            p = p.fma(r, FloatVector.broadcast(F, P2));
            p = p.fma(r, FloatVector.broadcast(F, P3));
            p = p.fma(r, FloatVector.broadcast(F, P4));
            p = p.fma(r, FloatVector.broadcast(F, P5));
            p = p.fma(r.mul(r), r).add(1f);
            IntVector e = ((IntVector) t.reinterpretAsInts()).sub(0x4B400000 - 127).lanewise(VectorOperators.LSHL, 23);
            FloatVector ex = p.mul((FloatVector) e.reinterpretAsFloats());
            g.div(ex.add(1f)).mul(u).intoArray(gate, gOff + i);
        }
        for (; i < n; i++) {
            float g = gate[gOff + i], u = up[uOff + i];
            if (clamped) {
                g = Math.min(g, limit);
                u = Math.max(Math.min(u, limit), -limit) + 1f;
            }
            gate[gOff + i] = g / (exp(g * -alpha) + 1f) * u;
        }
    }

    public static FloatVector exp(FloatVector x) {
        x = x.max(LO).min(HI);
        FloatVector t = x.fma(LOG2E, ROUND);
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(F, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(F, -LN2_LO), r);
        FloatVector p = r.fma(P0, P1);
        p = p.fma(r, FloatVector.broadcast(F, P2));
        p = p.fma(r, FloatVector.broadcast(F, P3));
        p = p.fma(r, FloatVector.broadcast(F, P4));
        p = p.fma(r, FloatVector.broadcast(F, P5));
        FloatVector r2 = r.mul(r);
        p = p.fma(r2, r).add(1f);
        IntVector e = ((IntVector) t.reinterpretAsInts()).sub(0x4B400000 - 127).lanewise(VectorOperators.LSHL, 23);
        return p.mul((FloatVector) e.reinterpretAsFloats());
    }

    public static float exp(float x) {
        x = Math.min(Math.max(x, LO), HI);
        float t = Math.fma(x, LOG2E, ROUND);
        float n = t - ROUND;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, P0, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        float r2 = r * r;
        p = Math.fma(p, r2, r) + 1f;
        return p * Float.intBitsToFloat((Float.floatToRawIntBits(t) - (0x4B400000 - 127)) << 23);
    }
}
