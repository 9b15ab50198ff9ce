/* The C ABI from plain C: ingest, call, errors, null pointers, bad UTF-8, double free. */
#define _DEFAULT_SOURCE
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "userops.h"

static const char *IDENTIFY =
    "{\"kind\": \"identify\", \"key\": \"jd-7781\", \"time\": \"2026-01-05T10:00:00+08:00\","
    " \"source\": {\"platform\": \"jd\", \"program\": \"brand-a\"},"
    " \"ids\": [{\"kind\": \"phone\", \"value\": \"13800138000\"}, {\"kind\": \"device_id\", \"value\": \"a9f3\"}]}";

struct job { userops_engine *engine; int thread; };

static void *worker(void *arg) {
    struct job *j = (struct job *)arg;
    userops_engine *e = j->engine;
    for (int i = 0; i < 200; i++) {
        char ev[512];
        snprintf(ev, sizeof ev,
                 "{\"kind\": \"register\", \"key\": \"t%d-%d\", \"time\": \"2026-01-05T10:00:00Z\","
                 " \"source\": {\"platform\": \"app\", \"program\": \"b\"},"
                 " \"user\": {\"kind\": \"member_no\", \"value\": \"M%d-%d\"}}",
                 j->thread, i, j->thread, i);
        char *r = NULL;
        assert(userops_engine_ingest_json(e, ev, &r) == UOPS_OK);
        userops_string_free(r);
        if (i % 10 == 0) {
            /* the typed functions from several threads: link, earn, balance, quote */
            char key[32], member[32], device[32];
            snprintf(key, sizeof key, "l%d-%d", j->thread, i);
            snprintf(member, sizeof member, "M%d-%d", j->thread, i);
            snprintf(device, sizeof device, "d%d-%d", j->thread, i);
            const char *kinds[] = {"member_no", "device_id"}, *values[] = {member, device};
            userops_link_result link;
            assert(userops_identity_link(e, key, "2026-01-05T10:00:00Z", "app", "b", kinds, values, 2, &link) == UOPS_OK);
            userops_user u = {"device_id", device, 0};
            userops_posting p;
            assert(userops_loyalty_earn(e, &u, "brand-t", 10, key, NULL, 0, &p) == UOPS_OK && p.balance == 10);
            int64_t balance = 0;
            userops_user by_id = {NULL, NULL, link.oneid};
            assert(userops_loyalty_balance(e, &by_id, "brand-t", &balance) == UOPS_OK && balance == 10);
            userops_quote *q = NULL;
            assert(userops_quote_evaluate(e, "{\"time\": \"2026-03-01T10:00:00Z\", \"lines\":"
                " [{\"sku\": \"a\", \"price\": \"1.00\", \"qty\": 1}]}", &by_id, &q) == UOPS_OK);
            assert(strcmp(userops_quote_total(q), "1.00") == 0);
            userops_quote_free(q);
        }
    }
    return NULL;
}

/* ---- Arrow C Data Interface helpers (consumer side) ---- */

/* The index of the column `name` in an exported struct array, or -1. */
static int column(const struct ArrowSchema *schema, const char *name) {
    assert(strcmp(schema->format, "+s") == 0);
    for (int64_t i = 0; i < schema->n_children; i++)
        if (strcmp(schema->children[i]->name, name) == 0) return (int)i;
    return -1;
}

static const uint64_t *u64s(const struct ArrowArray *a, const struct ArrowSchema *s, const char *name) {
    int c = column(s, name);
    assert(c >= 0 && strcmp(s->children[c]->format, "L") == 0);
    return (const uint64_t *)a->children[c]->buffers[1] + a->children[c]->offset;
}

static const int64_t *i64s(const struct ArrowArray *a, const struct ArrowSchema *s, const char *name) {
    int c = column(s, name);
    assert(c >= 0 && strcmp(s->children[c]->format, "l") == 0);
    return (const int64_t *)a->children[c]->buffers[1] + a->children[c]->offset;
}

/* Row `row` of a utf8 column copied into buf. */
static const char *str_at(const struct ArrowArray *a, const struct ArrowSchema *s, const char *name,
                          int64_t row, char *buf, size_t cap) {
    int c = column(s, name);
    assert(c >= 0 && strcmp(s->children[c]->format, "u") == 0);
    const struct ArrowArray *col = a->children[c];
    const int32_t *off = (const int32_t *)col->buffers[1] + col->offset;
    const char *data = (const char *)col->buffers[2];
    size_t n = (size_t)(off[row + 1] - off[row]);
    assert(n < cap);
    memcpy(buf, data + off[row], n);
    buf[n] = 0;
    return buf;
}

/* Whether row `row` of a column is null. */
static int is_null(const struct ArrowArray *a, const struct ArrowSchema *s, const char *name, int64_t row) {
    int c = column(s, name);
    assert(c >= 0);
    const struct ArrowArray *col = a->children[c];
    const uint8_t *valid = (const uint8_t *)col->buffers[0];
    if (valid == NULL) return 0;
    int64_t i = row + col->offset;
    return !((valid[i / 8] >> (i % 8)) & 1);
}

static void release(struct ArrowArray *a, struct ArrowSchema *s) {
    assert(a->release != NULL && s->release != NULL);
    a->release(a);
    s->release(s);
    assert(a->release == NULL && s->release == NULL);
}

/* A utf8 array built by hand, the way a producer other than userops would export one. */
static int produced_released = 0;
static const char PRODUCED_DATA[] = "M1M9M404";
static const int32_t PRODUCED_OFFSETS[] = {0, 2, 4, 8};
static const void *PRODUCED_BUFFERS[] = {NULL, PRODUCED_OFFSETS, PRODUCED_DATA};
static void produced_release_array(struct ArrowArray *a) { produced_released++; a->release = NULL; }
static void produced_release_schema(struct ArrowSchema *s) { produced_released++; s->release = NULL; }

