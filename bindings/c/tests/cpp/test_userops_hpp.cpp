// userops.hpp, the header-only C++17 wrapper, with GoogleTest: every Engine call, the typed
// errors, ownership (move-only RAII, Arrow exports released on every path), threads.
// Built with -DUSEROPS_H_PATH="<path of userops.h>": the status test reads the statuses the
// header declares, so that a new one cannot go without a name.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "userops.hpp"

#ifndef USEROPS_H_PATH
#error "build with -DUSEROPS_H_PATH=\"path/to/userops.h\""
#endif

using userops::Engine;
using userops::Identifier;
using userops::RecordBatch;
using userops::User;

namespace {

const char *kIdentify =
    R"({"kind": "identify", "key": "jd-7781", "time": "2026-01-05T10:00:00+08:00",
        "source": {"platform": "jd", "program": "brand-a"},
        "ids": [{"kind": "phone", "value": "13800138000"}, {"kind": "device_id", "value": "a9f3"}]})";

// The userops::Error `f` throws (a test failure when it throws nothing).
template <typename F>
userops::Error error_of(F &&f) {
    try {
        f();
    } catch (const userops::Error &e) {
        return e;
    }
    ADD_FAILURE() << "no userops::Error thrown";
    return userops::Error(UOPS_OK, "ok", "", std::nullopt);
}

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

// Two persons joined by a device, a third, a program with a spend ladder.
Engine scenario() {
    Engine e = Engine::in_memory();
    e.link("jd-1", "2026-01-05T10:00:00+08:00", "jd", "brand-a", {{"phone", "13800138000"}, {"device_id", "a9f3"}});
    e.link("app-1", "2026-01-06T09:00:00+08:00", "app", "brand-a", {{"member_no", "M1"}, {"device_id", "a9f3"}});
    e.link("pos-1", "2026-01-07T09:00:00+08:00", "pos", "s1", {{"member_no", "M2"}});
    e.call("create_program", R"({"program": {"id": "brand-a", "tiers": {"basis": "spend",
        "window": "rolling_12_months", "levels": [{"name": "silver", "threshold": "0"},
        {"name": "gold", "threshold": "1000"}]}}})");
    return e;
}

}  // namespace

TEST(Hpp, HandlesAreMoveOnly) {
    static_assert(!std::is_copy_constructible_v<Engine> && !std::is_copy_assignable_v<Engine>);
    static_assert(std::is_nothrow_move_constructible_v<Engine> && std::is_nothrow_move_assignable_v<Engine>);
    static_assert(!std::is_copy_constructible_v<userops::Quote>);
    static_assert(std::is_nothrow_move_constructible_v<userops::Quote>);
    static_assert(!std::is_copy_constructible_v<userops::Audience>);
    static_assert(std::is_nothrow_move_constructible_v<userops::Audience>);
    static_assert(!std::is_copy_constructible_v<RecordBatch> && !std::is_copy_assignable_v<RecordBatch>);
    static_assert(std::is_nothrow_move_constructible_v<RecordBatch>);
    static_assert(std::is_base_of_v<std::runtime_error, userops::Error>);

    Engine a = Engine::in_memory();
    a.ingest(kIdentify);
    Engine b = std::move(a);  // b owns the engine; a is empty
    EXPECT_TRUE(contains(b.call("stats"), "\"events\":1,"));
    userops::Error e = error_of([&] { a.call("stats"); });  // NOLINT: use after move, on purpose
    EXPECT_EQ(e.status(), UOPS_NULL_POINTER);
    EXPECT_EQ(e.code(), "null_pointer");
    Engine c = Engine::in_memory();
    c = std::move(b);  // c's own engine is freed (valgrind / ASan check), b's moves in
    EXPECT_TRUE(contains(c.call("stats"), "\"events\":1,"));
}

TEST(Hpp, IngestAndCall) {
    Engine e = Engine::in_memory();
    std::string receipt = e.ingest(kIdentify);
    EXPECT_TRUE(contains(receipt, "\"oneid\":1")) << receipt;
    EXPECT_TRUE(contains(e.ingest(kIdentify), "\"duplicate\":true"));
    EXPECT_EQ(e.call("resolve", R"({"user": {"kind": "phone", "value": "+86 138-0013-8000"}})"), "{\"oneid\":1}");
    EXPECT_TRUE(contains(e.call("stats"), "\"events\":1,"));
}

