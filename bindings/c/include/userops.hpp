// userops.hpp: a header-only C++17 wrapper over the C ABI (userops.h).
//
//   #include "userops.hpp"      // bindings/c/include; link with -luserops (or libuserops.a)
//
//   userops::Engine engine = userops::Engine::open("crm.db");
//   std::string receipt = engine.ingest(R"({"kind": "identify", ...})");
//   std::optional<uint64_t> who = engine.resolve("phone", "13800138000");
//
// Ownership: nothing here needs freeing by hand. An Engine, Quote, Audience or RecordBatch owns
// its C handle (or Arrow structs) and releases it in its destructor; they move, never copy. A
// string the library returns is copied into a std::string (and freed at once, even when the
// copy throws); `userops::unique_string` owns one in place where a copy is not wanted.
//
// Errors: every failing call throws userops::Error (a std::runtime_error) with status() (the C
// status number), code() (its stable name, e.g. "insufficient_points", as Python's
// UserOpsError.code) and field() (the argument path at fault, when the library names one). A
// call that throws changed nothing. Using a moved-from object throws too (status
// UOPS_NULL_POINTER), it never crashes.
//
// Threads: an Engine is internally synchronized (the C header's promise): several threads may
// call one Engine at once. Quote and Audience are immutable once made. Destroying an object
// while another thread uses it is, as for any C++ object, the caller's bug.
//
// Times are RFC 3339 strings with a zone ("2026-01-05T10:00:00+08:00"); an optional time left
// std::nullopt takes the library's default (see each C function in userops.h). Money is a
// decimal string ("360.00"): C++ has no decimal type, and a double would round it.

#ifndef USEROPS_HPP
#define USEROPS_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "userops.h"

namespace userops {

// ---------------------------------------------------------------------------------- errors

// A failed call: the C status, its stable code name and message, and the field at fault.
class Error : public std::runtime_error {
  public:
    Error(int32_t status, std::string code, const std::string &message, std::optional<std::string> field)
        : std::runtime_error(message), status_(status), code_(std::move(code)), field_(std::move(field)) {}

    // The C status (UOPS_INSUFFICIENT_POINTS, ...): a stable number.
    int32_t status() const noexcept { return status_; }
    // The stable name of the status ("insufficient_points"), as Python's UserOpsError.code.
    const std::string &code() const noexcept { return code_; }
    // The argument path the error is about ("ids[1]", "cart.lines[0].price"), when there is one.
    const std::optional<std::string> &field() const noexcept { return field_; }

  private:
    int32_t status_;
    std::string code_;
    std::optional<std::string> field_;
};

// The stable name of a status ("not_found"), or "" for a number that is not one.
inline std::string status_name(int32_t status) {
    const char *name = userops_status_name(status);
    return name ? name : "";
}

// Frees a string the library handed over (userops_string_free).
struct string_free {
    void operator()(char *s) const noexcept { userops_string_free(s); }
};
// A string owned in place, freed by the library's own function.
using unique_string = std::unique_ptr<char, string_free>;

namespace detail {

// The error the library reported for `status` on this thread.
inline Error last_error(int32_t status) {
    const char *message = userops_last_error_message();
    const char *field = userops_last_error_field();
    std::string code = status_name(status);
    if (code.empty()) code = "status_" + std::to_string(status);
    return Error(status, std::move(code), message ? message : "",
                 field ? std::optional<std::string>(field) : std::nullopt);
}

inline void check(int32_t status) {
    if (status != UOPS_OK) throw last_error(status);
}

// Take ownership of a string from an out-parameter and copy it out.
inline std::string take(char *s) {
    unique_string owned(s);
    return owned ? std::string(owned.get()) : std::string();
}

// Run a C call that hands over a string through its out-parameter: check, take the string.
template <typename Call>
std::string string_out(Call &&call) {
    char *out = nullptr;
    int32_t status = call(&out);
    unique_string owned(out);
    check(status);
    return owned ? std::string(owned.get()) : std::string();
}

// A NUL-terminated copy of a string_view (the C ABI reads C strings).
inline std::string z(std::string_view s) { return std::string(s); }

// An optional C string: NULL when absent.
class opt_z {
  public:
    opt_z(const std::optional<std::string_view> &s) {  // NOLINT: implicit on purpose
        if (s) s_ = std::string(*s);
    }
    const char *c_str() const noexcept { return s_ ? s_->c_str() : nullptr; }

