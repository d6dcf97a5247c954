/*
 * hello-c: a wasmgate plugin in C (ABI v2), on guest-sdk/c/wasmgate.h.
 *
 *   GET /c/hello/:name  ->  200 application/json
 *   {"message":"<greeting>, <name>!","client":"<client>","route":"<route>","id":"<request id>"}
 *
 * `greeting` is the plugin's variable `greeting` ([plugins.hello-c.vars]), "Hello" when the
 * plugin has no such variable. The other values are the request metadata the host sends with
 * every v2 request (docs/ABI.md, "v2 request fields"). Everything is JSON-escaped: the name is a
 * percent-decoded route param and may be any bytes.
 *
 * Build (from the repository root; see README.md):
 *   mkdir -p plugins/target/c && clang --target=wasm32-wasi -O2 -mexec-model=reactor \
 *     -I guest-sdk/c -std=c11 -Wall -Wextra -Wl,--strip-debug -o plugins/target/c/hello-c.wasm \
 *     plugins/hello-c/hello.c
 */
#include "wasmgate.h"

/* Answers 500 {"error":"<what><detail>"} and writes the same text to stderr (the host log). */
static void fail(wg_response *resp, const char *what, wg_str detail) {
    wg_buf line = {0};
    wg_buf_append_cstr(&line, what);
    wg_buf_append_str(&line, detail);
    wg_buf_append(&line, "", 1); /* NUL-terminate for wg_log */
    wg_log(line.failed ? what : line.ptr);

    wg_response_free(resp);
    wg_response_init(resp, 500);
    wg_add_header(resp, "content-type", "application/json");
    wg_append_cstr(resp, "{\"error\":\"");
    wg_append_json(resp, wg_cstr(what));
    wg_append_json(resp, detail);
    wg_append_cstr(resp, "\"}");
}

static void hello(const wg_request *req, wg_response *resp) {
    wg_str name;
    if (!wg_request_param(req, "name", &name)) {
        fail(resp, "hello-c: the route has no :name param (expected e.g. /c/hello/:name)",
             WG_LIT(""));
        return;
    }

    /* The greeting: the variable, or "Hello" when the configuration does not define it. */
    wg_bytes value = {0}, msg = {0};
    wg_str greeting = WG_LIT("Hello");
    wg_errno err = wg_var_get("greeting", &value, &msg);
    if (err == WG_OK) {
        greeting = wg_bytes_str(value);
    } else if (err != WG_NOT_FOUND) {
        /* Any other code is a failure of the host (no_memory, ...): 500, with its message. */
        wg_buf detail = {0};
        wg_buf_append_cstr(&detail, wg_errno_name(err));
        wg_buf_append_cstr(&detail, ": ");
        wg_buf_append_str(&detail, wg_bytes_str(msg));
        fail(resp, "hello-c: var_get(\"greeting\") failed: ", wg_str_n(detail.ptr, detail.len));
        return;
    }

    wg_add_header(resp, "content-type", "application/json");
    wg_append_cstr(resp, "{\"message\":\"");
    wg_append_json(resp, greeting);
    wg_append_cstr(resp, ", ");
    wg_append_json(resp, name);
    wg_append_cstr(resp, "!\",\"client\":");
    wg_append_json_string(resp, wg_request_client_addr(req));
    wg_append_cstr(resp, ",\"route\":");
    wg_append_json_string(resp, wg_request_route(req));
    wg_append_cstr(resp, ",\"id\":");
    wg_append_json_string(resp, wg_request_id(req));
    wg_append_cstr(resp, "}");
    /* No frees needed: the instance is dropped after this request. */
}

WASMGATE_HANDLER(hello)
