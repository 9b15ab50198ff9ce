package io.userops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every Engine and Quote method, with its results and its typed refusals. */
class EngineTest {
    static final String IDENTIFY = "{\"kind\": \"identify\", \"key\": \"jd-7781\", \"time\": \"2026-01-05T10:00:00+08:00\","
        + " \"source\": {\"platform\": \"jd\", \"program\": \"brand-a\"},"
        + " \"ids\": [{\"kind\": \"phone\", \"value\": \"13800138000\"}, {\"kind\": \"device_id\", \"value\": \"a9f3\"}]}";

    static Instant t(String s) {
        return Instant.parse(s);
    }

    /** Two persons joined by a device, a third; a program with a spend ladder. */
    static Engine scenario() {
        Engine e = Engine.inMemory();
        e.link("jd-1", t("2026-01-05T02:00:00Z"), "jd", "brand-a", Identifier.of("phone", "13800138000"),
            Identifier.of("device_id", "a9f3"));
        e.link("app-1", t("2026-01-06T01:00:00Z"), "app", "brand-a", Identifier.of("member_no", "M1"),
            Identifier.of("device_id", "a9f3"));
        e.link("pos-1", t("2026-01-07T01:00:00Z"), "pos", "s1", Identifier.of("member_no", "M2"));
        e.call("create_program", "{\"program\": {\"id\": \"brand-a\", \"tiers\": {\"basis\": \"spend\","
            + " \"window\": \"rolling_12_months\", \"levels\": [{\"name\": \"silver\", \"threshold\": \"0\"},"
            + " {\"name\": \"gold\", \"threshold\": \"1000\"}]}}}");
        return e;
    }

    @Test
    void ingestAndCall() {
        try (Engine e = Engine.inMemory()) {
            String receipt = e.ingest(IDENTIFY);
            assertTrue(receipt.contains("\"oneid\":1") && receipt.contains("\"duplicate\":false"), receipt);
            assertTrue(e.ingest(IDENTIFY).contains("\"duplicate\":true"));
            assertEquals("{\"oneid\":1}", e.call("resolve", "{\"user\": {\"kind\": \"phone\", \"value\": \"8613800138000\"}}"));
            assertTrue(e.call("stats").contains("\"events\":1,"));
        }
    }

    @Test
    void errorsAreTypedAndChangeNothing() {
        try (Engine e = Engine.inMemory()) {
            e.ingest(IDENTIFY);
            InvalidEventException bad = assertThrows(InvalidEventException.class, () -> e.ingest(
                "{\"kind\": \"identify\", \"key\": \"bad\", \"time\": \"2026-01-05T10:00:00Z\","
                    + " \"source\": {\"platform\": \"jd\", \"program\": \"b\"},"
                    + " \"ids\": [{\"kind\": \"email\", \"value\": \"not-an-email\"}]}"));
            assertEquals("invalid_event", bad.code());
            assertEquals(3, bad.status());
            assertEquals("ids[0]", bad.field());
            assertTrue(bad.getMessage().contains("email"), bad.getMessage());
            assertThrows(InvalidEventException.class, () -> e.ingest("{broken"));
            UnknownMethodException unknown = assertThrows(UnknownMethodException.class, () -> e.call("teleport"));
            assertTrue(unknown.getMessage().contains("teleport"));
            assertNull(unknown.field());
            assertThrows(NotFoundException.class, () -> e.call("resolve", "{\"user\": {\"oneid\": 99}}"));
            assertThrows(InvalidArgumentException.class, () -> e.call("stats", "{broken"));
            assertThrows(AudienceSyntaxException.class, () -> e.audience("age >"));
            // required arguments passed as null: typed, never a NullPointerException or a crash
            InvalidArgumentException nul = assertThrows(InvalidArgumentException.class, () -> e.ingest(null));
            assertEquals("null_pointer", nul.code());
            assertThrows(InvalidArgumentException.class, () -> e.call(null, "{}"));
            assertThrows(InvalidArgumentException.class, () -> e.call("stats", null));
            assertTrue(e.call("stats").contains("\"events\":1,"), "nothing changed");
        }
    }

