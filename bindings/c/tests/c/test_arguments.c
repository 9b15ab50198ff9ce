/* Every typed function of the C ABI, called with every bad argument: NULL pointers,
 * strings that are not UTF-8, empty strings, out-of-range numbers, dead handles. Each call
 * returns a typed status (never UOPS_OK for a bad argument, never UOPS_INTERNAL), the message
 * names the argument, out-parameters are left NULL, and the engine's state is unchanged.
 *
 * Each function is described once (its arguments as slots with a kind) next to a baseline call
 * that succeeds; the sweep replaces one slot at a time with each bad value of its kind. */
#define _DEFAULT_SOURCE
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "userops.h"

static const char BAD_UTF8[] = "\xff\xfe not utf-8";
static int failures = 0;
static int checked = 0;

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            failures++;                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                    \
            fprintf(stderr, __VA_ARGS__);                                           \
            fprintf(stderr, "\n");                                                  \
        }                                                                           \
    } while (0)

/* ---- the engine every call runs on ---- */

static void ok_call(userops_engine *e, const char *method, const char *args) {
    char *out = NULL;
    int s = userops_engine_call(e, method, args, &out);
    if (s != UOPS_OK) {
        fprintf(stderr, "setup %s: %d %s\n", method, s, userops_last_error_message());
        abort();
    }
    userops_string_free(out);
}

static void ok_ingest(userops_engine *e, const char *event) {
    char *out = NULL;
    if (userops_engine_ingest_json(e, event, &out) != UOPS_OK) {
        fprintf(stderr, "setup ingest: %s\n", userops_last_error_message());
        abort();
    }
    userops_string_free(out);
}

static userops_quote *quote;       /* a quote on the current engine, for commit */
static userops_audience *audience; /* an audience of the current engine */

static userops_engine *setup(void) {
    userops_engine *e = userops_engine_new();
    const char *k1[] = {"member_no", "phone"}, *v1[] = {"M1", "13800000001"};
    const char *k2[] = {"member_no"}, *v2[] = {"M2"};
    const char *k3[] = {"member_no"}, *v3[] = {"M3"};
    assert(userops_identity_link(e, "id-1", "2026-01-05T10:00:00+08:00", "app", "brand-a", k1, v1, 2, NULL) == UOPS_OK);
    assert(userops_identity_link(e, "id-2", "2026-01-05T10:00:00+08:00", "app", "brand-a", k2, v2, 1, NULL) == UOPS_OK);
    assert(userops_identity_link(e, "id-3", "2026-01-05T10:00:00+08:00", "app", "brand-a", k3, v3, 1, NULL) == UOPS_OK);
    ok_ingest(e, "{\"kind\": \"register\", \"key\": \"r1\", \"time\": \"2026-01-05T10:00:00+08:00\","
                 " \"source\": {\"platform\": \"app\", \"program\": \"brand-a\"}, \"user\": {\"kind\": \"member_no\", \"value\": \"M1\"}}");
    ok_ingest(e, "{\"kind\": \"activity\", \"key\": \"a1\", \"time\": \"2026-02-03T10:00:00+08:00\", \"type\": \"login\","
                 " \"source\": {\"platform\": \"app\", \"program\": \"brand-a\"}, \"user\": {\"kind\": \"member_no\", \"value\": \"M1\"}}");
    ok_call(e, "create_program", "{\"program\": {\"id\": \"brand-a\", \"tiers\": {\"basis\": \"spend\","
               " \"window\": \"rolling_12_months\", \"levels\": [{\"name\": \"silver\", \"threshold\": \"0\"},"
               " {\"name\": \"gold\", \"threshold\": \"1000\"}]}}}");
    ok_call(e, "earn", "{\"user\": {\"oneid\": 1}, \"program\": \"brand-a\", \"points\": 100, \"key\": \"e1\","
               " \"time\": \"2026-01-10T10:00:00Z\"}");
    ok_call(e, "earn", "{\"user\": {\"oneid\": 1}, \"program\": \"brand-a\", \"points\": 10, \"key\": \"p1\","
               " \"pending\": true, \"time\": \"2026-01-10T10:00:00Z\"}");
    ok_call(e, "merge", "{\"a\": {\"oneid\": 1}, \"b\": {\"oneid\": 3}, \"actor\": \"ops\", \"reason\": \"same\"}");
    ok_call(e, "add_promotion", "{\"promotion\": {\"id\": \"p300\", \"action\":"
               " {\"type\": \"threshold_discount\", \"threshold\": \"300\", \"off\": \"50\"}}}");
    ok_call(e, "set_consent", "{\"user\": {\"oneid\": 1}, \"channel\": \"push\", \"purpose\": \"marketing\","
               " \"granted\": true, \"actor\": \"crm\", \"time\": \"2026-01-01T00:00:00Z\"}");
    ok_call(e, "add_rule", "{\"rule\": {\"id\": \"wb\", \"trigger\": {\"type\": \"inactive\", \"days\": 30},"
               " \"actions\": [{\"type\": \"touch\", \"channel\": \"push\", \"content\": \"hi\"}]}}");
    userops_user m1 = {"member_no", "M1", 0};
    quote = NULL;
    assert(userops_quote_evaluate(e, "{\"time\": \"2026-03-01T10:00:00+08:00\", \"lines\":"
           " [{\"sku\": \"a\", \"category\": \"x\", \"price\": \"120.00\", \"qty\": 3}]}", &m1, &quote) == UOPS_OK);
    char *out = NULL;
    assert(userops_quote_commit(e, quote, "order-1", &out) == UOPS_OK);
    userops_string_free(out);
    audience = NULL;
    assert(userops_audience_eval(e, "orders >= 0", &audience) == UOPS_OK);
    return e;
}

