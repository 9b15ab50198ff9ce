/**
 * userops from Java: {@link io.userops.Engine}, the unified user pool (OneID identity
 * resolution, profiles, loyalty ledgers and tiers, lifecycle, promotions), over the userops C
 * library through JNA.
 *
 * <p>Ownership: {@link io.userops.Engine} and {@link io.userops.Quote} are
 * {@link java.lang.AutoCloseable} (try-with-resources); every string and Arrow batch the
 * library hands back is copied into Java objects and freed at once. Errors are unchecked
 * {@link io.userops.UserOpsException} subclasses carrying a stable {@code code()} and the
 * {@code field()} at fault.
 *
 * <p>The native library is found on {@code -Djna.library.path}, the system library path, or
 * inside the jar ({@code linux-x86-64/libuserops.so}).
 */
package io.userops;
