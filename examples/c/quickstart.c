/* A small C program using userops the way a C user would: include the header, link the library
 * (shared: -luserops, or static: libuserops.a -lpthread -ldl -lm). Build and run: see README.md. */
#include <stdio.h>
#include <stdlib.h>

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
    const char *events[] = {
        "{\"kind\": \"identify\", \"key\": \"jd-1\", \"time\": \"2026-01-05T10:00:00+08:00\","
        " \"source\": {\"platform\": \"jd\", \"program\": \"brand-a\"},"
        " \"ids\": [{\"kind\": \"phone\", \"value\": \"13800138000\"}, {\"kind\": \"device_id\", \"value\": \"a9f3\"}]}",
        "{\"kind\": \"identify\", \"key\": \"app-1\", \"time\": \"2026-01-06T09:00:00+08:00\","
        " \"source\": {\"platform\": \"app\", \"program\": \"brand-a\"},"
        " \"ids\": [{\"kind\": \"member_no\", \"value\": \"M1\"}, {\"kind\": \"device_id\", \"value\": \"a9f3\"}]}",
        "{\"kind\": \"activity\", \"key\": \"act-1\", \"time\": \"2026-01-07T20:00:00+08:00\","
        " \"source\": {\"platform\": \"app\", \"program\": \"brand-a\"},"
        " \"user\": {\"kind\": \"member_no\", \"value\": \"M1\"}, \"type\": \"login\"}",
    };
    for (size_t i = 0; i < sizeof events / sizeof *events; i++) {
        char *receipt = NULL;
        if (!check(userops_engine_ingest_json(engine, events[i], &receipt), "ingest")) return 1;
        printf("receipt: %s\n", receipt);
        userops_string_free(receipt);
    }
    char *stats = NULL;
    if (!check(userops_engine_call(engine, "stats", "{}", &stats), "stats")) return 1;
    printf("stats: %s\n", stats);
    userops_string_free(stats);
    userops_engine_free(engine);
    return 0;
}
