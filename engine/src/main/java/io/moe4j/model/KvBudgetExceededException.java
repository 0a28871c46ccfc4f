package io.moe4j.model;

import io.moe4j.ByteSize;
import io.moe4j.Moe4jException;

/**
 * The KV cache pool has no room for the pages a sequence needs: its byte budget ({@code --kv-budget}) is taken by
 * the pages of other sequences (and of the prompt cache, which is dropped first where there is one).
 */
public class KvBudgetExceededException extends Moe4jException {
    private final long budget, inUse, requested;

    public KvBudgetExceededException(long budget, long inUse, long requested, int positions) {
        this(budget, inUse, requested, "for " + positions + " more positions");
    }

    /** {@code purpose}: what the sequence needs the pages for ("for 12 more positions"). */
    public KvBudgetExceededException(long budget, long inUse, long requested, String purpose) {
        super("the KV cache budget of " + ByteSize.format(budget) + " is exhausted: " + ByteSize.format(inUse) + " in use, and a sequence needs "
                + ByteSize.format(requested) + " more " + purpose + " (--kv-budget sets the budget)");
        this.budget = budget;
        this.inUse = inUse;
        this.requested = requested;
    }

    public long budget() {
        return budget;
    }

    public long inUse() {
        return inUse;
    }

    /** Bytes of the pages that did not fit. */
    public long requested() {
        return requested;
    }

}