static void teardown(userops_engine *e) {
    userops_quote_free(quote);
    quote = NULL;
    userops_audience_free(audience);
    audience = NULL;
    userops_engine_free(e);
}

/* Everything a refused call must leave as it was, as text. */
static char *digest(userops_engine *e) {
    static const char *reads[][2] = {
        {"stats", "{}"},
        {"audit_log", "{}"},
        {"identity_audit", "{}"},
        {"merge_history", "{}"},
        {"profile", "{\"user\": {\"oneid\": 1}}"},
        {"profile", "{\"user\": {\"oneid\": 2}}"},
        {"statement", "{\"user\": {\"oneid\": 1}, \"program\": \"brand-a\"}"},
        {"tier", "{\"user\": {\"oneid\": 1}, \"program\": \"brand-a\", \"now\": \"2026-03-01T00:00:00Z\"}"},
        {"promotion_usage", "{\"id\": \"p300\"}"},
        {"channel_effectiveness", "{\"by\": \"rule\"}"},
    };
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    buf[0] = 0;
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        char *out = NULL;
        int s = userops_engine_call(e, reads[i][0], reads[i][1], &out);
        const char *text = s == UOPS_OK ? out : userops_last_error_message();
        size_t n = strlen(text);
        while (len + n + 2 > cap) buf = realloc(buf, cap *= 2);
        memcpy(buf + len, text, n);
        len += n;
        buf[len++] = '\n';
        buf[len] = 0;
        userops_string_free(out);
    }
    return buf;
}

/* ---- arguments as slots ---- */

enum slot_kind {
    ENGINE,    /* the engine handle */
    STR,       /* a required string */
    OPT_STR,   /* a string that may be NULL (a default applies) */
    STRS,      /* an array of strings with its length */
    USER,      /* a userops_user pointer */
    POINTS,    /* an i64 amount of points: > 0 */
    COUNT32,   /* a u32 where 0 means the default */
    OUT,       /* a required out-parameter */
    OPT_OUT,   /* an out-parameter that may be NULL */
    ARROW_OUT, /* an (array, schema) pair of out-parameters */
    QUOTE,     /* a quote handle */
    AUDIENCE,  /* an audience handle */
    OFFSET,    /* a u64 position: any value is valid */
    ARROW_IN,  /* an Arrow array (and schema) moved in */
};

struct slot {
    enum slot_kind kind;
    const char *name; /* as the messages name it */
    int nonempty;     /* an empty string (or array) is a bad value */
};

/* The values of one call. */
struct args {
    userops_engine *engine;
    const char *s[6];
    const char **strs[2];
    size_t n;
    const userops_user *user[2];
    int64_t points;
    uint32_t count;
    int out_null[3];
    int arrow_null;
    int arrow_in_null;
    const userops_quote *quote;
    const userops_audience *audience;
    uint64_t offset;
};

/* What a call wrote to its out-parameters, to check errors leave them NULL. */
struct outs {
    char *str[3];
    struct ArrowArray array;
    struct ArrowSchema schema;
    userops_quote *quote;
    userops_audience *audience;
    userops_posting posting;
    uint64_t u64;
    int64_t i64;
};

typedef int (*caller)(struct args *a, struct outs *o);

struct function {
    const char *name;
    caller call;
    struct args base;
    struct slot slots[8];
    int n_slots;
    int mutates;  /* a successful call changes the state */
    int str_outs; /* bit i: the call passes string out-parameter i (unless out_null[i]) */
};

#define OUTSTR(i) (a->out_null[i] ? NULL : &o->str[i])
#define ARR (a->arrow_null ? NULL : &o->array)
#define SCH (a->arrow_null ? NULL : &o->schema)