  private:
    std::optional<std::string> s_;
};

// Strings as an array of C strings (the array borrows `items`).
inline std::vector<const char *> c_strs(const std::vector<std::string> &items) {
    std::vector<const char *> out;
    out.reserve(items.size());
    for (const auto &s : items) out.push_back(s.c_str());
    return out;
}

}  // namespace detail

// The library version ("0.1.0").
inline std::string version() { return userops_version(); }

// Run a table function without an engine (userops_table_call): `lifecycle`,
// `active_rate_decomposition`, `funnel`, `cohort_retention` or `attribution`, with the Python
// function's keyword arguments as JSON (columns inline). Returns the result as JSON.
inline std::string table_call(std::string_view method, std::string_view args_json) {
    return detail::string_out([&](char **out) {
        return userops_table_call(detail::z(method).c_str(), detail::z(args_json).c_str(), out);
    });
}

// ---------------------------------------------------------------------------------- values

// An identifier: a kind ("phone", "email", "member_no", "device_id", ...) and its value (the
// library normalizes it: any spelling of a phone finds the person).
struct Identifier {
    std::string kind;
    std::string value;
};

// A reference to a user: an identifier, or a OneID.
class User {
  public:
    static User id(std::string kind, std::string value) {
        User u;
        u.kind_ = std::move(kind);
        u.value_ = std::move(value);
        return u;
    }
    static User oneid(uint64_t oneid) {
        User u;
        u.oneid_ = oneid;
        return u;
    }
    // The C view; borrows this object's strings.
    userops_user c() const noexcept {
        return kind_ ? userops_user{kind_->c_str(), value_.c_str(), 0} : userops_user{nullptr, nullptr, oneid_};
    }

  private:
    User() = default;
    std::optional<std::string> kind_;
    std::string value_;
    uint64_t oneid_ = 0;
};

// What Engine::link did.
struct LinkResult {
    uint64_t oneid;     // the person the identifiers now form
    uint64_t seq;       // the event's sequence number (the first one's, for a replay)
    uint64_t absorbed;  // persons merged into `oneid` by this link
    bool duplicate;     // the key had been seen with the same content: nothing changed
};

// What a ledger write did (earn, spend, post, void).
struct Posting {
    int64_t points;     // points moved (positive)
    int64_t balance;    // the member's posted balance after the write
    uint64_t transfer;  // the id of the last ledger transfer the write made
    bool pending;       // the points are pending (a pending earn)
    bool duplicate;     // the idempotency key had been seen with the same content
};

// What Engine::merge did.
struct MergeResult {
    uint64_t survivor;        // the surviving OneID
    std::string report_json;  // {"survivor", "absorbed": [N], "identifiers_moved", ...}
};

// A member's tier (Engine::tier).
struct TierView {
    std::optional<std::string> tier;  // the tier's name; none before the first tier
    std::string json;                 // the whole view: {"program", "tier", "metric", ...}
};

// What Engine::evaluate_tiers did.
struct TierEvaluation {
    uint64_t members;
    uint64_t upgraded;
    uint64_t downgraded;
    uint64_t grace;
};

// ---------------------------------------------------------------------------------- Arrow

// One record batch exported by the library (Arrow C Data Interface: a struct array, one child
// per column). Owns the two structs: its destructor calls their release callbacks, so they run
// on every path, exceptions included. Hand the batch to an Arrow library with release_into()
// (e.g. then arrow::ImportRecordBatch(&array, &schema)), which moves that duty there.
class RecordBatch {
  public:
    RecordBatch() = default;
    RecordBatch(const RecordBatch &) = delete;
    RecordBatch &operator=(const RecordBatch &) = delete;
    RecordBatch(RecordBatch &&other) noexcept : array_(other.array_), schema_(other.schema_) {
        other.array_.release = nullptr;
        other.schema_.release = nullptr;
    }
    RecordBatch &operator=(RecordBatch &&other) noexcept {
        if (this != &other) {
            reset();
            array_ = other.array_;
            schema_ = other.schema_;
            other.array_.release = nullptr;
            other.schema_.release = nullptr;
        }
        return *this;
    }
    ~RecordBatch() { reset(); }