TEST(Hpp, ErrorsAreTypedAndChangeNothing) {
    Engine e = Engine::in_memory();
    e.ingest(kIdentify);
    userops::Error bad = error_of([&] {
        e.ingest(R"({"kind": "identify", "key": "bad", "time": "2026-01-05T10:00:00Z",
                     "source": {"platform": "jd", "program": "b"},
                     "ids": [{"kind": "email", "value": "not-an-email"}]})");
    });
    EXPECT_EQ(bad.status(), UOPS_INVALID_EVENT);
    EXPECT_EQ(bad.code(), "invalid_event");
    ASSERT_TRUE(bad.field().has_value());
    EXPECT_EQ(*bad.field(), "ids[0]");
    EXPECT_TRUE(contains(bad.what(), "email")) << bad.what();

    // Caught as a std::runtime_error, as a C++ caller's generic handler would.
    try {
        e.call("teleport", "{}");
        ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error &err) {
        EXPECT_TRUE(contains(err.what(), "teleport"));
        const auto *typed = dynamic_cast<const userops::Error *>(&err);
        ASSERT_NE(typed, nullptr);
        EXPECT_EQ(typed->code(), "unknown_method");
        EXPECT_FALSE(typed->field().has_value());
    }
    EXPECT_EQ(error_of([&] { e.call("resolve", R"({"user": {"oneid": 99}})"); }).code(), "not_found");
    EXPECT_EQ(error_of([&] { e.call("stats", "{broken"); }).status(), UOPS_INVALID_ARGUMENT);
    EXPECT_EQ(error_of([&] { e.audience("age >"); }).code(), "audience_syntax");
    EXPECT_TRUE(contains(e.call("stats"), "\"events\":1,"));  // nothing changed
}

TEST(Hpp, EveryStatusTheHeaderDeclaresHasItsStableName) {
    std::ifstream header(USEROPS_H_PATH);
    ASSERT_TRUE(header) << USEROPS_H_PATH;
    std::stringstream text;
    text << header.rdbuf();
    std::string s = text.str();
    std::regex entry(R"(\bUOPS_([A-Z0-9_]+) = (\d+),)");
    int seen = 0;
    for (auto it = std::sregex_iterator(s.begin(), s.end(), entry); it != std::sregex_iterator(); ++it) {
        std::string constant = (*it)[1];
        int32_t status = std::stoi((*it)[2]);
        std::string expected;
        for (char c : constant) expected += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        EXPECT_EQ(userops::status_name(status), expected) << "UOPS_" << constant;
        seen++;
    }
    EXPECT_GE(seen, 27);  // the header was read (27 statuses when this test was written)
    EXPECT_EQ(userops::status_name(12345), "");
}

TEST(Hpp, OpenIsDurable) {
    std::string path = testing::TempDir() + "userops_hpp_test.db";
    std::remove(path.c_str());
    {
        Engine e = Engine::open(path);
        e.link("k1", "2026-01-05T10:00:00+08:00", "app", "brand-a", {{"member_no", "M1"}});
    }  // closed by the destructor
    {
        Engine e = Engine::open(path);
        EXPECT_EQ(e.resolve("member_no", "M1"), std::optional<uint64_t>(1));
    }
    std::remove(path.c_str());
    userops::Error e = error_of([] { Engine::open(testing::TempDir()); });  // a directory
    EXPECT_EQ(e.status(), UOPS_STORAGE);
    EXPECT_EQ(e.code(), "storage");
}