static int call_link(struct args *a, struct outs *o) {
    userops_link_result r;
    (void)o;
    return userops_identity_link(a->engine, a->s[0], a->s[1], a->s[2], a->s[3], a->strs[0], a->strs[1], a->n,
                                 a->out_null[0] ? NULL : &r);
}
static int call_resolve(struct args *a, struct outs *o) {
    return userops_identity_resolve(a->engine, a->s[0], a->s[1], a->out_null[0] ? NULL : &o->u64);
}
static int call_explain(struct args *a, struct outs *o) {
    return userops_identity_explain(a->engine, a->s[0], a->s[1], a->s[2], a->s[3], OUTSTR(0));
}
static int call_merge(struct args *a, struct outs *o) {
    return userops_identity_merge(a->engine, a->user[0], a->user[1], a->s[0], a->s[1], a->s[2],
                                  a->out_null[0] ? NULL : &o->u64, OUTSTR(1));
}
static int call_split(struct args *a, struct outs *o) {
    return userops_identity_split(a->engine, a->strs[0], a->n, a->s[0], a->s[1], a->s[2], OUTSTR(0));
}
static int call_earn(struct args *a, struct outs *o) {
    return userops_loyalty_earn(a->engine, a->user[0], a->s[0], a->points, a->s[1], a->s[2], 0,
                                a->out_null[0] ? NULL : &o->posting);
}
static int call_spend(struct args *a, struct outs *o) {
    return userops_loyalty_spend(a->engine, a->user[0], a->s[0], a->points, a->s[1], a->s[2],
                                 a->out_null[0] ? NULL : &o->posting);
}
static int call_post(struct args *a, struct outs *o) {
    return userops_loyalty_post(a->engine, a->s[0], a->s[1], a->out_null[0] ? NULL : &o->posting);
}
static int call_void(struct args *a, struct outs *o) {
    return userops_loyalty_void(a->engine, a->s[0], a->s[1], a->out_null[0] ? NULL : &o->posting);
}
static int call_balance(struct args *a, struct outs *o) {
    return userops_loyalty_balance(a->engine, a->user[0], a->s[0], a->out_null[0] ? NULL : &o->i64);
}
static int call_statement(struct args *a, struct outs *o) {
    return userops_loyalty_statement(a->engine, a->user[0], a->s[0], ARR, SCH);
}
static int call_tier(struct args *a, struct outs *o) {
    return userops_loyalty_tier(a->engine, a->user[0], a->s[0], a->s[1], OUTSTR(0), OUTSTR(1));
}
static int call_evaluate_tiers(struct args *a, struct outs *o) {
    userops_tier_evaluation ev;
    (void)o;
    return userops_loyalty_evaluate_tiers(a->engine, a->s[0], a->out_null[0] ? NULL : &ev);
}
static int call_lifecycle_report(struct args *a, struct outs *o) {
    return userops_lifecycle_report(a->engine, a->count, a->s[0], OUTSTR(0));
}
static int call_lifecycle_stages(struct args *a, struct outs *o) {
    return userops_lifecycle_stages(a->engine, a->s[0], a->count, ARR, SCH);
}
static int call_automation_plan(struct args *a, struct outs *o) {
    return userops_automation_plan(a->engine, a->s[0], ARR, SCH);
}
static int call_audience_eval(struct args *a, struct outs *o) {
    return userops_audience_eval(a->engine, a->s[0], a->out_null[0] ? NULL : &o->audience);
}
static int call_quote_evaluate(struct args *a, struct outs *o) {
    return userops_quote_evaluate(a->engine, a->s[0], a->user[0], a->out_null[0] ? NULL : &o->quote);
}
static int call_quote_commit(struct args *a, struct outs *o) {
    return userops_quote_commit(a->engine, a->quote, a->s[0], OUTSTR(0));
}
static int call_quote_cancel(struct args *a, struct outs *o) {
    return userops_quote_cancel(a->engine, a->s[0], OUTSTR(0));
}
static int call_ingest_json(struct args *a, struct outs *o) {
    return userops_engine_ingest_json(a->engine, a->s[0], OUTSTR(0));
}
static int call_engine_call(struct args *a, struct outs *o) {
    return userops_engine_call(a->engine, a->s[0], a->s[1], OUTSTR(0));
}
static int call_engine_call_arrow(struct args *a, struct outs *o) {
    return userops_engine_call_arrow(a->engine, a->s[0], a->s[1], ARR, SCH);
}
static int call_table_call(struct args *a, struct outs *o) {
    return userops_table_call(a->s[0], a->s[1], OUTSTR(0));
}
static char db_path[256];
static int call_open(struct args *a, struct outs *o) {
    userops_engine *opened = NULL;
    int s = userops_engine_open(a->s[0], a->out_null[0] ? NULL : &opened);
    (void)o;
    if (s != UOPS_OK) CHECK(opened == NULL, "engine_open wrote a handle on error");
    userops_engine_free(opened);
    return s;
}