    // Rows.
    int64_t num_rows() const noexcept { return array_.release ? array_.length : 0; }
    // Columns.
    int64_t num_columns() const noexcept { return schema_.release ? schema_.n_children : 0; }
    // The name of column `i`.
    std::string column_name(int64_t i) const { return schema_at(i).name; }
    // The Arrow format of column `i` ("L" uint64, "l" int64, "u" utf8, "b" bool, "tsm:UTC").
    std::string column_format(int64_t i) const { return schema_at(i).format; }
    // The index of the column named `name`; throws std::out_of_range when there is none.
    int64_t column(std::string_view name) const {
        for (int64_t i = 0; i < num_columns(); i++)
            if (name == schema_.children[i]->name) return i;
        throw std::out_of_range("no column " + std::string(name));
    }
    // Whether the value at (`column`, `row`) is null.
    bool is_null(int64_t column, int64_t row) const {
        const ArrowArray &c = array_at(column, row);
        if (c.null_count == 0 || c.buffers[0] == nullptr) return false;
        const auto *bits = static_cast<const uint8_t *>(c.buffers[0]);
        int64_t i = c.offset + row;
        return ((bits[i / 8] >> (i % 8)) & 1) == 0;
    }
    // A fixed-width value: uint64_t ("L"), int64_t ("l", and "tsm:UTC": ms since the epoch).
    // A column of another type throws std::invalid_argument (never a misread).
    template <typename T>
    T value(int64_t column, int64_t row) const {
        static_assert(std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t>, "uint64_t or int64_t");
        std::string_view f = schema_at(column).format;
        bool ok = std::is_same_v<T, uint64_t> ? f == "L" : (f == "l" || f.substr(0, 2) == "ts");
        if (!ok) throw std::invalid_argument("column " + std::to_string(column) + " is " + std::string(f));
        const ArrowArray &c = array_at(column, row);
        return static_cast<const T *>(c.buffers[1])[c.offset + row];
    }
    // A boolean ("b").
    bool boolean(int64_t column, int64_t row) const {
        expect_format(column, "b");
        const ArrowArray &c = array_at(column, row);
        const auto *bits = static_cast<const uint8_t *>(c.buffers[1]);
        int64_t i = c.offset + row;
        return ((bits[i / 8] >> (i % 8)) & 1) != 0;
    }
    // A string ("u"); borrows the batch's buffer.
    std::string_view text(int64_t column, int64_t row) const {
        expect_format(column, "u");
        const ArrowArray &c = array_at(column, row);
        const auto *offsets = static_cast<const int32_t *>(c.buffers[1]) + c.offset;
        return std::string_view(static_cast<const char *>(c.buffers[2]) + offsets[row],
                                static_cast<size_t>(offsets[row + 1] - offsets[row]));
    }

    // The structs as the C Data Interface declares them (owned by this batch).
    const ArrowArray &array() const noexcept { return array_; }
    const ArrowSchema &schema() const noexcept { return schema_; }

    // Move both structs to `out_array` and `out_schema` (uninitialized or released structs):
    // whoever receives them releases them; this batch is empty afterwards.
    void release_into(ArrowArray *out_array, ArrowSchema *out_schema) noexcept {
        *out_array = array_;
        *out_schema = schema_;
        array_.release = nullptr;
        schema_.release = nullptr;
    }

    // For the Engine: the structs a C function writes into.
    ArrowArray *out_array() noexcept { return &array_; }
    ArrowSchema *out_schema() noexcept { return &schema_; }

  private:
    void reset() noexcept {
        if (array_.release) array_.release(&array_);
        if (schema_.release) schema_.release(&schema_);
        array_ = ArrowArray{};
        schema_ = ArrowSchema{};
    }
    void expect_format(int64_t column, std::string_view format) const {
        std::string_view f = schema_at(column).format;
        if (f != format) throw std::invalid_argument("column " + std::to_string(column) + " is " + std::string(f));
    }
    const ArrowSchema &schema_at(int64_t i) const {
        if (i < 0 || i >= num_columns()) throw std::out_of_range("column " + std::to_string(i));
        return *schema_.children[i];
    }
    const ArrowArray &array_at(int64_t column, int64_t row) const {
        schema_at(column);
        if (row < 0 || row >= num_rows()) throw std::out_of_range("row " + std::to_string(row));
        return *array_.children[column];
    }