TEST(Hpp, Identity) {
    Engine e = Engine::in_memory();
    userops::LinkResult r = e.link("jd-1", "2026-01-05T10:00:00+08:00", "jd", "brand-a",
                                   {{"phone", "13800138000"}, {"device_id", "a9f3"}});
    EXPECT_EQ(r.oneid, 1u);
    EXPECT_FALSE(r.duplicate);
    r = e.link("jd-1", "2026-01-05T10:00:00+08:00", "jd", "brand-a", {{"phone", "13800138000"}, {"device_id", "a9f3"}});
    EXPECT_TRUE(r.duplicate);
    r = e.link("app-1", "2026-01-06T09:00:00+08:00", "app", "brand-a", {{"member_no", "M1"}, {"device_id", "a9f3"}});
    EXPECT_EQ(r.oneid, 1u);
    r = e.link("pos-1", "2026-01-07T09:00:00+08:00", "pos", "s1", {{"member_no", "M2"}});
    EXPECT_EQ(r.oneid, 2u);
    userops::Error bad = error_of(
        [&] { e.link("bad", "2026-01-07T09:00:00+08:00", "pos", "s1", {{"member_no", "M3"}, {"email", "nope"}}); });
    EXPECT_EQ(bad.code(), "invalid_event");
    EXPECT_EQ(bad.field().value_or(""), "ids[1]");
    EXPECT_EQ(error_of([&] { e.link("empty", "2026-01-07T09:00:00+08:00", "pos", "s1", {}); }).code(),
              "invalid_event");

    EXPECT_EQ(e.resolve("phone", "+86 138 0013 8000"), std::optional<uint64_t>(1));
    EXPECT_EQ(e.resolve("member_no", "M404"), std::nullopt);
    EXPECT_EQ(error_of([&] { e.resolve("phone", "12"); }).code(), "invalid_identifier");

    auto many = e.resolve_many("member_no", {"M2", "M404", "M1"});
    ASSERT_EQ(many.size(), 3u);
    EXPECT_EQ(many[0], std::optional<uint64_t>(2));
    EXPECT_EQ(many[1], std::nullopt);
    EXPECT_EQ(many[2], std::optional<uint64_t>(1));
    EXPECT_TRUE(e.resolve_many("member_no", {}).empty());
    userops::Error bad_many = error_of([&] { e.resolve_many("phone", {"12"}); });  // input released anyway
    EXPECT_EQ(bad_many.code(), "invalid_identifier");
    EXPECT_TRUE(contains(bad_many.what(), "values[0]"));

    EXPECT_TRUE(contains(e.explain("phone", "13800138000", "member_no", "M1"), "\"joined\":true"));
    EXPECT_TRUE(contains(e.explain("phone", "13800138000", "member_no", "M2"), "\"joined\":false"));

    userops::MergeResult m =
        e.merge(User::id("member_no", "M1"), User::id("member_no", "M2"), "ops", "same customer", "2026-01-08T00:00:00Z");
    EXPECT_EQ(m.survivor, 1u);
    EXPECT_TRUE(contains(m.report_json, "\"absorbed\":[2]")) << m.report_json;
    EXPECT_EQ(e.resolve("member_no", "M2"), std::optional<uint64_t>(1));
    EXPECT_EQ(error_of([&] { e.merge(User::id("member_no", "M1"), User::oneid(1), "ops", "again"); }).code(),
              "invalid_argument");
    EXPECT_EQ(error_of([&] { e.merge(User::oneid(1), User::oneid(77), "ops", "x"); }).code(), "not_found");

    EXPECT_EQ(error_of([&] { e.split({"manual:1"}, "ops", "wrong merge", "not a time"); }).code(),
              "invalid_argument");
    std::string split = e.split({"manual:1"}, "ops", "wrong merge", "2026-01-09T00:00:00Z");
    EXPECT_TRUE(contains(split, "\"parts\"") && contains(split, "\"not_split_back\"")) << split;
    EXPECT_NE(e.resolve("member_no", "M2"), std::optional<uint64_t>(1));
    EXPECT_EQ(error_of([&] { e.split({}, "ops", "none"); }).code(), "invalid_argument");
}