/* ---- the shared scenario through the typed functions: ingest, merge, earn/spend, audience,
 *      quote, with Arrow exports consumed and released ---- */
static void typed_scenario(void) {
    userops_engine *e = userops_engine_new();
    char *out = NULL;

    /* ingest: two records linked into one person through a shared device */
    const char *k1[] = {"phone", "device_id"}, *v1[] = {"13800138000", "a9f3"};
    const char *k2[] = {"member_no", "device_id"}, *v2[] = {"M1", "a9f3"};
    const char *k3[] = {"member_no"}, *v3[] = {"M2"};
    userops_link_result link;
    assert(userops_identity_link(e, "jd-1", "2026-01-05T10:00:00+08:00", "jd", "brand-a", k1, v1, 2, &link) == UOPS_OK);
    assert(link.oneid == 1 && link.duplicate == 0 && link.seq == 1);
    assert(userops_identity_link(e, "app-1", "2026-01-06T09:00:00+08:00", "app", "brand-a", k2, v2, 2, &link) == UOPS_OK);
    assert(link.oneid == 1);
    assert(userops_identity_link(e, "app-1", "2026-01-06T09:00:00+08:00", "app", "brand-a", k2, v2, 2, &link) == UOPS_OK);
    assert(link.duplicate == 1);
    assert(userops_identity_link(e, "pos-1", "2026-01-07T09:00:00+08:00", "pos", "store-1", k3, v3, 1, &link) == UOPS_OK);
    assert(link.oneid == 2);
    const char *bad_k[] = {"email"}, *bad_v[] = {"nope"};
    assert(userops_identity_link(e, "bad-1", "2026-01-07T09:00:00+08:00", "pos", "s", bad_k, bad_v, 1, NULL) == UOPS_INVALID_EVENT);
    assert(strstr(userops_last_error_message(), "ids[0]") != NULL);
    assert(userops_identity_link(e, "bad-2", "2026-01-07T09:00:00+08:00", "pos", "s", k1, NULL, 2, NULL) == UOPS_NULL_POINTER);

    uint64_t oneid = 99;
    assert(userops_identity_resolve(e, "phone", "+86 138-0013-8000", &oneid) == UOPS_OK && oneid == 1);
    assert(userops_identity_resolve(e, "member_no", "M404", &oneid) == UOPS_OK && oneid == 0);
    assert(userops_identity_resolve(e, "phone", "12", &oneid) == UOPS_INVALID_IDENTIFIER);
    assert(userops_identity_resolve(e, "phone", "13800138000", NULL) == UOPS_NULL_POINTER);
    assert(userops_identity_explain(e, "phone", "13800138000", "member_no", "M1", &out) == UOPS_OK);
    assert(strstr(out, "\"joined\":true") != NULL);
    userops_string_free(out);
    assert(userops_identity_explain(e, "phone", "13800138000", "member_no", "M2", &out) == UOPS_OK);
    assert(strstr(out, "\"joined\":false") != NULL);
    userops_string_free(out);

    /* merge by hand: M2 joins person 1 */
    userops_user m1 = {"member_no", "M1", 0}, m2 = {"member_no", "M2", 0}, p1 = {NULL, NULL, 1};
    uint64_t survivor = 0;
    assert(userops_identity_merge(e, &m1, &m2, "ops", "same customer", "2026-01-08T00:00:00Z", &survivor, &out) == UOPS_OK);
    assert(survivor == 1 && strstr(out, "\"absorbed\":[2]") != NULL);
    userops_string_free(out);
    assert(userops_identity_resolve(e, "member_no", "M2", &oneid) == UOPS_OK && oneid == 1);
    out = (char *)0x1;
    assert(userops_identity_merge(e, &m1, &p1, "ops", "again", NULL, NULL, &out) == UOPS_INVALID_ARGUMENT);
    assert(out == NULL);
    userops_user nobody = {NULL, NULL, 0};
    assert(userops_identity_merge(e, &m1, &nobody, "ops", "x", NULL, NULL, NULL) == UOPS_INVALID_ARGUMENT);

    /* loyalty: earn, spend, pending post / void, balance, statement as Arrow */
    assert(userops_engine_call(e, "create_program", "{\"program\": {\"id\": \"brand-a\", \"tiers\": {"
        "\"basis\": \"spend\", \"window\": \"rolling_12_months\", \"levels\": ["
        "{\"name\": \"silver\", \"threshold\": \"0\"}, {\"name\": \"gold\", \"threshold\": \"1000\"}]}}}", &out) == UOPS_OK);
    userops_string_free(out);
    userops_posting posting;
    assert(userops_loyalty_earn(e, &m1, "brand-a", 100, "o1", "2026-01-10T10:00:00+08:00", 0, &posting) == UOPS_OK);
    assert(posting.points == 100 && posting.balance == 100 && posting.pending == 0 && posting.duplicate == 0);
    uint64_t first_transfer = posting.transfer;
    assert(first_transfer >= 1);
    assert(userops_loyalty_earn(e, &m1, "brand-a", 100, "o1", "2026-01-10T10:00:00+08:00", 0, &posting) == UOPS_OK);
    assert(posting.duplicate == 1 && posting.balance == 100 && posting.transfer == first_transfer);
    assert(userops_loyalty_earn(e, &m1, "brand-a", 7, "o1", NULL, 0, &posting) == UOPS_LEDGER_DUPLICATE_KEY);
    assert(userops_loyalty_spend(e, &p1, "brand-a", 30, "s1", "2026-01-11T10:00:00+08:00", &posting) == UOPS_OK);
    assert(posting.balance == 70);
    assert(userops_loyalty_spend(e, &m2, "brand-a", 71, "s2", NULL, &posting) == UOPS_INSUFFICIENT_POINTS);
    assert(userops_loyalty_earn(e, &m1, "brand-a", 0, "o0", NULL, 0, NULL) == UOPS_INVALID_AMOUNT);
    assert(userops_loyalty_earn(e, &m1, "brand-a", 50, "o2", "2026-01-12T10:00:00+08:00", 1, &posting) == UOPS_OK);
    assert(posting.pending == 1 && posting.balance == 70);
    assert(userops_loyalty_post(e, "o2", "2026-01-13T10:00:00+08:00", &posting) == UOPS_OK);
    assert(posting.balance == 120);
    assert(userops_loyalty_earn(e, &m1, "brand-a", 10, "o3", "2026-01-13T11:00:00+08:00", 1, NULL) == UOPS_OK);
    assert(userops_loyalty_void(e, "o3", "2026-01-13T12:00:00+08:00", &posting) == UOPS_OK);
    assert(userops_loyalty_void(e, "o3", NULL, &posting) == UOPS_OK && posting.duplicate == 1);
    assert(userops_loyalty_post(e, "o404", NULL, &posting) == UOPS_NOT_PENDING);
    assert(userops_loyalty_post(e, "o1", NULL, &posting) == UOPS_NOT_PENDING); /* posted at once */
    assert(userops_loyalty_earn(e, &m1, "brand-a", 5, "o4", "yesterday", 0, NULL) == UOPS_INVALID_ARGUMENT);
    assert(strstr(userops_last_error_message(), "time") != NULL);
    int64_t balance = -1;
    assert(userops_loyalty_balance(e, &m2, "brand-a", &balance) == UOPS_OK && balance == 120);
    assert(userops_loyalty_balance(e, &m1, "brand-zz", &balance) == UOPS_NOT_FOUND);
    assert(userops_loyalty_balance(e, &m1, "brand-a", NULL) == UOPS_NULL_POINTER);

    struct ArrowArray arr;
    struct ArrowSchema sch;
    assert(userops_loyalty_statement(e, &m1, "brand-a", &arr, &sch) == UOPS_OK);
    assert(arr.length == 6 && arr.n_children == 11 && sch.n_children == 11);
    {
        char buf[64];
        const int64_t *amount = i64s(&arr, &sch, "amount"), *bal = i64s(&arr, &sch, "balance");
        const uint64_t *ids = u64s(&arr, &sch, "id");
        int64_t sum = 0;
        for (int64_t i = 0; i < arr.length; i++) {
            if (i > 0) assert(ids[i] > ids[i - 1]);
            if (strcmp(str_at(&arr, &sch, "kind", i, buf, sizeof buf), "pending_earn") != 0
                && strcmp(buf, "void") != 0)
                sum += amount[i];
        }
        assert(sum == 120 && bal[arr.length - 1] == 120);
        assert(strcmp(str_at(&arr, &sch, "kind", 0, buf, sizeof buf), "earn") == 0);
        assert(strcmp(str_at(&arr, &sch, "key", 1, buf, sizeof buf), "s1") == 0);
        assert(strcmp(sch.children[column(&sch, "time")]->format, "tsm:UTC") == 0);
    }
    release(&arr, &sch);
    assert(userops_loyalty_statement(e, &m1, "brand-zz", &arr, &sch) == UOPS_NOT_FOUND);
    assert(arr.release == NULL && sch.release == NULL); /* nothing to release on error */
    assert(userops_loyalty_statement(e, &m1, "brand-a", NULL, &sch) == UOPS_NULL_POINTER);

    /* tiers: spend-based ladder */
    assert(userops_engine_call(e, "record_spend", "{\"user\": {\"oneid\": 1}, \"program\": \"brand-a\","
        " \"amount\": \"1200.00\", \"key\": \"p1\", \"time\": \"2026-01-14T10:00:00+08:00\"}", &out) == UOPS_OK);
    userops_string_free(out);
    char *tier = NULL, *view = NULL;
    assert(userops_loyalty_tier(e, &m1, "brand-a", NULL, &tier, &view) == UOPS_OK);
    assert(strcmp(tier, "gold") == 0 && strstr(view, "\"spend_total\":\"1200.00\"") != NULL);
    userops_string_free(tier);
    userops_string_free(view);
    userops_tier_evaluation ev;
    assert(userops_loyalty_evaluate_tiers(e, "2027-06-01T00:00:00+08:00", &ev) == UOPS_OK);
    assert(ev.members == 1 && ev.downgraded == 1);
    assert(userops_loyalty_evaluate_tiers(e, NULL, &ev) == UOPS_NULL_POINTER);
    assert(userops_loyalty_tier(e, &m1, "brand-a", NULL, &tier, NULL) == UOPS_OK);
    assert(strcmp(tier, "silver") == 0);
    userops_string_free(tier);

    /* audience: members through the handle and as Arrow */
    assert(userops_engine_call(e, "set_tags", "{\"kind\": \"member_no\", \"users\": [\"M1\", \"M9\"], \"tags\": ["
        "{\"name\": \"age\", \"type\": \"number\", \"values\": [45, 52]}]}", &out) == UOPS_OK);
    userops_string_free(out);
    userops_audience *aud = NULL;
    assert(userops_audience_eval(e, "age > 40", &aud) == UOPS_OK && userops_audience_len(aud) == 2);
    assert(userops_audience_to_arrow(aud, &arr, &sch) == UOPS_OK);
    userops_audience_free(aud); /* the export is a copy: still valid */
    assert(arr.length == 2 && strcmp(sch.children[0]->name, "oneid") == 0);
    assert(u64s(&arr, &sch, "oneid")[0] == 1 && u64s(&arr, &sch, "oneid")[1] == 3);
    release(&arr, &sch);
    assert(userops_audience_to_arrow(aud, &arr, &sch) == UOPS_INVALID_HANDLE);
    assert(arr.release == NULL);
    /* a handle of another kind is refused, not misread */
    assert(userops_audience_to_arrow((userops_audience *)e, &arr, &sch) == UOPS_INVALID_HANDLE);

    /* bulk resolve: an Arrow array in, an Arrow array out */
    {
        struct ArrowArray in = {3, 0, 0, 3, 0, PRODUCED_BUFFERS, NULL, NULL, produced_release_array, NULL};
        struct ArrowSchema in_s = {"u", "member_no", NULL, 0, 0, NULL, NULL, produced_release_schema, NULL};
        assert(userops_identity_resolve_arrow(e, "member_no", &in, &in_s, &arr, &sch) == UOPS_OK);
        assert(produced_released == 2 && in.release == NULL && in_s.release == NULL);
        assert(arr.length == 3 && arr.children[0]->null_count == 1);
        assert(u64s(&arr, &sch, "oneid")[0] == 1 && u64s(&arr, &sch, "oneid")[1] == 3);
        assert(is_null(&arr, &sch, "oneid", 2) && !is_null(&arr, &sch, "oneid", 0));
        release(&arr, &sch);
        struct ArrowArray in2 = {3, 0, 0, 3, 0, PRODUCED_BUFFERS, NULL, NULL, produced_release_array, NULL};
        struct ArrowSchema in2_s = {"u", "phone", NULL, 0, 0, NULL, NULL, produced_release_schema, NULL};
        assert(userops_identity_resolve_arrow(e, "phone", &in2, &in2_s, &arr, &sch) == UOPS_INVALID_IDENTIFIER);
        assert(produced_released == 4 && arr.release == NULL); /* input released on error too */
        assert(strstr(userops_last_error_message(), "values[0]") != NULL);
        struct ArrowArray in3 = {3, 0, 0, 3, 0, PRODUCED_BUFFERS, NULL, NULL, produced_release_array, NULL};
        assert(userops_identity_resolve_arrow(e, "member_no", &in3, NULL, &arr, &sch) == UOPS_NULL_POINTER);
        assert(produced_released == 5 && in3.release == NULL); /* what was passed is released */
        static const int64_t numbers[] = {1, 2, 3};
        static const void *number_buffers[] = {NULL, numbers};
        struct ArrowArray in4 = {3, 0, 0, 2, 0, number_buffers, NULL, NULL, produced_release_array, NULL};
        struct ArrowSchema in4_s = {"l", "not strings", NULL, 0, 0, NULL, NULL, produced_release_schema, NULL};
        assert(userops_identity_resolve_arrow(e, "member_no", &in4, &in4_s, &arr, &sch) == UOPS_INVALID_ARGUMENT);
        assert(produced_released == 7);
    }

    /* quote: evaluate, read, commit, commit again, cancel */
    assert(userops_engine_call(e, "add_promotion", "{\"promotion\": {\"id\": \"p300\", \"action\":"
        " {\"type\": \"threshold_discount\", \"threshold\": \"300\", \"off\": \"50\"}}}", &out) == UOPS_OK);
    userops_string_free(out);
    assert(userops_engine_call(e, "add_promotion", "{\"promotion\": {\"id\": \"p1000\", \"action\":"
        " {\"type\": \"threshold_discount\", \"threshold\": \"1000\", \"off\": \"200\"}}}", &out) == UOPS_OK);
    userops_string_free(out);
    const char *cart = "{\"time\": \"2026-03-01T10:00:00+08:00\","
        " \"lines\": [{\"sku\": \"a\", \"category\": \"x\", \"price\": \"120.00\", \"qty\": 3}]}";
    userops_quote *q = NULL;
    assert(userops_quote_evaluate(e, cart, &m1, &q) == UOPS_OK && q != NULL);
    assert(strcmp(userops_quote_subtotal(q), "360.00") == 0);
    assert(strcmp(userops_quote_discount(q), "50.00") == 0);
    assert(strcmp(userops_quote_total(q), "310.00") == 0);
    assert(strstr(userops_quote_applied_json(q), "\"id\":\"p300\"") != NULL);
    assert(strstr(userops_quote_not_applied_json(q), "\"id\":\"p1000\"") != NULL);
    assert(strstr(userops_quote_json(q), "\"user\":1") != NULL);
    assert(userops_quote_commit(e, q, "order-1", &out) == UOPS_OK);
    assert(strstr(out, "\"state\":\"committed\"") != NULL && strstr(out, "\"duplicate\":false") != NULL);
    userops_string_free(out);
    assert(userops_quote_commit(e, q, "order-1", &out) == UOPS_OK);
    assert(strstr(out, "\"duplicate\":true") != NULL);
    userops_string_free(out);
    assert(userops_engine_call(e, "promotion_usage", "{\"id\": \"p300\"}", &out) == UOPS_OK);
    assert(strstr(out, "\"orders\":1") != NULL);
    userops_string_free(out);
    assert(userops_quote_cancel(e, "order-1", &out) == UOPS_OK);
    assert(strstr(out, "\"state\":\"cancelled\"") != NULL);
    userops_string_free(out);
    assert(userops_quote_cancel(e, "order-404", NULL) == UOPS_NOT_FOUND);
    userops_quote_free(q);
    userops_quote_free(q);
    assert(userops_last_error_code() == UOPS_INVALID_HANDLE);
    assert(userops_quote_total(q) == NULL && userops_last_error_code() == UOPS_INVALID_HANDLE);
    assert(userops_quote_commit(e, q, "order-2", NULL) == UOPS_INVALID_HANDLE);
    q = (userops_quote *)0x1;
    assert(userops_quote_evaluate(e, "{\"time\": \"2026-03-01T10:00:00+08:00\", \"lines\": [{\"sku\": \"a\","
        " \"price\": \"abc\", \"qty\": 1}]}", NULL, &q) == UOPS_INVALID_ARGUMENT);
    assert(q == NULL && strstr(userops_last_error_message(), "cart.lines[0]") != NULL);
    assert(userops_quote_evaluate(e, "{not json", NULL, &q) == UOPS_INVALID_ARGUMENT);
    assert(userops_quote_evaluate(e, cart, NULL, NULL) == UOPS_NULL_POINTER);

    /* lifecycle: report as JSON, stage table as Arrow */
    assert(userops_engine_ingest_json(e, "{\"kind\": \"register\", \"key\": \"r1\", \"time\": \"2026-01-05T10:00:00+08:00\","
        " \"source\": {\"platform\": \"app\", \"program\": \"brand-a\"}, \"user\": {\"kind\": \"member_no\", \"value\": \"M1\"}}", &out) == UOPS_OK);
    userops_string_free(out);
    assert(userops_engine_ingest_json(e, "{\"kind\": \"activity\", \"key\": \"a1\", \"time\": \"2026-02-03T10:00:00+08:00\","
        " \"source\": {\"platform\": \"app\", \"program\": \"brand-a\"}, \"user\": {\"kind\": \"member_no\", \"value\": \"M1\"}, \"type\": \"login\"}", &out) == UOPS_OK);
    userops_string_free(out);
    assert(userops_lifecycle_report(e, 0, NULL, &out) == UOPS_OK);
    assert(strstr(out, "\"2026-02\"") != NULL);
    userops_string_free(out);
    assert(userops_lifecycle_report(e, 0, "not-a-period", &out) == UOPS_INVALID_ARGUMENT);
    assert(userops_lifecycle_stages(e, "2026-02", 0, &arr, &sch) == UOPS_OK);
    {
        char buf[32];
        assert(arr.length == 1 && u64s(&arr, &sch, "oneid")[0] == 1);
        assert(strcmp(str_at(&arr, &sch, "stage", 0, buf, sizeof buf), "last_period_new") == 0);
        assert(strcmp(str_at(&arr, &sch, "period", 0, buf, sizeof buf), "2026-02") == 0);
    }
    release(&arr, &sch);

    /* automation: the delivery plan as Arrow */
    assert(userops_engine_call(e, "set_consent", "{\"user\": {\"oneid\": 1}, \"channel\": \"push\", \"purpose\": \"marketing\", \"granted\": true, \"actor\": \"crm\", \"time\": \"2026-01-01T00:00:00Z\"}", &out) == UOPS_OK);
    userops_string_free(out);
    assert(userops_engine_call(e, "add_rule", "{\"rule\": {\"id\": \"wb\", \"trigger\": {\"type\": \"inactive\", \"days\": 30},"
        " \"actions\": [{\"type\": \"touch\", \"channel\": \"push\", \"content\": \"hi\"}]}}", &out) == UOPS_OK);
    userops_string_free(out);
    assert(userops_automation_plan(e, "2026-05-01T10:00:00+08:00", &arr, &sch) == UOPS_OK);
    {
        char buf[64];
        assert(arr.length == 1 && u64s(&arr, &sch, "user")[0] == 1);
        assert(strcmp(str_at(&arr, &sch, "action", 0, buf, sizeof buf), "touch") == 0);
        assert(strcmp(str_at(&arr, &sch, "channel", 0, buf, sizeof buf), "push") == 0);
        assert(!is_null(&arr, &sch, "touch_id", 0) && is_null(&arr, &sch, "coupon_id", 0));
    }
    release(&arr, &sch);
    assert(userops_automation_plan(e, "2026-05-01T11:00:00+08:00", &arr, &sch) == UOPS_OK);
    assert(arr.length == 0); /* de-duplicated */
    release(&arr, &sch);

    /* any method whose output is a table, by name: the touch just planned, per channel */
    assert(userops_engine_call_arrow(e, "channel_effectiveness", "{\"by\": \"channel\"}", &arr, &sch) == UOPS_OK);
    {
        char buf[32];
        assert(arr.length == 1 && arr.n_children == 9);
        assert(strcmp(str_at(&arr, &sch, "key", 0, buf, sizeof buf), "push") == 0);
        assert(i64s(&arr, &sch, "planned")[0] == 1);
    }
    release(&arr, &sch);
    /* a method without a table is refused before it runs: nothing exported, nothing changed */
    int64_t before = -1, after = -1;
    assert(userops_loyalty_balance(e, &m1, "brand-a", &before) == UOPS_OK);
    assert(userops_engine_call_arrow(e, "earn", "{\"user\": {\"oneid\": 1}, \"program\": \"brand-a\","
        " \"points\": 5, \"key\": \"arrow-earn\", \"time\": \"2026-05-01T10:00:00+08:00\"}", &arr, &sch)
        == UOPS_INVALID_ARGUMENT);
    assert(arr.release == NULL && sch.release == NULL);
    assert(strstr(userops_last_error_message(), "no table") != NULL);
    assert(userops_loyalty_balance(e, &m1, "brand-a", &after) == UOPS_OK && after == before);
    assert(userops_engine_call_arrow(e, "stats", "{}", &arr, &sch) == UOPS_INVALID_ARGUMENT);
    assert(userops_engine_call_arrow(e, "no_such_method", "{}", &arr, &sch) == UOPS_UNKNOWN_METHOD);
    assert(arr.release == NULL && sch.release == NULL);
    assert(userops_engine_call_arrow(e, NULL, "{}", &arr, &sch) == UOPS_NULL_POINTER);
    assert(userops_engine_call_arrow(e, "coupon_counts", NULL, &arr, &sch) == UOPS_NULL_POINTER);
    assert(userops_engine_call_arrow(e, "coupon_counts", "{}", NULL, &sch) == UOPS_NULL_POINTER);
    assert(userops_engine_call_arrow(e, "coupon_counts", "{}", &arr, NULL) == UOPS_NULL_POINTER);
    assert(userops_engine_call_arrow(NULL, "coupon_counts", "{}", &arr, &sch) == UOPS_NULL_POINTER);
    assert(arr.release == NULL && sch.release == NULL);

    /* split: the manual merge undone */
    const char *evidence[] = {"manual:1"};
    assert(userops_identity_split(e, evidence, 1, "ops", "wrong merge", "not a time", &out) == UOPS_INVALID_ARGUMENT);
    assert(out == NULL);
    assert(userops_identity_split(e, evidence, 1, "ops", "wrong merge", "2026-05-02T10:00:00+08:00", &out) == UOPS_OK);
    assert(strstr(out, "\"parts\"") != NULL && strstr(out, "\"not_split_back\"") != NULL);
    userops_string_free(out);
    assert(userops_identity_resolve(e, "member_no", "M2", &oneid) == UOPS_OK && oneid != 1 && oneid != 0);
    assert(userops_identity_split(e, evidence, 0, "ops", "none", NULL, NULL) != UOPS_OK);

    userops_engine_free(e);
    /* an Arrow export outlives the engine it came from */
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    assert(f != NULL);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    char *copy = malloc(n + 1);
    memcpy(copy, buf, n + 1);
    return copy;
}

