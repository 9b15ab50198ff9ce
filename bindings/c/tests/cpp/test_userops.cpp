// The C ABI from C++ with GoogleTest, behind a small RAII wrapper the way a C++ user would.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "userops.h"

namespace {

struct EngineDeleter {
    void operator()(userops_engine *e) const { userops_engine_free(e); }
};
using Engine = std::unique_ptr<userops_engine, EngineDeleter>;

std::string take(char *s) {
    std::string out = s ? s : "";
    userops_string_free(s);
    return out;
}

const char *kIdentify =
    R"({"kind": "identify", "key": "jd-7781", "time": "2026-01-05T10:00:00+08:00",
        "source": {"platform": "jd", "program": "brand-a"},
        "ids": [{"kind": "phone", "value": "13800138000"}, {"kind": "device_id", "value": "a9f3"}]})";

}  // namespace

TEST(Userops, IngestAndReplay) {
    Engine e(userops_engine_new());
    char *r = nullptr;
    ASSERT_EQ(userops_engine_ingest_json(e.get(), kIdentify, &r), UOPS_OK);
    EXPECT_NE(take(r).find("\"oneid\":1"), std::string::npos);
    ASSERT_EQ(userops_engine_ingest_json(e.get(), kIdentify, &r), UOPS_OK);
    EXPECT_NE(take(r).find("\"duplicate\":true"), std::string::npos);
}

TEST(Userops, TypedErrorsLeaveStateUnchanged) {
    Engine e(userops_engine_new());
    char *r = nullptr;
    ASSERT_EQ(userops_engine_ingest_json(e.get(), kIdentify, &r), UOPS_OK);
    take(r);
    EXPECT_EQ(userops_engine_ingest_json(e.get(), R"({"kind": "telepathy"})", &r), UOPS_INVALID_EVENT);
    EXPECT_EQ(r, nullptr);
    EXPECT_EQ(userops_engine_call(e.get(), "resolve", R"({"user": {"kind": "phone", "value": "12"}})", &r),
              UOPS_INVALID_ARGUMENT);
    EXPECT_EQ(userops_engine_call(e.get(), "resolve", R"({"user": {"oneid": 99}})", &r), UOPS_NOT_FOUND);
    EXPECT_EQ(userops_engine_call(e.get(), nullptr, "{}", &r), UOPS_NULL_POINTER);
    ASSERT_EQ(userops_engine_call(e.get(), "stats", "{}", &r), UOPS_OK);
    EXPECT_NE(take(r).find("\"events\":1,"), std::string::npos);
}

TEST(Userops, ResolveAcrossFormats) {
    Engine e(userops_engine_new());
    char *r = nullptr;
    ASSERT_EQ(userops_engine_ingest_json(e.get(), kIdentify, &r), UOPS_OK);
    take(r);
    ASSERT_EQ(userops_engine_call(e.get(), "resolve", R"({"user": {"kind": "phone", "value": "(+86) 138-0013-8000"}})", &r),
              UOPS_OK);
    EXPECT_EQ(take(r), "{\"oneid\":1}");
}

// ---- the typed API: the shared scenario (ingest, merge, earn/spend, audience, quote) ----