    @Test
    void openIsDurable(@TempDir Path dir) throws IOException {
        Path db = dir.resolve("crm.db");
        try (Engine e = Engine.open(db)) {
            e.link("k1", t("2026-01-05T02:00:00Z"), "app", "brand-a", Identifier.of("member_no", "M1"));
        }
        try (Engine e = Engine.open(db)) {
            assertEquals(OptionalLong.of(1), e.resolve("member_no", "M1"));
        }
        StorageException dirError = assertThrows(StorageException.class, () -> Engine.open(dir));
        assertEquals("storage", dirError.code());
        Path foreign = dir.resolve("notes.txt");
        Files.write(foreign, "not a database, not at all".getBytes("UTF-8"));
        assertThrows(StorageException.class, () -> Engine.open(foreign));
        assertThrows(InvalidArgumentException.class, () -> Engine.open(null));
    }

    @Test
    void identity() {
        try (Engine e = Engine.inMemory()) {
            LinkResult r = e.link("jd-1", t("2026-01-05T02:00:00Z"), "jd", "brand-a",
                Identifier.of("phone", "13800138000"), Identifier.of("device_id", "a9f3"));
            assertEquals(1, r.oneid());
            assertEquals(1, r.seq());
            assertFalse(r.duplicate());
            assertTrue(e.link("jd-1", t("2026-01-05T02:00:00Z"), "jd", "brand-a", Identifier.of("phone", "13800138000"),
                Identifier.of("device_id", "a9f3")).duplicate());
            r = e.link("app-1", t("2026-01-06T01:00:00Z"), "app", "brand-a",
                Arrays.asList(Identifier.of("member_no", "M1"), Identifier.of("device_id", "a9f3")));
            assertEquals(1, r.oneid());
            assertEquals(2, e.link("pos-1", t("2026-01-07T01:00:00Z"), "pos", "s1", Identifier.of("member_no", "M2"))
                .oneid());
            InvalidEventException bad = assertThrows(InvalidEventException.class, () -> e.link("bad",
                t("2026-01-07T01:00:00Z"), "pos", "s1", Identifier.of("member_no", "M3"), Identifier.of("email", "nope")));
            assertEquals("ids[1]", bad.field());
            assertThrows(InvalidEventException.class, () -> e.link("none", t("2026-01-07T01:00:00Z"), "pos", "s1"));
            assertThrows(InvalidArgumentException.class,
                () -> e.link("null-time", null, "pos", "s1", Identifier.of("member_no", "M3")));
            assertThrows(InvalidArgumentException.class,
                () -> e.link("null-id", t("2026-01-07T01:00:00Z"), "pos", "s1", (Identifier) null));
            assertThrows(DuplicateKeyException.class, () -> e.link("pos-1", t("2026-01-07T01:00:00Z"), "pos", "s1",
                Identifier.of("member_no", "M9")));

            assertEquals(OptionalLong.of(1), e.resolve("phone", "+86 138 0013 8000"));
            assertEquals(OptionalLong.empty(), e.resolve("member_no", "M404"));
            assertThrows(InvalidIdentifierException.class, () -> e.resolve("phone", "12"));
            assertThrows(InvalidIdentifierException.class, () -> e.resolve("shoe_size", "42"));

            assertArrayEquals(new long[] {2, 0, 1}, e.resolveMany("member_no", Arrays.asList("M2", "M404", "M1")));
            assertArrayEquals(new long[0], e.resolveMany("member_no", Collections.<String>emptyList()));
            InvalidIdentifierException badMany = assertThrows(InvalidIdentifierException.class,
                () -> e.resolveMany("phone", Arrays.asList("13800138000", "12")));
            assertTrue(badMany.getMessage().contains("values[1]"), badMany.getMessage());
            assertThrows(InvalidArgumentException.class, () -> e.resolveMany("member_no", Arrays.asList("M1", null)));

            assertTrue(e.explain("phone", "13800138000", "member_no", "M1").contains("\"joined\":true"));
            assertTrue(e.explain("phone", "13800138000", "member_no", "M2").contains("\"joined\":false"));

            MergeResult m = e.merge(User.id("member_no", "M1"), User.id("member_no", "M2"), "ops", "same customer",
                t("2026-01-08T00:00:00Z"));
            assertEquals(1, m.survivor());
            assertTrue(m.reportJson().contains("\"absorbed\":[2]"), m.reportJson());
            assertEquals(OptionalLong.of(1), e.resolve("member_no", "M2"));
            assertThrows(InvalidArgumentException.class,
                () -> e.merge(User.id("member_no", "M1"), User.oneid(1), "ops", "again", null));
            assertThrows(NotFoundException.class, () -> e.merge(User.oneid(1), User.oneid(77), "ops", "x", null));
            assertThrows(InvalidArgumentException.class, () -> e.merge(User.oneid(1), null, "ops", "x", null));

            String split = e.split(Collections.singletonList("manual:1"), "ops", "wrong merge");
            assertTrue(split.contains("\"parts\""), split);
            assertNotEquals(OptionalLong.of(1), e.resolve("member_no", "M2"));
            assertThrows(InvalidArgumentException.class, () -> e.split(Collections.<String>emptyList(), "ops", "none"));
            assertThrows(InvalidArgumentException.class, () -> e.split(Arrays.asList("manual:1", null), "ops", "x"));
        }
    }

