package io.userops;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.LongByReference;
import com.sun.jna.ptr.PointerByReference;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.OptionalLong;

/**
 * An engine: the unified user pool, in memory or kept in a SQLite file. Every capability is a
 * command by name ({@link #call}); the commonest are typed methods.
 *
 * <pre>{@code
 * try (Engine engine = Engine.open(Paths.get("crm.db"))) {
 *     engine.link("app-1", Instant.now(), "app", "brand-a",
 *         Identifier.of("member_no", "M7"), Identifier.of("phone", "13900139000"));
 *     OptionalLong who = engine.resolve("phone", "+86 139 0013 9000");
 *     Posting p = engine.earn(User.id("member_no", "M7"), "brand-a", 199, "order-1");
 * } catch (InsufficientPointsException e) {
 *     ...
 * }
 * }</pre>
 *
 * <p>Thread-safe: any thread may call any method at any time. Writes run one at a time, in
 * journal order; a read sees a whole state holding every write that returned before it
 * started. With the default concurrency reads run together but wait for a write in progress;
 * an engine made with {@code "replicas"} ({@link #inMemory(String)},
 * {@link #open(Path, String, String)}) never makes a read wait for a write. {@link #close} waits for calls
 * in flight, frees the engine once (a durable engine's acknowledged commands are already
 * committed to its file) and makes every later call throw {@link ClosedException}; closing
 * twice does nothing.
 *
 * <p>Errors: a refused call throws a {@link UserOpsException} subclass and changes nothing. A
 * required argument passed as null is an {@link InvalidArgumentException}; an optional one (a
 * time, documented as such) takes the library's default. Times are {@link Instant}s; money is
 * {@link java.math.BigDecimal} ({@link Quote}, {@link Cart}).
 */
public final class Engine implements AutoCloseable {
    private static final NativeLib LIB = NativeLib.LIB;

    private final NativeHandle handle;

    private Engine(Pointer engine) {
        handle = new NativeHandle("engine", engine, LIB::userops_engine_free);
    }

    /** An engine in memory (business time zone +08:00, monthly periods). */
    public static Engine inMemory() {
        Pointer p = LIB.userops_engine_new();
        if (p == null) {
            throw new OutOfMemoryError("userops_engine_new");
        }
        return new Engine(p);
    }

    /**
     * An engine in memory shared by threads as {@code concurrency} says: {@code "lock"} (what
     * {@link #inMemory()} makes: one copy of the state, reads wait for a write in progress) or
     * {@code "replicas"} (for a service: reads never wait for writes and long analyses run on
     * a copy of their own; three copies of the state).
     *
     * @throws InvalidArgumentException another {@code concurrency}
     */
    public static Engine inMemory(String concurrency) {
        PointerByReference out = new PointerByReference();
        UserOpsException.check(LIB.userops_engine_new_with(concurrency, out));
        return new Engine(out.getValue());
    }

    /**
     * Open (or create) a durable engine kept in the SQLite file at {@code path}: every command
     * that changes state is journaled and committed before its call returns.
     *
     * @throws StorageException a directory, a read-only or foreign file, a newer schema
     * @throws CorruptStoreException a corrupt record (the message names it)
     */
    public static Engine open(Path path) {
        PointerByReference out = new PointerByReference();
        UserOpsException.check(LIB.userops_engine_open(path == null ? null : path.toString(), out));
        return new Engine(out.getValue());
    }

    /**
     * {@link #open(Path)} with the commit mode and the concurrency: {@code durability} is
     * {@code "every"} (each command committed before its call returns) or {@code "group"}
     * (commands committed in groups of up to 1,000 or every 10 ms: faster, a crash loses the
     * last group); {@code concurrency} as for {@link #inMemory(String)} (with
     * {@code "replicas"} reads never wait for a write or its commit, and snapshots are written
     * in the background).
     *
     * @throws InvalidArgumentException an unknown {@code durability} or {@code concurrency}
     * @throws StorageException a directory, a read-only or foreign file, a newer schema
     * @throws CorruptStoreException a corrupt record (the message names it)
     */
    public static Engine open(Path path, String durability, String concurrency) {
        PointerByReference out = new PointerByReference();
        UserOpsException.check(
            LIB.userops_engine_open_with(path == null ? null : path.toString(), durability, concurrency, out));
        return new Engine(out.getValue());
    }