namespace {

struct QuoteDeleter {
    void operator()(userops_quote *q) const { userops_quote_free(q); }
};
using Quote = std::unique_ptr<userops_quote, QuoteDeleter>;

struct AudienceDeleter {
    void operator()(userops_audience *a) const { userops_audience_free(a); }
};
using Audience = std::unique_ptr<userops_audience, AudienceDeleter>;

// An exported record batch, released by its destructor (the consumer's side of the contract).
struct Batch {
    ArrowArray array{};
    ArrowSchema schema{};
    Batch() = default;
    Batch(const Batch &) = delete;
    Batch &operator=(const Batch &) = delete;
    ~Batch() {
        if (array.release) array.release(&array);
        if (schema.release) schema.release(&schema);
    }
    int column(const std::string &name) const {
        for (int64_t i = 0; i < schema.n_children; i++)
            if (name == schema.children[i]->name) return static_cast<int>(i);
        return -1;
    }
    template <typename T>
    T value(const std::string &name, int64_t row) const {
        int c = column(name);
        if (c < 0) throw std::out_of_range(name);
        const ArrowArray *col = array.children[c];
        return static_cast<const T *>(col->buffers[1])[col->offset + row];
    }
    std::string text(const std::string &name, int64_t row) const {
        int c = column(name);
        if (c < 0) throw std::out_of_range(name);
        const ArrowArray *col = array.children[c];
        const int32_t *off = static_cast<const int32_t *>(col->buffers[1]) + col->offset;
        return std::string(static_cast<const char *>(col->buffers[2]) + off[row],
                           static_cast<size_t>(off[row + 1] - off[row]));
    }
};

void call(userops_engine *e, const char *method, const char *args) {
    char *r = nullptr;
    ASSERT_EQ(userops_engine_call(e, method, args, &r), UOPS_OK) << userops_last_error_message();
    take(r);
}

}  // namespace