    ArrowArray array_{};
    ArrowSchema schema_{};
};

// ---------------------------------------------------------------------------------- handles

namespace detail {
struct engine_free {
    void operator()(userops_engine *e) const noexcept { userops_engine_free(e); }
};
struct quote_free {
    void operator()(userops_quote *q) const noexcept { userops_quote_free(q); }
};
struct audience_free {
    void operator()(userops_audience *a) const noexcept { userops_audience_free(a); }
};

// The buffers of a large_utf8 array handed to the library (freed by its release callback).
struct utf8_buffers {
    std::vector<int64_t> offsets;
    std::string data;
    const void *buffers[3];
};

// Export `values` as an Arrow large_utf8 array; whoever takes it releases it.
inline void utf8_export(const std::vector<std::string> &values, ArrowArray *array, ArrowSchema *schema) {
    auto owned = std::make_unique<utf8_buffers>();
    owned->offsets.reserve(values.size() + 1);
    owned->offsets.push_back(0);
    for (const auto &v : values) {
        owned->data += v;
        owned->offsets.push_back(static_cast<int64_t>(owned->data.size()));
    }
    owned->buffers[0] = nullptr;  // no nulls
    owned->buffers[1] = owned->offsets.data();
    owned->buffers[2] = owned->data.data();
    *array = ArrowArray{};
    array->length = static_cast<int64_t>(values.size());
    array->n_buffers = 3;
    array->buffers = owned->buffers;
    array->release = [](ArrowArray *a) {
        delete static_cast<utf8_buffers *>(a->private_data);
        a->release = nullptr;
    };
    array->private_data = owned.release();
    *schema = ArrowSchema{};
    schema->format = "U";
    schema->name = "";
    schema->release = [](ArrowSchema *s) { s->release = nullptr; };
}

// Copy a string the quote owns; NULL means a dead handle (the error is set).
inline std::string quote_text(const char *s) {
    if (!s) throw last_error(userops_last_error_code());
    return s;
}
}  // namespace detail

// An evaluated promotion quote. Immutable; move-only; freed by its destructor. It does not
// refer to the engine: commit it with Engine::commit.
class Quote {
  public:
    // The cart's subtotal as a decimal string ("360.00").
    std::string subtotal() const { return detail::quote_text(userops_quote_subtotal(q_.get())); }
    // The sum of the discounts.
    std::string discount() const { return detail::quote_text(userops_quote_discount(q_.get())); }
    // subtotal - discount (never negative).
    std::string total() const { return detail::quote_text(userops_quote_total(q_.get())); }
    // The promotions that applied, as a JSON array.
    std::string applied_json() const { return detail::quote_text(userops_quote_applied_json(q_.get())); }
    // Every other promotion with its reason, as a JSON array.
    std::string not_applied_json() const {
        return detail::quote_text(userops_quote_not_applied_json(q_.get()));
    }
    // The whole quote as JSON.
    std::string json() const { return detail::quote_text(userops_quote_json(q_.get())); }
    // The C handle (still owned by this object).
    const userops_quote *get() const noexcept { return q_.get(); }

  private:
    friend class Engine;
    explicit Quote(userops_quote *q) noexcept : q_(q) {}
    std::unique_ptr<userops_quote, detail::quote_free> q_;
};

// The members of an evaluated audience. Immutable; move-only; freed by its destructor.
class Audience {
  public:
    // The number of members.
    uint64_t size() const {
        uint64_t n = userops_audience_len(a_.get());
        if (n == 0 && userops_last_error_code() != UOPS_OK) throw detail::last_error(userops_last_error_code());
        return n;
    }
    // Up to `count` member OneIDs (ascending) from member `offset` on: page through a large
    // audience this way.
    std::vector<uint64_t> oneids(uint64_t offset, size_t count) const {
        std::vector<uint64_t> out(count);
        size_t written = 0;
        detail::check(userops_audience_oneids(a_.get(), offset, out.data(), count, &written));
        out.resize(written);
        return out;
    }
    // Every member OneID (ascending).
    std::vector<uint64_t> oneids() const { return oneids(0, static_cast<size_t>(size())); }
    // The members as a record batch with one column `oneid` (uint64); a copy.
    RecordBatch to_arrow() const {
        RecordBatch b;
        detail::check(userops_audience_to_arrow(a_.get(), b.out_array(), b.out_schema()));
        return b;
    }
    // The C handle (still owned by this object).
    const userops_audience *get() const noexcept { return a_.get(); }