    /** The library version, e.g. {@code "0.1.0"}. */
    public static String version() {
        return LIB.userops_version();
    }

    /**
     * Run a table function without an engine: {@code lifecycle}, {@code active_rate_decomposition},
     * {@code funnel}, {@code cohort_retention} or {@code attribution}, with the Python function's
     * keyword arguments as JSON (columns inline). Returns the result as JSON.
     */
    public static String tableCall(String method, String argsJson) {
        return string(out -> LIB.userops_table_call(method, argsJson, out));
    }

    // ------------------------------------------------------------------------------ JSON door

    /**
     * Ingest one event (the JSON wire shape of SPEC §2); returns the receipt as JSON. A replayed
     * idempotency key is not an error: the receipt says {@code "duplicate": true}.
     *
     * @throws InvalidEventException a malformed event ({@code field()} names the part)
     */
    public String ingest(String eventJson) {
        return handle.use(e -> string(out -> LIB.userops_engine_ingest_json(e, eventJson, out)));
    }

    /**
     * Call any engine method by name (the Python {@code Engine}'s method and argument names)
     * with its arguments as a JSON object; returns the result as JSON.
     *
     * @throws UnknownMethodException no such method
     */
    public String call(String method, String argsJson) {
        return handle.use(e -> string(out -> LIB.userops_engine_call(e, method, argsJson, out)));
    }

    /** {@link #call(String, String)} without arguments. */
    public String call(String method) {
        return call(method, "{}");
    }

    // ------------------------------------------------------------------------------ identity

    /**
     * Link identifiers seen together in one record (an {@code identify} event from
     * {@code platform} / {@code program} at {@code time}, idempotency key {@code key}): they
     * become one person, merging persons they belonged to when the identity rules allow.
     *
     * @throws InvalidEventException a bad identifier ({@code field()} is {@code "ids[1]"}), no identifiers
     * @throws DuplicateKeyException the key reused for other content
     */
    public LinkResult link(String key, Instant time, String platform, String program, List<Identifier> ids) {
        int n = ids == null ? 0 : ids.size();
        String[] kinds = new String[n];
        String[] values = new String[n];
        for (int i = 0; i < n; i++) {
            Identifier id = ids.get(i);
            if (id == null) {
                throw UserOpsException.of(UserOpsException.INVALID_ARGUMENT,
                    "invalid argument at `ids[" + i + "]`: null", "ids[" + i + "]");
            }
            kinds[i] = id.kind();
            values[i] = id.value();
        }
        return handle.use(e -> {
            NativeLib.CLinkResult r = new NativeLib.CLinkResult();
            UserOpsException.check(LIB.userops_identity_link(e, key, iso(time), platform, program,
                n == 0 ? null : kinds, n == 0 ? null : values, new NativeLib.SizeT(n), r));
            return new LinkResult(r.oneid, r.seq, r.absorbed, r.duplicate != 0);
        });
    }

    /** {@link #link(String, Instant, String, String, List)} with the identifiers inline. */
    public LinkResult link(String key, Instant time, String platform, String program, Identifier... ids) {
        return link(key, time, platform, program, ids == null ? null : Arrays.asList(ids));
    }

    /**
     * The person an identifier belongs to, or empty when it is unknown (nothing is created).
     *
     * @throws InvalidIdentifierException a malformed value or an unknown kind
     */
    public OptionalLong resolve(String kind, String value) {
        return handle.use(e -> {
            LongByReference oneid = new LongByReference();
            UserOpsException.check(LIB.userops_identity_resolve(e, kind, value, oneid));
            return oneid.getValue() == 0 ? OptionalLong.empty() : OptionalLong.of(oneid.getValue());
        });
    }

    /**
     * Resolve many identifiers of one kind at once (one call, through Arrow): the OneID of each
     * value, 0 where it is unknown (OneIDs start at 1).
     *
     * @throws InvalidIdentifierException a value that is not an identifier of {@code kind} (the message names its row)
     */
    public long[] resolveMany(String kind, List<String> values) {
        Arrow.Utf8Input input = new Arrow.Utf8Input(values);
        return handle.use(e -> {
            try (Arrow.Batch out = new Arrow.Batch()) {
                int status = LIB.userops_identity_resolve_arrow(e, kind, input.array, input.schema, out.array,
                    out.schema);
                input.releaseIfHeld();
                UserOpsException.check(status);
                Arrow.Column oneid = out.column("oneid", "L");
                long[] result = new long[out.rows()];
                for (int row = 0; row < result.length; row++) {
                    result[row] = oneid.isNull(row) ? 0 : oneid.getLong(row);
                }
                return result;
            }
        });
    }

