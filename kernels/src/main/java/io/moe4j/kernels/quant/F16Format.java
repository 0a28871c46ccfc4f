package io.moe4j.kernels.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

final class F16Format implements BlockFormat {
    static final F16Format INSTANCE = new F16Format();
    private static final ValueLayout.OfShort LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Override
    public void dequantize(MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        for (int i = 0; i < n; i++) dst[dstOffset + i] = Float.float16ToFloat(src.get(LE, offset + 2L * i));
    }

    @Override
    public float dot(MemorySegment src, long offset, float[] x, int xOffset, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += Float.float16ToFloat(src.get(LE, offset + 2L * i)) * x[xOffset + i];
        return s;
    }
}
