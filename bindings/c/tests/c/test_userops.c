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
    }
    return NULL;
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
    pthread_t t[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].engine = e;
        jobs[i].thread = i;
        pthread_create(&t[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    assert(userops_engine_call(e, "stats", "{}", &out) == UOPS_OK);
    assert(strstr(out, "\"events\":801") != NULL);
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
