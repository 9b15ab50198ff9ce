/* A small C program using userops the way a C user would: include the header, link the library
 * (shared: -luserops, or static: libuserops.a -lpthread -ldl -lm). Build and run: see README.md.
 *
 * It links two records into one person, earns and spends points, evaluates a promotion quote
 * and commits it, and reads the points statement as an Arrow C Data Interface record batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "userops.h"

static int check(int32_t status, const char *what) {
    if (status != UOPS_OK) {
        fprintf(stderr, "%s failed (%d): %s\n", what, status, userops_last_error_message());
        return 0;
    }
    return 1;
}

int main(void) {
    userops_engine *engine = userops_engine_new();
    if (!engine) return 1;

    /* identity: two channels' records, joined by the device they share */
    const char *jd_kinds[] = {"phone", "device_id"}, *jd_values[] = {"13800138000", "a9f3"};
    const char *app_kinds[] = {"member_no", "device_id"}, *app_values[] = {"M1", "a9f3"};
    userops_link_result link;
    if (!check(userops_identity_link(engine, "jd-1", "2026-01-05T10:00:00+08:00", "jd", "brand-a",
                                     jd_kinds, jd_values, 2, &link), "link")) return 1;
    if (!check(userops_identity_link(engine, "app-1", "2026-01-06T09:00:00+08:00", "app", "brand-a",
                                     app_kinds, app_values, 2, &link), "link")) return 1;
    uint64_t oneid = 0;
    if (!check(userops_identity_resolve(engine, "phone", "+86 138 0013 8000", &oneid), "resolve")) return 1;
    printf("member M1 and phone 13800138000 are OneID %llu (link said %llu)\n",
           (unsigned long long)oneid, (unsigned long long)link.oneid);

    /* loyalty: configuration goes through the JSON door, the ledger through typed calls */
    char *json = NULL;
    if (!check(userops_engine_call(engine, "create_program", "{\"program\": {\"id\": \"brand-a\"}}", &json), "program")) return 1;
    userops_string_free(json);
    userops_user member = {"member_no", "M1", 0};
    userops_posting posting;
    if (!check(userops_loyalty_earn(engine, &member, "brand-a", 100, "order-1", "2026-01-06T10:00:00+08:00", 0, &posting), "earn")) return 1;
    if (!check(userops_loyalty_spend(engine, &member, "brand-a", 30, "redeem-1", NULL, &posting), "spend")) return 1;
    printf("balance after earn 100, spend 30: %lld\n", (long long)posting.balance);
    if (userops_loyalty_spend(engine, &member, "brand-a", 500, "redeem-2", NULL, NULL) == UOPS_INSUFFICIENT_POINTS)
        printf("refused as expected: %s\n", userops_last_error_message());

    /* the statement as an Arrow record batch: read it, then release it (the consumer's duty) */
    struct ArrowArray batch;
    struct ArrowSchema schema;
    if (!check(userops_loyalty_statement(engine, &member, "brand-a", &batch, &schema), "statement")) return 1;
    for (int64_t c = 0; c < schema.n_children; c++) {
        if (strcmp(schema.children[c]->name, "amount") != 0) continue;
        const int64_t *amount = (const int64_t *)batch.children[c]->buffers[1] + batch.children[c]->offset;
        for (int64_t r = 0; r < batch.length; r++) printf("statement row %lld: %+lld\n", (long long)r, (long long)amount[r]);
    }
    batch.release(&batch);
    schema.release(&schema);

    /* a promotion quote: evaluate, read the figures, commit under the order id */
    if (!check(userops_engine_call(engine, "add_promotion", "{\"promotion\": {\"id\": \"p300\", \"action\":"
        " {\"type\": \"threshold_discount\", \"threshold\": \"300\", \"off\": \"50\"}}}", &json), "promotion")) return 1;
    userops_string_free(json);
    userops_quote *quote = NULL;
    if (!check(userops_quote_evaluate(engine, "{\"time\": \"2026-03-01T10:00:00+08:00\", \"lines\":"
        " [{\"sku\": \"a\", \"category\": \"x\", \"price\": \"120.00\", \"qty\": 3}]}", &member, &quote), "quote")) return 1;
    printf("quote: subtotal %s, discount %s, total %s, applied %s\n", userops_quote_subtotal(quote),
           userops_quote_discount(quote), userops_quote_total(quote), userops_quote_applied_json(quote));
    if (!check(userops_quote_commit(engine, quote, "order-2", &json), "commit")) return 1;
    printf("commit: %s\n", json);
    userops_string_free(json);
    userops_quote_free(quote);

    userops_engine_free(engine);
    return 0;
}