    @Test
    void users() {
        assertEquals(User.id("phone", "1"), User.of(Identifier.of("phone", "1")));
        assertEquals(7, User.oneid(7).oneid());
        assertNull(User.oneid(7).kind());
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> User.id(null, "1"));
        assertEquals("user.kind", e.field());
        assertThrows(InvalidArgumentException.class, () -> User.id("phone", null));
    }

    @Test
    void loyalty() {
        try (Engine e = scenario()) {
            User m1 = User.id("member_no", "M1");
            User m2 = User.id("member_no", "M2");
            e.merge(m1, m2, "ops", "same customer", null);
            Posting p = e.earn(m1, "brand-a", 100, "o1", t("2026-01-10T02:00:00Z"), false);
            assertEquals(100, p.points());
            assertEquals(100, p.balance());
            assertFalse(p.pending());
            assertFalse(p.duplicate());
            assertTrue(p.transfer() >= 1);
            assertTrue(e.earn(m1, "brand-a", 100, "o1", t("2026-01-10T02:00:00Z"), false).duplicate());
            LedgerDuplicateKeyException dup = assertThrows(LedgerDuplicateKeyException.class,
                () -> e.earn(m1, "brand-a", 7, "o1"));
            assertEquals("ledger_duplicate_key", dup.code());
            assertThrows(InvalidAmountException.class, () -> e.earn(m1, "brand-a", 0, "o0"));
            assertThrows(InvalidAmountException.class, () -> e.earn(m1, "brand-a", -5, "o-neg"));
            assertThrows(NotFoundException.class, () -> e.earn(m1, "brand-zz", 5, "oz"));

            assertEquals(70, e.spend(User.oneid(1), "brand-a", 30, "s1", t("2026-01-11T02:00:00Z")).balance());
            InsufficientPointsException over = assertThrows(InsufficientPointsException.class,
                () -> e.spend(m2, "brand-a", 71, "s2"));
            assertEquals("insufficient_points", over.code());
            assertTrue(over instanceof LedgerException);
            assertThrows(UnknownAccountException.class, () -> e.spend(User.id("member_no", "M404"), "brand-a", 1, "s4"));
            assertEquals(0, e.balance(User.id("member_no", "M404"), "brand-a"));

            p = e.earn(m1, "brand-a", 50, "o2", t("2026-01-12T02:00:00Z"), true);
            assertTrue(p.pending());
            assertEquals(70, p.balance());
            assertEquals(120, e.post("o2", t("2026-01-13T02:00:00Z")).balance());
            e.earn(m1, "brand-a", 10, "o3", t("2026-01-13T03:00:00Z"), true);
            assertEquals(120, e.voidEarn("o3", t("2026-01-13T04:00:00Z")).balance());
            assertTrue(e.voidEarn("o3", null).duplicate());
            assertThrows(NotPendingException.class, () -> e.post("o404", null));
            assertEquals(120, e.balance(m2, "brand-a"));
            assertThrows(NotFoundException.class, () -> e.balance(m1, "brand-zz"));

            List<StatementEntry> s = e.statement(m1, "brand-a");
            assertEquals(6, s.size());
            assertEquals("earn", s.get(0).kind());
            assertEquals(t("2026-01-10T02:00:00Z"), s.get(0).time());
            assertEquals("spend", s.get(1).kind());
            assertEquals("s1", s.get(1).key());
            assertEquals(-30, s.get(1).amount());
            assertTrue(s.get(2).pending());
            assertEquals(120, s.get(5).balance());
            assertEquals(Optional.empty(), s.get(0).expires());
            for (int i = 1; i < s.size(); i++) {
                assertTrue(s.get(i).id() > s.get(i - 1).id());
            }
            assertThrows(NotFoundException.class, () -> e.statement(m1, "brand-zz"));

            e.call("record_spend", "{\"user\": {\"oneid\": 1}, \"program\": \"brand-a\", \"amount\": \"1200.00\","
                + " \"key\": \"p1\", \"time\": \"2026-01-14T10:00:00+08:00\"}");
            TierView tier = e.tier(m1, "brand-a", null);
            assertEquals(Optional.of("gold"), tier.tier());
            assertTrue(tier.json().contains("\"spend_total\":\"1200.00\""), tier.json());
            assertEquals(Optional.empty(), e.tier(User.id("member_no", "M404"), "brand-a", null).tier());
            TierEvaluation ev = e.evaluateTiers(t("2027-06-01T00:00:00Z"));
            assertEquals(1, ev.members());
            assertEquals(1, ev.downgraded());
            assertEquals(0, ev.upgraded());
            assertEquals(Optional.of("silver"), e.tier(m1, "brand-a", t("2027-06-02T00:00:00Z")).tier());
            assertThrows(InvalidArgumentException.class, () -> e.evaluateTiers(null));
        }
    }

    @Test
    void lifecycleAndAutomation() {
        try (Engine e = Engine.inMemory()) {
            e.ingest("{\"kind\": \"register\", \"key\": \"r1\", \"time\": \"2026-01-05T10:00:00+08:00\", \"source\":"
                + " {\"platform\": \"app\", \"program\": \"brand-a\"}, \"user\": {\"kind\": \"member_no\", \"value\": \"M1\"}}");
            e.ingest("{\"kind\": \"activity\", \"key\": \"a1\", \"time\": \"2026-02-03T10:00:00+08:00\", \"source\":"
                + " {\"platform\": \"app\", \"program\": \"brand-a\"}, \"user\": {\"kind\": \"member_no\", \"value\": \"M1\"},"
                + " \"type\": \"login\"}");
            assertTrue(e.lifecycleReport(0, null).contains("\"2026-02\""));
            assertTrue(e.lifecycleReport(0, "2026-04").contains("\"2026-04\""));
            assertThrows(InvalidArgumentException.class, () -> e.lifecycleReport(0, "not-a-period"));
            assertThrows(InvalidArgumentException.class, () -> e.lifecycleReport(-1, null));
            List<LifecycleStage> stages = e.lifecycleStages("2026-02", 0);
            assertEquals(1, stages.size());
            assertEquals(1, stages.get(0).oneid());
            assertEquals("2026-02", stages.get(0).period());
            assertEquals("last_period_new", stages.get(0).stage());
            assertEquals(1, e.lifecycleStages(null, 0).size());
            assertThrows(InvalidArgumentException.class, () -> e.lifecycleStages("not-a-period", 0));

            e.call("set_consent", "{\"user\": {\"oneid\": 1}, \"channel\": \"push\", \"purpose\": \"marketing\","
                + " \"granted\": true, \"actor\": \"crm\", \"time\": \"2026-01-01T00:00:00Z\"}");
            e.call("add_rule", "{\"rule\": {\"id\": \"wb\", \"trigger\": {\"type\": \"inactive\", \"days\": 30},"
                + " \"actions\": [{\"type\": \"touch\", \"channel\": \"push\", \"content\": \"hi\"}]}}");
            List<PlannedAction> plan = e.automationPlan(t("2026-05-01T02:00:00Z"));
            assertEquals(1, plan.size());
            PlannedAction a = plan.get(0);
            assertEquals(1, a.user());
            assertEquals("touch", a.action());
            assertEquals(Optional.of("push"), a.channel());
            assertEquals(Optional.of("hi"), a.content());
            assertTrue(a.touchId().isPresent());
            assertEquals(Optional.empty(), a.couponId());
            assertEquals(OptionalLong.empty(), a.points());
            assertEquals("wb", a.rule());
            assertTrue(e.automationPlan(t("2026-05-01T03:00:00Z")).isEmpty(), "de-duplicated");
            assertThrows(InvalidArgumentException.class, () -> e.automationPlan(null));
        }
    }

    @Test
    void audiencesAndQuotes() {
        try (Engine e = scenario()) {
            e.call("set_tags", "{\"kind\": \"member_no\", \"users\": [\"M1\", \"M9\"], \"tags\": [{\"name\": \"age\","
                + " \"type\": \"number\", \"values\": [45, 52]}]}");
            assertArrayEquals(new long[] {1, 3}, e.audience("age > 40"));
            assertArrayEquals(new long[0], e.audience("age > 99"));
            AudienceSyntaxException syntax = assertThrows(AudienceSyntaxException.class, () -> e.audience("agee > 40"));
            assertTrue(syntax.getMessage().contains("age"), syntax.getMessage());

            e.call("add_promotion", "{\"promotion\": {\"id\": \"p300\", \"action\": {\"type\": \"threshold_discount\","
                + " \"threshold\": \"300\", \"off\": \"50\"}}}");
            e.call("add_promotion", "{\"promotion\": {\"id\": \"p1000\", \"action\": {\"type\": \"threshold_discount\","
                + " \"threshold\": \"1000\", \"off\": \"200\"}}}");
            Cart cart = new Cart(t("2026-03-01T02:00:00Z")).line("a", "x", new BigDecimal("120.00"), 3).channel("app");
            User m1 = User.id("member_no", "M1");
            try (Quote q = e.quote(cart, m1)) {
                assertEquals(new BigDecimal("360.00"), q.subtotal());
                assertEquals(new BigDecimal("50.00"), q.discount());
                assertEquals(new BigDecimal("310.00"), q.total());
                assertTrue(q.appliedJson().contains("\"id\":\"p300\""));
                assertTrue(q.notAppliedJson().contains("\"id\":\"p1000\""));
                assertTrue(q.json().contains("\"user\":1"));
                String receipt = e.commit(q, "order-1");
                assertTrue(receipt.contains("\"state\":\"committed\"") && receipt.contains("\"duplicate\":false"));
                assertTrue(e.commit(q, "order-1").contains("\"duplicate\":true"));
            }
            assertTrue(e.call("promotion_usage", "{\"id\": \"p300\"}").contains("\"orders\":1"));
            assertTrue(e.cancel("order-1").contains("\"state\":\"cancelled\""));
            assertThrows(NotFoundException.class, () -> e.cancel("order-404"));
            try (Quote q = e.quote(cart.toJson(), null)) { // anonymous, from JSON
                assertEquals(new BigDecimal("310.00"), q.total());
            }
            // money stays exact: no double in between
            try (Quote q = e.quote(new Cart(t("2026-03-01T02:00:00Z")).line("b", "x", new BigDecimal("0.10"), 3), null)) {
                assertEquals(new BigDecimal("0.30"), q.subtotal());
            }

            InvalidArgumentException badPrice = assertThrows(InvalidArgumentException.class,
                () -> e.quote(new Cart(t("2026-03-01T02:00:00Z")).line("a", "x", null, 1), null));
            assertTrue(badPrice.field() != null && badPrice.field().contains("lines[0]"), String.valueOf(badPrice.field()));
            assertThrows(InvalidArgumentException.class,
                () -> e.quote(new Cart(t("2026-03-01T02:00:00Z")).line("a", "x", new BigDecimal("-1"), 1), null));
            assertThrows(InvalidArgumentException.class, () -> e.quote(new Cart(null).line("a", "x", BigDecimal.ONE, 1), null));
            assertThrows(InvalidArgumentException.class, () -> e.quote("{not json", null));
            assertThrows(InvalidArgumentException.class, () -> e.quote((Cart) null, null));
            assertThrows(InvalidArgumentException.class, () -> e.commit(null, "k"));
        }
    }

    @Test
    void cartJsonEscapes() {
        String json = new Cart(t("2026-03-01T02:00:00Z")).line("a\"b\\c\n\u0001", "x", new BigDecimal("1E+2"), 1)
            .region("north").store("s1").currency("CNY").toJson();
        assertTrue(json.contains("\"a\\\"b\\\\c\\n\\u0001\""), json);
        assertTrue(json.contains("\"price\": \"100\""), json);
        assertTrue(json.contains("\"region\": \"north\"") && json.contains("\"store\": \"s1\"")
            && json.contains("\"currency\": \"CNY\""), json);
    }

    @Test
    void tableCallAndVersion() {
        assertFalse(Engine.version().isEmpty());
        assertEquals("{\"rows\":[[7,\"2026-01\",\"new\"],[7,\"2026-02\",\"last_period_new\"]]}", Engine.tableCall(
            "lifecycle", "{\"user\": [7, 7], \"time\": [\"2026-01-31T23:59:59+08:00\", \"2026-02-01T00:00:00+08:00\"]}"));
        InvalidArgumentException bad = assertThrows(InvalidArgumentException.class, () -> Engine.tableCall("funnel",
            "{\"user\": [1], \"time\": [0], \"event\": [\"view\"], \"steps\": [\"view\", \"pay\"]}"));
        assertTrue(bad.getMessage().contains("pay"));
        assertThrows(UnknownMethodException.class, () -> Engine.tableCall("teleport", "{}"));
    }
}