/* Functions that return a value rather than a status report errors as the thread's last error. */
static int call_audience_len(struct args *a, struct outs *o) {
    uint64_t n = userops_audience_len(a->audience);
    int s = userops_last_error_code();
    (void)o;
    if (s != UOPS_OK) CHECK(n == 0, "userops_audience_len: %llu on error", (unsigned long long)n);
    return s;
}
static int call_audience_oneids(struct args *a, struct outs *o) {
    uint64_t buf[4];
    size_t written = 99;
    int s = userops_audience_oneids(a->audience, a->offset, a->out_null[0] ? NULL : buf, 4,
                                    a->out_null[1] ? NULL : &written);
    (void)o;
    if (s == UOPS_OK) CHECK(written <= 4, "userops_audience_oneids wrote %zu", written);
    return s;
}
static int call_audience_to_arrow(struct args *a, struct outs *o) {
    return userops_audience_to_arrow(a->audience, ARR, SCH);
}
static int quote_getter(const char *(*get)(const userops_quote *), struct args *a) {
    const char *text = get(a->quote);
    int s = userops_last_error_code();
    if (s != UOPS_OK) CHECK(text == NULL, "a quote getter returned text on error");
    else CHECK(text != NULL && text[0] != 0, "a quote getter returned no text");
    return s;
}
static int call_quote_subtotal(struct args *a, struct outs *o) { (void)o; return quote_getter(userops_quote_subtotal, a); }
static int call_quote_discount(struct args *a, struct outs *o) { (void)o; return quote_getter(userops_quote_discount, a); }
static int call_quote_total(struct args *a, struct outs *o) { (void)o; return quote_getter(userops_quote_total, a); }
static int call_quote_applied(struct args *a, struct outs *o) { (void)o; return quote_getter(userops_quote_applied_json, a); }
static int call_quote_not_applied(struct args *a, struct outs *o) { (void)o; return quote_getter(userops_quote_not_applied_json, a); }
static int call_quote_json(struct args *a, struct outs *o) { (void)o; return quote_getter(userops_quote_json, a); }

/* A utf8 array made by hand, as a producer other than userops would export it; moved in. */
static const char MEMBERS[] = "M1M2";
static const int32_t MEMBER_OFFSETS[] = {0, 2, 4};
static const void *MEMBER_BUFFERS[] = {NULL, MEMBER_OFFSETS, MEMBERS};
static int released;
static void release_in_array(struct ArrowArray *x) { released++; x->release = NULL; }
static void release_in_schema(struct ArrowSchema *x) { released++; x->release = NULL; }
static int call_resolve_arrow(struct args *a, struct outs *o) {
    struct ArrowArray in = {2, 0, 0, 3, 0, MEMBER_BUFFERS, NULL, NULL, release_in_array, NULL};
    struct ArrowSchema in_s = {"u", "members", NULL, 0, 0, NULL, NULL, release_in_schema, NULL};
    int before = released;
    int s = userops_identity_resolve_arrow(a->engine, a->s[0], a->arrow_in_null ? NULL : &in,
                                           a->arrow_in_null ? NULL : &in_s, ARR, SCH);
    /* The input is moved in: released on every return. */
    CHECK(a->arrow_in_null || (released == before + 2 && in.release == NULL && in_s.release == NULL),
          "userops_identity_resolve_arrow did not release its input (status %d)", s);
    return s;
}

static const char *LINK_KINDS[] = {"member_no", "device_id"}, *LINK_VALUES[] = {"M9", "d-9"};
static const char *EVIDENCE[] = {"manual:1"};
static userops_user U_M1 = {"member_no", "M1", 0}, U_M2 = {"member_no", "M2", 0};
#define CART "{\"time\": \"2026-03-01T10:00:00+08:00\", \"lines\": [{\"sku\": \"a\", \"price\": \"9.90\", \"qty\": 1}]}"
#define T "2026-03-01T10:00:00+08:00"