// The times given to merge and split date the points they move (not the Unix epoch, not now).
TEST(Hpp, MergeAndSplitDateThePointsTheyMove) {
    Engine e = scenario();
    User m2 = User::id("member_no", "M2");
    e.earn(m2, "brand-a", 40, "e-m2", "2026-01-07T02:00:00Z");
    e.merge(User::id("member_no", "M1"), m2, "ops", "same customer", "2026-01-08T00:00:00Z");
    e.split({"manual:1"}, "ops", "wrong merge", "2026-01-09T00:00:00Z");
    RecordBatch s = e.statement(m2, "brand-a");
    ASSERT_EQ(s.num_rows(), 3);
    int64_t kind = s.column("kind"), time = s.column("time");
    EXPECT_EQ(s.text(kind, 0), "earn");
    EXPECT_EQ(s.text(kind, 1), "merge");
    EXPECT_EQ(s.text(kind, 2), "split");
    EXPECT_EQ(s.value<int64_t>(time, 0), 1767751200000);  // 2026-01-07T02:00:00Z
    EXPECT_EQ(s.value<int64_t>(time, 1), 1767830400000);  // 2026-01-08T00:00:00Z
    EXPECT_EQ(s.value<int64_t>(time, 2), 1767916800000);  // 2026-01-09T00:00:00Z
    EXPECT_EQ(e.balance(m2, "brand-a"), 40);
}

TEST(Hpp, Loyalty) {
    Engine e = scenario();
    User m1 = User::id("member_no", "M1"), m2 = User::id("member_no", "M2");
    e.merge(m1, m2, "ops", "same customer");
    userops::Posting p = e.earn(m1, "brand-a", 100, "o1", "2026-01-10T10:00:00+08:00");
    EXPECT_EQ(p.points, 100);
    EXPECT_EQ(p.balance, 100);
    EXPECT_FALSE(p.pending);
    EXPECT_FALSE(p.duplicate);
    EXPECT_GE(p.transfer, 1u);
    EXPECT_TRUE(e.earn(m1, "brand-a", 100, "o1", "2026-01-10T10:00:00+08:00").duplicate);
    EXPECT_EQ(error_of([&] { e.earn(m1, "brand-a", 7, "o1"); }).code(), "ledger_duplicate_key");
    EXPECT_EQ(error_of([&] { e.earn(m1, "brand-a", 0, "o0"); }).code(), "invalid_amount");
    EXPECT_EQ(error_of([&] { e.earn(m1, "brand-zz", 5, "oz"); }).code(), "not_found");
    EXPECT_EQ(error_of([&] { e.earn(m1, "brand-a", 5, "o4", "yesterday"); }).code(), "invalid_argument");

    EXPECT_EQ(e.spend(User::oneid(1), "brand-a", 30, "s1", "2026-01-11T10:00:00+08:00").balance, 70);
    userops::Error over = error_of([&] { e.spend(m2, "brand-a", 71, "s2"); });
    EXPECT_EQ(over.status(), UOPS_INSUFFICIENT_POINTS);
    EXPECT_EQ(over.code(), "insufficient_points");
    EXPECT_EQ(error_of([&] { e.spend(User::id("member_no", "M404"), "brand-a", 1, "s404"); }).code(),
              "unknown_account");
    EXPECT_EQ(e.balance(User::id("member_no", "M404"), "brand-a"), 0);  // no account: nothing earned

    p = e.earn(m1, "brand-a", 50, "o2", "2026-01-12T10:00:00+08:00", true);
    EXPECT_TRUE(p.pending);
    EXPECT_EQ(p.balance, 70);
    EXPECT_EQ(e.post("o2", "2026-01-13T10:00:00+08:00").balance, 120);
    e.earn(m1, "brand-a", 10, "o3", "2026-01-13T11:00:00+08:00", true);
    EXPECT_EQ(e.void_earn("o3", "2026-01-13T12:00:00+08:00").balance, 120);
    EXPECT_TRUE(e.void_earn("o3").duplicate);
    EXPECT_EQ(error_of([&] { e.post("o404"); }).code(), "not_pending");
    EXPECT_EQ(e.balance(m2, "brand-a"), 120);

    {
        RecordBatch s = e.statement(m1, "brand-a");
        ASSERT_EQ(s.num_rows(), 6);
        EXPECT_EQ(s.num_columns(), 11);
        int64_t kind = s.column("kind"), amount = s.column("amount"), balance = s.column("balance");
        EXPECT_EQ(s.column_format(s.column("time")), "tsm:UTC");
        EXPECT_EQ(s.text(kind, 0), "earn");
        EXPECT_EQ(s.text(kind, 1), "spend");
        EXPECT_EQ(s.value<int64_t>(amount, 1), -30);
        EXPECT_EQ(s.value<int64_t>(balance, 5), 120);
        EXPECT_EQ(s.text(s.column("key"), 1), "s1");
        EXPECT_FALSE(s.boolean(s.column("pending"), 0));
        EXPECT_TRUE(s.boolean(s.column("pending"), 2));
        EXPECT_TRUE(s.is_null(s.column("expires"), 0));  // the program sets no expiry
        EXPECT_THROW(s.column("nope"), std::out_of_range);
        EXPECT_THROW(s.text(kind, 6), std::out_of_range);
        EXPECT_THROW(s.value<uint64_t>(amount, 0), std::invalid_argument);  // int64, not uint64
        EXPECT_THROW(s.text(amount, 0), std::invalid_argument);
        EXPECT_THROW(s.boolean(kind, 0), std::invalid_argument);
        EXPECT_EQ(s.value<int64_t>(s.column("time"), 0), 1768010400000);  // 2026-01-10T02:00:00Z
    }
    EXPECT_EQ(error_of([&] { e.statement(m1, "brand-zz"); }).code(), "not_found");

    e.call("record_spend", R"({"user": {"oneid": 1}, "program": "brand-a", "amount": "1200.00", "key": "p1",
                               "time": "2026-01-14T10:00:00+08:00"})");
    userops::TierView t = e.tier(m1, "brand-a");
    EXPECT_EQ(t.tier, std::optional<std::string>("gold"));
    EXPECT_TRUE(contains(t.json, "\"spend_total\":\"1200.00\"")) << t.json;
    EXPECT_EQ(e.tier(User::id("member_no", "M404"), "brand-a").tier, std::nullopt);
    userops::TierEvaluation ev = e.evaluate_tiers("2027-06-01T00:00:00+08:00");
    EXPECT_EQ(ev.members, 1u);
    EXPECT_EQ(ev.downgraded, 1u);
    EXPECT_EQ(e.tier(m1, "brand-a").tier, std::optional<std::string>("silver"));
    EXPECT_EQ(error_of([&] { e.evaluate_tiers("tomorrow"); }).code(), "invalid_argument");
}