    /**
     * Why two identifiers are (or are not) one person, as JSON: {@code {"joined", "oneid_a",
     * "oneid_b", "chain": [...], "reasons": [...]}}.
     */
    public String explain(String kindA, String valueA, String kindB, String valueB) {
        return handle.use(e -> string(out -> LIB.userops_identity_explain(e, kindA, valueA, kindB, valueB, out)));
    }

    /**
     * Merge two persons by hand: an audited operator action ({@code actor}, {@code reason});
     * {@code time} (may be null: now) dates the member-state transfers. Every module folds the
     * absorbed person's state into the survivor's.
     *
     * @throws InvalidArgumentException both the same person, an unknown identifier
     * @throws NotFoundException a OneID never handed out
     */
    public MergeResult merge(User a, User b, String actor, String reason, Instant time) {
        return handle.use(e -> {
            LongByReference survivor = new LongByReference();
            PointerByReference report = new PointerByReference();
            UserOpsException.check(LIB.userops_identity_merge(e, NativeLib.CUser.of(a), NativeLib.CUser.of(b), actor,
                reason, iso(time), survivor, report));
            return new MergeResult(survivor.getValue(), take(report));
        });
    }

    /**
     * Remove evidence (record ids, or {@code "manual:N"} for a manual merge) and recompute the
     * persons it joined (audited: {@code actor}, {@code reason}), now. See
     * {@link #split(List, String, String, Instant)}.
     *
     * @throws InvalidArgumentException no evidence, the evidence of an erased person
     * @throws NotFoundException an unknown record
     */
    public String split(List<String> evidence, String actor, String reason) {
        return split(evidence, actor, reason, null);
    }

    /**
     * Remove evidence (record ids, or {@code "manual:N"} for a manual merge) and recompute the
     * persons it joined (audited: {@code actor}, {@code reason}); {@code time} (may be null:
     * now) dates the member state given back to each part. Returns the split report as JSON:
     * {@code {"split", "parts": [{"oneid", "identifiers"}], "not_split_back", ...}}.
     *
     * @throws InvalidArgumentException no evidence, the evidence of an erased person
     * @throws NotFoundException an unknown record
     */
    public String split(List<String> evidence, String actor, String reason, Instant time) {
        String[] items = evidence == null ? new String[0] : evidence.toArray(new String[0]);
        return handle.use(e -> string(out -> LIB.userops_identity_split(e, items.length == 0 ? null : items,
            new NativeLib.SizeT(items.length), actor, reason, iso(time), out)));
    }

    // ------------------------------------------------------------------------------ loyalty

    /**
     * Earn {@code points} (&gt; 0) for {@code user} in {@code program} under the idempotency key
     * {@code key} (also the order key refunds find it by). {@code time} may be null (the latest
     * time loyalty has seen); with {@code pending} the points are held until {@link #post} or
     * {@link #voidEarn}. An unknown identifier creates the person.
     *
     * @throws InvalidAmountException points &lt;= 0 or overflowing
     * @throws LedgerDuplicateKeyException the key reused for another write
     * @throws NotFoundException an unknown program
     */
    public Posting earn(User user, String program, long points, String key, Instant time, boolean pending) {
        return handle.use(e -> {
            NativeLib.CPosting p = new NativeLib.CPosting();
            UserOpsException.check(LIB.userops_loyalty_earn(e, NativeLib.CUser.of(user), program, points, key,
                iso(time), pending ? 1 : 0, p));
            return posting(p);
        });
    }

    /** {@link #earn(User, String, long, String, Instant, boolean)} now, posted at once. */
    public Posting earn(User user, String program, long points, String key) {
        return earn(user, program, points, key, null, false);
    }

    /**
     * Spend {@code points} (&gt; 0) of {@code user} in {@code program}, earliest-expiring first,
     * under the idempotency key {@code key}; {@code time} may be null.
     *
     * @throws InsufficientPointsException above the balance: nothing changes
     * @throws UnknownAccountException the member never earned in the program
     */
    public Posting spend(User user, String program, long points, String key, Instant time) {
        return handle.use(e -> {
            NativeLib.CPosting p = new NativeLib.CPosting();
            UserOpsException.check(LIB.userops_loyalty_spend(e, NativeLib.CUser.of(user), program, points, key,
                iso(time), p));
            return posting(p);
        });
    }