#define S(...) {__VA_ARGS__}
static struct function FUNCTIONS[] = {
    {"userops_identity_link", call_link,
     {.s = {"k-new", "2026-03-01T10:00:00Z", "app", "brand-a"}, .strs = {LINK_KINDS, LINK_VALUES}, .n = 2},
     S({ENGINE, "engine", 0}, {STR, "key", 1}, {STR, "time", 1}, {STR, "platform", 1}, {STR, "program", 1},
       {STRS, "kinds", 1}, {STRS, "values", 1}, {OPT_OUT, "out", 0}), 8, 1, 0},
    {"userops_identity_resolve", call_resolve, {.s = {"member_no", "M1"}},
     S({ENGINE, "engine", 0}, {STR, "identifier kind", 1}, {STR, "identifier value", 1}, {OUT, "oneid", 0}), 4, 0, 0},
    {"userops_identity_explain", call_explain, {.s = {"member_no", "M1", "member_no", "M2"}},
     S({ENGINE, "engine", 0}, {STR, "a kind", 1}, {STR, "a value", 1}, {STR, "b kind", 1}, {STR, "b value", 1},
       {OUT, "explanation_json", 0}), 6, 0, 1},
    {"userops_identity_merge", call_merge, {.user = {&U_M1, &U_M2}, .s = {"ops", "same", T}},
     S({ENGINE, "engine", 0}, {USER, "a", 0}, {USER, "b", 0}, {STR, "actor", 0}, {STR, "reason", 0},
       {OPT_STR, "time", 1}, {OPT_OUT, "survivor", 0}, {OPT_OUT, "report_json", 0}), 8, 1, 2},
    {"userops_identity_split", call_split, {.strs = {EVIDENCE}, .n = 1, .s = {"ops", "wrong", T}},
     S({ENGINE, "engine", 0}, {STRS, "evidence", 1}, {STR, "actor", 0}, {STR, "reason", 0}, {OPT_STR, "time", 1},
       {OPT_OUT, "report_json", 0}), 6, 1, 1},
    {"userops_loyalty_earn", call_earn, {.user = {&U_M1}, .s = {"brand-a", "e-new", T}, .points = 5},
     S({ENGINE, "engine", 0}, {USER, "user", 0}, {STR, "program", 1}, {POINTS, "points", 0}, {STR, "key", 1},
       {OPT_STR, "time", 1}, {OPT_OUT, "out", 0}), 7, 1, 0},
    {"userops_loyalty_spend", call_spend, {.user = {&U_M1}, .s = {"brand-a", "s-new", T}, .points = 5},
     S({ENGINE, "engine", 0}, {USER, "user", 0}, {STR, "program", 1}, {POINTS, "points", 0}, {STR, "key", 1},
       {OPT_STR, "time", 1}, {OPT_OUT, "out", 0}), 7, 1, 0},
    {"userops_loyalty_post", call_post, {.s = {"p1", T}},
     S({ENGINE, "engine", 0}, {STR, "earn_key", 1}, {OPT_STR, "time", 1}, {OPT_OUT, "out", 0}), 4, 1, 0},
    {"userops_loyalty_void", call_void, {.s = {"p1", T}},
     S({ENGINE, "engine", 0}, {STR, "earn_key", 1}, {OPT_STR, "time", 1}, {OPT_OUT, "out", 0}), 4, 1, 0},
    {"userops_loyalty_balance", call_balance, {.user = {&U_M1}, .s = {"brand-a"}},
     S({ENGINE, "engine", 0}, {USER, "user", 0}, {STR, "program", 1}, {OUT, "balance", 0}), 4, 0, 0},
    {"userops_loyalty_statement", call_statement, {.user = {&U_M1}, .s = {"brand-a"}},
     S({ENGINE, "engine", 0}, {USER, "user", 0}, {STR, "program", 1}, {ARROW_OUT, "out_array", 0}), 4, 0, 0},
    {"userops_loyalty_tier", call_tier, {.user = {&U_M1}, .s = {"brand-a", T}},
     S({ENGINE, "engine", 0}, {USER, "user", 0}, {STR, "program", 1}, {OPT_STR, "now", 1}, {OUT, "tier", 0},
       {OPT_OUT, "view_json", 0}), 6, 0, 3},
    {"userops_loyalty_evaluate_tiers", call_evaluate_tiers, {.s = {T}},
     S({ENGINE, "engine", 0}, {STR, "now", 1}, {OPT_OUT, "out", 0}), 3, 1, 0},
    {"userops_lifecycle_report", call_lifecycle_report, {.count = 2, .s = {"2026-02"}},
     S({ENGINE, "engine", 0}, {COUNT32, "churn_after", 0}, {OPT_STR, "through", 1}, {OUT, "report_json", 0}), 4, 0, 1},
    {"userops_lifecycle_stages", call_lifecycle_stages, {.count = 2, .s = {"2026-02"}},
     S({ENGINE, "engine", 0}, {OPT_STR, "period", 1}, {COUNT32, "churn_after", 0}, {ARROW_OUT, "out_array", 0}), 4, 0, 0},
    {"userops_automation_plan", call_automation_plan, {.s = {"2026-05-01T10:00:00+08:00"}},
     S({ENGINE, "engine", 0}, {STR, "now", 1}, {ARROW_OUT, "out_array", 0}), 3, 1, 0},
    {"userops_audience_eval", call_audience_eval, {.s = {"orders >= 0"}},
     S({ENGINE, "engine", 0}, {STR, "expression", 1}, {OUT, "out", 0}), 3, 0, 0},
    {"userops_quote_evaluate", call_quote_evaluate, {.s = {CART}, .user = {&U_M1}},
     S({ENGINE, "engine", 0}, {STR, "cart_json", 1}, {USER, "user", 0}, {OUT, "out", 0}), 4, 0, 0},
    {"userops_quote_commit", call_quote_commit, {.s = {"order-2"}},
     S({ENGINE, "engine", 0}, {QUOTE, "quote", 0}, {STR, "key", 1}, {OPT_OUT, "receipt_json", 0}), 4, 1, 1},
    {"userops_quote_cancel", call_quote_cancel, {.s = {"order-1"}},
     S({ENGINE, "engine", 0}, {STR, "key", 1}, {OPT_OUT, "receipt_json", 0}), 3, 1, 1},
    {"userops_engine_ingest_json", call_ingest_json,
     {.s = {"{\"kind\": \"activity\", \"key\": \"a-new\", \"time\": \"2026-03-01T10:00:00Z\", \"type\": \"login\","
            " \"source\": {\"platform\": \"app\", \"program\": \"b\"}, \"user\": {\"kind\": \"member_no\", \"value\": \"M1\"}}"}},
     S({ENGINE, "engine", 0}, {STR, "event_json", 1}, {OUT, "receipt_json", 0}), 3, 1, 1},
    {"userops_engine_call", call_engine_call, {.s = {"stats", "{}"}},
     S({ENGINE, "engine", 0}, {STR, "method", 1}, {STR, "args_json", 1}, {OUT, "result_json", 0}), 4, 0, 1},
    {"userops_engine_call_arrow", call_engine_call_arrow, {.s = {"channel_effectiveness", "{\"by\": \"rule\"}"}},
     S({ENGINE, "engine", 0}, {STR, "method", 1}, {STR, "args_json", 1}, {ARROW_OUT, "out_array", 0}), 4, 0, 0},
    {"userops_table_call", call_table_call,
     {.s = {"cohort_retention", "{\"user\": [1], \"time\": [\"2026-01-05T00:00:00Z\"], \"utc_offset_seconds\": 0}"}},
     S({STR, "method", 1}, {STR, "args_json", 1}, {OUT, "result_json", 0}), 3, 0, 1},
    {"userops_audience_len", call_audience_len, {0}, S({AUDIENCE, "userops_audience", 0}), 1, 0, 0},
    {"userops_audience_oneids", call_audience_oneids, {.offset = 0},
     S({AUDIENCE, "userops_audience", 0}, {OFFSET, "offset", 0}, {OUT, "buf", 0}, {OUT, "written", 0}), 4, 0, 0},
    {"userops_audience_to_arrow", call_audience_to_arrow, {0},
     S({AUDIENCE, "userops_audience", 0}, {ARROW_OUT, "out_array", 0}), 2, 0, 0},
    {"userops_quote_subtotal", call_quote_subtotal, {0}, S({QUOTE, "quote", 0}), 1, 0, 0},
    {"userops_quote_discount", call_quote_discount, {0}, S({QUOTE, "quote", 0}), 1, 0, 0},
    {"userops_quote_total", call_quote_total, {0}, S({QUOTE, "quote", 0}), 1, 0, 0},
    {"userops_quote_applied_json", call_quote_applied, {0}, S({QUOTE, "quote", 0}), 1, 0, 0},
    {"userops_quote_not_applied_json", call_quote_not_applied, {0}, S({QUOTE, "quote", 0}), 1, 0, 0},
    {"userops_quote_json", call_quote_json, {0}, S({QUOTE, "quote", 0}), 1, 0, 0},
    {"userops_identity_resolve_arrow", call_resolve_arrow, {.s = {"member_no"}},
     S({ENGINE, "engine", 0}, {STR, "kind", 1}, {ARROW_IN, "values", 0}, {ARROW_OUT, "out_array", 0}), 4, 0, 0},
    {"userops_engine_open", call_open, {.s = {db_path}},
     S({STR, "path", 1}, {OUT, "engine", 0}), 2, 0, 0},
};