TEST(Hpp, LifecycleAndAutomation) {
    Engine e = Engine::in_memory();
    e.ingest(R"({"kind": "register", "key": "r1", "time": "2026-01-05T10:00:00+08:00",
                 "source": {"platform": "app", "program": "brand-a"}, "user": {"kind": "member_no", "value": "M1"}})");
    e.ingest(R"({"kind": "activity", "key": "a1", "time": "2026-02-03T10:00:00+08:00",
                 "source": {"platform": "app", "program": "brand-a"}, "user": {"kind": "member_no", "value": "M1"},
                 "type": "login"})");
    EXPECT_TRUE(contains(e.lifecycle_report(), "\"2026-02\""));
    EXPECT_TRUE(contains(e.lifecycle_report(0, "2026-04"), "\"2026-04\""));
    EXPECT_EQ(error_of([&] { e.lifecycle_report(0, "not-a-period"); }).code(), "invalid_argument");
    {
        RecordBatch stages = e.lifecycle_stages("2026-02");
        ASSERT_EQ(stages.num_rows(), 1);
        EXPECT_EQ(stages.value<uint64_t>(stages.column("oneid"), 0), 1u);
        EXPECT_EQ(stages.text(stages.column("stage"), 0), "last_period_new");
        EXPECT_EQ(stages.text(stages.column("period"), 0), "2026-02");
        EXPECT_EQ(e.lifecycle_stages().num_rows(), 1);
    }
    EXPECT_EQ(error_of([&] { e.lifecycle_stages("not-a-period"); }).code(), "invalid_argument");

    e.call("set_consent", R"({"user": {"oneid": 1}, "channel": "push", "purpose": "marketing", "granted": true,
                              "actor": "crm", "time": "2026-01-01T00:00:00Z"})");
    e.call("add_rule", R"({"rule": {"id": "wb", "trigger": {"type": "inactive", "days": 30},
                           "actions": [{"type": "touch", "channel": "push", "content": "hi"}]}})");
    {
        RecordBatch plan = e.automation_plan("2026-05-01T10:00:00+08:00");
        ASSERT_EQ(plan.num_rows(), 1);
        EXPECT_EQ(plan.value<uint64_t>(plan.column("user"), 0), 1u);
        EXPECT_EQ(plan.text(plan.column("action"), 0), "touch");
        EXPECT_EQ(plan.text(plan.column("channel"), 0), "push");
        EXPECT_FALSE(plan.is_null(plan.column("touch_id"), 0));
        EXPECT_TRUE(plan.is_null(plan.column("coupon_id"), 0));
    }
    EXPECT_EQ(e.automation_plan("2026-05-01T11:00:00+08:00").num_rows(), 0);  // de-duplicated
    EXPECT_EQ(error_of([&] { e.automation_plan("soon"); }).code(), "invalid_argument");
    {
        RecordBatch report = e.call_arrow("channel_effectiveness", R"({"by": "channel"})");
        ASSERT_EQ(report.num_rows(), 1);
        EXPECT_EQ(report.text(report.column("key"), 0), "push");
        EXPECT_EQ(report.value<int64_t>(report.column("planned"), 0), 1);
    }
    EXPECT_EQ(error_of([&] { e.call_arrow("stats"); }).code(), "invalid_argument");
    EXPECT_EQ(error_of([&] { e.call_arrow("no_such_method"); }).code(), "unknown_method");
}