TEST(Typed, SharedScenario) {
    Engine e(userops_engine_new());
    // ingest: two records joined by a device, a third person
    const char *k1[] = {"phone", "device_id"}, *v1[] = {"13800138000", "a9f3"};
    const char *k2[] = {"member_no", "device_id"}, *v2[] = {"M1", "a9f3"};
    const char *k3[] = {"member_no"}, *v3[] = {"M2"};
    userops_link_result link{};
    ASSERT_EQ(userops_identity_link(e.get(), "jd-1", "2026-01-05T10:00:00+08:00", "jd", "brand-a", k1, v1, 2, &link), UOPS_OK);
    ASSERT_EQ(userops_identity_link(e.get(), "app-1", "2026-01-06T09:00:00+08:00", "app", "brand-a", k2, v2, 2, &link), UOPS_OK);
    EXPECT_EQ(link.oneid, 1u);
    ASSERT_EQ(userops_identity_link(e.get(), "pos-1", "2026-01-07T09:00:00+08:00", "pos", "s1", k3, v3, 1, &link), UOPS_OK);
    EXPECT_EQ(link.oneid, 2u);

    // merge
    userops_user m1{"member_no", "M1", 0}, m2{"member_no", "M2", 0};
    uint64_t survivor = 0;
    ASSERT_EQ(userops_identity_merge(e.get(), &m1, &m2, "ops", "same customer", nullptr, &survivor, nullptr), UOPS_OK);
    EXPECT_EQ(survivor, 1u);
    uint64_t oneid = 0;
    ASSERT_EQ(userops_identity_resolve(e.get(), "member_no", "M2", &oneid), UOPS_OK);
    EXPECT_EQ(oneid, 1u);
    char *explanation = nullptr;
    ASSERT_EQ(userops_identity_explain(e.get(), "phone", "13800138000", "member_no", "M2", &explanation), UOPS_OK);
    EXPECT_NE(take(explanation).find("\"joined\":true"), std::string::npos);

    // earn / spend
    call(e.get(), "create_program", R"({"program": {"id": "brand-a"}})");
    userops_posting p{};
    ASSERT_EQ(userops_loyalty_earn(e.get(), &m1, "brand-a", 100, "o1", "2026-01-10T10:00:00+08:00", 0, &p), UOPS_OK);
    EXPECT_EQ(p.balance, 100);
    ASSERT_EQ(userops_loyalty_spend(e.get(), &m2, "brand-a", 30, "s1", nullptr, &p), UOPS_OK);
    EXPECT_EQ(p.balance, 70);
    EXPECT_EQ(userops_loyalty_spend(e.get(), &m2, "brand-a", 71, "s2", nullptr, &p), UOPS_INSUFFICIENT_POINTS);
    int64_t balance = 0;
    ASSERT_EQ(userops_loyalty_balance(e.get(), &m1, "brand-a", &balance), UOPS_OK);
    EXPECT_EQ(balance, 70);
    {
        Batch b;
        ASSERT_EQ(userops_loyalty_statement(e.get(), &m1, "brand-a", &b.array, &b.schema), UOPS_OK);
        ASSERT_EQ(b.array.length, 2);
        EXPECT_EQ(b.text("kind", 0), "earn");
        EXPECT_EQ(b.text("kind", 1), "spend");
        EXPECT_EQ(b.value<int64_t>("amount", 1), -30);
        EXPECT_EQ(b.value<int64_t>("balance", 1), 70);
    }

    // audience, exported as Arrow
    call(e.get(), "set_tags", R"({"kind": "member_no", "users": ["M1", "M9"], "tags": [{"name": "age", "type": "number", "values": [45, 52]}]})");
    userops_audience *raw = nullptr;
    ASSERT_EQ(userops_audience_eval(e.get(), "age > 40", &raw), UOPS_OK);
    Audience aud(raw);
    {
        Batch b;
        ASSERT_EQ(userops_audience_to_arrow(aud.get(), &b.array, &b.schema), UOPS_OK);
        ASSERT_EQ(b.array.length, 2);
        EXPECT_STREQ(b.schema.children[0]->format, "L");
        EXPECT_EQ(b.value<uint64_t>("oneid", 0), 1u);
        EXPECT_EQ(b.value<uint64_t>("oneid", 1), 3u);
    }

    // quote
    call(e.get(), "add_promotion", R"({"promotion": {"id": "p300", "action": {"type": "threshold_discount", "threshold": "300", "off": "50"}}})");
    userops_quote *rq = nullptr;
    ASSERT_EQ(userops_quote_evaluate(e.get(), R"({"time": "2026-03-01T10:00:00+08:00", "lines": [{"sku": "a", "category": "x", "price": "120.00", "qty": 3}]})", &m1, &rq), UOPS_OK);
    Quote q(rq);
    EXPECT_STREQ(userops_quote_subtotal(q.get()), "360.00");
    EXPECT_STREQ(userops_quote_discount(q.get()), "50.00");
    EXPECT_STREQ(userops_quote_total(q.get()), "310.00");
    EXPECT_NE(std::string(userops_quote_applied_json(q.get())).find("p300"), std::string::npos);
    EXPECT_STREQ(userops_quote_not_applied_json(q.get()), "[]");
    char *receipt = nullptr;
    ASSERT_EQ(userops_quote_commit(e.get(), q.get(), "order-1", &receipt), UOPS_OK);
    EXPECT_NE(take(receipt).find("\"committed\""), std::string::npos);
    ASSERT_EQ(userops_quote_cancel(e.get(), "order-1", &receipt), UOPS_OK);
    EXPECT_NE(take(receipt).find("\"cancelled\""), std::string::npos);
}

TEST(Typed, MergeAndSplitAreDated) {
    Engine e(userops_engine_new());
    const char *k1[] = {"member_no"}, *v1[] = {"M7"}, *v2[] = {"M8"};
    ASSERT_EQ(userops_identity_link(e.get(), "r7", "2026-01-05T10:00:00+08:00", "app", "b", k1, v1, 1, nullptr), UOPS_OK);
    ASSERT_EQ(userops_identity_link(e.get(), "r8", "2026-01-05T10:00:00+08:00", "app", "b", k1, v2, 1, nullptr), UOPS_OK);
    userops_user m7{"member_no", "M7", 0}, m8{"member_no", "M8", 0};
    ASSERT_EQ(userops_identity_merge(e.get(), &m7, &m8, "ops", "same", "2026-01-06T10:00:00+08:00", nullptr, nullptr), UOPS_OK);
    const char *evidence[] = {"manual:1"};
    char *report = nullptr;
    EXPECT_EQ(userops_identity_split(e.get(), evidence, 1, "ops", "two", "yesterday", &report), UOPS_INVALID_ARGUMENT);
    EXPECT_EQ(report, nullptr);
    ASSERT_EQ(userops_identity_split(e.get(), evidence, 1, "ops", "two", "2026-01-07T10:00:00+08:00", &report), UOPS_OK);
    EXPECT_NE(take(report).find("\"parts\""), std::string::npos);
    uint64_t oneid = 0;
    ASSERT_EQ(userops_identity_resolve(e.get(), "member_no", "M8", &oneid), UOPS_OK);
    EXPECT_EQ(oneid, 2u);
}

