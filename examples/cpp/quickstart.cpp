// userops from C++17 with the header-only wrapper (bindings/c/include/userops.hpp):
//   g++ -std=c++17 -Ibindings/c/include examples/cpp/quickstart.cpp -Ltarget/release -luserops
// Handles, strings and Arrow exports free themselves; errors are userops::Error exceptions.
#include <cstdio>
#include <string>

#include "userops.hpp"

int main() {
    // userops::Engine::open("crm.db") keeps it in a SQLite file instead.
    userops::Engine engine = userops::Engine::in_memory();
    userops::LinkResult linked = engine.link("r1", "2026-02-01T08:00:00+08:00", "app", "brand-a",
                                             {{"phone", "13900139000"}, {"member_no", "M7"}});
    std::printf("linked phone and member M7 as OneID %llu\n", static_cast<unsigned long long>(linked.oneid));
    std::printf("any spelling of the phone finds it: %llu\n",
                static_cast<unsigned long long>(engine.resolve("phone", "+86 139 0013 9000").value_or(0)));

    engine.call("create_program", R"({"program": {"id": "brand-a"}})");
    userops::User member = userops::User::id("member_no", "M7");
    engine.earn(member, "brand-a", 200, "order-1");
    std::printf("balance: %lld\n", static_cast<long long>(engine.spend(member, "brand-a", 50, "redeem-1").balance));
    try {
        engine.spend(member, "brand-a", 1000, "redeem-2");
    } catch (const userops::Error &e) {
        std::printf("refused as expected (%s): %s\n", e.code().c_str(), e.what());
    }

    engine.call("set_tags", R"({"kind": "member_no", "users": ["M7", "M8"],
                                "tags": [{"name": "vip", "type": "bool", "values": [true, false]}]})");
    userops::RecordBatch vip = engine.audience("vip").to_arrow();  // released by its destructor
    std::printf("vip audience: %lld member(s), first OneID %llu\n", static_cast<long long>(vip.num_rows()),
                static_cast<unsigned long long>(vip.value<uint64_t>(vip.column("oneid"), 0)));

    engine.call("add_promotion", R"({"promotion": {"id": "p10", "action": {"type": "percent_off", "percent": "10"}}})");
    userops::Quote q = engine.quote(R"({"time": "2026-03-08T12:00:00+08:00",
        "lines": [{"sku": "s1", "category": "beauty", "price": "199.00", "qty": 1}]})", member);
    std::printf("quote: discount %s, total %s\n", q.discount().c_str(), q.total().c_str());
    std::printf("commit: %s\n", engine.commit(q, "order-2").c_str());
    return 0;
}
