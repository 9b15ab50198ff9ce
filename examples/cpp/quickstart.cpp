// A small C++17 program over the C header, with RAII ownership of handles, strings and Arrow
// exports, and exceptions for error statuses.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "userops.h"

namespace uo {

inline void check(int32_t status) {
    if (status != UOPS_OK) throw std::runtime_error(userops_last_error_message());
}

inline std::string take(char *s) {
    std::string r = s ? s : "";
    userops_string_free(s);
    return r;
}

// An exported record batch; its destructor keeps the release contract.
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
    const ArrowArray *column(const std::string &name) const {
        for (int64_t i = 0; i < schema.n_children; i++)
            if (name == schema.children[i]->name) return array.children[i];
        throw std::out_of_range(name);
    }
};

class Quote {
  public:
    explicit Quote(userops_quote *q) : q_(q) {}
    std::string total() const { return userops_quote_total(q_.get()); }
    std::string discount() const { return userops_quote_discount(q_.get()); }
    userops_quote *get() const { return q_.get(); }

  private:
    struct Free {
        void operator()(userops_quote *q) const { userops_quote_free(q); }
    };
    std::unique_ptr<userops_quote, Free> q_;
};

class Engine {
  public:
    Engine() : e_(userops_engine_new()) {
        if (!e_) throw std::runtime_error("userops_engine_new failed");
    }
    std::string call(const std::string &method, const std::string &args = "{}") {
        char *out = nullptr;
        check(userops_engine_call(e_.get(), method.c_str(), args.c_str(), &out));
        return take(out);
    }
    uint64_t link(const std::string &key, const std::string &time, const std::vector<const char *> &kinds,
                  const std::vector<const char *> &values) {
        userops_link_result r{};
        check(userops_identity_link(e_.get(), key.c_str(), time.c_str(), "app", "brand-a", kinds.data(),
                                    values.data(), kinds.size(), &r));
        return r.oneid;
    }
    int64_t earn(const userops_user &u, const std::string &program, int64_t points, const std::string &key) {
        userops_posting p{};
        check(userops_loyalty_earn(e_.get(), &u, program.c_str(), points, key.c_str(), nullptr, 0, &p));
        return p.balance;
    }
    int64_t spend(const userops_user &u, const std::string &program, int64_t points, const std::string &key) {
        userops_posting p{};
        check(userops_loyalty_spend(e_.get(), &u, program.c_str(), points, key.c_str(), nullptr, &p));
        return p.balance;
    }
    Quote quote(const std::string &cart, const userops_user &u) {
        userops_quote *q = nullptr;
        check(userops_quote_evaluate(e_.get(), cart.c_str(), &u, &q));
        return Quote(q);
    }
    std::string commit(const Quote &q, const std::string &key) {
        char *out = nullptr;
        check(userops_quote_commit(e_.get(), q.get(), key.c_str(), &out));
        return take(out);
    }
    void audience(const std::string &expression, Batch &out) {
        userops_audience *a = nullptr;
        check(userops_audience_eval(e_.get(), expression.c_str(), &a));
        int32_t status = userops_audience_to_arrow(a, &out.array, &out.schema);
        userops_audience_free(a);
        check(status);
    }

  private:
    struct Free {
        void operator()(userops_engine *e) const { userops_engine_free(e); }
    };
    std::unique_ptr<userops_engine, Free> e_;
};

}  // namespace uo

int main() {
    uo::Engine engine;
    uint64_t oneid = engine.link("r1", "2026-02-01T08:00:00+08:00", {"phone", "member_no"}, {"13900139000", "M7"});
    std::printf("linked phone and member M7 as OneID %llu\n", static_cast<unsigned long long>(oneid));

    engine.call("create_program", R"({"program": {"id": "brand-a"}})");
    userops_user member{"member_no", "M7", 0};
    engine.earn(member, "brand-a", 200, "order-1");
    std::printf("balance: %lld\n", static_cast<long long>(engine.spend(member, "brand-a", 50, "redeem-1")));
    try {
        engine.spend(member, "brand-a", 1000, "redeem-2");
    } catch (const std::exception &e) {
        std::printf("refused as expected: %s\n", e.what());
    }

    engine.call("set_tags", R"({"kind": "member_no", "users": ["M7", "M8"], "tags": [{"name": "vip", "type": "bool", "values": [true, false]}]})");
    uo::Batch vip;
    engine.audience("vip", vip);
    const uint64_t *ids = static_cast<const uint64_t *>(vip.column("oneid")->buffers[1]);
    std::printf("vip audience: %lld member(s), first OneID %llu\n", static_cast<long long>(vip.array.length),
                static_cast<unsigned long long>(ids[0]));

    engine.call("add_promotion", R"({"promotion": {"id": "p10", "action": {"type": "percent_off", "percent": "10"}}})");
    uo::Quote q = engine.quote(R"({"time": "2026-03-08T12:00:00+08:00", "lines": [{"sku": "s1", "category": "beauty", "price": "199.00", "qty": 1}]})", member);
    std::printf("quote: discount %s, total %s\n", q.discount().c_str(), q.total().c_str());
    std::printf("commit: %s\n", engine.commit(q, "order-2").c_str());
    return 0;
}