    /** {@link #spend(User, String, long, String, Instant)} now. */
    public Posting spend(User user, String program, long points, String key) {
        return spend(user, program, points, key, null);
    }

    /**
     * Post the pending earn made under {@code earnKey}: its points join the balance.
     * {@code time} may be null.
     *
     * @throws NotPendingException no open pending earn under that key
     */
    public Posting post(String earnKey, Instant time) {
        return handle.use(e -> {
            NativeLib.CPosting p = new NativeLib.CPosting();
            UserOpsException.check(LIB.userops_loyalty_post(e, earnKey, iso(time), p));
            return posting(p);
        });
    }

    /**
     * Void the pending earn made under {@code earnKey}: its points never join the balance
     * ({@code void} is a Java keyword). {@code time} may be null.
     *
     * @throws NotPendingException no open pending earn under that key
     */
    public Posting voidEarn(String earnKey, Instant time) {
        return handle.use(e -> {
            NativeLib.CPosting p = new NativeLib.CPosting();
            UserOpsException.check(LIB.userops_loyalty_void(e, earnKey, iso(time), p));
            return posting(p);
        });
    }

    /**
     * The posted balance of {@code user} in {@code program}.
     *
     * @throws NotFoundException an unknown program
     */
    public long balance(User user, String program) {
        return handle.use(e -> {
            LongByReference balance = new LongByReference();
            UserOpsException.check(LIB.userops_loyalty_balance(e, NativeLib.CUser.of(user), program, balance));
            return balance.getValue();
        });
    }

    /**
     * The statement of {@code user} in {@code program}: one entry per posting, in order.
     *
     * @throws UnknownAccountException no account
     * @throws NotFoundException an unknown program
     */
    public List<StatementEntry> statement(User user, String program) {
        return handle.use(e -> {
            try (Arrow.Batch b = new Arrow.Batch()) {
                UserOpsException.check(LIB.userops_loyalty_statement(e, NativeLib.CUser.of(user), program, b.array,
                    b.schema));
                Arrow.Column id = b.column("id", "L");
                Arrow.Column time = b.column("time", "tsm:UTC");
                Arrow.Column kind = b.column("kind", "u");
                Arrow.Column key = b.column("key", "u");
                Arrow.Column amount = b.column("amount", "l");
                Arrow.Column balance = b.column("balance", "l");
                Arrow.Column pending = b.column("pending", "b");
                Arrow.Column counterparty = b.column("counterparty", "u");
                Arrow.Column expires = b.column("expires", "tsm:UTC");
                Arrow.Column reason = b.column("reason", "u");
                Arrow.Column actor = b.column("actor", "u");
                List<StatementEntry> rows = new ArrayList<>(b.rows());
                for (int r = 0; r < b.rows(); r++) {
                    rows.add(new StatementEntry(id.getLong(r), time.getInstant(r), kind.getString(r), key.getString(r),
                        amount.getLong(r), balance.getLong(r), pending.getBoolean(r),
                        counterparty.getStringOrNull(r), expires.isNull(r) ? null : expires.getInstant(r),
                        reason.getStringOrNull(r), actor.getStringOrNull(r)));
                }
                return Collections.unmodifiableList(rows);
            }
        });
    }

    /**
     * The tier of {@code user} in {@code program} at {@code now} (null: loyalty's clock).
     *
     * @throws NotFoundException an unknown program
     */
    public TierView tier(User user, String program, Instant now) {
        return handle.use(e -> {
            PointerByReference tier = new PointerByReference();
            PointerByReference view = new PointerByReference();
            int status = LIB.userops_loyalty_tier(e, NativeLib.CUser.of(user), program, iso(now), tier, view);
            String name = take(tier);
            String json = take(view);
            UserOpsException.check(status);
            return new TierView(name, json);
        });
    }

    /**
     * Evaluate every tier ladder at {@code now} (required): upgrades, and downgrades after grace
     * periods.
     */
    public TierEvaluation evaluateTiers(Instant now) {
        return handle.use(e -> {
            NativeLib.CTierEvaluation r = new NativeLib.CTierEvaluation();
            UserOpsException.check(LIB.userops_loyalty_evaluate_tiers(e, iso(now), r));
            return new TierEvaluation(r.members, r.upgraded, r.downgraded, r.grace);
        });
    }