/* The arguments with slot `k` set to bad value number `v`; returns 0 when the kind has no
 * value `v`. `*must_fail` says whether the call must be refused, `*expect` the status it must
 * return (0: any error status). */
static userops_user BAD_USERS[] = {
    {NULL, NULL, 0},              /* neither an identifier nor a OneID */
    {NULL, NULL, UINT64_MAX},     /* a OneID never handed out */
    {"phone", NULL, 0},           /* a kind without a value */
    {NULL, "x", 0},               /* without a kind it names a OneID, and 0 is none */
    {BAD_UTF8, "x", 0},
    {"member_no", BAD_UTF8, 0},
    {"phone", "12", 0},           /* not a phone number */
    {"", "", 0},
    {"no-such-kind", "x", 0},
};
static const int BAD_USER_STATUS[] = {UOPS_INVALID_ARGUMENT, 0, UOPS_NULL_POINTER, UOPS_INVALID_ARGUMENT,
                                      UOPS_INVALID_UTF8, UOPS_INVALID_UTF8, UOPS_INVALID_IDENTIFIER, 0,
                                      UOPS_INVALID_IDENTIFIER};
static const char *NULL_IN_ARRAY[] = {NULL, NULL};
static const char *UTF8_IN_ARRAY[] = {BAD_UTF8, BAD_UTF8};
static const char *EMPTY_IN_ARRAY[] = {"", ""};
static int fake_handle;
/* A 1 MiB string, "gmv > 1 OR gmv > 1 OR ...": a name or key nobody would give, JSON that is
   not JSON, and as an audience expression a chain of some 95,000 ORs (which once overflowed the
   stack: a chain is one node now, whatever its length). */
static char HUGE_STR[1 << 20];

