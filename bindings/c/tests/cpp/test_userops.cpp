// The C ABI from C++ with GoogleTest, behind a small RAII wrapper the way a C++ user would.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

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
