package io.moe4j.model;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class LoadProgressTest {
    private static final long GB = 1_000_000_000L, SECOND = 1_000_000_000L;

    @Test
    void aSlowLoadPrintsEveryTenthAfterTheFirstSecondAndTheEnd() {
        long[] now = {0};
        List<String> lines = new ArrayList<>();
        LoadProgress p = LoadProgress.lines("m.gguf", lines::add, () -> now[0]);
        p.loaded(GB / 2, 10 * GB); // 5%, at once
        now[0] = SECOND / 2;
        p.loaded(3 * GB, 10 * GB); // 30%, within the first second: not yet
        now[0] = 2 * SECOND;
        p.loaded(6 * GB, 10 * GB);
        p.loaded(6 * GB + GB / 2, 10 * GB); // same tenth
        now[0] = 9 * SECOND;
        p.loaded(10 * GB, 10 * GB);
        assertEquals(List.of("loading m.gguf: 60% of 10.00 GB", "loaded m.gguf (10.00 GB) in 9.0 s"), lines);
    }

    @Test
    void aFastLoadPrintsNothing() {
        long[] now = {0};
        List<String> lines = new ArrayList<>();
        LoadProgress p = LoadProgress.lines("m.gguf", lines::add, () -> now[0]);
        for (int i = 1; i <= 10; i++) {
            now[0] = i * SECOND / 20;
            p.loaded(i * GB, 10 * GB);
        }
        assertEquals(List.of(), lines);
    }
}