    // ------------------------------------------------------------------------------ lifecycle, automation

    /**
     * The lifecycle report of every period as JSON: {@code {"periods": [{"period", "counts",
     * "active_rate", "decomposition", ...}]}}. {@code churnAfter} is the churn threshold in
     * periods (0: the default rule); {@code through} (may be null) extends the report to that
     * period label.
     *
     * @throws InvalidArgumentException a bad threshold or period label
     */
    public String lifecycleReport(int churnAfter, String through) {
        checkChurnAfter(churnAfter);
        return handle.use(e -> string(out -> LIB.userops_lifecycle_report(e, churnAfter, through, out)));
    }

    /**
     * The stage of every registered person in {@code period} (a label such as
     * {@code "2026-01"}; null: the last period with data). {@code churnAfter} as in
     * {@link #lifecycleReport}.
     *
     * @throws InvalidArgumentException an unknown period, no data yet
     */
    public List<LifecycleStage> lifecycleStages(String period, int churnAfter) {
        checkChurnAfter(churnAfter);
        return handle.use(e -> {
            try (Arrow.Batch b = new Arrow.Batch()) {
                UserOpsException.check(LIB.userops_lifecycle_stages(e, period, churnAfter, b.array, b.schema));
                Arrow.Column oneid = b.column("oneid", "L");
                Arrow.Column label = b.column("period", "u");
                Arrow.Column stage = b.column("stage", "u");
                List<LifecycleStage> rows = new ArrayList<>(b.rows());
                for (int r = 0; r < b.rows(); r++) {
                    rows.add(new LifecycleStage(oneid.getLong(r), label.getString(r), stage.getString(r)));
                }
                return Collections.unmodifiableList(rows);
            }
        });
    }

    /**
     * Run the automation rules at {@code now} (required) and return the delivery plan. This
     * changes state: rules fire once, coupons are issued, points posted, tags written, touches
     * recorded.
     */
    public List<PlannedAction> automationPlan(Instant now) {
        return handle.use(e -> {
            try (Arrow.Batch b = new Arrow.Batch()) {
                UserOpsException.check(LIB.userops_automation_plan(e, iso(now), b.array, b.schema));
                Arrow.Column touch = b.column("touch_id", "L");
                Arrow.Column user = b.column("user", "L");
                Arrow.Column action = b.column("action", "u");
                Arrow.Column channel = b.column("channel", "u");
                Arrow.Column content = b.column("content", "u");
                Arrow.Column coupon = b.column("coupon_id", "u");
                Arrow.Column points = b.column("points", "l");
                Arrow.Column program = b.column("program", "u");
                Arrow.Column key = b.column("key", "u");
                Arrow.Column tag = b.column("tag", "u");
                Arrow.Column rule = b.column("rule", "u");
                Arrow.Column reason = b.column("reason", "u");
                List<PlannedAction> rows = new ArrayList<>(b.rows());
                for (int r = 0; r < b.rows(); r++) {
                    rows.add(new PlannedAction(touch.isNull(r) ? null : touch.getLong(r), user.getLong(r),
                        action.getString(r), channel.getStringOrNull(r), content.getStringOrNull(r),
                        coupon.getStringOrNull(r), points.isNull(r) ? null : points.getLong(r),
                        program.getStringOrNull(r), key.getStringOrNull(r), tag.getStringOrNull(r), rule.getString(r),
                        reason.getString(r)));
                }
                return Collections.unmodifiableList(rows);
            }
        });
    }

    // ------------------------------------------------------------------------------ audiences, quotes