static int bad_value(const struct function *f, int k, int v, struct args *a, int *must_fail, int *expect,
                     const char **label) {
    const struct slot *s = &f->slots[k];
    /* Which string argument (or out-parameter) this slot is: the count of earlier ones. */
    int si = 0, oi = 0, ui = 0, ai = 0;
    for (int j = 0; j < k; j++) {
        enum slot_kind kj = f->slots[j].kind;
        si += kj == STR || kj == OPT_STR;
        oi += kj == OUT || kj == OPT_OUT;
        ui += kj == USER;
        ai += kj == STRS;
    }
    *a = f->base;
    *must_fail = 1;
    *expect = 0;
    switch (s->kind) {
    case ENGINE:
        if (v == 0) { a->engine = NULL; *expect = UOPS_NULL_POINTER; *label = "NULL"; return 1; }
        if (v == 1) { a->engine = (userops_engine *)&fake_handle; *expect = UOPS_INVALID_HANDLE; *label = "not a handle"; return 1; }
        return 0;
    case STR:
    case OPT_STR:
        if (v == 0) {
            a->s[si] = NULL;
            *label = "NULL";
            if (s->kind == OPT_STR) { *must_fail = 0; return 1; }
            *expect = UOPS_NULL_POINTER;
            return 1;
        }
        if (v == 1) { a->s[si] = BAD_UTF8; *expect = UOPS_INVALID_UTF8; *label = "not UTF-8"; return 1; }
        if (v == 2) { a->s[si] = ""; *must_fail = s->nonempty; *label = "empty"; return 1; }
        if (v == 3) { a->s[si] = HUGE_STR; *must_fail = 0; *label = "1 MiB"; return 1; }
        return 0;
    case STRS:
        if (v == 0) { a->strs[ai] = NULL; *expect = UOPS_NULL_POINTER; *label = "NULL array"; return 1; }
        if (v == 1) { a->strs[ai] = NULL_IN_ARRAY; *expect = UOPS_NULL_POINTER; *label = "NULL element"; return 1; }
        if (v == 2) { a->strs[ai] = UTF8_IN_ARRAY; *expect = UOPS_INVALID_UTF8; *label = "element not UTF-8"; return 1; }
        if (v == 3) { a->strs[ai] = EMPTY_IN_ARRAY; *label = "empty element"; return 1; }
        if (v == 4) { a->n = 0; *label = "no elements"; return 1; }
        return 0;
    case USER:
        if (v == 0) {
            a->user[ui] = NULL;
            *label = "NULL";
            /* The customer of a quote is optional: NULL is an anonymous cart. */
            if (f->call == call_quote_evaluate) { *must_fail = 0; return 1; }
            *expect = UOPS_NULL_POINTER;
            return 1;
        }
        if (v - 1 < (int)(sizeof BAD_USERS / sizeof BAD_USERS[0])) {
            a->user[ui] = &BAD_USERS[v - 1];
            *expect = BAD_USER_STATUS[v - 1];
            *label = "bad user";
            return 1;
        }
        return 0;
    case POINTS: {
        static const int64_t bad[] = {0, -1, INT64_MIN, INT64_MAX};
        if (v < 4) { a->points = bad[v]; *label = "out of range"; return 1; }
        return 0;
    }
    case COUNT32:
        /* Any churn threshold is valid (0: the default); the call must not fail badly. */
        if (v == 0) { a->count = UINT32_MAX; *must_fail = 0; *label = "UINT32_MAX"; return 1; }
        return 0;
    case OUT:
    case OPT_OUT:
        if (v == 0) {
            a->out_null[oi] = 1;
            *label = "NULL";
            if (s->kind == OPT_OUT) { *must_fail = 0; return 1; }
            *expect = UOPS_NULL_POINTER;
            return 1;
        }
        return 0;
    case ARROW_OUT:
        if (v == 0) { a->arrow_null = 1; *expect = UOPS_NULL_POINTER; *label = "NULL"; return 1; }
        return 0;
    case QUOTE:
        if (v == 0) { a->quote = NULL; *expect = UOPS_NULL_POINTER; *label = "NULL"; return 1; }
        if (v == 1) { a->quote = (userops_quote *)&fake_handle; *expect = UOPS_INVALID_HANDLE; *label = "not a handle"; return 1; }
        if (v == 2) { a->quote = (userops_quote *)audience; *expect = UOPS_INVALID_HANDLE; *label = "an audience"; return 1; }
        return 0;
    case AUDIENCE:
        if (v == 0) { a->audience = NULL; *expect = UOPS_NULL_POINTER; *label = "NULL"; return 1; }
        if (v == 1) { a->audience = (userops_audience *)&fake_handle; *expect = UOPS_INVALID_HANDLE; *label = "not a handle"; return 1; }
        if (v == 2) { a->audience = (userops_audience *)quote; *expect = UOPS_INVALID_HANDLE; *label = "a quote"; return 1; }
        return 0;
    case OFFSET:
        if (v == 0) { a->offset = UINT64_MAX; *must_fail = 0; *label = "UINT64_MAX"; return 1; }
        return 0;
    case ARROW_IN:
        if (v == 0) { a->arrow_in_null = 1; *expect = UOPS_NULL_POINTER; *label = "NULL"; return 1; }
        return 0;
    }
    return 0;
}