TEST(Typed, ArrowErrorsLeaveNothingToRelease) {
    Engine e(userops_engine_new());
    userops_user who{"member_no", "M1", 0};
    Batch b;
    b.array.release = reinterpret_cast<void (*)(ArrowArray *)>(0x1);  // garbage the call overwrites
    EXPECT_EQ(userops_loyalty_statement(e.get(), &who, "nope", &b.array, &b.schema), UOPS_NOT_FOUND);
    EXPECT_EQ(b.array.release, nullptr);
    EXPECT_EQ(b.schema.release, nullptr);
    EXPECT_EQ(userops_lifecycle_stages(e.get(), "not-a-period", 0, &b.array, &b.schema), UOPS_INVALID_ARGUMENT);
    EXPECT_EQ(userops_automation_plan(e.get(), nullptr, &b.array, &b.schema), UOPS_NULL_POINTER);
    EXPECT_EQ(b.array.release, nullptr);
}

TEST(Typed, ExportOutlivesEngineAndMovesToAnotherThread) {
    auto b = std::make_unique<Batch>();
    {
        Engine e(userops_engine_new());
        call(e.get(), "set_tags", R"({"kind": "member_no", "users": ["M1", "M2"], "tags": [{"name": "vip", "type": "bool", "values": [true, false]}]})");
        userops_audience *raw = nullptr;
        ASSERT_EQ(userops_audience_eval(e.get(), "vip", &raw), UOPS_OK);
        Audience aud(raw);
        ASSERT_EQ(userops_audience_to_arrow(aud.get(), &b->array, &b->schema), UOPS_OK);
    }
    std::thread t([&b] {
        EXPECT_EQ(b->array.length, 1);
        EXPECT_EQ(b->value<uint64_t>("oneid", 0), 1u);
        b.reset();  // released on another thread than the one that exported it
    });
    t.join();
    EXPECT_EQ(b, nullptr);
}

TEST(Typed, ThreadsShareOneEngine) {
    Engine e(userops_engine_new());
    call(e.get(), "create_program", R"({"program": {"id": "b"}})");
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([&e, t] {
            for (int i = 0; i < 50; i++) {
                std::string member = "M" + std::to_string(t) + "-" + std::to_string(i);
                std::string key = "k" + member;
                userops_user u{"member_no", member.c_str(), 0};
                userops_posting p{};
                EXPECT_EQ(userops_loyalty_earn(e.get(), &u, "b", 5, key.c_str(), nullptr, 0, &p), UOPS_OK);
                EXPECT_EQ(userops_loyalty_spend(e.get(), &u, "b", 2, ("s" + key).c_str(), nullptr, &p), UOPS_OK);
                EXPECT_EQ(p.balance, 3);
                // errors are per thread
                EXPECT_EQ(userops_loyalty_spend(e.get(), &u, "b", 99, ("x" + key).c_str(), nullptr, &p), UOPS_INSUFFICIENT_POINTS);
                EXPECT_EQ(userops_last_error_code(), UOPS_INSUFFICIENT_POINTS);
            }
        });
    }
    for (auto &t : threads) t.join();
    char *r = nullptr;
    ASSERT_EQ(userops_engine_call(e.get(), "stats", "{}", &r), UOPS_OK);
    EXPECT_NE(take(r).find("\"persons\":200"), std::string::npos);
}