TEST(Hpp, AudiencesAndQuotes) {
    Engine e = scenario();
    e.call("set_tags", R"({"kind": "member_no", "users": ["M1", "M9"],
                           "tags": [{"name": "age", "type": "number", "values": [45, 52]}]})");
    userops::Audience a = e.audience("age > 40");
    EXPECT_EQ(a.size(), 2u);
    EXPECT_EQ(a.oneids(), (std::vector<uint64_t>{1, 3}));
    EXPECT_EQ(a.oneids(1, 10), (std::vector<uint64_t>{3}));
    EXPECT_TRUE(a.oneids(5, 10).empty());
    RecordBatch members = a.to_arrow();
    {
        userops::Audience moved = std::move(a);  // freed at the end of this scope
        EXPECT_EQ(moved.size(), 2u);
    }
    EXPECT_EQ(error_of([&] { a.size(); }).status(), UOPS_NULL_POINTER);  // NOLINT: moved from
    ASSERT_EQ(members.num_rows(), 2);  // the export is a copy: it outlives the handle
    EXPECT_EQ(members.column_format(0), "L");
    EXPECT_EQ(members.value<uint64_t>(0, 1), 3u);

    e.call("add_promotion", R"({"promotion": {"id": "p300", "action": {"type": "threshold_discount",
                                "threshold": "300", "off": "50"}}})");
    e.call("add_promotion", R"({"promotion": {"id": "p1000", "action": {"type": "threshold_discount",
                                "threshold": "1000", "off": "200"}}})");
    const char *cart = R"({"time": "2026-03-01T10:00:00+08:00",
                           "lines": [{"sku": "a", "category": "x", "price": "120.00", "qty": 3}]})";
    User m1 = User::id("member_no", "M1");
    userops::Quote q = e.quote(cart, m1);
    EXPECT_EQ(q.subtotal(), "360.00");
    EXPECT_EQ(q.discount(), "50.00");
    EXPECT_EQ(q.total(), "310.00");
    EXPECT_TRUE(contains(q.applied_json(), "\"id\":\"p300\""));
    EXPECT_TRUE(contains(q.not_applied_json(), "\"id\":\"p1000\""));
    EXPECT_TRUE(contains(q.json(), "\"user\":1"));
    EXPECT_TRUE(contains(e.commit(q, "order-1"), "\"state\":\"committed\""));
    EXPECT_TRUE(contains(e.commit(q, "order-1"), "\"duplicate\":true"));
    EXPECT_TRUE(contains(e.call("promotion_usage", R"({"id": "p300"})"), "\"orders\":1"));
    EXPECT_TRUE(contains(e.cancel("order-1"), "\"state\":\"cancelled\""));
    EXPECT_EQ(error_of([&] { e.cancel("order-404"); }).code(), "not_found");
    EXPECT_EQ(e.quote(cart).total(), "310.00");  // anonymous

    userops::Error bad = error_of([&] {
        e.quote(R"({"time": "2026-03-01T10:00:00+08:00", "lines": [{"sku": "a", "price": "abc", "qty": 1}]})");
    });
    EXPECT_EQ(bad.code(), "invalid_argument");
    EXPECT_TRUE(contains(bad.field().value_or(""), "lines[0]")) << bad.field().value_or("(none)");
    EXPECT_EQ(error_of([&] { e.quote("{not json"); }).code(), "invalid_argument");

    userops::Quote moved = std::move(q);
    EXPECT_EQ(moved.total(), "310.00");
    EXPECT_EQ(error_of([&] { q.total(); }).status(), UOPS_NULL_POINTER);  // NOLINT: moved from
}