  private:
    friend class Engine;
    explicit Audience(userops_audience *a) noexcept : a_(a) {}
    std::unique_ptr<userops_audience, detail::audience_free> a_;
};

// An engine: the unified user pool. Move-only; its destructor frees it (and closes the file
// of a durable engine; every acknowledged command is already committed there).
class Engine {
  public:
    // An engine in memory (business time zone +08:00, monthly periods).
    static Engine in_memory() {
        userops_engine *e = userops_engine_new();
        if (!e) throw std::bad_alloc();
        return Engine(e);
    }
    // Open (or create) a durable engine kept in the SQLite file at `path`.
    static Engine open(std::string_view path) {
        userops_engine *e = nullptr;
        detail::check(userops_engine_open(detail::z(path).c_str(), &e));
        return Engine(e);
    }

    // Ingest one event (the JSON wire shape of SPEC §2); returns the receipt as JSON. A replayed
    // idempotency key is not an error: the receipt says "duplicate": true.
    std::string ingest(std::string_view event_json) {
        return detail::string_out([&](char **out) {
            return userops_engine_ingest_json(e_.get(), detail::z(event_json).c_str(), out);
        });
    }
    // Call any engine method by name (the Python Engine's method and argument names) with its
    // arguments as a JSON object; returns the result as JSON.
    std::string call(std::string_view method, std::string_view args_json = "{}") {
        return detail::string_out([&](char **out) {
            return userops_engine_call(e_.get(), detail::z(method).c_str(), detail::z(args_json).c_str(), out);
        });
    }
    // Call an engine method whose output is a table (statement, run_automation, rfm,
    // churn_risk, channel_effectiveness, ...: see userops_engine_call_arrow) and return the
    // table. A method without a table throws invalid_argument, and does not run.
    RecordBatch call_arrow(std::string_view method, std::string_view args_json = "{}") {
        RecordBatch b;
        detail::check(userops_engine_call_arrow(e_.get(), detail::z(method).c_str(), detail::z(args_json).c_str(),
                                                b.out_array(), b.out_schema()));
        return b;
    }

    // ---- identity

    // Link identifiers seen together in one record (an identify event from `platform` /
    // `program` at `time`, idempotency key `key`).
    LinkResult link(std::string_view key, std::string_view time, std::string_view platform,
                    std::string_view program, const std::vector<Identifier> &ids) {
        std::vector<const char *> kinds, values;
        for (const auto &id : ids) {
            kinds.push_back(id.kind.c_str());
            values.push_back(id.value.c_str());
        }
        userops_link_result r{};
        detail::check(userops_identity_link(e_.get(), detail::z(key).c_str(), detail::z(time).c_str(),
                                            detail::z(platform).c_str(), detail::z(program).c_str(),
                                            kinds.data(), values.data(), ids.size(), &r));
        return LinkResult{r.oneid, r.seq, r.absorbed, r.duplicate != 0};
    }
    // The person an identifier belongs to, or none when it is unknown (nothing is created).
    std::optional<uint64_t> resolve(std::string_view kind, std::string_view value) {
        uint64_t oneid = 0;
        detail::check(userops_identity_resolve(e_.get(), detail::z(kind).c_str(), detail::z(value).c_str(), &oneid));
        return oneid ? std::optional<uint64_t>(oneid) : std::nullopt;
    }
    // Resolve many identifiers of one kind at once (through Arrow): one entry per value, none
    // where the identifier is unknown.
    std::vector<std::optional<uint64_t>> resolve_many(std::string_view kind, const std::vector<std::string> &values) {
        ArrowArray input{};
        ArrowSchema input_schema{};
        detail::utf8_export(values, &input, &input_schema);
        RecordBatch out;
        int32_t status = userops_identity_resolve_arrow(e_.get(), detail::z(kind).c_str(), &input, &input_schema,
                                                        out.out_array(), out.out_schema());
        // The library released the input on every path; guard against a path that did not.
        if (input.release) input.release(&input);
        if (input_schema.release) input_schema.release(&input_schema);
        detail::check(status);
        std::vector<std::optional<uint64_t>> result;
        result.reserve(static_cast<size_t>(out.num_rows()));
        int64_t col = out.column("oneid");
        for (int64_t row = 0; row < out.num_rows(); row++)
            result.push_back(out.is_null(col, row) ? std::nullopt
                                                   : std::optional<uint64_t>(out.value<uint64_t>(col, row)));
        return result;
    }
    // Why two identifiers are (or are not) one person, as JSON: {"joined", "chain", ...}.
    std::string explain(std::string_view kind_a, std::string_view value_a, std::string_view kind_b,
                        std::string_view value_b) {
        return detail::string_out([&](char **out) {
            return userops_identity_explain(e_.get(), detail::z(kind_a).c_str(), detail::z(value_a).c_str(),
                                            detail::z(kind_b).c_str(), detail::z(value_b).c_str(), out);
        });
    }
    // Merge two persons by hand (audited: `actor`, `reason`; `time` dates the transfers,
    // default now). Every module folds the absorbed person's state into the survivor's.
    MergeResult merge(const User &a, const User &b, std::string_view actor, std::string_view reason,
                      std::optional<std::string_view> time = std::nullopt) {
        userops_user ca = a.c(), cb = b.c();
        uint64_t survivor = 0;
        char *report = nullptr;
        int32_t status = userops_identity_merge(e_.get(), &ca, &cb, detail::z(actor).c_str(), detail::z(reason).c_str(),
                                                detail::opt_z(time).c_str(), &survivor, &report);
        std::string report_json = detail::take(report);
        detail::check(status);
        return MergeResult{survivor, std::move(report_json)};
    }
    // Remove evidence (record ids, or "manual:N" for a manual merge) and recompute the persons
    // it joined (audited: `actor`, `reason`; `time` dates the transfers back, default now).
    // Each part gets back what the merges moved. Returns the split report as JSON.
    std::string split(const std::vector<std::string> &evidence, std::string_view actor, std::string_view reason,
                      std::optional<std::string_view> time = std::nullopt) {
        std::vector<const char *> items = detail::c_strs(evidence);
        return detail::string_out([&](char **out) {
            return userops_identity_split(e_.get(), items.data(), items.size(), detail::z(actor).c_str(),
                                          detail::z(reason).c_str(), detail::opt_z(time).c_str(), out);
        });
    }

