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