TEST(Hpp, RecordBatchHandsItsDutyOver) {
    Engine e = scenario();
    e.earn(User::id("member_no", "M1"), "brand-a", 10, "o1");
    RecordBatch b = e.statement(User::id("member_no", "M1"), "brand-a");
    RecordBatch moved = std::move(b);
    EXPECT_EQ(b.num_rows(), 0);  // NOLINT: moved from, empty, releases nothing
    EXPECT_EQ(moved.num_rows(), 1);
    ArrowArray array;
    ArrowSchema schema;
    moved.release_into(&array, &schema);  // as arrow::ImportRecordBatch would take them
    EXPECT_EQ(moved.num_rows(), 0);
    EXPECT_EQ(moved.array().release, nullptr);
    ASSERT_NE(array.release, nullptr);
    EXPECT_EQ(array.length, 1);
    array.release(&array);  // the receiver's duty; valgrind and ASan see it done exactly once
    schema.release(&schema);
    RecordBatch other = e.statement(User::id("member_no", "M1"), "brand-a");
    other = e.statement(User::oneid(1), "brand-a");  // the first export is released on assignment
    EXPECT_EQ(other.num_rows(), 1);
}

TEST(Hpp, StringsAreOwned) {
    Engine e = Engine::in_memory();
    char *raw = nullptr;
    ASSERT_EQ(userops_engine_call(e.get(), "stats", "{}", &raw), UOPS_OK);
    userops::unique_string owned(raw);  // freed by userops_string_free at the end of scope
    EXPECT_TRUE(contains(owned.get(), "\"events\":0"));
    EXPECT_FALSE(userops::version().empty());
    EXPECT_EQ(userops::table_call("lifecycle", R"({"user": [7, 7],
        "time": ["2026-01-31T23:59:59+08:00", "2026-02-01T00:00:00+08:00"]})"),
              R"({"rows":[[7,"2026-01","new"],[7,"2026-02","last_period_new"]]})");
    userops::Error bad = error_of([] {
        userops::table_call("funnel", R"({"user": [1], "time": [0], "event": ["view"], "steps": ["view", "pay"]})");
    });
    EXPECT_EQ(bad.code(), "invalid_argument");
    EXPECT_TRUE(contains(bad.what(), "pay"));
}

TEST(Hpp, EightThreadsShareOneEngine) {
    Engine e = Engine::in_memory();
    e.call("create_program", R"({"program": {"id": "b"}})");
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++) {
        threads.emplace_back([&e, t] {
            for (int i = 0; i < 25; i++) {
                std::string member = "M" + std::to_string(t) + "-" + std::to_string(i);
                User u = User::id("member_no", member);
                e.link("l" + member, "2026-01-05T10:00:00+08:00", "app", "b", {{"member_no", member}});
                EXPECT_EQ(e.earn(u, "b", 5, "k" + member).balance, 5);
                EXPECT_EQ(e.spend(u, "b", 2, "s" + member).balance, 3);
                // errors are per thread: each sees its own
                userops::Error over = error_of([&] { e.spend(u, "b", 99, "x" + member); });
                EXPECT_EQ(over.code(), "insufficient_points");
                EXPECT_TRUE(contains(over.what(), "99") || contains(over.what(), "3")) << over.what();
                EXPECT_TRUE(e.resolve("member_no", member).has_value());
            }
        });
    }
    for (auto &t : threads) t.join();
    EXPECT_TRUE(contains(e.call("stats"), "\"persons\":200"));
    EXPECT_TRUE(contains(e.call("stats"), "\"events\":200,"));
}