int main(int argc, char **argv) {
    userops_engine *e = userops_engine_new();
    assert(e != NULL);

    /* the shared fixture: the same receipt as the Rust and Python doors */
    if (argc == 3) {
        userops_engine *f = userops_engine_new();
        char *event = slurp(argv[1]), *expected = slurp(argv[2]), *got = NULL;
        assert(userops_engine_ingest_json(f, event, &got) == UOPS_OK);
        if (strcmp(got, expected) != 0) {
            fprintf(stderr, "receipt %s != expected %s\n", got, expected);
            return 1;
        }
        userops_string_free(got);
        free(event);
        free(expected);
        userops_engine_free(f);
    }

    char *receipt = NULL;
    assert(userops_engine_ingest_json(e, IDENTIFY, &receipt) == UOPS_OK);
    assert(strstr(receipt, "\"oneid\":1") != NULL);
    assert(strstr(receipt, "\"duplicate\":false") != NULL);
    userops_string_free(receipt);

    /* replay: same receipt, marked duplicate */
    assert(userops_engine_ingest_json(e, IDENTIFY, &receipt) == UOPS_OK);
    assert(strstr(receipt, "\"duplicate\":true") != NULL);
    userops_string_free(receipt);

    /* call by method name */
    char *out = NULL;
    assert(userops_engine_call(e, "resolve", "{\"user\": {\"kind\": \"phone\", \"value\": \"+86 13800138000\"}}", &out) == UOPS_OK);
    assert(strcmp(out, "{\"oneid\":1}") == 0);
    userops_string_free(out);

    /* errors: typed status, message, out-param left NULL */
    out = (char *)0x1;
    assert(userops_engine_call(e, "teleport", "{}", &out) == UOPS_UNKNOWN_METHOD);
    assert(out == NULL);
    assert(userops_last_error_code() == UOPS_UNKNOWN_METHOD);
    assert(strstr(userops_last_error_message(), "teleport") != NULL);
    assert(userops_engine_ingest_json(e, "{not json", &receipt) == UOPS_INVALID_EVENT);
    assert(userops_engine_ingest_json(e,
        "{\"kind\": \"identify\", \"key\": \"k2\", \"time\": \"2026-01-05T10:00:00Z\","
        " \"source\": {\"platform\": \"jd\", \"program\": \"b\"}, \"ids\": [{\"kind\": \"email\", \"value\": \"nope\"}]}",
        &receipt) == UOPS_INVALID_EVENT);
    assert(strstr(userops_last_error_message(), "ids[0]") != NULL);

    /* loyalty through the JSON door: earn, spend, a typed ledger error */
    assert(userops_engine_call(e, "create_program", "{\"program\": {\"id\": \"brand-a\"}}", &out) == UOPS_OK);
    userops_string_free(out);
    assert(userops_engine_call(e, "earn", "{\"user\": {\"oneid\": 1}, \"program\": \"brand-a\", \"points\": 100,"
        " \"key\": \"o1\", \"time\": \"2026-01-05T10:00:00Z\"}", &out) == UOPS_OK);
    assert(strstr(out, "\"balance\":100") != NULL);
    userops_string_free(out);
    assert(userops_engine_call(e, "spend", "{\"user\": {\"oneid\": 1}, \"program\": \"brand-a\", \"points\": 101,"
        " \"key\": \"s1\"}", &out) == UOPS_INSUFFICIENT_POINTS);
    assert(out == NULL);
    assert(userops_engine_call(e, "balance", "{\"user\": {\"oneid\": 1}, \"program\": \"brand-a\"}", &out) == UOPS_OK);
    assert(strcmp(out, "100") == 0);
    userops_string_free(out);

    /* null pointers and bad UTF-8 */
    assert(userops_engine_ingest_json(NULL, IDENTIFY, &receipt) == UOPS_NULL_POINTER);
    assert(userops_engine_ingest_json(e, NULL, &receipt) == UOPS_NULL_POINTER);
    assert(userops_engine_ingest_json(e, IDENTIFY, NULL) == UOPS_NULL_POINTER);
    assert(userops_engine_call(e, NULL, "{}", &out) == UOPS_NULL_POINTER);
    assert(userops_engine_call(e, "stats", "\xff\xfe", &out) == UOPS_INVALID_UTF8);

    /* state unchanged by all of the above */
    assert(userops_engine_call(e, "stats", "{}", &out) == UOPS_OK);
    assert(strstr(out, "\"events\":1") != NULL);
    userops_string_free(out);

    /* audiences: tags through the JSON call, members through the typed handle */
    {
        userops_engine *a = userops_engine_new();
        assert(userops_engine_call(a, "set_tags",
            "{\"kind\": \"member_no\", \"users\": [\"M1\", \"M2\", \"M3\"], \"tags\": ["
            "{\"name\": \"age\", \"type\": \"number\", \"values\": [45, 30, 52]}]}", &out) == UOPS_OK);
        userops_string_free(out);
        userops_audience *aud = NULL;
        assert(userops_audience_eval(a, "age BETWEEN 40 AND 60", &aud) == UOPS_OK);
        assert(userops_audience_len(aud) == 2);
        uint64_t ids[4] = {0};
        size_t written = 0;
        assert(userops_audience_oneids(aud, 0, ids, 4, &written) == UOPS_OK);
        assert(written == 2 && ids[0] == 1 && ids[1] == 3);
        assert(userops_audience_oneids(aud, 1, ids, 1, &written) == UOPS_OK);
        assert(written == 1 && ids[0] == 3);
        userops_audience_free(aud);
        userops_audience_free(aud);
        assert(userops_last_error_code() == UOPS_INVALID_HANDLE);
        aud = (userops_audience *)0x1;
        assert(userops_audience_eval(a, "agee > 3", &aud) == UOPS_AUDIENCE_SYNTAX);
        assert(aud == NULL);
        assert(strstr(userops_last_error_message(), "did you mean `age`") != NULL);
        userops_engine_free(a);
    }
    /* loyalty: a refund of one order line gives back what that line earned (same command) */
    {
        userops_engine *l = userops_engine_new();
        assert(userops_engine_call(l, "create_program",
            "{\"program\": {\"id\": \"b\", \"earn\": {\"points_per_unit\": \"1\", \"categories\": {\"shoes\": \"2\"}}}}",
            &out) == UOPS_OK);
        userops_string_free(out);
        assert(userops_engine_ingest_json(l,
            "{\"kind\": \"order\", \"key\": \"o1\", \"time\": \"2026-03-01T10:00:00Z\","
            " \"source\": {\"platform\": \"app\", \"program\": \"b\"}, \"user\": {\"kind\": \"member_no\", \"value\": \"M1\"},"
            " \"order_id\": \"O1\", \"amount\": \"30\", \"lines\": [{\"sku\": \"x\", \"category\": \"shoes\", \"price\": \"10\", \"qty\": 1},"
            " {\"sku\": \"y\", \"price\": \"10\", \"qty\": 2}]}", &receipt) == UOPS_OK);
        userops_string_free(receipt);
        /* 40 points: x (shoes, double) 20, y 20; one of y's two units back gives 10 */
        assert(userops_engine_call(l, "refund_lines",
            "{\"order_key\": \"O1\", \"key\": \"r1\", \"lines\": [{\"sku\": \"y\", \"qty\": 1}],"
            " \"time\": \"2026-03-02T00:00:00Z\"}", &out) == UOPS_OK);
        assert(strstr(out, "\"points\":10") != NULL);
        userops_string_free(out);
        assert(userops_engine_call(l, "refund_lines",
            "{\"order_key\": \"O1\", \"key\": \"r2\", \"lines\": [{\"sku\": \"y\", \"qty\": 2}]}",
            &out) == UOPS_INVALID_AMOUNT);
        assert(out == NULL);
        assert(strstr(userops_last_error_message(), "lines[0].qty") != NULL);
        assert(userops_engine_call(l, "balance",
            "{\"user\": {\"kind\": \"member_no\", \"value\": \"M1\"}, \"program\": \"b\"}", &out) == UOPS_OK);
        assert(strcmp(out, "30") == 0);
        userops_string_free(out);
        /* points and tier are index columns: audiences filter on them */
        assert(userops_engine_call(l, "audience", "{\"expression\": \"points(\\\"b\\\") >= 30\"}", &out) == UOPS_OK);
        assert(strstr(out, "\"size\":1") != NULL);
        userops_string_free(out);
        assert(userops_engine_call(l, "audience", "{\"expression\": \"points(\\\"b\\\") > 30\"}", &out) == UOPS_OK);
        assert(strstr(out, "\"size\":0") != NULL);
        userops_string_free(out);
        assert(userops_engine_call(l, "audience", "{\"expression\": \"tier(\\\"nope\\\") = \\\"gold\\\"\"}", &out)
            == UOPS_AUDIENCE_SYNTAX);
        assert(out == NULL);
        userops_engine_free(l);
    }
    /* table functions without an engine (lifecycle / analytics over JSON columns) */
    assert(userops_table_call("lifecycle",
        "{\"user\": [7, 7], \"time\": [\"2026-01-31T23:59:59+08:00\", \"2026-02-01T00:00:00+08:00\"]}",
        &out) == UOPS_OK);
    assert(strcmp(out, "{\"rows\":[[7,\"2026-01\",\"new\"],[7,\"2026-02\",\"last_period_new\"]]}") == 0);
    userops_string_free(out);
    assert(userops_table_call("funnel",
        "{\"user\": [1], \"time\": [0], \"event\": [\"view\"], \"steps\": [\"view\", \"pay\"]}",
        &out) == UOPS_INVALID_ARGUMENT);
    assert(out == NULL);
    assert(strstr(userops_last_error_message(), "pay") != NULL);
    assert(userops_table_call("lifecycle", "{\"user\": [1], \"time\": [\"2026-01-01 10:00\"]}", &out)
        == UOPS_INVALID_ARGUMENT);

    /* several threads on one engine */
    assert(userops_engine_call(e, "create_program", "{\"program\": {\"id\": \"brand-t\"}}", &out) == UOPS_OK);
    userops_string_free(out);
    pthread_t t[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].engine = e;
        jobs[i].thread = i;
        pthread_create(&t[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    assert(userops_engine_call(e, "stats", "{}", &out) == UOPS_OK);
    assert(strstr(out, "\"events\":881") != NULL); /* 1 + 4 × (200 registers + 20 links) */
    userops_string_free(out);

    /* a durable engine: survives free + reopen; bad paths are typed errors */
    char dir[] = "/tmp/userops-c-XXXXXX";
    assert(mkdtemp(dir) != NULL);
    char db[256];
    snprintf(db, sizeof db, "%s/pool.db", dir);
    userops_engine *d = (userops_engine *)0x1;
    assert(userops_engine_open(db, &d) == UOPS_OK && d != NULL);
    assert(userops_engine_ingest_json(d, IDENTIFY, &receipt) == UOPS_OK);
    userops_string_free(receipt);
    userops_engine_free(d);
    assert(userops_engine_open(db, &d) == UOPS_OK);
    assert(userops_engine_call(d, "stats", "{}", &out) == UOPS_OK);
    assert(strstr(out, "\"events\":1") != NULL);
    userops_string_free(out);
    /* typed writes are journaled too: they survive free + reopen */
    {
        userops_user phone = {"phone", "13800138000", 0};
        assert(userops_engine_call(d, "create_program", "{\"program\": {\"id\": \"brand-a\"}}", &out) == UOPS_OK);
        userops_string_free(out);
        assert(userops_loyalty_earn(d, &phone, "brand-a", 40, "d-o1", "2026-01-06T00:00:00Z", 0, NULL) == UOPS_OK);
        userops_engine_free(d);
        assert(userops_engine_open(db, &d) == UOPS_OK);
        int64_t b = 0;
        assert(userops_loyalty_balance(d, &phone, "brand-a", &b) == UOPS_OK && b == 40);
        userops_audience *none = NULL;
        assert(userops_audience_eval(d, "age > 1", &none) == UOPS_AUDIENCE_SYNTAX); /* reads work on durable engines */
    }
    assert(userops_engine_call(d, "erase", "{\"oneid\": 1, \"actor\": \"dpo\", \"time\": \"2026-01-07T00:00:00Z\"}", &out) == UOPS_OK);
    userops_string_free(out);
    userops_engine_free(d);
    d = (userops_engine *)0x1;
    assert(userops_engine_open(dir, &d) == UOPS_STORAGE);
    assert(d == NULL);
    assert(strstr(userops_last_error_message(), "directory") != NULL);
    assert(userops_engine_open(NULL, &d) == UOPS_NULL_POINTER);
    assert(userops_engine_open(db, NULL) == UOPS_NULL_POINTER);
    char junk[256];
    snprintf(junk, sizeof junk, "%s/junk.db", dir);
    FILE *jf = fopen(junk, "wb");
    fputs("definitely not a sqlite database, only some text", jf);
    fclose(jf);
    assert(userops_engine_open(junk, &d) == UOPS_STORAGE);
    unlink(junk);
    char side[300];
    snprintf(side, sizeof side, "%s-wal", db); unlink(side);
    snprintf(side, sizeof side, "%s-shm", db); unlink(side);
    unlink(db);
    rmdir(dir);

    /* an Arrow export outlives the engine (and the handle) it came from */
    struct ArrowArray late;
    struct ArrowSchema late_s;
    {
        userops_engine *a = userops_engine_new();
        assert(userops_engine_call(a, "set_tags", "{\"kind\": \"member_no\", \"users\": [\"M1\"], \"tags\": ["
            "{\"name\": \"vip\", \"type\": \"bool\", \"values\": [true]}]}", &out) == UOPS_OK);
        userops_string_free(out);
        userops_audience *aud = NULL;
        assert(userops_audience_eval(a, "vip", &aud) == UOPS_OK);
        assert(userops_audience_to_arrow(aud, &late, &late_s) == UOPS_OK);
        userops_audience_free(aud);
        userops_engine_free(a);
    }
    assert(late.length == 1 && u64s(&late, &late_s, "oneid")[0] == 1);
    release(&late, &late_s);

    typed_scenario();

    userops_string_free(NULL);
    userops_engine_free(e);
    /* double free is detected, not a crash */
    userops_engine_free(e);
    assert(userops_last_error_code() == UOPS_INVALID_HANDLE);
    assert(userops_engine_call(e, "stats", "{}", &out) == UOPS_INVALID_HANDLE);
    userops_engine_free(NULL);

    printf("c: all assertions passed (userops %s)\n", userops_version());
    return 0;
}