    // ---- loyalty

    // Earn `points` for `user` in `program` under the idempotency key `key` (pending: held
    // until post or void_earn).
    Posting earn(const User &user, std::string_view program, int64_t points, std::string_view key,
                 std::optional<std::string_view> time = std::nullopt, bool pending = false) {
        userops_user u = user.c();
        userops_posting p{};
        detail::check(userops_loyalty_earn(e_.get(), &u, detail::z(program).c_str(), points, detail::z(key).c_str(),
                                           detail::opt_z(time).c_str(), pending ? 1 : 0, &p));
        return posting(p);
    }
    // Spend `points` of `user` in `program`, earliest-expiring first.
    Posting spend(const User &user, std::string_view program, int64_t points, std::string_view key,
                  std::optional<std::string_view> time = std::nullopt) {
        userops_user u = user.c();
        userops_posting p{};
        detail::check(userops_loyalty_spend(e_.get(), &u, detail::z(program).c_str(), points, detail::z(key).c_str(),
                                            detail::opt_z(time).c_str(), &p));
        return posting(p);
    }
    // Post the pending earn made under `earn_key`.
    Posting post(std::string_view earn_key, std::optional<std::string_view> time = std::nullopt) {
        userops_posting p{};
        detail::check(userops_loyalty_post(e_.get(), detail::z(earn_key).c_str(), detail::opt_z(time).c_str(), &p));
        return posting(p);
    }
    // Void the pending earn made under `earn_key` (`void` is a keyword).
    Posting void_earn(std::string_view earn_key, std::optional<std::string_view> time = std::nullopt) {
        userops_posting p{};
        detail::check(userops_loyalty_void(e_.get(), detail::z(earn_key).c_str(), detail::opt_z(time).c_str(), &p));
        return posting(p);
    }
    // The posted balance of `user` in `program`.
    int64_t balance(const User &user, std::string_view program) {
        userops_user u = user.c();
        int64_t balance = 0;
        detail::check(userops_loyalty_balance(e_.get(), &u, detail::z(program).c_str(), &balance));
        return balance;
    }
    // The statement of `user` in `program`, one row per posting (columns in userops.h).
    RecordBatch statement(const User &user, std::string_view program) {
        userops_user u = user.c();
        RecordBatch b;
        detail::check(
            userops_loyalty_statement(e_.get(), &u, detail::z(program).c_str(), b.out_array(), b.out_schema()));
        return b;
    }
    // The tier of `user` in `program` at `now` (nullopt: loyalty's clock).
    TierView tier(const User &user, std::string_view program, std::optional<std::string_view> now = std::nullopt) {
        userops_user u = user.c();
        char *tier = nullptr;
        char *view = nullptr;
        int32_t status = userops_loyalty_tier(e_.get(), &u, detail::z(program).c_str(), detail::opt_z(now).c_str(),
                                              &tier, &view);
        unique_string owned_tier(tier), owned_view(view);
        detail::check(status);
        return TierView{owned_tier ? std::optional<std::string>(owned_tier.get()) : std::nullopt,
                        owned_view ? std::string(owned_view.get()) : std::string()};
    }
    // Evaluate every tier ladder at `now` (upgrades, and downgrades after grace).
    TierEvaluation evaluate_tiers(std::string_view now) {
        userops_tier_evaluation r{};
        detail::check(userops_loyalty_evaluate_tiers(e_.get(), detail::z(now).c_str(), &r));
        return TierEvaluation{r.members, r.upgraded, r.downgraded, r.grace};
    }

