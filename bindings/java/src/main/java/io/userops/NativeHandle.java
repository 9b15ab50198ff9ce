package io.userops;

import com.sun.jna.Pointer;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Consumer;

/**
 * A C handle shared by threads: calls hold the read lock (so they run side by side, and the
 * library serializes what it must), {@link #close} takes the write lock, so it waits for the
 * calls in flight and frees the handle once. After close every call throws
 * {@link ClosedException} instead of reaching freed memory.
 */
final class NativeHandle {
    /** A call on the live pointer. */
    interface Call<T> {
        T apply(Pointer p);
    }

    private final String what;
    private final Consumer<Pointer> free;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private Pointer pointer; // guarded by lock; null once closed

    NativeHandle(String what, Pointer pointer, Consumer<Pointer> free) {
        this.what = what;
        this.pointer = pointer;
        this.free = free;
    }

    <T> T use(Call<T> call) {
        lock.readLock().lock();
        try {
            if (pointer == null) {
                throw UserOpsException.of(UserOpsException.INVALID_HANDLE, "the " + what + " is closed", null);
            }
            return call.apply(pointer);
        } finally {
            lock.readLock().unlock();
        }
    }

    void close() {
        lock.writeLock().lock();
        try {
            if (pointer != null) {
                free.accept(pointer);
                pointer = null;
            }
        } finally {
            lock.writeLock().unlock();
        }
    }
}
