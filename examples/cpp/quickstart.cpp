// A small C++17 program over the C header, with RAII ownership of the handle and strings.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "userops.h"

namespace uo {

struct EngineFree {
    void operator()(userops_engine *e) const { userops_engine_free(e); }
};

class Engine {
  public:
    Engine() : e_(userops_engine_new()) {
        if (!e_) throw std::runtime_error("userops_engine_new failed");
    }
    std::string ingest(const std::string &event) {
        char *out = nullptr;
        check(userops_engine_ingest_json(e_.get(), event.c_str(), &out));
        return take(out);
    }
    std::string call(const std::string &method, const std::string &args = "{}") {
        char *out = nullptr;
        check(userops_engine_call(e_.get(), method.c_str(), args.c_str(), &out));
        return take(out);
    }

  private:
    static void check(int32_t status) {
        if (status != UOPS_OK) throw std::runtime_error(userops_last_error_message());
    }
    static std::string take(char *s) {
        std::string r = s ? s : "";
        userops_string_free(s);
        return r;
    }
    std::unique_ptr<userops_engine, EngineFree> e_;
};

}  // namespace uo

int main() {
    uo::Engine engine;
    std::printf("%s\n", engine.ingest(R"({"kind": "register", "key": "r1", "time": "2026-02-01T08:00:00+08:00",
        "source": {"platform": "pos", "program": "store-01"}, "user": {"kind": "phone", "value": "13900139000"}})").c_str());
    std::printf("%s\n", engine.call("resolve", R"({"user": {"kind": "phone", "value": "+86 139 0013 9000"}})").c_str());
    try {
        engine.ingest(R"({"kind": "register", "key": "r2"})");
    } catch (const std::exception &e) {
        std::printf("rejected as expected: %s\n", e.what());
    }
    return 0;
}