    // ---- lifecycle and automation

    // The lifecycle report of every period as JSON (churn_after 0: the default rule; `through`
    // a period label to extend the report to).
    std::string lifecycle_report(uint32_t churn_after = 0, std::optional<std::string_view> through = std::nullopt) {
        return detail::string_out([&](char **out) {
            return userops_lifecycle_report(e_.get(), churn_after, detail::opt_z(through).c_str(), out);
        });
    }
    // The stage of every person in `period` (nullopt: the last period with data).
    RecordBatch lifecycle_stages(std::optional<std::string_view> period = std::nullopt, uint32_t churn_after = 0) {
        RecordBatch b;
        detail::check(userops_lifecycle_stages(e_.get(), detail::opt_z(period).c_str(), churn_after, b.out_array(),
                                               b.out_schema()));
        return b;
    }
    // Run the automation rules at `now` and return the delivery plan (this changes state).
    RecordBatch automation_plan(std::string_view now) {
        RecordBatch b;
        detail::check(userops_automation_plan(e_.get(), detail::z(now).c_str(), b.out_array(), b.out_schema()));
        return b;
    }

    // ---- audiences and quotes

    // Evaluate an audience expression now ("age > 40 and vip").
    Audience audience(std::string_view expression) {
        userops_audience *a = nullptr;
        detail::check(userops_audience_eval(e_.get(), detail::z(expression).c_str(), &a));
        return Audience(a);
    }
    // Evaluate a cart (the `quote` method's JSON: {"time", "lines": [{"sku", "category",
    // "price": "12.50", "qty"}], ...}) for `user` (nullptr: anonymous). Nothing changes until
    // commit.
    Quote quote(std::string_view cart_json, const User *user = nullptr) {
        std::optional<userops_user> u;
        if (user) u = user->c();
        userops_quote *q = nullptr;
        detail::check(userops_quote_evaluate(e_.get(), detail::z(cart_json).c_str(), u ? &*u : nullptr, &q));
        return Quote(q);
    }
    Quote quote(std::string_view cart_json, const User &user) { return quote(cart_json, &user); }
    // Commit a quote under the idempotency key `key` (typically the order id): consumes the
    // budgets and limits of the promotions it applied. Returns the receipt as JSON.
    std::string commit(const Quote &quote, std::string_view key) {
        return detail::string_out([&](char **out) {
            return userops_quote_commit(e_.get(), quote.get(), detail::z(key).c_str(), out);
        });
    }
    // Cancel the commit made under `key`: gives its budgets and limits back.
    std::string cancel(std::string_view key) {
        return detail::string_out(
            [&](char **out) { return userops_quote_cancel(e_.get(), detail::z(key).c_str(), out); });
    }

    // The C handle (still owned by this object), for C functions this class does not wrap.
    userops_engine *get() const noexcept { return e_.get(); }

  private:
    explicit Engine(userops_engine *e) noexcept : e_(e) {}
    static Posting posting(const userops_posting &p) noexcept {
        return Posting{p.points, p.balance, p.transfer, p.pending != 0, p.duplicate != 0};
    }
    std::unique_ptr<userops_engine, detail::engine_free> e_;
};

}  // namespace userops

#endif  // USEROPS_HPP