/* A status the header defines (its stable name exists). */
static int known(int status) {
    return userops_status_name(status) != NULL;
}

static void release_outs(struct outs *o) {
    for (int i = 0; i < 3; i++) userops_string_free(o->str[i]);
    if (o->array.release) o->array.release(&o->array);
    if (o->schema.release) o->schema.release(&o->schema);
    userops_quote_free(o->quote);
    userops_audience_free(o->audience);
    memset(o, 0, sizeof *o);
}

/* Whether a message names the argument (`user` for `user kind is NULL` too). */
static int names(const char *message, const char *slot) {
    return strstr(message, slot) != NULL;
}

int main(void) {
    snprintf(db_path, sizeof db_path, "/tmp/userops-arguments-%d.db", (int)getpid());
    for (size_t i = 0; i + 1 < sizeof HUGE_STR; i++) HUGE_STR[i] = "gmv > 1 OR "[i % 11];
    memcpy(HUGE_STR + sizeof HUGE_STR - 12, "gmv > 1", 8);
    for (size_t fi = 0; fi < sizeof FUNCTIONS / sizeof FUNCTIONS[0]; fi++) {
        struct function *f = &FUNCTIONS[fi];
        userops_engine *e = setup();
        /* the baseline works */
        {
            struct args a = f->base;
            struct outs o;
            memset(&o, 0, sizeof o);
            if (a.engine == NULL && f->slots[0].kind == ENGINE) a.engine = e;
            a.quote = quote;
            a.audience = audience;
            int s = f->call(&a, &o);
            CHECK(s == UOPS_OK, "%s baseline: %d %s", f->name, s, userops_last_error_message());
            release_outs(&o);
            teardown(e);
            unlink(db_path);
            e = setup();
        }
        char *before = digest(e);
        for (int k = 0; k < f->n_slots; k++) {
            for (int v = 0;; v++) {
                struct args a;
                struct outs o;
                int must_fail, expect;
                const char *label = "";
                if (!bad_value(f, k, v, &a, &must_fail, &expect, &label)) break;
                if (f->slots[k].kind != ENGINE) a.engine = e;
                if (f->slots[k].kind != QUOTE) a.quote = quote;
                if (f->slots[k].kind != AUDIENCE) a.audience = audience;
                memset(&o, 0, sizeof o);
                for (int i = 0; i < 3; i++) o.str[i] = (char *)0x1; /* must be overwritten with NULL */
                int status = f->call(&a, &o);
                const char *message = userops_last_error_message();
                checked++;
                CHECK(status != UOPS_INTERNAL && known(status), "%s(%s=%s): status %d: %s", f->name,
                      f->slots[k].name, label, status, message);
                if (status != UOPS_OK) {
                    CHECK(message[0] != 0, "%s(%s=%s): no message", f->name, f->slots[k].name, label);
                    if (expect != 0)
                        CHECK(status == expect, "%s(%s=%s): status %d, expected %d: %s", f->name, f->slots[k].name,
                              label, status, expect, message);
                    if (expect == UOPS_NULL_POINTER || expect == UOPS_INVALID_UTF8)
                        CHECK(names(message, f->slots[k].name), "%s(%s=%s): the message does not name it: %s",
                              f->name, f->slots[k].name, label, message);
                    for (int i = 0; i < 3; i++) {
                        /* A string out-parameter the call was given is NULL after an error. */
                        if ((f->str_outs >> i & 1) && !a.out_null[i] && status != UOPS_NULL_POINTER)
                            CHECK(o.str[i] == NULL, "%s(%s=%s): out-parameter %d not NULL after an error", f->name,
                                  f->slots[k].name, label, i);
                        if (o.str[i] == (char *)0x1) o.str[i] = NULL;
                    }
                    char *after = digest(e);
                    CHECK(strcmp(before, after) == 0, "%s(%s=%s): refused but changed the state", f->name,
                          f->slots[k].name, label);
                    free(after);
                } else {
                    CHECK(!must_fail, "%s(%s=%s): accepted", f->name, f->slots[k].name, label);
                    for (int i = 0; i < 3; i++)
                        if (o.str[i] == (char *)0x1) o.str[i] = NULL;
                }
                release_outs(&o);
                unlink(db_path);
                if (status == UOPS_OK && f->mutates) {
                    free(before);
                    teardown(e);
                    e = setup();
                    before = digest(e);
                }
            }
        }
        free(before);
        teardown(e);
    }
    unlink(db_path);
    printf("test_arguments: %d calls with a bad argument, %d problems\n", checked, failures);
    return failures == 0 ? 0 : 1;
}
