package io.moe4j.kernels;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Every operation of {@link Backend}, through the interface only, against a plain scalar reference in double
 * precision written here, on random data with odd sizes: widths that are not multiples of a vector, row counts that
 * are not multiples of 4, KV lengths on both sides of the 256-position page boundary, batches of several sequences.
 * A backend's test subclasses this and returns the backend; nothing here knows a backend's classes, so a device
 * backend runs the same checks (weights come from an arena-allocated "model file" of ggml blocks through
 * {@link Backend#loader}, tensors through {@link Backend#upload}, results through {@link Backend#read}).
 *
 * <p><b>Tolerances.</b> The reference is exact arithmetic on the values the backend was handed: weights as
 * {@link BlockCodec#decode} decodes their blocks (every supported type decodes each element with products that are
 * exact in float, so the decode is the same on any device), KV entries rounded as their {@link KvType} stores them.
 * A correct float implementation differs from it only by rounding, and each check allows exactly the worst case of
 * that rounding, propagated through the operation: a sum of m float products (fused or not, in any order) is within
 * {@code γ(m + 2) · Σ|aᵢ bᵢ|} of the exact sum, with {@code γ(m) = m·u / (1 - m·u)} and {@code u = 2⁻²⁴} (Higham,
 * Accuracy and Stability of Numerical Algorithms, ch. 3). The CPU kernels' order ({@code quant/BlockFormat}'s
 * javadoc: 32 lanes of FMA chains, a 5-level tree, a plain-float tail) has depth ⌈n/32⌉ + 5 + the tail, well inside
 * that; the bound is the same for every weight type because the kernels multiply the exactly decoded weights and
 * never round the activations (a backend that quantized them, as llama.cpp's Q8_1 path does, would be off by about
 * 1/254 per element and fail). Products of two floats are exact in double and the reference's own sums err by
 * 2⁻⁵³ relative, 2²⁹ times less than what is allowed, so a bound is never exceeded by a correct backend, while a
 * wrong block, scale, row, head, position, page or tail is off by 10⁻³ or more relative. Batch invariance is
 * checked bit for bit.
 *
 * <p>Test methods are public so that a subclass in another package inherits them.
 */
public abstract class BackendConformance {

    /** The backend under test. */
    protected abstract Backend backend();

    /** Unit roundoff of float: the largest relative error of one rounding. */
    static final double U = 0x1p-24;
    /** What the reference never computes: marks floats an operation must leave alone. */
    private static final float SENTINEL = -1234.5f;
    static final Path FILE = Path.of("conformance.gguf");

    // ---- helpers -----------------------------------------------------------------------------------------------

    static float[] gauss(Random r, int n, double sigma) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * sigma);
        return x;
    }

    /** γ(m): the relative error bound of m roundings in a row. */
    static double gamma(int m) {
        return m * U / (1 - m * U);
    }

    /** A value computed exactly (in double) and the most a correct float computation of it may be off by. */
    record Approx(double value, double bound) {
    }

    /**
     * Σ w·x over n elements: exact (in double), and the error bound of any order of n float multiply-adds,
     * γ(n + 2)·Σ|w·x|.
     */
    static Approx dot(float[] w, int wOff, float[] x, int xOff, int n) {
        double s = 0, a = 0;
        for (int i = 0; i < n; i++) {
            double p = (double) w[wOff + i] * x[xOff + i];
            s += p;
            a += Math.abs(p);
        }
        return new Approx(s, gamma(n + 2) * a);
    }

    static void assertWithin(Approx want, float got, Supplier<String> what) {
        double err = Math.abs(got - want.value());
        // Float.MIN_NORMAL: what the bounds, which are relative, do not cover (a result that underflows)
        if (!(err <= want.bound() + Float.MIN_NORMAL)) {
            fail(what.get() + ": got " + got + ", want " + want.value() + " ± " + want.bound() + " (off by " + err
                    + ", " + String.format("%.3g", err / want.bound()) + " times the bound)");
        }
    }

    static void assertSameBits(float[] want, int wOff, float[] got, int gOff, int n, Supplier<String> what) {
        for (int i = 0; i < n; i++) {
            if (Float.floatToIntBits(want[wOff + i]) != Float.floatToIntBits(got[gOff + i])) {
                fail(what.get() + ", element " + i + ": " + got[gOff + i] + " instead of " + want[wOff + i]);
            }
        }
    }

    /** Every float of {@code after} outside {@code [from, to)} is as in {@code before}. */
    static void assertUntouchedOutside(float[] before, float[] after, int from, int to, Supplier<String> what) {
        for (int i = 0; i < before.length; i++) {
            if ((i < from || i >= to) && Float.floatToIntBits(before[i]) != Float.floatToIntBits(after[i])) {
                fail(what.get() + ": float " + i + " outside [" + from + ", " + to + ") was changed to " + after[i]);
            }
        }
    }

    float[] read(Tensor t) {
        float[] a = new float[Math.toIntExact(t.size())];
        backend().read(t, 0, a, 0, a.length);
        return a;
    }

    Tensor sentinels(int n) {
        float[] a = new float[n];
        Arrays.fill(a, SENTINEL);
        return backend().upload(a);
    }

    /**
     * A model file in memory, laid out as GGUF lays out tensor data (a header, then each matrix 32-byte aligned, in
     * ggml's blocks from {@link BlockCodec#encode}), in an arena that the backend's weights are tied to; and the
     * backend's loader over it. Matrices are added first, then the file is {@linkplain #open opened}.
     */
    final class ModelFile implements AutoCloseable {
        private static final long HEADER = 96, ALIGN = 32;
        private final Arena arena = Arena.ofShared();
        private final List<Blob> blobs = new ArrayList<>();
        private MemorySegment mapping;
        private WeightLoader loader;

        /** One matrix of the file. */
        final class Blob {
            final GgmlType type;
            final int rows, cols;
            private final float[] values;
            private long offset;

            Blob(GgmlType type, int rows, int cols, float[] values) {
                this.type = type;
                this.rows = rows;
                this.cols = cols;
                this.values = values;
            }

            long bytes() {
                return rows * type.bytesFor(cols);
            }

            WeightMatrix stored() {
                return new WeightMatrix(mapping.asSlice(offset, bytes()), type, rows, cols);
            }

            Weight matrix(int sliceRows) {
                return loader.matrix(stored(), sliceRows);
            }

            Weight table() {
                return loader.table(stored());
            }

            Tensor vector() {
                return loader.vector(stored());
            }

            /** The elements as the file holds them: what the reference multiplies. */
            float[] decoded() {
                float[] d = new float[rows * cols];
                BlockCodec.decode(type, mapping, offset, d, 0, rows * cols);
                return d;
            }
        }

        Blob add(GgmlType type, int rows, int cols, float[] values) {
            if (loader != null) throw new IllegalStateException("the file is open");
            if (values.length != rows * cols) throw new IllegalArgumentException(values.length + " values for " + rows + "x" + cols);
            Blob b = new Blob(type, rows, cols, values);
            blobs.add(b);
            return b;
        }

        WeightLoader open() {
            long at = HEADER;
            for (Blob b : blobs) {
                at = (at + ALIGN - 1) / ALIGN * ALIGN;
                b.offset = at;
                at += b.bytes();
            }
            mapping = arena.allocate(at, 64);
            for (Blob b : blobs) BlockCodec.encode(b.type, b.values, 0, b.rows * b.cols, mapping, b.offset);
            loader = backend().loader(new ModelSource(FILE, mapping, HEADER, arena));
            return loader;
        }

        void finish() {
            loader.finish();
        }

        @Override
        public void close() {
            arena.close();
        }
    }

    // ---- memory ------------------------------------------------------------------------------------------------

    @Test
    public void tensorsAreAllocatedUploadedWrittenAndRead() {
        Backend b = backend();
        assertTrue(Backend.DEVICES.contains(b.name()), b.name());
        Random r = new Random(1);
        Tensor z = b.allocate(37);
        assertEquals(37, z.size());
        assertArrayEquals(new float[37], read(z));

        assertNull(b.upload(null));
        float[] src = gauss(r, 29, 1);
        src[3] = -0f;
        src[4] = Float.NaN;
        src[5] = Float.NEGATIVE_INFINITY;
        src[6] = Float.MIN_VALUE;
        float[] copy = src.clone();
        Tensor t = b.upload(src);
        src[0] = 42f; // the tensor holds a copy
        assertEquals(29, t.size());
        assertSameBits(copy, 0, read(t), 0, 29, () -> "uploaded");

        Tensor w = b.allocate(50);
        float[] h = gauss(r, 30, 1);
        b.write(w, 7, h, 3, 20);
        float[] want = new float[50];
        System.arraycopy(h, 3, want, 7, 20);
        assertSameBits(want, 0, read(w), 0, 50, () -> "written at offset 7");
        b.write(w, 45, h, 0, 5);
        System.arraycopy(h, 0, want, 45, 5);
        assertSameBits(want, 0, read(w), 0, 50, () -> "written at the end");

        float[] dst = new float[12];
        Arrays.fill(dst, SENTINEL);
        b.read(w, 10, dst, 2, 5);
        float[] expect = dst.clone();
        System.arraycopy(want, 10, expect, 2, 5);
        assertSameBits(expect, 0, dst, 0, 12, () -> "read from offset 10");
    }

    // ---- matmul ------------------------------------------------------------------------------------------------

    /**
     * Four matrices of one file (13, 38, 1 and 67 rows) times 1, 3, 17 and 29 token rows at an input offset, three of
     * them in one call (two sharing their input), into outputs at offsets; each within γ(cols + 2)·Σ|w·x| of the
     * exact product (class javadoc), nothing outside the output rows written, and each token alone giving the same
     * bits as in the batch.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K", "MXFP4"})
    public void matmulOfEveryWeightTypeMatchesTheReference(GgmlType type) {
        Backend b = backend();
        Random r = new Random(1000 + type.id);
        int[] colsChoices = type.isQuantized() ? new int[]{type.blockSize == 256 ? 512 : 96} : new int[]{37, 259};
        int[] rowsOf = {13, 38, 1, 67};
        for (int cols : colsChoices) {
            try (ModelFile f = new ModelFile()) {
                ModelFile.Blob[] blobs = new ModelFile.Blob[rowsOf.length];
                for (int i = 0; i < rowsOf.length; i++) blobs[i] = f.add(type, rowsOf[i], cols, gauss(r, rowsOf[i] * cols, 1));
                f.open();
                Weight[] w = new Weight[rowsOf.length];
                float[][] wf = new float[rowsOf.length][];
                for (int i = 0; i < rowsOf.length; i++) {
                    w[i] = blobs[i].matrix(rowsOf[i]);
                    wf[i] = blobs[i].decoded();
                    assertEquals(type, w[i].type());
                    assertEquals(rowsOf[i], w[i].rows());
                    assertEquals(cols, w[i].cols());
                    assertEquals(blobs[i].bytes(), w[i].fileBytes());
                }
                f.finish();
                for (int n : new int[]{1, 3, 17, 29}) {
                    int xOff = 5;
                    float[] x = gauss(r, xOff + n * cols + 3, 1), x2 = gauss(r, n * cols, 1);
                    Tensor xt = b.upload(x), x2t = b.upload(x2);
                    float[][] in = {x, x, x2, x};
                    int[] inOff = {xOff, xOff, 0, xOff}, outOff = {3, 0, 7, 1};
                    Tensor[] out = new Tensor[rowsOf.length];
                    for (int i = 0; i < out.length; i++) out[i] = sentinels(outOff[i] + n * rowsOf[i] + 2);
                    b.matmul(new Backend.Product(w[0], xt, xOff, n, out[0], outOff[0]),
                            new Backend.Product(w[1], xt, xOff, n, out[1], outOff[1]),
                            new Backend.Product(w[2], x2t, 0, n, out[2], outOff[2]));
                    b.matmul(w[3], xt, xOff, n, out[3], outOff[3]);
                    for (int i = 0; i < out.length; i++) {
                        int m = i, rows = rowsOf[i];
                        float[] got = read(out[i]);
                        float[] before = new float[got.length];
                        Arrays.fill(before, SENTINEL);
                        assertUntouchedOutside(before, got, outOff[i], outOff[i] + n * rows, () -> type + " product " + m);
                        for (int t = 0; t < n; t++) {
                            for (int row = 0; row < rows; row++) {
                                int tt = t, rr = row;
                                assertWithin(dot(wf[i], row * cols, in[i], inOff[i] + t * cols, cols), got[outOff[i] + t * rows + row],
                                        () -> type + " " + rows + "x" + cols + ", " + n + " tokens, token " + tt + " row " + rr);
                            }
                        }
                        Tensor one = b.allocate(rows), input = i == 2 ? x2t : xt;
                        for (int t = 0; t < n; t++) {
                            b.matmul(w[i], input, inOff[i] + t * cols, 1, one, 0);
                            int tt = t;
                            assertSameBits(read(one), 0, got, outOff[i] + t * rows, rows,
                                    () -> type + " " + rows + "x" + cols + ": token " + tt + " alone and in a batch of " + n);
                        }
                    }
                }
                Tensor small = b.allocate(cols - 1), out = b.allocate(13);
                assertThrows(IllegalArgumentException.class, () -> new Backend.Product(w[0], small, 0, 1, out, 0));
                assertThrows(IllegalArgumentException.class, () -> new Backend.Product(w[0], b.allocate(cols), 0, 1, out, 1));
            }
        }
    }

    /**
     * Per-head products: 3 heads of 12 and of 5 rows (a stack cut at multiples of 4 rows, and one that is not) times
     * 1, 5 and 18 token rows whose head slices are strided apart (head slices with gaps between them, token rows
     * with gaps after them, offsets), into outputs strided the same way; each element within γ(cols + 2)·Σ|w·x| of
     * the exact product of its head's matrix and its head's slice, every float outside the output slices untouched,
     * each token alone giving the batch's bits.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K"})
    public void matmulHeadsMultipliesEachHeadsSliceByItsOwnMatrix(GgmlType type) {
        Backend b = backend();
        Random r = new Random(1500 + type.id);
        int heads = 3, cols = type.isQuantized() ? (type.blockSize == 256 ? 256 : 64) : 37;
        for (int rows : new int[]{12, 5}) {
            try (ModelFile f = new ModelFile()) {
                ModelFile.Blob blob = f.add(type, heads * rows, cols, gauss(r, heads * rows * cols, 1));
                f.open();
                Weight w = blob.matrix(rows);
                float[] wf = blob.decoded();
                f.finish();
                int xOffset = 3, xHeadStride = cols + 2, xStride = heads * xHeadStride + 7;
                int outOffset = 2, outHeadStride = rows + 3, outStride = heads * outHeadStride + 1;
                for (int n : new int[]{1, 5, 18}) {
                    float[] x = gauss(r, xOffset + n * xStride, 1);
                    Tensor xt = b.upload(x), out = sentinels(outOffset + n * outStride);
                    b.matmulHeads(w, heads, xt, xOffset, xStride, xHeadStride, n, out, outOffset, outStride, outHeadStride);
                    float[] got = read(out);
                    boolean[] written = new boolean[got.length];
                    String what = type + " " + heads + " heads of " + rows + "x" + cols + ", " + n + " tokens";
                    for (int t = 0; t < n; t++) {
                        for (int h = 0; h < heads; h++) {
                            for (int row = 0; row < rows; row++) {
                                int o = outOffset + t * outStride + h * outHeadStride + row, tt = t, hh = h, rr = row;
                                written[o] = true;
                                assertWithin(dot(wf, (h * rows + row) * cols, x, xOffset + t * xStride + h * xHeadStride, cols), got[o],
                                        () -> what + ", token " + tt + " head " + hh + " row " + rr);
                            }
                        }
                    }
                    for (int i = 0; i < got.length; i++) {
                        if (!written[i]) assertEquals(SENTINEL, got[i], what + ": float " + i + " outside the output slices was written");
                    }
                    for (int t = 0; t < n; t++) {
                        Tensor one = b.allocate(outStride);
                        b.matmulHeads(w, heads, b.upload(Arrays.copyOfRange(x, xOffset + t * xStride, xOffset + (t + 1) * xStride)), 0,
                                xStride, xHeadStride, 1, one, 0, outStride, outHeadStride);
                        float[] alone = read(one);
                        for (int h = 0; h < heads; h++) {
                            int tt = t, hh = h;
                            assertSameBits(alone, h * outHeadStride, got, outOffset + t * outStride + h * outHeadStride, rows,
                                    () -> what + ": token " + tt + " head " + hh + " alone and in the batch");
                        }
                    }
                }
            }
        }
    }

    /** Strided rows are copied bit for bit (NaN, -0 and infinities included) and nothing else is written. */
    @Test
    public void copyRowsCopiesStridedRowsExactly() {
        Backend b = backend();
        Random r = new Random(1600);
        int rows = 7, width = 5, srcOffset = 3, srcStride = 9, dstOffset = 1, dstStride = 6;
        float[] src = gauss(r, srcOffset + rows * srcStride, 1);
        src[srcOffset] = Float.NaN;
        src[srcOffset + srcStride + 1] = -0f;
        src[srcOffset + 2 * srcStride + 4] = Float.NEGATIVE_INFINITY;
        Tensor dst = sentinels(dstOffset + rows * dstStride + 2);
        b.copyRows(b.upload(src), srcOffset, srcStride, dst, dstOffset, dstStride, rows, width);
        float[] want = read(sentinels(dstOffset + rows * dstStride + 2));
        for (int row = 0; row < rows; row++) System.arraycopy(src, srcOffset + row * srcStride, want, dstOffset + row * dstStride, width);
        assertSameBits(want, 0, read(dst), 0, want.length, () -> "copyRows");
    }

    // ---- embed and vectors -------------------------------------------------------------------------------------

    /** Table rows and vectors come out exactly as the blocks decode (each decoded element is an exact float product). */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K", "MXFP4"})
    public void embedAndVectorsDecodeTheFileExactly(GgmlType type) {
        Backend b = backend();
        Random r = new Random(2000 + type.id);
        int cols = type.isQuantized() ? 2 * type.blockSize : 45, vocab = 11;
        try (ModelFile f = new ModelFile()) {
            ModelFile.Blob tableBlob = f.add(type, vocab, cols, gauss(r, vocab * cols, 0.7));
            ModelFile.Blob vecBlob = f.add(type, 3, cols, gauss(r, 3 * cols, 2));
            f.open();
            Weight table = tableBlob.table();
            Tensor vec = vecBlob.vector();
            f.finish();
            assertEquals(vocab, table.rows());
            assertEquals(cols, table.cols());
            float[] rows = tableBlob.decoded();
            int[] tokens = {3, 0, 10, 3, 7};
            int n = 4; // the fifth token is not asked for
            Tensor out = sentinels((n + 1) * cols);
            b.embed(table, tokens, n, out);
            float[] got = read(out);
            for (int t = 0; t < n; t++) {
                int tt = t;
                assertSameBits(rows, tokens[t] * cols, got, t * cols, cols, () -> type + " token " + tt + " (id " + tokens[tt] + ")");
            }
            float[] before = new float[got.length];
            Arrays.fill(before, SENTINEL);
            assertUntouchedOutside(before, got, 0, n * cols, () -> type + " embedding");
            assertEquals(3L * cols, vec.size());
            assertSameBits(vecBlob.decoded(), 0, read(vec), 0, 3 * cols, () -> type + " vector");
        }
    }

    // ---- rmsNorm -----------------------------------------------------------------------------------------------

    /**
     * Tolerance: the mean of squares in float is within γ(width + 1) relative (any order), its inverse square root
     * adds half that and a few roundings (or ulps of an rsqrt), the two products one rounding each:
     * {@code (width + 8)·u·|y|} bounds it. One case has inputs small enough that eps moves the result by 1%.
     */
    @Test
    public void rmsNormMatchesTheReferenceWithAndWithoutWeightInPlaceOrNot() {
        Backend b = backend();
        Random r = new Random(3);
        float eps = 1e-5f;
        int rows = 5;
        for (int width : new int[]{37, 300}) {
            for (double sigma : new double[]{2.0, 0.03}) {
                for (boolean weighted : new boolean[]{false, true}) {
                    for (boolean inPlace : new boolean[]{false, true}) {
                        String what = "width " + width + " sigma " + sigma + (weighted ? " weighted" : "") + (inPlace ? " in place" : "");
                        int xOff = 3, outOff = inPlace ? xOff : 1;
                        float[] x = gauss(r, xOff + rows * width + 2, sigma), w = weighted ? gauss(r, width, 1) : null;
                        Tensor xt = b.upload(x), wt = b.upload(w);
                        Tensor out = inPlace ? xt : sentinels(outOff + rows * width + 4);
                        float[] before = read(out);
                        b.rmsNorm(xt, xOff, rows, width, wt, eps, out, outOff);
                        float[] got = read(out);
                        assertUntouchedOutside(before, got, outOff, outOff + rows * width, () -> what);
                        if (!inPlace) assertSameBits(x, 0, read(xt), 0, x.length, () -> what + ": the input was changed");
                        for (int row = 0; row < rows; row++) {
                            double ss = 0;
                            for (int i = 0; i < width; i++) ss += (double) x[xOff + row * width + i] * x[xOff + row * width + i];
                            double scale = 1 / Math.sqrt(ss / width + eps);
                            for (int i = 0; i < width; i++) {
                                double y = x[xOff + row * width + i] * scale * (w != null ? w[i] : 1);
                                int rr = row, ii = i;
                                assertWithin(new Approx(y, (width + 8) * U * Math.abs(y)), got[outOff + row * width + i],
                                        () -> what + " row " + rr + " element " + ii);
                            }
                        }
                        // batch invariance: each row alone
                        for (int row = 0; row < rows; row++) {
                            Tensor x1 = b.upload(x), o1 = b.allocate(width);
                            b.rmsNorm(x1, xOff + row * width, 1, width, wt, eps, o1, 0);
                            int rr = row;
                            assertSameBits(read(o1), 0, got, outOff + row * width, width, () -> what + ": row " + rr + " alone and in the batch");
                        }
                    }
                }
            }
        }
    }

    // ---- rope --------------------------------------------------------------------------------------------------

    /** The parameters of a {@link Rope}, and the reference's frequencies and magnitude from Rope's formulas. */
    record RopeCase(Rope.Style style, int headDim, int nRot, double base, Rope.Scaling scaling, double factor, int originalCtx,
                    double betaFast, double betaSlow, double attnFactor, float[] freqFactors) {
        Rope rope() {
            return new Rope(style, nRot, base, scaling, factor, originalCtx, betaFast, betaSlow, attnFactor, freqFactors);
        }

        private double corrDim(double beta) {
            return nRot * Math.log(originalCtx / (beta * 2 * Math.PI)) / (2 * Math.log(base));
        }

        /** The frequency of pair i: base^(-2i/nRot) / freqFactor, scaled by 1/factor (LINEAR) or YaRN's ramp. */
        double freq(int i) {
            double extrap = Math.pow(base, -2.0 * i / nRot) / (freqFactors != null ? freqFactors[i] : 1.0);
            return switch (scaling) {
                case NONE -> extrap;
                case LINEAR -> extrap / factor;
                case YARN -> {
                    double lo = Math.max(0, Math.floor(corrDim(betaFast))), hi = Math.min(nRot - 1, Math.ceil(corrDim(betaSlow)));
                    double ramp = 1 - Math.min(1, Math.max(0, (i - lo) / Math.max(0.001, hi - lo)));
                    yield extrap / factor * (1 - ramp) + extrap * ramp;
                }
            };
        }

        double mscale() {
            return scaling == Rope.Scaling.YARN ? attnFactor * (1 + 0.1 * Math.log(factor)) : attnFactor;
        }

        @Override
        public String toString() {
            return style + " " + scaling + " nRot " + nRot + " of " + headDim;
        }
    }

    static Stream<RopeCase> ropeCases() {
        float[] llama3 = new float[16];
        Random r = new Random(4);
        for (int i = 0; i < llama3.length; i++) llama3[i] = (float) (1 + 7 * r.nextDouble());
        return Stream.of(
                new RopeCase(Rope.Style.NORM, 64, 64, 10000, Rope.Scaling.NONE, 1, 0, 32, 1, 1, null),
                new RopeCase(Rope.Style.NEOX, 40, 24, 1e6, Rope.Scaling.LINEAR, 4, 0, 32, 1, 1, null),
                new RopeCase(Rope.Style.NEOX, 64, 64, 150000, Rope.Scaling.YARN, 32, 4096, 32, 1, 1, null),
                new RopeCase(Rope.Style.NORM, 48, 32, 500000, Rope.Scaling.YARN, 8, 8192, 32, 1, 1.25, llama3),
                new RopeCase(Rope.Style.NORM, 12, 6, 10000, Rope.Scaling.NONE, 1, 0, 32, 1, 1, null));
    }

    /**
     * Angles within 4u·mscale of cos and sin of pos·freq (the float cos, the float magnitude and their product: three
     * roundings; θ itself must be formed in double, as the CPU does, or positions in the thousands lose digits).
     * Rotations within 8u·mscale·(|x0| + |x1|): those angle errors times the inputs, plus two products and a sum.
     * Only the first nRot dimensions of the heads asked for change; a token alone gets the batch's bits.
     */
    @ParameterizedTest
    @MethodSource("ropeCases")
    public void ropeAnglesAndRotationsMatchTheFormulas(RopeCase c) {
        Backend b = backend();
        Random r = new Random(5 + c.headDim());
        Rope rope = c.rope();
        int[] positions = {0, 1, 5, 255, 256, 257, 1000, 4095, 12345, 65535, 131071};
        int n = positions.length, half = c.nRot() / 2, hd = c.headDim();
        double ms = c.mscale();
        Tensor cos = sentinels(n * half + 3), sin = sentinels(n * half + 3);
        b.ropeAngles(rope, positions, n, cos, sin);
        float[] cs = read(cos), sn = read(sin);
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < half; i++) {
                double theta = positions[t] * c.freq(i);
                int tt = t, ii = i;
                assertWithin(new Approx(Math.cos(theta) * ms, 4 * U * ms), cs[t * half + i], () -> c + " cos, position " + positions[tt] + " pair " + ii);
                assertWithin(new Approx(Math.sin(theta) * ms, 4 * U * ms), sn[t * half + i], () -> c + " sin, position " + positions[tt] + " pair " + ii);
            }
        }
        for (int i = n * half; i < cs.length; i++) {
            assertEquals(SENTINEL, cs[i], "past the angles");
            assertEquals(SENTINEL, sn[i], "past the angles");
        }

        // A fused QKV row per token: 3 query heads, 1 key head, 1 value head; q and k rotated, v not.
        int heads = 3, stride = (heads + 2) * hd, off = 2;
        float[] x = gauss(r, off + n * stride + 3, 1.5);
        Tensor xt = b.upload(x);
        b.rope(rope, xt, off, n, stride, heads, hd, cos, sin);
        b.rope(rope, xt, off + heads * hd, n, stride, 1, hd, cos, sin);
        float[] got = read(xt);
        float[] want = x.clone();
        boolean[] rotated = new boolean[x.length];
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < heads + 1; h++) {
                int base = off + t * stride + h * hd;
                for (int i = 0; i < half; i++) {
                    int i0 = c.style() == Rope.Style.NORM ? base + 2 * i : base + i;
                    int i1 = c.style() == Rope.Style.NORM ? i0 + 1 : i0 + half;
                    double theta = positions[t] * c.freq(i), co = Math.cos(theta) * ms, si = Math.sin(theta) * ms;
                    double bound = 8 * U * ms * (Math.abs(x[i0]) + Math.abs(x[i1]));
                    int tt = t, hh = h, ii = i;
                    assertWithin(new Approx(x[i0] * co - x[i1] * si, bound), got[i0], () -> c + " position " + positions[tt] + " head " + hh + " pair " + ii + " first");
                    assertWithin(new Approx(x[i0] * si + x[i1] * co, bound), got[i1], () -> c + " position " + positions[tt] + " head " + hh + " pair " + ii + " second");
                    rotated[i0] = rotated[i1] = true;
                }
            }
        }
        for (int i = 0; i < x.length; i++) {
            if (!rotated[i]) assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[i]), c + ": float " + i + " is not rotated");
        }

        // batch invariance: each token alone, its angles and its rotation
        for (int t = 0; t < n; t++) {
            Tensor c1 = b.allocate(half), s1 = b.allocate(half);
            b.ropeAngles(rope, new int[]{positions[t]}, 1, c1, s1);
            int tt = t;
            assertSameBits(read(c1), 0, cs, t * half, half, () -> c + " cos of position " + positions[tt] + " alone");
            assertSameBits(read(s1), 0, sn, t * half, half, () -> c + " sin of position " + positions[tt] + " alone");
            Tensor x1 = b.upload(Arrays.copyOfRange(x, off + t * stride, off + (t + 1) * stride));
            b.rope(rope, x1, 0, 1, stride, heads, hd, c1, s1);
            b.rope(rope, x1, heads * hd, 1, stride, 1, hd, c1, s1);
            assertSameBits(read(x1), 0, got, off + t * stride, stride, () -> c + " rotation of position " + positions[tt] + " alone");
        }
    }

    // ---- add, addBias ------------------------------------------------------------------------------------------

    /** One float addition per element: exactly the float sum. */
    @Test
    public void addAndAddBiasAreFloatSums() {
        Backend b = backend();
        Random r = new Random(6);
        float[] x = gauss(r, 40, 1), y = gauss(r, 50, 3);
        Tensor xt = b.upload(x);
        b.add(xt, 3, b.upload(y), 11, 30);
        float[] want = x.clone();
        for (int i = 0; i < 30; i++) want[3 + i] = x[3 + i] + y[11 + i];
        assertSameBits(want, 0, read(xt), 0, x.length, () -> "add");

        int rows = 4, width = 23;
        float[] m = gauss(r, rows * width + 5, 1), bias = gauss(r, width, 1);
        Tensor mt = b.upload(m);
        b.addBias(mt, rows, width, null);
        assertSameBits(m, 0, read(mt), 0, m.length, () -> "addBias without a bias");
        b.addBias(mt, rows, width, b.upload(bias));
        float[] wantM = m.clone();
        for (int row = 0; row < rows; row++) for (int i = 0; i < width; i++) wantM[row * width + i] = m[row * width + i] + bias[i];
        assertSameBits(wantM, 0, read(mt), 0, m.length, () -> "addBias");
    }

    // ---- KV cache and attention --------------------------------------------------------------------------------

    /** A row as a KV store of {@code type} keeps it: F16 rounded to half, Q8_0 each head's {@code hd} values as blocks. */
    static float[] stored(KvType type, float[] row, int hd) {
        return switch (type) {
            case F32 -> row.clone();
            case F16 -> {
                float[] h = new float[row.length];
                for (int i = 0; i < row.length; i++) h[i] = Float.float16ToFloat(Float.floatToFloat16(row[i]));
                yield h;
            }
            case Q8_0 -> {
                float[] q = new float[row.length];
                MemorySegment blocks = MemorySegment.ofArray(new byte[Math.toIntExact(KvType.Q8_0.bytesFor(hd))]);
                for (int h = 0; h < row.length / hd; h++) {
                    BlockCodec.encode(GgmlType.Q8_0, row, h * hd, hd, blocks, 0);
                    BlockCodec.decode(GgmlType.Q8_0, blocks, 0, q, h * hd, hd);
                }
                yield q;
            }
        };
    }

    /**
     * The keys and values of one sequence in one layer: the backend's stores and what the reference says they hold.
     * For latent attention there is one store of key rows, and a position's value is the first {@code vd} values
     * of its stored key row.
     */
    final class Sequence implements AutoCloseable {
        final KvType type;
        final int nKv, hd, vd, width;
        final KvStore keys, values;
        final List<float[]> k = new ArrayList<>(), v = new ArrayList<>();

        Sequence(KvPool pool, KvType type, int nKv, int hd) {
            this(pool, type, nKv, hd, hd, false);
        }

        /** {@code latent}: one store of key rows of {@code hd} whose first {@code vd} values are the value. */
        Sequence(KvPool pool, KvType type, int nKv, int hd, int vd, boolean latent) {
            this.type = type;
            this.nKv = nKv;
            this.hd = hd;
            this.vd = vd;
            this.width = nKv * hd;
            this.keys = pool.newStore(type, nKv, hd);
            this.values = latent ? null : pool.newStore(type, nKv, hd);
            assertEquals(width, keys.width());
            assertEquals(hd, keys.headDim());
            assertEquals(pool, keys.pool());
        }

        int length() {
            return k.size();
        }

        void set(int pos, float[] key, float[] value) {
            while (k.size() <= pos) {
                k.add(null);
                v.add(null);
            }
            k.set(pos, stored(type, key, hd));
            v.set(pos, values == null ? Arrays.copyOf(k.get(pos), vd) : stored(type, value, hd));
        }

        @Override
        public void close() {
            keys.close();
            if (values != null) values.close();
        }
    }

    /**
     * One {@link Backend#appendKv} call: token i writes rows {@code keyRows[i]}, {@code valueRows[i]} as position
     * {@code positions[i]} of {@code seqOf[i]}, after reserving each sequence's span.
     */
    void append(Sequence[] seqOf, int[] positions, float[][] keyRows, float[][] valueRows) {
        Backend b = backend();
        int n = positions.length, width = seqOf[0].width;
        float[] k = new float[n * width], v = new float[n * width];
        KvStore[] keys = new KvStore[n], values = new KvStore[n];
        Map<Sequence, int[]> span = new IdentityHashMap<>();
        for (int i = 0; i < n; i++) {
            System.arraycopy(keyRows[i], 0, k, i * width, width);
            System.arraycopy(valueRows[i], 0, v, i * width, width);
            keys[i] = seqOf[i].keys;
            values[i] = seqOf[i].values;
            int p = positions[i];
            span.merge(seqOf[i], new int[]{p, p + 1}, (a, c) -> new int[]{Math.min(a[0], c[0]), Math.max(a[1], c[1])});
        }
        span.forEach((s, fromTo) -> {
            assertTrue(s.keys.reserve(fromTo[0], fromTo[1]), "reserve keys " + Arrays.toString(fromTo));
            assertTrue(s.values.reserve(fromTo[0], fromTo[1]), "reserve values " + Arrays.toString(fromTo));
        });
        b.appendKv(n, b.upload(k), b.upload(v), width, keys, values, positions);
        for (int i = 0; i < n; i++) seqOf[i].set(positions[i], keyRows[i], valueRows[i]);
    }

    /**
     * Fills the sequences to {@code lengths} with random rows, as a batched prefill does: each call carries up to
     * {@code chunk} positions of every sequence that is not full yet.
     */
    void fill(Sequence[] seqs, int[] lengths, int chunk, Random r) {
        while (true) {
            List<Sequence> seqOf = new ArrayList<>();
            List<Integer> pos = new ArrayList<>();
            for (int s = 0; s < seqs.length; s++) {
                for (int p = seqs[s].length(); p < Math.min(lengths[s], seqs[s].length() + chunk); p++) {
                    seqOf.add(seqs[s]);
                    pos.add(p);
                }
            }
            if (pos.isEmpty()) return;
            int n = pos.size(), width = seqs[0].width;
            float[][] kr = new float[n][], vr = new float[n][];
            for (int i = 0; i < n; i++) {
                kr[i] = gauss(r, width, 1);
                vr[i] = gauss(r, width, 1);
            }
            append(seqOf.toArray(new Sequence[0]), pos.stream().mapToInt(Integer::intValue).toArray(), kr, vr);
        }
    }

    /**
     * The attention of one token in double (a plain two-pass softmax over {@code [first, last]}, the sink's logit in
     * the denominator only), and its tolerance. A float computation's weight of position j is off relative to the
     * others by its score's error, at most (hd + 3)·u·scale·Σ|q·k| (the scaled query, the dot product), and by the
     * exp evaluations: the rounded argument s - m and the polynomial, (|s - m| + 3)·u each, and an online softmax's
     * rescales, which chain at most (2·max|s| + 4 per block of 32)·u. A backend may also split the range into parts
     * and merge their partial softmaxes (flash-decoding): a part's weights are rescaled once to the merged maximum
     * and then by every later merge, factors whose arguments again telescope to at most 2·max|s| each, with two
     * roundings per merge besides the exp's 3; with at most one merge per block of 32 that adds
     * (4·max|s| + 6 per block)·u. The value sum and the softmax sum then add γ(len + 2) of Σp·|v| and of 1, and the
     * final division 2u. The first-order total, times 2 for second-order terms, is the bound: it is about 10⁻⁴ at
     * 600 positions, while a missing or extra position moves the result by its weight, about 1/len ≫ that.
     */
    static Approx[] attentionReference(float[] q, int qOff, int nHead, int nKv, int hd, Sequence s, int first, int last,
                                       float scale, float[] sinks) {
        int group = nHead / nKv, len = last - first + 1, vd = s.vd;
        Approx[] out = new Approx[nHead * vd];
        double[] sc = new double[len], p = new double[len];
        for (int h = 0; h < nHead; h++) {
            int col = h / group * hd;
            double max = sinks != null ? sinks[h] : Double.NEGATIVE_INFINITY, maxAbs = sinks != null ? Math.abs(sinks[h]) : 0, maxDot = 0;
            for (int j = 0; j < len; j++) {
                float[] k = s.k.get(first + j);
                double d = 0, a = 0;
                for (int i = 0; i < hd; i++) {
                    double prod = (double) q[qOff + h * hd + i] * k[col + i];
                    d += prod;
                    a += Math.abs(prod);
                }
                sc[j] = d * scale;
                max = Math.max(max, sc[j]);
                maxAbs = Math.max(maxAbs, Math.abs(sc[j]));
                maxDot = Math.max(maxDot, a * scale);
            }
            double z = sinks != null ? Math.exp(sinks[h] - max) : 0;
            for (int j = 0; j < len; j++) z += p[j] = Math.exp(sc[j] - max);
            for (int j = 0; j < len; j++) p[j] /= z;
            double eta = (hd + 3) * U * maxDot + (8 * maxAbs + 10 * (len / 32 + 1) + 3) * U;
            int vCol = h / group * vd;
            for (int i = 0; i < vd; i++) {
                double o = 0, a = 0;
                for (int j = 0; j < len; j++) {
                    float v = s.v.get(first + j)[vCol + i];
                    o += p[j] * v;
                    a += p[j] * Math.abs(v);
                }
                double bound = (a + Math.abs(o)) * (eta + gamma(len + 2)) + 2 * U * Math.abs(o);
                out[h * vd + i] = new Approx(o, 2 * bound);
            }
        }
        return out;
    }

    /** One attention call over queries of several sequences, checked against the reference and alone-vs-batch. */
    float[] attendAndCheck(Sequence[] seqOf, int[] first, int[] last, float[] q, int qStride, int nHead, float scale,
                           float[] sinks, String what) {
        Backend b = backend();
        int n = seqOf.length, nKv = seqOf[0].nKv, hd = seqOf[0].hd, rowW = nHead * hd;
        KvStore[] keys = new KvStore[n], values = new KvStore[n];
        for (int t = 0; t < n; t++) {
            keys[t] = seqOf[t].keys;
            values[t] = seqOf[t].values;
        }
        Tensor qt = b.upload(q), st = b.upload(sinks), out = sentinels(n * rowW + 3);
        b.attention(n, qt, qStride, nHead, nKv, hd, keys, values, first, last, scale, st, out);
        float[] got = read(out);
        for (int i = n * rowW; i < got.length; i++) assertEquals(SENTINEL, got[i], what + ": written past the output rows");
        for (int t = 0; t < n; t++) {
            Approx[] want = attentionReference(q, t * qStride, nHead, nKv, hd, seqOf[t], first[t], last[t], scale, sinks);
            for (int i = 0; i < rowW; i++) {
                int tt = t, ii = i;
                assertWithin(want[i], got[t * rowW + i], () -> what + ", token " + tt + " [" + first[tt] + ", " + last[tt]
                        + "] of a sequence of " + seqOf[tt].length() + ", head " + ii / hd + " element " + ii % hd);
            }
        }
        for (int t = 0; t < n; t++) {
            Tensor q1 = b.upload(Arrays.copyOfRange(q, t * qStride, t * qStride + qStride)), o1 = b.allocate(rowW);
            b.attention(1, q1, qStride, nHead, nKv, hd, new KvStore[]{keys[t]}, new KvStore[]{values[t]},
                    new int[]{first[t]}, new int[]{last[t]}, scale, st, o1);
            int tt = t;
            assertSameBits(read(o1), 0, got, t * rowW, rowW, () -> what + ": token " + tt + " alone and in the batch of " + n);
        }
        return got;
    }

    /**
     * Causal GQA attention (1, 2 and 4 query heads per KV head) over five sequences of 1, 255, 256, 257 and 600
     * positions in one call (stores from a budgeted pool, filled by batched appends that cross pages within a
     * call), for the last positions (a prefill's tokens that share their blocks) and a window, with and without
     * sinks, with a query stride of the heads or of a fused QKV row.
     */
    @ParameterizedTest
    @EnumSource(KvType.class)
    public void attentionMatchesTheReference(KvType type) {
        Backend b = backend();
        Random r = new Random(7 + type.ordinal());
        int[][] shapes = {{4, 4, 32}, {4, 2, 32}, {8, 2, 64}, {6, 3, 40}, {2, 1, 12}};
        int[] lengths = {1, 255, 256, 257, 600};
        for (int si = 0; si < shapes.length; si++) {
            int nHead = shapes[si][0], nKv = shapes[si][1], hd = shapes[si][2];
            if (type == KvType.Q8_0 && hd % 32 != 0) continue; // Q8_0 blocks are 32 values of one head
            String what = type + " " + nHead + "/" + nKv + " heads of " + hd;
            KvPool pool = b.kvPool(64L << 20);
            Sequence[] seqs = new Sequence[lengths.length];
            for (int s = 0; s < seqs.length; s++) seqs[s] = new Sequence(pool, type, nKv, hd);
            fill(seqs, lengths, 37, r);
            List<Sequence> seqOf = new ArrayList<>();
            List<int[]> spans = new ArrayList<>();
            for (Sequence s : seqs) {
                int len = s.length();
                for (int last = Math.max(0, len - 3); last < len; last++) { // a prefill's last tokens: same first position
                    seqOf.add(s);
                    spans.add(new int[]{0, last});
                }
                seqOf.add(s); // a window of 100 positions
                spans.add(new int[]{Math.max(0, len - 100), len - 1});
                if (len > 300) {
                    seqOf.add(s); // the middle of the first pages
                    spans.add(new int[]{0, len / 2});
                }
            }
            int n = seqOf.size();
            int qStride = si % 2 == 0 ? nHead * hd : (nHead + 2 * nKv) * hd;
            float[] q = gauss(r, n * qStride, 1);
            float[] sinks = si % 2 == 1 ? gauss(r, nHead, 2) : null;
            int[] first = spans.stream().mapToInt(x -> x[0]).toArray(), last = spans.stream().mapToInt(x -> x[1]).toArray();
            attendAndCheck(seqOf.toArray(new Sequence[0]), first, last, q, qStride, nHead, (float) (1 / Math.sqrt(hd)), sinks, what);
            for (Sequence s : seqs) s.close();
            assertEquals(0, pool.stats().pagesInUse(), what + ": pages left after closing every store");
        }
    }

    /** Head shapes (query heads, KV heads, head size) of the long-range attention checks: GQA groups, odd head sizes. */
    static final int[][] LONG_SHAPES = {{4, 2, 32}, {6, 3, 40}, {8, 2, 64}, {2, 1, 12}};

    /** Sequences of 1,300 and 2,600 positions of {@code type} with {@code nKv} heads of {@code hd}, filled by prefill-sized appends. */
    Sequence[] longSequences(KvPool pool, KvType type, int nKv, int hd, Random r) {
        Sequence[] seqs = {new Sequence(pool, type, nKv, hd), new Sequence(pool, type, nKv, hd)};
        fill(seqs, new int[]{1300, 2600}, 512, r);
        return seqs;
    }

    /**
     * Attention over ranges of several thousand positions, which a backend may split into parts and merge
     * (flash-decoding): per sequence of 1,300 and 2,600 positions, its last three positions (a prefill's tokens that
     * share their blocks), a window of 1,100 positions (parts anchored away from position 0) and the middle, in one
     * call, with and without sinks; against the reference, and each token alone against the batch.
     */
    @ParameterizedTest
    @EnumSource(KvType.class)
    public void attentionOverLongRangesMatchesTheReference(KvType type) {
        Backend b = backend();
        Random r = new Random(17 + type.ordinal());
        for (int si = 0; si < LONG_SHAPES.length; si++) {
            int nHead = LONG_SHAPES[si][0], nKv = LONG_SHAPES[si][1], hd = LONG_SHAPES[si][2];
            if (type == KvType.Q8_0 && hd % 32 != 0) continue; // Q8_0 blocks are 32 values of one head
            KvPool pool = b.kvPool(64L << 20);
            Sequence[] seqs = longSequences(pool, type, nKv, hd, r);
            List<Sequence> seqOf = new ArrayList<>();
            List<int[]> spans = new ArrayList<>();
            for (Sequence s : seqs) {
                int len = s.length();
                for (int last = len - 3; last < len; last++) {
                    seqOf.add(s);
                    spans.add(new int[]{0, last});
                }
                seqOf.add(s);
                spans.add(new int[]{len - 1100, len - 1});
                seqOf.add(s);
                spans.add(new int[]{0, len / 2});
            }
            for (boolean withSinks : new boolean[]{false, true}) {
                String what = type + " " + nHead + "/" + nKv + " heads of " + hd + (withSinks ? " with sinks" : "") + ", long ranges";
                float[] q = gauss(r, seqOf.size() * nHead * hd, 1);
                float[] sinks = withSinks ? gauss(r, nHead, 2) : null;
                attendAndCheck(seqOf.toArray(new Sequence[0]), spans.stream().mapToInt(x -> x[0]).toArray(),
                        spans.stream().mapToInt(x -> x[1]).toArray(), q, nHead * hd, nHead, (float) (1 / Math.sqrt(hd)), sinks, what);
            }
            for (Sequence s : seqs) s.close();
        }
    }

    /**
     * At depth, a token's result alone is bit-identical to its result inside a prefill batch of 64 tokens of the
     * same sequence that end at different positions (with a decode token of another sequence and windowed tokens in
     * the same call), with and without sinks. Run with 2 threads: on the CPU backend that splits a lone token's
     * range across the threads but runs the batch per token group and head, so the two schedules are compared.
     */
    @ParameterizedTest
    @EnumSource(KvType.class)
    public void attentionAtDepthIsTheSameAloneAndInAPrefillBatch(KvType type) {
        Backend b = backend();
        Random r = new Random(27 + type.ordinal());
        int nHead = 8, nKv = 2, hd = 64;
        int before = Threads.count();
        Threads.set(2);
        try {
            KvPool pool = b.kvPool(64L << 20);
            Sequence[] seqs = longSequences(pool, type, nKv, hd, r);
            List<Sequence> seqOf = new ArrayList<>();
            List<int[]> spans = new ArrayList<>();
            for (int last = 2600 - 64; last < 2600; last++) { // a prefill chunk at depth
                seqOf.add(seqs[1]);
                spans.add(new int[]{0, last});
            }
            seqOf.add(seqs[0]); // a decode token of another sequence
            spans.add(new int[]{0, 1299});
            for (int last = 2000; last < 2600; last += 150) { // windowed tokens: each its own start
                seqOf.add(seqs[1]);
                spans.add(new int[]{last - 1023, last});
            }
            for (boolean withSinks : new boolean[]{false, true}) {
                float[] q = gauss(r, seqOf.size() * nHead * hd, 1);
                attendAndCheck(seqOf.toArray(new Sequence[0]), spans.stream().mapToInt(x -> x[0]).toArray(),
                        spans.stream().mapToInt(x -> x[1]).toArray(), q, nHead * hd, nHead, 0.125f,
                        withSinks ? gauss(r, nHead, 2) : null, type + (withSinks ? " with sinks" : "") + ", prefill batch at depth");
            }
            for (Sequence s : seqs) s.close();
        } finally {
            Threads.set(before);
        }
    }

    /**
     * Attention at depth gives the same bits with 1, 2 and 3 worker threads: a lone decode token (with and without
     * sinks, and a window), and a call of 12 prefill tokens beside a decode token of another sequence. (On the CPU
     * backend, 1 thread runs every call per token group and KV head, 2 threads split the lone tokens' ranges across
     * the threads, and 3 threads the batch's too.)
     */
    @ParameterizedTest
    @EnumSource(KvType.class)
    public void attentionIsTheSameWithAnyThreadCount(KvType type) {
        Backend b = backend();
        Random r = new Random(37 + type.ordinal());
        int nHead = 6, nKv = 3, hd = type == KvType.Q8_0 ? 32 : 40;
        int before = Threads.count();
        KvPool pool = b.kvPool(64L << 20);
        Sequence[] seqs = longSequences(pool, type, nKv, hd, r);
        float scale = (float) (1 / Math.sqrt(hd));
        float[] sinks = gauss(r, nHead, 2);
        int[][] firstLast = {{0, 2599}, {0, 2599}, {1500, 2599}, {0, 1299}};
        float[][] sinksOf = {null, sinks, sinks, null};
        Sequence[] seqOfCall = {seqs[1], seqs[1], seqs[1], seqs[0]};
        float[] q1 = gauss(r, firstLast.length * nHead * hd, 1);
        // the batch: 12 tokens of the longer sequence ending at 2588 .. 2599, a decode token of the shorter one
        int nb = 13;
        Sequence[] batchOf = new Sequence[nb];
        int[] bFirst = new int[nb], bLast = new int[nb];
        for (int t = 0; t < nb - 1; t++) {
            batchOf[t] = seqs[1];
            bLast[t] = 2600 - (nb - 1) + t;
        }
        batchOf[nb - 1] = seqs[0];
        bLast[nb - 1] = 1299;
        float[] qb = gauss(r, nb * nHead * hd, 1);
        float[][] want = null;
        try {
            for (int threads : new int[]{1, 2, 3}) {
                Threads.set(threads);
                float[][] got = new float[firstLast.length + 1][];
                for (int c = 0; c < firstLast.length; c++) {
                    got[c] = attendAndCheck(new Sequence[]{seqOfCall[c]}, new int[]{firstLast[c][0]}, new int[]{firstLast[c][1]},
                            Arrays.copyOfRange(q1, c * nHead * hd, (c + 1) * nHead * hd), nHead * hd, nHead, scale, sinksOf[c],
                            type + " call " + c + " on " + threads + " threads");
                }
                got[firstLast.length] = attendAndCheck(batchOf, bFirst, bLast, qb, nHead * hd, nHead, scale, sinks,
                        type + " batch on " + threads + " threads");
                if (want == null) {
                    want = got;
                } else {
                    for (int c = 0; c < got.length; c++) {
                        int cc = c;
                        assertSameBits(want[c], 0, got[c], 0, nHead * hd * (c < firstLast.length ? 1 : nb),
                                () -> type + " call " + cc + ": " + threads + " threads vs 1");
                    }
                }
            }
        } finally {
            Threads.set(before);
            for (Sequence s : seqs) s.close();
        }
    }

    /**
     * Fills latent sequences to {@code lengths} with random key rows through {@link Backend#appendKeys}, up to
     * {@code chunk} positions of every sequence per call.
     */
    void fillKeys(Sequence[] seqs, int[] lengths, int chunk, Random r) {
        Backend b = backend();
        while (true) {
            List<Sequence> seqOf = new ArrayList<>();
            List<Integer> pos = new ArrayList<>();
            for (int s = 0; s < seqs.length; s++) {
                for (int p = seqs[s].length(); p < Math.min(lengths[s], seqs[s].length() + chunk); p++) {
                    seqOf.add(seqs[s]);
                    pos.add(p);
                }
            }
            if (pos.isEmpty()) return;
            int n = pos.size(), width = seqs[0].width;
            float[] k = gauss(r, n * width, 1);
            KvStore[] keys = new KvStore[n];
            int[] positions = new int[n];
            Map<Sequence, int[]> span = new IdentityHashMap<>();
            for (int i = 0; i < n; i++) {
                keys[i] = seqOf.get(i).keys;
                positions[i] = pos.get(i);
                span.merge(seqOf.get(i), new int[]{positions[i], positions[i] + 1}, (a, c) -> new int[]{Math.min(a[0], c[0]), Math.max(a[1], c[1])});
            }
            span.forEach((s, fromTo) -> assertTrue(s.keys.reserve(fromTo[0], fromTo[1]), "reserve keys " + Arrays.toString(fromTo)));
            b.appendKeys(n, b.upload(k), width, keys, positions);
            for (int i = 0; i < n; i++) seqOf.get(i).set(positions[i], Arrays.copyOfRange(k, i * width, (i + 1) * width), null);
        }
    }

    /**
     * One {@link Backend#latentAttention} call over queries of latent sequences (one store of key rows of
     * {@code hd}, values their first {@code vd}), checked against the reference, for nothing written past the output
     * rows, and each token alone against the batch; returns the output rows.
     */
    float[] latentAttendAndCheck(Sequence[] seqOf, int[] first, int[] last, float[] q, int qStride, int nHead, float scale,
                                 String what) {
        Backend b = backend();
        int n = seqOf.length, hd = seqOf[0].hd, vd = seqOf[0].vd, rowW = nHead * vd;
        KvStore[] keys = new KvStore[n];
        for (int t = 0; t < n; t++) keys[t] = seqOf[t].keys;
        Tensor out = sentinels(n * rowW + 3);
        b.latentAttention(n, b.upload(q), qStride, nHead, hd, vd, keys, first, last, scale, out);
        float[] got = read(out);
        for (int i = n * rowW; i < got.length; i++) assertEquals(SENTINEL, got[i], what + ": written past the output rows");
        for (int t = 0; t < n; t++) {
            Sequence s = seqOf[t];
            Approx[] want = attentionReference(q, t * qStride, nHead, 1, hd, s, first[t], last[t], scale, null);
            for (int i = 0; i < rowW; i++) {
                int tt = t, ii = i;
                assertWithin(want[i], got[t * rowW + i], () -> what + ", token " + tt + " [" + first[tt] + ", " + last[tt]
                        + "] of a sequence of " + s.length() + ", head " + ii / vd + " element " + ii % vd);
            }
        }
        for (int t = 0; t < n; t++) {
            Tensor o1 = b.allocate(rowW);
            b.latentAttention(1, b.upload(Arrays.copyOfRange(q, t * qStride, (t + 1) * qStride)), qStride, nHead, hd, vd,
                    new KvStore[]{keys[t]}, new int[]{first[t]}, new int[]{last[t]}, scale, o1);
            int tt = t;
            assertSameBits(read(o1), 0, got, t * rowW, rowW, () -> what + ": token " + tt + " alone and in the batch of " + n);
        }
        return got;
    }

    /**
     * Latent attention (one KV head for every query head) gives the same bits with 1, 2, 3 and 5 worker threads,
     * within the reference's bounds and alone as in a batch: lone decode tokens over 1,300, 600 and 300 positions
     * and a window of 700, and a call of 12 prefill tokens beside a decode token of another sequence. (On the CPU
     * backend the lone tokens over several spans run span by span on the threads, the query heads split into parts
     * where the spans are fewer than the threads, as with 5 threads over 1,300 positions or 3 over 600; the one
     * within a span runs its heads in parts on the threads; 1 thread runs every call per token group.)
     */
    @ParameterizedTest
    @EnumSource(KvType.class)
    public void latentAttentionIsTheSameWithAnyThreadCount(KvType type) {
        Backend b = backend();
        Random r = new Random(47 + type.ordinal());
        int nHead = 5, hd = type == KvType.Q8_0 ? 96 : 80, vd = 64;
        float scale = (float) (1 / Math.sqrt(hd - 16));
        int before = Threads.count();
        KvPool pool = b.kvPool(64L << 20);
        Sequence[] seqs = new Sequence[3];
        for (int s = 0; s < seqs.length; s++) seqs[s] = new Sequence(pool, type, 1, hd, vd, true);
        fillKeys(seqs, new int[]{1300, 600, 300}, 512, r);
        int[][] firstLast = {{0, 1299}, {0, 599}, {0, 299}, {600, 1299}};
        Sequence[] seqOfCall = {seqs[0], seqs[1], seqs[2], seqs[0]};
        int qStride = nHead * hd;
        float[] q1 = gauss(r, firstLast.length * qStride, 1);
        int nb = 13; // 12 tokens of the longest sequence ending at 1288 .. 1299, a decode token of the 600
        Sequence[] batchOf = new Sequence[nb];
        int[] bFirst = new int[nb], bLast = new int[nb];
        for (int t = 0; t < nb - 1; t++) {
            batchOf[t] = seqs[0];
            bLast[t] = 1300 - (nb - 1) + t;
        }
        batchOf[nb - 1] = seqs[1];
        bLast[nb - 1] = 599;
        float[] qb = gauss(r, nb * qStride, 1);
        float[][] want = null;
        try {
            for (int threads : new int[]{1, 2, 3, 5}) {
                Threads.set(threads);
                float[][] got = new float[firstLast.length + 1][];
                for (int c = 0; c < firstLast.length; c++) {
                    got[c] = latentAttendAndCheck(new Sequence[]{seqOfCall[c]}, new int[]{firstLast[c][0]}, new int[]{firstLast[c][1]},
                            Arrays.copyOfRange(q1, c * qStride, (c + 1) * qStride), qStride, nHead, scale,
                            type + " latent call " + c + " on " + threads + " threads");
                }
                got[firstLast.length] = latentAttendAndCheck(batchOf, bFirst, bLast, qb, qStride, nHead, scale,
                        type + " latent batch on " + threads + " threads");
                if (want == null) {
                    want = got;
                } else {
                    for (int c = 0; c < got.length; c++) {
                        int cc = c;
                        assertSameBits(want[c], 0, got[c], 0, nHead * vd * (c < firstLast.length ? 1 : nb),
                                () -> type + " latent call " + cc + ": " + threads + " threads vs 1");
                    }
                }
            }
        } finally {
            Threads.set(before);
            for (Sequence s : seqs) s.close();
        }
        assertEquals(0, pool.stats().pagesInUse(), type + " latent: pages left after closing every store");
    }

    /**
     * Latent attention (values = the first values of each key row, one cached row per position) over five
     * sequences of 1, 255, 256, 257 and 600 positions filled by batched {@link Backend#appendKeys} calls: the last
     * positions, a window and the middle, for several query heads of key rows of 80 (DeepSeek's tiny shape: 64 + 16),
     * 96 (Q8_0: whole blocks for keys and values), 44 (no vector multiple); within the reference's bounds with the
     * values read from the stored key rows, each token alone giving the batch's bits, nothing written past the output
     * rows, and the stores giving their pages back.
     */
    @ParameterizedTest
    @EnumSource(KvType.class)
    public void latentAttentionReadsValuesFromTheKeyRows(KvType type) {
        Backend b = backend();
        Random r = new Random(17 + type.ordinal());
        int[][] shapes = {{4, 80, 64}, {3, 96, 64}, {5, 44, 30}};
        int[] lengths = {1, 255, 256, 257, 600};
        for (int[] shape : shapes) {
            int nHead = shape[0], hd = shape[1], vd = shape[2];
            if (type == KvType.Q8_0 && (hd % 32 != 0 || vd % 32 != 0)) continue; // Q8_0 blocks are 32 values
            String what = type + " latent, " + nHead + " heads, rows of " + hd + ", values " + vd;
            KvPool pool = b.kvPool(64L << 20);
            Sequence[] seqs = new Sequence[lengths.length];
            for (int s = 0; s < seqs.length; s++) seqs[s] = new Sequence(pool, type, 1, hd, vd, true);
            fillKeys(seqs, lengths, 41, r);
            List<Sequence> seqOf = new ArrayList<>();
            List<int[]> spans = new ArrayList<>();
            for (Sequence s : seqs) {
                int len = s.length();
                for (int last = Math.max(0, len - 3); last < len; last++) {
                    seqOf.add(s);
                    spans.add(new int[]{0, last});
                }
                seqOf.add(s);
                spans.add(new int[]{Math.max(0, len - 100), len - 1});
                if (len > 300) {
                    seqOf.add(s);
                    spans.add(new int[]{0, len / 2});
                }
            }
            int qStride = nHead * hd + 3;
            float[] q = gauss(r, seqOf.size() * qStride, 1);
            int[] first = spans.stream().mapToInt(x -> x[0]).toArray(), last = spans.stream().mapToInt(x -> x[1]).toArray();
            latentAttendAndCheck(seqOf.toArray(new Sequence[0]), first, last, q, qStride, nHead, (float) (1 / Math.sqrt(hd - 16)), what);
            for (Sequence s : seqs) s.close();
            assertEquals(0, pool.stats().pagesInUse(), what + ": pages left after closing every store");
        }
    }

    /**
     * Page bookkeeping through the interface, and attention results where pages are shared, copied and given back:
     * reserve answers false at the budget (no exception, pages taken so far kept); bytes, pages and stats agree
     * with {@link KvPool#pageBytes}; {@link KvStore#shareFrom} shares pages, a write after reserve copies the
     * shared page and leaves the source's results as they were; truncate, releaseBefore and close give pages back.
     */
    @ParameterizedTest
    @EnumSource(KvType.class)
    public void kvStoresTakeShareCopyAndGiveBackPages(KvType type) {
        Backend b = backend();
        Random r = new Random(8 + type.ordinal());
        int nHead = 4, nKv = 2, hd = 32;
        long page = KvPool.pageBytes(type, nKv, hd);
        assertEquals(type.bytesFor(hd) * nKv * KvStore.PAGE, page);
        assertTrue(b.defaultKvPool().budget() > 0);

        // Partial success: the pages taken before the budget ran out are kept, and given back on close.
        KvPool small = b.kvPool(2 * page);
        try (KvStore s = small.newStore(type, nKv, hd)) {
            assertFalse(s.reserve(0, 1000));
            assertEquals(2, s.pagesHeld());
            assertEquals(2 * page, s.bytes());
            assertEquals(2 * page, small.stats().bytesInUse());
            assertTrue(s.reserve(0, 400));
            s.close();
            assertEquals(0, s.pagesHeld());
            assertEquals(0, small.stats().pagesInUse());
        }

        KvPool pool = b.kvPool(8 * page);
        assertEquals(8 * page, pool.budget());
        KvPool.Stats st = pool.stats();
        assertEquals(8 * page, st.budget());
        assertEquals(0, st.bytesInUse());
        assertEquals(0, st.pagesInUse());
        Sequence src = new Sequence(pool, type, nKv, hd);
        fill(new Sequence[]{src}, new int[]{600}, 113, r);
        assertPages(src, 3, 3, page);
        assertStats(pool, 6, 0, page);

        // queries: the whole sequence, up to the middle of page 1, and a window in page 2
        int[] first = {0, 0, 520}, last = {599, 400, 599};
        float[] q = gauss(r, 3 * nHead * hd, 1);
        float scale = (float) (1 / Math.sqrt(hd));
        Sequence[] onSrc = {src, src, src};
        float[] before = attendAndCheck(onSrc, first, last, q, nHead * hd, nHead, scale, null, type + " source");

        Sequence dst = new Sequence(pool, type, nKv, hd);
        dst.keys.shareFrom(src.keys, 600);
        dst.values.shareFrom(src.values, 600);
        dst.k.addAll(src.k);
        dst.v.addAll(src.v);
        assertPages(dst, 3, 3, page);
        assertStats(pool, 6, 6, page); // shared pages count once
        Sequence[] onDst = {dst, dst, dst};
        assertSameBits(before, 0, attendAndCheck(onDst, first, last, q, nHead * hd, nHead, scale, null, type + " shared"), 0,
                before.length, () -> type + ": the shared store's attention");

        // A write into page 1 copies it (keys and values): two more pages, two fewer shared.
        float[][] kr = {gauss(r, nKv * hd, 3)}, vr = {gauss(r, nKv * hd, 3)};
        append(new Sequence[]{dst}, new int[]{300}, kr, vr);
        assertPages(dst, 3, 3, page);
        assertStats(pool, 8, 4, page);
        // The budget is spent: a new store gets no page, and a shared page cannot be copied; neither throws.
        KvStore extra = pool.newStore(type, nKv, hd);
        assertFalse(extra.reserve(0, 1));
        assertEquals(0, extra.pagesHeld());
        assertFalse(dst.keys.reserve(0, 1));
        assertEquals(3, dst.keys.pagesHeld());
        assertStats(pool, 8, 4, page);

        assertSameBits(before, 0, attendAndCheck(onSrc, first, last, q, nHead * hd, nHead, scale, null, type + " source after the copy"), 0,
                before.length, () -> type + ": the source's attention after the other store wrote into a shared page");
        float[] changed = attendAndCheck(onDst, first, last, q, nHead * hd, nHead, scale, null, type + " written copy");
        assertNotEquals(Arrays.toString(Arrays.copyOf(before, nHead * hd)), Arrays.toString(Arrays.copyOf(changed, nHead * hd)),
                "the write shows in the copy");

        // truncate drops dst's page 2 (still src's: no longer shared); releaseBefore drops src's pages 0 and 1
        // (page 0 stays dst's, page 1 was src's own and is freed).
        dst.keys.truncate(300);
        dst.values.truncate(300);
        assertPages(dst, 2, 2, page);
        assertStats(pool, 8, 2, page);
        src.keys.releaseBefore(520);
        src.values.releaseBefore(520);
        assertEquals(512, src.keys.firstStored());
        assertEquals(0, dst.keys.firstStored());
        assertPages(src, 1, 1, page);
        assertStats(pool, 6, 0, page);
        float[] window = attendAndCheck(new Sequence[]{src}, new int[]{520}, new int[]{599}, Arrays.copyOfRange(q, 2 * nHead * hd, 3 * nHead * hd),
                nHead * hd, nHead, scale, null, type + " window after releaseBefore");
        assertSameBits(before, 2 * nHead * hd, window, 0, nHead * hd, () -> type + ": the window after the pages before it were given back");
        // Released pages are not taken again by a reserve below the window; a new page past the end is.
        assertTrue(src.keys.reserve(520, 700));
        assertEquals(1, src.keys.pagesHeld());
        assertTrue(src.keys.reserve(700, 800));
        assertEquals(2, src.keys.pagesHeld());
        assertTrue(extra.reserve(0, 1));
        assertEquals(1, extra.pagesHeld());
        assertEquals(page, extra.bytes());

        extra.close();
        src.close();
        dst.close();
        for (KvStore s : new KvStore[]{extra, src.keys, src.values, dst.keys, dst.values}) {
            assertEquals(0, s.pagesHeld());
            assertEquals(0, s.bytes());
        }
        assertStats(pool, 0, 0, page);
        // a closed store is written again from position 0
        Sequence again = new Sequence(pool, type, nKv, hd);
        fill(new Sequence[]{again}, new int[]{257}, 257, r);
        assertPages(again, 2, 2, page);
        attendAndCheck(new Sequence[]{again}, new int[]{0}, new int[]{256}, Arrays.copyOf(q, nHead * hd), nHead * hd, nHead, scale, null, type + " reused pool");
        again.close();
        assertStats(pool, 0, 0, page);
    }

    private static void assertPages(Sequence s, int keyPages, int valuePages, long page) {
        assertEquals(keyPages, s.keys.pagesHeld(), "key pages");
        assertEquals(valuePages, s.values.pagesHeld(), "value pages");
        assertEquals(keyPages * page, s.keys.bytes(), "key bytes");
        assertEquals(valuePages * page, s.values.bytes(), "value bytes");
    }

    private static void assertStats(KvPool pool, int inUse, int shared, long page) {
        KvPool.Stats s = pool.stats();
        assertEquals(inUse, s.pagesInUse(), "pages in use: " + s);
        assertEquals(shared, s.pagesShared(), "pages shared: " + s);
        assertEquals(inUse * page, s.bytesInUse(), "bytes in use: " + s);
        assertTrue(s.bytesInUse() + s.bytesFree() <= s.budget(), "pages in use and kept for reuse within the budget: " + s);
    }

    // ---- context shift -----------------------------------------------------------------------------------------

    /** A {@link Backend#shiftKv} case: the KV type and the rotation of the keys (null: a layer without RoPE). */
    record ShiftCase(KvType type, RopeCase rope) {
        @Override
        public String toString() {
            return type + " " + (rope == null ? "no rope" : rope.toString());
        }
    }

    static Stream<ShiftCase> shiftCases() {
        float[] llama3 = new float[16];
        Random r = new Random(9);
        for (int i = 0; i < llama3.length; i++) llama3[i] = (float) (1 + 7 * r.nextDouble());
        RopeCase[] ropes = {
                new RopeCase(Rope.Style.NORM, 64, 64, 10000, Rope.Scaling.NONE, 1, 0, 32, 1, 1, null),
                new RopeCase(Rope.Style.NEOX, 64, 64, 150000, Rope.Scaling.YARN, 32, 4096, 32, 1, 1, null),
                new RopeCase(Rope.Style.NORM, 64, 32, 500000, Rope.Scaling.YARN, 8, 8192, 32, 1, 1.25, llama3),
                new RopeCase(Rope.Style.NEOX, 64, 24, 1e6, Rope.Scaling.LINEAR, 4, 0, 32, 1, 1, null),
                null};
        List<ShiftCase> cases = new ArrayList<>();
        for (KvType t : KvType.values()) for (RopeCase c : ropes) cases.add(new ShiftCase(t, c));
        return cases.stream();
    }

    /**
     * The rows of {@code s} at {@code positions} as the backend holds them, through the interface: attention of a
     * zero query over the one position (every weight is 1, so the output is the value row), with the store as its
     * own keys and values.
     */
    float[] probe(KvStore s, int nKv, int hd, int[] positions) {
        Backend b = backend();
        int n = positions.length, width = nKv * hd;
        KvStore[] stores = new KvStore[n];
        Arrays.fill(stores, s);
        Tensor out = b.allocate((long) n * width);
        b.attention(n, b.allocate((long) n * width), width, nKv, nKv, hd, stores, stores, positions, positions, 1f, null, out);
        return read(out);
    }

    static int[] range(int from, int to) {
        int[] p = new int[Math.max(0, to - from)];
        for (int i = 0; i < p.length; i++) p[i] = from + i;
        return p;
    }

    /**
     * What a shift by {@code delta} positions makes of a stored key row, in double, and the most a correct backend
     * may be off by: the rotation of the first nRot dimensions of each head (angles of delta · freq, no magnitude)
     * within 8u·(|x0| + |x1|) as for {@link Backend#rope}, then the type's rounding on write: half an f16 ulp, or for
     * Q8_0, per block that holds a rotated value, half a step d = max|x| / 127 plus the f16 rounding of d times 127
     * (the later blocks move as stored, exactly).
     */
    static Approx[] shiftedKey(ShiftCase c, float[] stored, int nKv, int hd, int delta) {
        Approx[] out = new Approx[stored.length];
        double[] want = new double[stored.length], err = new double[stored.length];
        for (int i = 0; i < stored.length; i++) want[i] = stored[i];
        boolean[] rotated = new boolean[stored.length];
        if (c.rope() != null) {
            int half = c.rope().nRot() / 2;
            for (int h = 0; h < nKv; h++) {
                int base = h * hd;
                for (int i = 0; i < half; i++) {
                    int i0 = c.rope().style() == Rope.Style.NORM ? base + 2 * i : base + i;
                    int i1 = c.rope().style() == Rope.Style.NORM ? i0 + 1 : i0 + half;
                    double theta = delta * c.rope().freq(i), co = Math.cos(theta), si = Math.sin(theta);
                    double x0 = stored[i0], x1 = stored[i1];
                    want[i0] = x0 * co - x1 * si;
                    want[i1] = x0 * si + x1 * co;
                    err[i0] = err[i1] = 8 * U * (Math.abs(x0) + Math.abs(x1));
                    rotated[i0] = rotated[i1] = true;
                }
            }
        }
        for (int h = 0; h < nKv; h++) {
            for (int b0 = h * hd; b0 < (h + 1) * hd; b0 += 32) {
                double amax = 0;
                boolean any = false;
                for (int i = b0; i < Math.min(b0 + 32, (h + 1) * hd); i++) {
                    amax = Math.max(amax, Math.abs(want[i]) + err[i]);
                    any |= rotated[i];
                }
                for (int i = b0; i < Math.min(b0 + 32, (h + 1) * hd); i++) {
                    double e = err[i] + 4 * U * Math.abs(want[i]); // and the probe's own rounding
                    if (rotated[i] || c.type() == KvType.Q8_0 && any) {
                        e += switch (c.type()) {
                            case F32 -> 0;
                            case F16 -> 0x1p-11 * (Math.abs(want[i]) + err[i]) + 0x1p-25;
                            case Q8_0 -> (0.5 + 127 * 0x1p-11) * amax / 127 * (1 + 1e-6);
                        };
                    }
                    out[i] = new Approx(want[i], e);
                }
            }
        }
        return out;
    }

    /** Checks every position of {@code [from, to)} of a shifted sequence's keys and values against what it held before. */
    void assertShifted(ShiftCase c, Sequence s, List<float[]> oldK, List<float[]> oldV, int from, int to, int keep,
                       int discard, String what) {
        int[] positions = range(from, to);
        if (positions.length == 0) return;
        float[] k = probe(s.keys, s.nKv, s.hd, positions), v = probe(s.values, s.nKv, s.hd, positions);
        int w = s.width;
        for (int j = 0; j < positions.length; j++) {
            int p = positions[j], src = p < keep ? p : p + discard;
            Approx[] wantK = p < keep ? shiftedKey(new ShiftCase(c.type(), null), oldK.get(src), s.nKv, s.hd, 0)
                    : shiftedKey(c, oldK.get(src), s.nKv, s.hd, -discard);
            float[] wantV = oldV.get(src);
            for (int i = 0; i < w; i++) {
                int ii = i;
                assertWithin(wantK[i], k[j * w + i], () -> what + ": key " + p + " (was " + src + ") element " + ii);
                assertWithin(new Approx(wantV[i], 4 * U * Math.abs(wantV[i])), v[j * w + i],
                        () -> what + ": value " + p + " (was " + src + ") element " + ii);
            }
            s.k.set(p, Arrays.copyOfRange(k, j * w, (j + 1) * w));
            s.v.set(p, Arrays.copyOfRange(v, j * w, (j + 1) * w));
        }
    }

    /** The shift of one sequence's stores in a call of its own. */
    boolean shift(ShiftCase c, Sequence s, int keep, int discard, int length) {
        return backend().shiftKv(c.rope() == null ? null : c.rope().rope(), new KvStore[]{s.keys}, new KvStore[]{s.values},
                keep, discard, length);
    }

    /**
     * {@link Backend#shiftKv} on two layers at once and on single stores, against the double-precision rotation of
     * what the stores held: gaps of every size on both sides of the 256-position pages (a run crossing a source and
     * a destination page boundary at different offsets), nothing left to move, no gap; keys rotated by the angle
     * difference only (YaRN's magnitude, 1.35 for a factor of 32, is not applied again), in either style, over a
     * partial rotary dimension, Q8_0 blocks quantized again; values bit for bit. Pages past the new length are given
     * back; a sliding window's store moves what it holds and takes pages again below its first position; a store
     * sharing pages copies them and leaves the other as it was; a pool without room leaves every store as it was.
     * After a shift the stores take new positions and attend as before.
     */
    @ParameterizedTest
    @MethodSource("shiftCases")
    public void kvShiftMovesAndRotatesAsTheReference(ShiftCase c) {
        Backend b = backend();
        Random r = new Random(10 + c.type().ordinal() * 7 + (c.rope() == null ? 0 : c.rope().nRot()));
        int nKv = 2, hd = 64, nHead = 4, length = 600;
        long page = KvPool.pageBytes(c.type(), nKv, hd);
        float scale = (float) (1 / Math.sqrt(hd));
        Rope rope = c.rope() == null ? null : c.rope().rope();
        int[][] gaps = {{0, 300}, {5, 297}, {250, 10}, {256, 256}, {599, 1}, {100, 500}, {3, 0}};
        for (int[] gap : gaps) {
            int keep = gap[0], discard = gap[1];
            String what = c + ", keep " + keep + " discard " + discard;
            KvPool pool = b.kvPool(64L << 20);
            Sequence[] layers = {new Sequence(pool, c.type(), nKv, hd), new Sequence(pool, c.type(), nKv, hd)};
            fill(layers, new int[]{length, length}, 173, r);
            List<List<float[]>> oldK = new ArrayList<>(), oldV = new ArrayList<>();
            for (Sequence s : layers) {
                oldK.add(new ArrayList<>(s.k));
                oldV.add(new ArrayList<>(s.v));
            }
            assertTrue(b.shiftKv(rope, new KvStore[]{layers[0].keys, layers[1].keys}, new KvStore[]{layers[0].values, layers[1].values},
                    keep, discard, length), what);
            int newLength = length - discard, pages = (newLength + KvStore.PAGE - 1) / KvStore.PAGE;
            for (int l = 0; l < 2; l++) {
                Sequence s = layers[l];
                assertEquals(0, s.keys.firstStored(), what);
                assertPages(s, pages, pages, page);
                assertShifted(c, s, oldK.get(l), oldV.get(l), 0, newLength, keep, discard, what + ", layer " + l);
                while (s.k.size() > newLength) {
                    s.k.removeLast();
                    s.v.removeLast();
                }
            }
            assertStats(pool, 4 * pages, 0, page);
            // the shifted stores take the next position and attend over it and what they hold
            fill(layers, new int[]{newLength + 1, newLength + 1}, 1, r);
            float[] q = gauss(r, nHead * hd, 1);
            for (Sequence s : layers) {
                attendAndCheck(new Sequence[]{s}, new int[]{0}, new int[]{newLength}, q, nHead * hd, nHead, scale, null, what + " after the shift");
            }
            for (Sequence s : layers) s.close();
        }

        // Sliding windows: the store holds [f, length) and moves what it holds.
        int[][] windows = { // first stored, keep, discard, first stored after, pages held after
                {512, 4, 300, 212, 2}, {256, 280, 100, 256, 1}, {256, 100, 200, 100, 2}, {512, 4, 596, 4, 0}};
        for (int[] wc : windows) {
            int f = wc[0], keep = wc[1], discard = wc[2], newFirst = wc[3], newLength = length - discard;
            String what = c + ", window from " + f + ", keep " + keep + " discard " + discard;
            KvPool pool = b.kvPool(64L << 20);
            Sequence s = new Sequence(pool, c.type(), nKv, hd);
            fill(new Sequence[]{s}, new int[]{length}, 256, r);
            s.keys.releaseBefore(f);
            s.values.releaseBefore(f);
            assertEquals(f, s.keys.firstStored());
            List<float[]> oldK = new ArrayList<>(s.k), oldV = new ArrayList<>(s.v);
            assertTrue(shift(c, s, keep, discard, length), what);
            assertEquals(newFirst, s.keys.firstStored(), what);
            assertEquals(newFirst, s.values.firstStored(), what);
            assertPages(s, wc[4], wc[4], page);
            assertStats(pool, 2 * wc[4], 0, page);
            assertShifted(c, s, oldK, oldV, newFirst, newLength, keep, discard, what);
            while (s.k.size() > newLength) {
                s.k.removeLast();
                s.v.removeLast();
            }
            fill(new Sequence[]{s}, new int[]{newLength + 1}, 1, r);
            attendAndCheck(new Sequence[]{s}, new int[]{newFirst}, new int[]{newLength}, gauss(r, nHead * hd, 1), nHead * hd, nHead,
                    scale, null, what + " after the shift");
            s.close();
            assertStats(pool, 0, 0, page);
        }

        // Shared pages are copied before they are written: the other store keeps what it held.
        {
            KvPool pool = b.kvPool(64L << 20);
            Sequence src = new Sequence(pool, c.type(), nKv, hd), dst = new Sequence(pool, c.type(), nKv, hd);
            fill(new Sequence[]{src}, new int[]{length}, 300, r);
            dst.keys.shareFrom(src.keys, length);
            dst.values.shareFrom(src.values, length);
            dst.k.addAll(src.k);
            dst.v.addAll(src.v);
            assertStats(pool, 6, 6, page);
            assertTrue(shift(c, dst, 10, 100, length));
            // dst wrote into pages 0 and 1 (its own copies now) and dropped page 2, which stays src's: 3 + 2 pages each
            assertStats(pool, 10, 0, page);
            assertShifted(new ShiftCase(c.type(), null), src, src.k, src.v, 0, length, length, 0, c + ", the store that shared its pages");
            assertShifted(c, dst, src.k, src.v, 0, length - 100, 10, 100, c + ", the store that shifted shared pages");
            src.close();
            dst.close();
            assertStats(pool, 0, 0, page);
        }

        // No room for the pages of a move below the window: nothing changes, in any store of the call.
        {
            KvPool pool = b.kvPool(3 * page);
            Sequence s = new Sequence(pool, c.type(), nKv, hd);
            for (int upTo : new int[]{256, 512, 600}) { // a window's store of 600 positions from 512 on, never over 2 pages
                fill(new Sequence[]{s}, new int[]{upTo}, 256, r);
                if (upTo % KvStore.PAGE == 0) {
                    s.keys.releaseBefore(upTo);
                    s.values.releaseBefore(upTo);
                }
            }
            assertEquals(512, s.keys.firstStored());
            assertStats(pool, 2, 0, page);
            List<float[]> oldK = new ArrayList<>(s.k), oldV = new ArrayList<>(s.v);
            // [512, 600) would move to [312, 400), in page 1, given back: the keys take the one page left, the
            // values find none, and the keys give theirs back
            assertFalse(shift(c, s, 4, 200, length), c + ": a shift without pages for it");
            assertEquals(512, s.keys.firstStored());
            assertEquals(512, s.values.firstStored());
            assertPages(s, 1, 1, page);
            assertStats(pool, 2, 0, page);
            assertShifted(new ShiftCase(c.type(), null), s, oldK, oldV, 512, length, length, 0, c + " after a refused shift");
            s.close();
            assertStats(pool, 0, 0, page);
        }
    }

    // ---- feed-forward networks ---------------------------------------------------------------------------------

    /** The decoded weights of a stack of gated networks (biases null where absent), as the reference reads them. */
    record StackRef(int count, int width, int hidden, float[] gate, float[] up, float[] down, float[] gateBias,
                    float[] upBias, float[] downBias) {
    }

    /** A stack of gated networks in a model file: its matrices and biases, loaded once the file is open. */
    final class Stack {
        final int count, width, hidden;
        final ModelFile.Blob gate, up, down, gateBias, upBias, downBias;

        Stack(ModelFile f, Random r, int count, int width, int hidden, GgmlType gateType, GgmlType upType, GgmlType downType,
              double gateSigma, boolean gateB, boolean upB, boolean downB) {
            this.count = count;
            this.width = width;
            this.hidden = hidden;
            gate = f.add(gateType, count * hidden, width, gauss(r, count * hidden * width, gateSigma / Math.sqrt(width)));
            up = f.add(upType, count * hidden, width, gauss(r, count * hidden * width, gateSigma / Math.sqrt(width)));
            down = f.add(downType, count * width, hidden, gauss(r, count * width * hidden, 1 / Math.sqrt(hidden)));
            gateBias = gateB ? f.add(GgmlType.F32, count, hidden, gauss(r, count * hidden, 1)) : null;
            upBias = upB ? f.add(GgmlType.F32, count, hidden, gauss(r, count * hidden, 1)) : null;
            downBias = downB ? f.add(GgmlType.F32, count, width, gauss(r, count * width, 0.3)) : null;
        }

        /** The networks' weights, expert slices of {@code hidden} and {@code width} rows. */
        FeedForwardWeights load() {
            return new FeedForwardWeights(gate.matrix(hidden), up.matrix(hidden), down.matrix(width), vector(gateBias),
                    vector(upBias), vector(downBias), hidden);
        }

        StackRef ref() {
            return new StackRef(count, width, hidden, gate.decoded(), up.decoded(), down.decoded(), decoded(gateBias),
                    decoded(upBias), decoded(downBias));
        }

        private static Tensor vector(ModelFile.Blob b) {
            return b == null ? null : b.vector();
        }

        private static float[] decoded(ModelFile.Blob b) {
            return b == null ? null : b.decoded();
        }
    }

    /**
     * Network {@code e} of a stack on {@code x[xOff ..]}: down(act(gate·x + gate bias, up·x + up bias)) + down bias,
     * in double, with its bound: the products' γ(width + 2) and a bias addition's u; the activation's slopes (silu
     * and its gpt-oss form g·σ(1.702 g) never steeper than 1.1; the clamps do not steepen) carry the errors of gate
     * and up, and its own evaluation (the exp of a rounded argument, a sum, a division, a product) adds
     * (1.702·|g| + 10)·u relative; the down product adds Σ|W|·Δa and γ(hidden + 2)·Σ|W·a|.
     */
    static Approx[] network(StackRef s, int e, float[] x, int xOff, Activation act) {
        int w = s.width(), h = s.hidden();
        double[] a = new double[h], da = new double[h];
        for (int j = 0; j < h; j++) {
            int row = e * h + j;
            Approx g = dot(s.gate(), row * w, x, xOff, w), u = dot(s.up(), row * w, x, xOff, w);
            double gv = g.value(), gb = g.bound(), uv = u.value(), ub = u.bound();
            if (s.gateBias() != null) {
                gv += s.gateBias()[row];
                gb += U * (Math.abs(gv) + gb);
            }
            if (s.upBias() != null) {
                uv += s.upBias()[row];
                ub += U * (Math.abs(uv) + ub);
            }
            switch (act) {
                case SWIGLU -> {
                    double silu = gv / (1 + Math.exp(-gv));
                    a[j] = silu * uv;
                    da[j] = 1.1 * gb * (Math.abs(uv) + ub) + Math.abs(silu) * ub + (Math.abs(gv) + 10) * U * Math.abs(a[j]);
                }
                case SWIGLU_CLAMPED -> {
                    double gc = Math.min(gv, 7), uc = Math.max(-7, Math.min(uv, 7)) + 1;
                    double f = gc / (1 + Math.exp(-1.702 * gc));
                    a[j] = f * uc;
                    double ucb = ub + U * Math.abs(uc); // the + 1 is rounded
                    da[j] = 1.1 * gb * (Math.abs(uc) + ucb) + Math.abs(f) * ucb + (1.702 * Math.abs(gc) + 10) * U * Math.abs(a[j]);
                }
            }
        }
        Approx[] out = new Approx[w];
        for (int c = 0; c < w; c++) {
            int row = e * w + c;
            double sum = 0, abs = 0, carried = 0;
            for (int j = 0; j < h; j++) {
                double wd = s.down()[row * h + j];
                sum += wd * a[j];
                abs += Math.abs(wd) * (Math.abs(a[j]) + da[j]);
                carried += Math.abs(wd) * da[j];
            }
            double bound = carried + gamma(h + 2) * abs;
            if (s.downBias() != null) {
                sum += s.downBias()[row];
                bound += U * (Math.abs(sum) + bound);
            }
            out[c] = new Approx(sum, bound);
        }
        return out;
    }

    record FeedForwardCase(String name, int width, int hidden, GgmlType gateType, GgmlType upType, GgmlType downType,
                           Activation activation, boolean gateBias, boolean upBias, boolean downBias) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<FeedForwardCase> feedForwardCases() {
        return Stream.of(
                new FeedForwardCase("F32 37x53 SwiGLU", 37, 53, GgmlType.F32, GgmlType.F32, GgmlType.F32, Activation.SWIGLU, false, false, false),
                new FeedForwardCase("Q8_0/Q4_0/F16 64x44 clamped, biases", 64, 44, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.F16,
                        Activation.SWIGLU_CLAMPED, true, true, true),
                new FeedForwardCase("MXFP4/Q6_K 64x256 SwiGLU, gate and down biases", 64, 256, GgmlType.MXFP4, GgmlType.MXFP4, GgmlType.Q6_K,
                        Activation.SWIGLU, true, false, true),
                new FeedForwardCase("Q4_K/BF16 256x256 clamped", 256, 256, GgmlType.Q4_K, GgmlType.BF16, GgmlType.Q4_K,
                        Activation.SWIGLU_CLAMPED, false, false, false));
    }

    /**
     * A dense network added to the residual: within the network's bound ({@link #network}) plus the two roundings
     * of the sum; each token alone gets the batch's bits.
     */
    @ParameterizedTest
    @MethodSource("feedForwardCases")
    public void feedForwardMatchesTheReference(FeedForwardCase c) {
        Backend b = backend();
        Random r = new Random(9 + c.hidden());
        int width = c.width();
        try (ModelFile f = new ModelFile()) {
            Stack stack = new Stack(f, r, 1, width, c.hidden(), c.gateType(), c.upType(), c.downType(), 4, c.gateBias(), c.upBias(), c.downBias());
            f.open();
            FeedForwardWeights ff = stack.load();
            f.finish();
            assertEquals(1, ff.count());
            assertEquals(width, ff.width());
            StackRef ref = stack.ref();
            for (int n : new int[]{1, 6, 19}) {
                float[] x = gauss(r, n * width, 1), res = gauss(r, n * width + 2, 1);
                Tensor xt = b.upload(x), rt = b.upload(res);
                b.feedForward(ff, c.activation(), xt, n, rt);
                float[] got = read(rt);
                assertSameBits(x, 0, read(xt), 0, x.length, () -> c + ": the input was changed");
                assertUntouchedOutside(res, got, 0, n * width, () -> c.toString());
                for (int t = 0; t < n; t++) {
                    Approx[] y = network(ref, 0, x, t * width, c.activation());
                    for (int i = 0; i < width; i++) {
                        double want = res[t * width + i] + y[i].value();
                        double bound = y[i].bound() + U * Math.abs(y[i].value()) + U * Math.abs(want);
                        int tt = t, ii = i, nn = n;
                        assertWithin(new Approx(want, bound), got[t * width + i], () -> c + ", " + nn + " tokens, token " + tt + " element " + ii);
                    }
                }
                for (int t = 0; t < n; t++) {
                    Tensor r1 = b.upload(Arrays.copyOfRange(res, t * width, (t + 1) * width));
                    b.feedForward(ff, c.activation(), b.upload(Arrays.copyOfRange(x, t * width, (t + 1) * width)), 1, r1);
                    int tt = t, nn = n;
                    assertSameBits(read(r1), 0, got, t * width, width, () -> c + ": token " + tt + " alone and in a batch of " + nn);
                }
            }
        }
    }

    // ---- mixture of experts ------------------------------------------------------------------------------------

    /**
     * @param selectionBias   whether the block has a selection bias (N(0, 0.1) per expert)
     * @param routerBiasShift added to every router bias (with {@code routerBias})
     */
    record MoeCase(String name, Routing routing, int experts, int width, int hidden, GgmlType gateType, GgmlType downType,
                   GgmlType routerType, Activation activation, boolean routerBias, boolean expertBiases, boolean shared,
                   boolean sharedGate, boolean selectionBias, float routerBiasShift) {
        MoeCase(String name, Routing routing, int experts, int width, int hidden, GgmlType gateType, GgmlType downType,
                GgmlType routerType, Activation activation, boolean routerBias, boolean expertBiases, boolean shared,
                boolean sharedGate) {
            this(name, routing, experts, width, hidden, gateType, downType, routerType, activation, routerBias, expertBiases,
                    shared, sharedGate, false, 0f);
        }

        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<MoeCase> moeCases() {
        return Stream.of(
                new MoeCase("softmax, top 4 of 9, normalized, Q8_0/Q4_0, gated shared expert",
                        new Routing(Routing.Gating.SOFTMAX_THEN_TOP_K, 4, true, 1f), 9, 64, 32, GgmlType.Q8_0, GgmlType.Q4_0,
                        GgmlType.F32, Activation.SWIGLU, false, false, true, true),
                new MoeCase("top 3 of 7 then softmax, router and expert biases, MXFP4, clamped",
                        new Routing(Routing.Gating.TOP_K_THEN_SOFTMAX, 3, false, 1f), 7, 64, 32, GgmlType.MXFP4, GgmlType.MXFP4,
                        GgmlType.F16, Activation.SWIGLU_CLAMPED, true, true, false, false),
                new MoeCase("top 2 of 5 then softmax, normalized, scale 0.7, Q4_K/Q6_K",
                        new Routing(Routing.Gating.TOP_K_THEN_SOFTMAX, 2, true, 0.7f), 5, 256, 256, GgmlType.Q4_K, GgmlType.Q6_K,
                        GgmlType.F32, Activation.SWIGLU, false, false, false, false),
                new MoeCase("softmax, top 1 of 4, scale 2.5, router bias, F16/BF16 22 hidden, ungated shared expert with biases",
                        new Routing(Routing.Gating.SOFTMAX_THEN_TOP_K, 1, false, 2.5f), 4, 37, 22, GgmlType.F16, GgmlType.BF16,
                        GgmlType.F32, Activation.SWIGLU, true, true, true, false),
                new MoeCase("softmax, all 4 of 4, normalized, scale 0.5, F32/F16 30 hidden, gated shared expert, clamped",
                        new Routing(Routing.Gating.SOFTMAX_THEN_TOP_K, 4, true, 0.5f), 4, 64, 30, GgmlType.F32, GgmlType.F16,
                        GgmlType.F32, Activation.SWIGLU_CLAMPED, false, false, true, true),
                new MoeCase("top 1 of 6 then softmax, normalized (weight 1), Q4_0/Q8_0",
                        new Routing(Routing.Gating.TOP_K_THEN_SOFTMAX, 1, true, 1f), 6, 64, 32, GgmlType.Q4_0, GgmlType.Q8_0,
                        GgmlType.F32, Activation.SWIGLU, false, false, false, false),
                new MoeCase("sigmoid, selection bias, top 4 of 16 in 4 groups (2 used), normalized, scale 2.5, Q8_0, ungated shared expert",
                        new Routing(Routing.Gating.SIGMOID_THEN_TOP_K, 4, true, 2.5f, 4, 2), 16, 64, 32, GgmlType.Q8_0, GgmlType.Q8_0,
                        GgmlType.F32, Activation.SWIGLU, false, false, true, false, true, 0f),
                new MoeCase("sigmoid, top 3 of 8, F16/F32",
                        new Routing(Routing.Gating.SIGMOID_THEN_TOP_K, 3, false, 1f), 8, 48, 20, GgmlType.F16, GgmlType.F32,
                        GgmlType.F32, Activation.SWIGLU, false, false, false, false),
                new MoeCase("softmax, selection bias, top 2 of 12 in 3 groups (1 used), normalized, Q4_0",
                        new Routing(Routing.Gating.SOFTMAX_THEN_TOP_K, 2, true, 1f, 3, 1), 12, 64, 32, GgmlType.Q4_0, GgmlType.Q4_0,
                        GgmlType.F32, Activation.SWIGLU, false, false, false, false, true, 0f),
                new MoeCase("sigmoid, router bias -15 (weights summing below the clamp), selection bias, top 2 of 8 in 2 groups (1 used), normalized",
                        new Routing(Routing.Gating.SIGMOID_THEN_TOP_K, 2, true, 1f, 2, 1), 8, 64, 32, GgmlType.F32, GgmlType.F32,
                        GgmlType.F32, Activation.SWIGLU, true, false, true, false, true, -15f));
    }

    /** One routing decision as a trace received it. */
    record Decision(int layer, int token, float[] logits, int[] selected, float[] weights) {
    }

    /**
     * The router's weights in double for the experts {@code selected}, as {@code routing} says, and their tolerance:
     * relative to each other the weights are off by the logits' errors (twice the largest) and the float softmax's
     * evaluation (a rounded argument of up to twice the logits' range, exp, a sum of up to all experts' terms, a
     * division; the renormalisation's sum and division), and every weight by at most that fraction of their total.
     * A sigmoid weight is off relatively by at most its logit's error (the slope of ln σ is below 1) and its own
     * evaluation (exp, a sum, a division).
     */
    static Approx[] routeWeights(Routing routing, double[] logits, double[] logitBounds, int[] selected) {
        int k = selected.length;
        double max = Double.NEGATIVE_INFINITY, min = Double.POSITIVE_INFINITY, maxBound = 0;
        for (int e = 0; e < logits.length; e++) {
            max = Math.max(max, logits[e]);
            min = Math.min(min, logits[e]);
            maxBound = Math.max(maxBound, logitBounds[e]);
        }
        double[] w = new double[k];
        double sum = 0, eps;
        if (routing.gating() == Routing.Gating.SIGMOID_THEN_TOP_K) {
            for (int s = 0; s < k; s++) sum += w[s] = 1 / (1 + Math.exp(-logits[selected[s]]));
            eps = maxBound + (logits.length + 12) * U;
        } else {
            double z = 0;
            if (routing.gating() == Routing.Gating.SOFTMAX_THEN_TOP_K) for (double l : logits) z += Math.exp(l - max);
            else for (int e : selected) z += Math.exp(logits[e] - max);
            for (int s = 0; s < k; s++) sum += w[s] = Math.exp(logits[selected[s]] - max) / z;
            eps = 2 * maxBound + (2 * (max - min) + 2 * logits.length + 12) * U;
        }
        double total = 0;
        for (int s = 0; s < k; s++) {
            if (routing.normalize()) w[s] /= Math.max(sum, Routing.MIN_WEIGHT_SUM);
            w[s] *= routing.scale();
            total += w[s];
        }
        Approx[] out = new Approx[k];
        for (int s = 0; s < k; s++) out[s] = new Approx(w[s], 2 * eps * total + 2 * U * Math.abs(w[s]));
        return out;
    }

    /** The experts the reference chooses (ascending), and whether the choice is beyond the floats' errors. */
    record Choice(int[] selected, boolean clear) {
    }

    /**
     * The choice of {@link Routing} in double: gated probabilities p, selection scores s = p + bias, the best groups
     * by the sum of their two best s, the k best s among their experts (ties to the lower id). It is clear when the
     * gaps it decides by (between the last group kept and the first left out, between the k-th and the (k+1)-th
     * eligible score) exceed what float evaluation can move them: each s by its probability's error (a softmax's
     * relative error as in {@link #routeWeights}, a sigmoid's slope of at most 1/4 times the logit's error, a logit
     * itself for top-k-then-softmax) and the bias addition's rounding, a group score by two of those and its sum.
     */
    static Choice referenceChoice(Routing routing, double[] logits, double[] logitBounds, float[] bias) {
        int n = logits.length, k = routing.k();
        double max = Arrays.stream(logits).max().orElseThrow(), min = Arrays.stream(logits).min().orElseThrow();
        double maxBound = Arrays.stream(logitBounds).max().orElseThrow();
        double[] p = new double[n], s = new double[n];
        double z = 0;
        for (double l : logits) z += Math.exp(l - max);
        double err = 0, maxS = 0;
        for (int e = 0; e < n; e++) {
            double pe, pb;
            switch (routing.gating()) {
                case SOFTMAX_THEN_TOP_K -> {
                    pe = Math.exp(logits[e] - max) / z;
                    pb = pe * (2 * maxBound + (2 * (max - min) + 2 * n + 12) * U);
                }
                case SIGMOID_THEN_TOP_K -> {
                    pe = 1 / (1 + Math.exp(-logits[e]));
                    pb = 0.25 * logitBounds[e] + 6 * U * pe;
                }
                default -> {
                    pe = logits[e];
                    pb = logitBounds[e];
                }
            }
            p[e] = pe;
            s[e] = pe + (bias != null ? bias[e] : 0);
            err = Math.max(err, pb + U * Math.abs(s[e]));
            maxS = Math.max(maxS, Math.abs(s[e]));
        }
        boolean[] eligible = new boolean[n];
        boolean clear = true;
        if (routing.grouped()) {
            int groups = routing.groups(), size = n / groups;
            double[] g = new double[groups];
            for (int gi = 0; gi < groups; gi++) {
                double[] in = Arrays.copyOfRange(s, gi * size, (gi + 1) * size);
                Arrays.sort(in);
                g[gi] = size == 1 ? in[0] : in[size - 1] + in[size - 2];
            }
            Integer[] order = new Integer[groups];
            for (int i = 0; i < groups; i++) order[i] = i;
            Arrays.sort(order, (a, c) -> g[a] != g[c] ? Double.compare(g[c], g[a]) : Integer.compare(a, c));
            for (int i = 0; i < routing.groupsUsed(); i++) {
                for (int e = order[i] * size; e < (order[i] + 1) * size; e++) eligible[e] = true;
            }
            if (routing.groupsUsed() < groups) {
                double gap = g[order[routing.groupsUsed() - 1]] - g[order[routing.groupsUsed()]];
                clear = gap > 2 * (2 * err + 2 * U * maxS);
            }
        } else {
            Arrays.fill(eligible, true);
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Arrays.sort(order, (a, c) -> eligible[a] != eligible[c] ? (eligible[a] ? -1 : 1)
                : s[a] != s[c] ? Double.compare(s[c], s[a]) : Integer.compare(a, c));
        if (k < n && eligible[order[k]]) clear &= s[order[k - 1]] - s[order[k]] > 2 * err;
        int[] sel = new int[k];
        for (int i = 0; i < k; i++) sel[i] = order[i];
        Arrays.sort(sel);
        return new Choice(sel, clear);
    }

    /**
     * A block on 1, 6 and 23 tokens (several choosing each expert, some experts unchosen): the trace gets every
     * token's decision once, with the router's logits (bias included) and the weights within the reference's
     * bounds, and a choice of k ascending experts that the exact logits admit (no expert left out whose logit is
     * above a chosen one's beyond the two errors; nearly every token's choice must be clear-cut, or the data would
     * test nothing); the counters count the choices of their layer only; the residual gets the mix of the chosen
     * experts' and the shared expert's outputs within the propagated bounds; each token alone gets the batch's bits.
     */
    @ParameterizedTest
    @MethodSource("moeCases")
    public void moeMatchesTheReference(MoeCase c) {
        Backend b = backend();
        Random r = new Random(10 + c.experts() * 31 + c.routing().k());
        int width = c.width(), nExp = c.experts(), k = c.routing().k(), layers = 5, layer = 3;
        try (ModelFile f = new ModelFile()) {
            ModelFile.Blob router = f.add(c.routerType(), nExp, width, gauss(r, nExp * width, 2 / Math.sqrt(width)));
            float[] rb = gauss(r, nExp, 1);
            for (int e = 0; e < nExp; e++) rb[e] += c.routerBiasShift();
            ModelFile.Blob routerBias = c.routerBias() ? f.add(GgmlType.F32, 1, nExp, rb) : null;
            Stack experts = new Stack(f, r, nExp, width, c.hidden(), c.gateType(), c.gateType(), c.downType(), 3,
                    c.expertBiases(), c.expertBiases(), c.expertBiases());
            Stack shared = c.shared() ? new Stack(f, r, 1, width, c.hidden(), c.gateType(), c.gateType(), c.downType(), 3,
                    c.expertBiases(), c.expertBiases(), c.expertBiases()) : null;
            ModelFile.Blob sharedGate = c.sharedGate() ? f.add(GgmlType.F32, 1, width, gauss(r, width, 0.3)) : null;
            ModelFile.Blob selection = c.selectionBias() ? f.add(GgmlType.F32, 1, nExp, gauss(r, nExp, 0.1)) : null;
            f.open();
            MoeWeights w = new MoeWeights(router.matrix(nExp), routerBias != null ? routerBias.vector() : null, experts.load(),
                    shared != null ? shared.load() : null, sharedGate != null ? sharedGate.vector() : null,
                    selection != null ? selection.vector() : null);
            f.finish();
            assertEquals(nExp, w.expertCount());
            float[] routerW = router.decoded(), bias = routerBias != null ? routerBias.decoded() : null;
            float[] selBias = selection != null ? selection.decoded() : null;
            float[] gateW = sharedGate != null ? sharedGate.decoded() : null;
            StackRef expertRef = experts.ref(), sharedRef = shared != null ? shared.ref() : null;

            ExpertCounts counts = b.expertCounts(layers, nExp);
            assertEquals(layers, counts.layers());
            assertEquals(nExp, counts.experts());
            long[][] wantCounts = new long[layers][nExp];
            assertTrue(Arrays.deepEquals(wantCounts, counts.snapshot()), "fresh counters are zero");
            int clear = 0, decisions = 0;
            for (int n : new int[]{1, 6, 23}) {
                int callLayer = n == 6 ? 1 : layer;
                float[] x = gauss(r, n * width, 1), res = gauss(r, n * width + 3, 1);
                Tensor xt = b.upload(x), rt = b.upload(res);
                List<Decision> trace = new ArrayList<>();
                b.moe(callLayer, w, c.routing(), c.activation(), xt, n, rt, counts,
                        (l, t, logits, off, sel, wts) -> trace.add(new Decision(l, t, Arrays.copyOfRange(logits, off, off + nExp), sel.clone(), wts.clone())));
                float[] got = read(rt);
                assertSameBits(x, 0, read(xt), 0, x.length, () -> c + ": the input was changed");
                assertUntouchedOutside(res, got, 0, n * width, () -> c.toString());
                assertEquals(n, trace.size(), c + ": decisions traced for " + n + " tokens");
                Decision[] byToken = new Decision[n];
                for (Decision d : trace) {
                    assertEquals(callLayer, d.layer());
                    assertTrue(d.token() >= 0 && d.token() < n && byToken[d.token()] == null, c + ": token " + d.token() + " traced once");
                    byToken[d.token()] = d;
                }
                for (int t = 0; t < n; t++) {
                    Decision d = byToken[t];
                    String at = c + ", " + n + " tokens, token " + t;
                    double[] logits = new double[nExp], lb = new double[nExp];
                    for (int e = 0; e < nExp; e++) {
                        Approx l = dot(routerW, e * width, x, t * width, width);
                        logits[e] = l.value() + (bias != null ? bias[e] : 0);
                        lb[e] = l.bound() + (bias != null ? U * (Math.abs(logits[e]) + l.bound()) : 0);
                        int ee = e;
                        assertWithin(new Approx(logits[e], lb[e]), d.logits()[e], () -> at + ": router logit " + ee);
                    }
                    int[] sel = d.selected();
                    assertEquals(k, sel.length, at);
                    assertEquals(k, d.weights().length, at);
                    for (int s = 1; s < k; s++) assertTrue(sel[s - 1] < sel[s], at + ": ascending ids " + Arrays.toString(sel));
                    if (!c.routing().grouped() && selBias == null) {
                        // admissible: no left-out expert beats a chosen one by more than both logits' errors (and the
                        // rounding of probabilities, which can tie two logits that differ by a few units in the last place)
                        double range = Arrays.stream(logits).max().orElseThrow() - Arrays.stream(logits).min().orElseThrow();
                        double tie = 2 * (range + 4) * U;
                        boolean[] chosen = new boolean[nExp];
                        for (int e : sel) chosen[e] = true;
                        double lowestChosen = Double.POSITIVE_INFINITY, highestLeft = Double.NEGATIVE_INFINITY;
                        double lowestChosenB = 0, highestLeftB = 0;
                        for (int e = 0; e < nExp; e++) {
                            if (chosen[e] && logits[e] < lowestChosen) {
                                lowestChosen = logits[e];
                                lowestChosenB = lb[e];
                            }
                            if (!chosen[e] && logits[e] > highestLeft) {
                                highestLeft = logits[e];
                                highestLeftB = lb[e];
                            }
                        }
                        if (k < nExp) {
                            double margin = lowestChosenB + highestLeftB + tie;
                            assertTrue(lowestChosen + margin >= highestLeft, at + ": experts " + Arrays.toString(sel) + " of logits "
                                    + Arrays.toString(logits) + " leave out a better one");
                            if (lowestChosen - margin > highestLeft) clear++;
                        } else {
                            clear++;
                        }
                    } else {
                        // groups and a selection bias: where the reference's choice is clear it is the one
                        Choice want = referenceChoice(c.routing(), logits, lb, selBias);
                        if (want.clear()) {
                            assertArrayEquals(want.selected(), sel, at + ": experts " + Arrays.toString(sel) + ", the reference chooses "
                                    + Arrays.toString(want.selected()));
                            clear++;
                        }
                    }
                    decisions++;
                    for (int e : sel) wantCounts[callLayer][e]++;

                    Approx[] rw = routeWeights(c.routing(), logits, lb, sel);
                    for (int s = 0; s < k; s++) {
                        int ss = s;
                        assertWithin(rw[s], d.weights()[s], () -> at + ": weight of expert " + sel[ss]);
                    }
                    // the mix, with the weights' errors carried
                    double[] y = new double[width], yb = new double[width];
                    for (int s = 0; s < k; s++) {
                        Approx[] o = network(expertRef, sel[s], x, t * width, c.activation());
                        for (int i = 0; i < width; i++) {
                            y[i] += rw[s].value() * o[i].value();
                            yb[i] += rw[s].bound() * (Math.abs(o[i].value()) + o[i].bound()) + Math.abs(rw[s].value()) * o[i].bound();
                        }
                    }
                    if (sharedRef != null) {
                        double g = 1, gb = 0;
                        if (gateW != null) {
                            Approx dotG = dot(gateW, 0, x, t * width, width);
                            g = 1 / (1 + Math.exp(-dotG.value()));
                            gb = 0.25 * dotG.bound() + 4 * U * g; // sigmoid's slope is at most 1/4
                        }
                        Approx[] o = network(sharedRef, 0, x, t * width, c.activation());
                        for (int i = 0; i < width; i++) {
                            y[i] += g * o[i].value();
                            yb[i] += gb * (Math.abs(o[i].value()) + o[i].bound()) + g * o[i].bound();
                        }
                    }
                    for (int i = 0; i < width; i++) {
                        double want = res[t * width + i] + y[i];
                        double bound = yb[i] + 2 * U * Math.abs(y[i]) + U * Math.abs(want);
                        int ii = i;
                        assertWithin(new Approx(want, bound), got[t * width + i], () -> at + ", element " + ii);
                    }
                }
                assertTrue(Arrays.deepEquals(wantCounts, counts.snapshot()), c + ": counts " + Arrays.deepToString(counts.snapshot())
                        + ", want " + Arrays.deepToString(wantCounts));

                for (int t = 0; t < n; t++) {
                    Tensor r1 = b.upload(Arrays.copyOfRange(res, t * width, (t + 1) * width));
                    b.moe(callLayer, w, c.routing(), c.activation(), b.upload(Arrays.copyOfRange(x, t * width, (t + 1) * width)), 1, r1, null, null);
                    int tt = t, nn = n;
                    assertSameBits(read(r1), 0, got, t * width, width, () -> c + ": token " + tt + " alone and in a batch of " + nn);
                }
            }
            assertTrue(clear >= decisions - 2, c + ": only " + clear + " of " + decisions + " routings are clear-cut; pick other data");
        }
    }
}