    /**
     * The members (OneIDs, ascending) of an audience expression evaluated now, e.g.
     * {@code "age > 40 and vip"}.
     *
     * @throws AudienceSyntaxException bad syntax, an unknown tag (the message suggests the nearest)
     */
    public long[] audience(String expression) {
        return handle.use(e -> {
            PointerByReference out = new PointerByReference();
            UserOpsException.check(LIB.userops_audience_eval(e, expression, out));
            Pointer a = out.getValue();
            try {
                long n = LIB.userops_audience_len(a);
                if (n > Integer.MAX_VALUE - 8) {
                    throw UserOpsException.of(UserOpsException.INTERNAL,
                        "an audience of " + n + " members does not fit a Java array", null);
                }
                long[] ids = new long[(int) n];
                Memory written = new Memory(Native.SIZE_T_SIZE);
                UserOpsException.check(LIB.userops_audience_oneids(a, 0, ids, new NativeLib.SizeT(ids.length),
                    written));
                long got = Native.SIZE_T_SIZE == 8 ? written.getLong(0) : written.getInt(0);
                if (got != ids.length) {
                    throw UserOpsException.of(UserOpsException.INTERNAL,
                        "userops_audience_oneids wrote " + got + " of " + ids.length + " members", null);
                }
                return ids;
            } finally {
                LIB.userops_audience_free(a);
            }
        });
    }

    /**
     * Evaluate a cart against the promotions for {@code user} (null: anonymous; per-user limits
     * and first-order conditions need one). Nothing changes until {@link #commit}. Close the
     * quote when done.
     *
     * @throws InvalidArgumentException a bad cart ({@code field()} names it: {@code "cart.lines[0].price"})
     */
    public Quote quote(Cart cart, User user) {
        return quote(cart == null ? null : cart.toJson(), user);
    }

    /**
     * {@link #quote(Cart, User)} with the cart as the {@code quote} method's JSON:
     * {@code {"time", "lines": [{"sku", "category", "price": "12.50", "qty"}], "channel", ...}}.
     */
    public Quote quote(String cartJson, User user) {
        return handle.use(e -> {
            PointerByReference out = new PointerByReference();
            UserOpsException.check(LIB.userops_quote_evaluate(e, cartJson, NativeLib.CUser.of(user), out));
            return new Quote(out.getValue());
        });
    }

    /**
     * Commit a quote under the idempotency key {@code key} (typically the order id): consumes
     * the budgets and limits of the promotions it applied. The same quote and key again change
     * nothing ({@code "duplicate": true}). Returns the receipt as JSON.
     *
     * @throws BudgetExhaustedException a budget cannot cover it (nothing consumed)
     * @throws PromotionLimitReachedException a limit is reached (nothing consumed)
     * @throws DuplicateKeyException the key used for another quote
     */
    public String commit(Quote quote, String key) {
        if (quote == null) {
            throw UserOpsException.of(UserOpsException.INVALID_ARGUMENT, "invalid argument at `quote`: null", "quote");
        }
        return handle.use(e -> quote.use(q -> string(out -> LIB.userops_quote_commit(e, q, key, out))));
    }

    /**
     * Cancel the commit made under {@code key} (an order refunded or abandoned): gives its
     * budgets and limits back. Returns the receipt as JSON.
     *
     * @throws NotFoundException no commit under that key
     */
    public String cancel(String key) {
        return handle.use(e -> string(out -> LIB.userops_quote_cancel(e, key, out)));
    }

    /**
     * Free the engine (closing its file). Waits for calls in flight on other threads; a second
     * close does nothing; later calls throw {@link ClosedException}.
     */
    @Override
    public void close() {
        handle.close();
    }

    // ------------------------------------------------------------------------------ helpers

    /** A C call that writes a string to its out-parameter and returns a status. */
    private interface StringOut {
        int call(PointerByReference out);
    }

    /** Run a call that hands over a string: check its status, take the string. */
    private static String string(StringOut call) {
        PointerByReference out = new PointerByReference();
        UserOpsException.check(call.call(out));
        return take(out);
    }

    /** Take a string the library handed over: copy it out, free it. Null stays null. */
    static String take(PointerByReference ref) {
        Pointer p = ref.getValue();
        if (p == null) {
            return null;
        }
        try {
            return p.getString(0, "UTF-8");
        } finally {
            LIB.userops_string_free(p);
        }
    }

    /** RFC 3339 (UTC, {@code Z}), or null. */
    private static String iso(Instant t) {
        return t == null ? null : t.toString();
    }

    private static Posting posting(NativeLib.CPosting p) {
        return new Posting(p.points, p.balance, p.transfer, p.pending != 0, p.duplicate != 0);
    }

    private static void checkChurnAfter(int churnAfter) {
        if (churnAfter < 0) {
            throw UserOpsException.of(UserOpsException.INVALID_ARGUMENT,
                "invalid argument at `churn_after`: " + churnAfter + " is negative", "churn_after");
        }
    }
}
