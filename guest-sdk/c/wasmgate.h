/*
 * wasmgate.h - write wasmgate plugins in C (plugin ABI version 2).
 *
 * One header, nothing to link: every function is `static inline`, so a plugin carries only what
 * it uses. It depends on wasi-libc's standard headers only. Build a plugin with
 *
 *     clang --target=wasm32-wasi -O2 -mexec-model=reactor -I guest-sdk/c -o my.wasm my.c
 *
 * The contract implemented here is docs/ABI.md (sections "Version 2", "v2 request fields",
 * "Host functions", "Error codes", "The functions"); the byte layouts are those of the reference
 * codec, crates/abi (`wasmgate-abi`). A complete plugin:
 *
 *     #include "wasmgate.h"
 *
 *     static void hello(const wg_request *req, wg_response *resp) {
 *         wg_str name = WG_LIT("world");
 *         wg_request_param(req, "name", &name);            // route `/hello/:name`
 *         wg_add_header(resp, "content-type", "text/plain; charset=utf-8");
 *         wg_append_cstr(resp, "hello, ");
 *         wg_append(resp, name);
 *         wg_append_cstr(resp, "\n");                      // status defaults to 200
 *     }
 *
 *     WASMGATE_HANDLER(hello)
 *
 * The API at a glance (each declaration below says what it returns and who frees what):
 *
 *   exports     WASMGATE_HANDLER(fn), with  void fn(const wg_request *req, wg_response *resp)
 *   strings     wg_str (borrowed), WG_LIT("..."), wg_cstr, wg_str_n, wg_str_eq, wg_str_eq_nocase;
 *               wg_bytes (owned: host results), wg_bytes_str, wg_bytes_free
 *   request     req->method, target, path, query, version, body; req->headers[i], params[i];
 *               wg_request_header (case-insensitive), wg_request_param, wg_request_field,
 *               wg_request_peer_addr, wg_request_client_addr, wg_request_route, wg_request_id
 *   response    wg_set_status, wg_add_header, wg_add_header_str, wg_set_body, wg_append,
 *               wg_append_cstr, wg_append_u64, wg_append_json, wg_append_json_string,
 *               wg_respond_text, wg_response_error
 *   buffers     wg_buf: wg_buf_append, _str, _cstr, _u64, _i64, _json, _json_string, wg_buf_take
 *   host calls  wg_var_get; wg_kv_open, wg_kv_get, wg_kv_set, wg_kv_delete, wg_kv_exists,
 *               wg_kv_incr, wg_kv_incr_ttl, wg_kv_ttl, wg_kv_cas, wg_kv_list; wg_http_send,
 *               wg_http_send_timeout; wg_errno, wg_errno_name; wg_log
 *   testing     wg_request_decode, wg_response_explain, wg_response_encode (native builds too)
 *
 * Conventions, for the whole header:
 *
 *  - Strings are not NUL-terminated on the wire. A borrowed string is a `wg_str` (pointer and
 *    length); an owned one, returned by a host call, is a `wg_bytes` that the caller frees. Names
 *    you pass in (header and param names, variable and store names) are C strings; data (keys,
 *    values, bodies) is a `wg_str`, so it may contain any byte, NUL included.
 *  - Nothing is UTF-8 unless docs/ABI.md says so ("Clarifications" 4): header values, params and
 *    bodies are bytes. `wg_append_json` turns invalid UTF-8 into U+FFFD.
 *  - One instance serves one request and is then thrown away (docs/ABI.md, "Call sequence"), so
 *    freeing is optional: free what you allocate in loops, leak the rest.
 *  - Failure to answer is a trap (docs/ABI.md, "How a guest reports failure"): the host answers
 *    500 and logs what the plugin wrote to stderr. This header traps only when the host breaks
 *    the ABI or memory runs out while answering, always after writing one line to stderr.
 *  - Host services fail with an error code (`wg_errno`), never a trap: the plugin decides the HTTP
 *    status.
 *
 * C99 or later; warning-free with -Wall -Wextra -pedantic. Everything named `wg_priv_*` /
 * `WG_PRIV_*` is internal. The header also compiles for native
 * targets, where `wg_request_decode`, the response builder and `wg_response_encode` can be
 * unit-tested; the exports and the host calls are meaningful on wasm32 only (natively, a host
 * call is an undefined symbol at link time).
 */
#ifndef WASMGATE_H
#define WASMGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__wasm__)
#define WG_PRIV_IMPORT(name) __attribute__((import_module("wasmgate"), import_name(name)))
#define WG_PRIV_EXPORT(name) __attribute__((export_name(name)))
#else
#define WG_PRIV_IMPORT(name)
#define WG_PRIV_EXPORT(name)
#endif

/* The ABI version this header implements: what `wasmgate_abi_version()` returns. */
#define WASMGATE_ABI_VERSION 2

/* ============================================================================================
 * Byte strings
 * ========================================================================================== */

/* A borrowed byte string: `len` bytes at `ptr`, not NUL-terminated. `ptr` may be NULL when `len`
 * is 0. Strings of a request point into the request buffer and stay valid for the whole call. */
typedef struct wg_str {
    const char *ptr;
    size_t len;
} wg_str;

/* A `wg_str` of a string literal, without its NUL: `WG_LIT("GET")`. Literals only. */
#define WG_LIT(s) ((wg_str){("" s), sizeof("" s) - 1})

/* Most header fields a response may carry (MAX_RESPONSE_HEADERS in docs/ABI.md); one more is
 * recorded as the response's mistake, like any header the host would refuse. */
#define WG_MAX_RESPONSE_HEADERS 100

/* An owned byte string, allocated with malloc: release it with `wg_bytes_free` (or `free(ptr)`).
 * Results of host calls are NUL-terminated one byte past `len` as a convenience, so text without
 * NUL bytes can be printed with "%s"; `ptr` is NULL when the result is empty. */
typedef struct wg_bytes {
    char *ptr;
    size_t len;
} wg_bytes;

/* A name and a value: a request header or route param, an outbound or upstream header. */
typedef struct wg_pair {
    wg_str name;
    wg_str value;
} wg_pair;

/* A NUL-terminated string as a `wg_str` (its bytes up to the NUL); NULL gives the empty string. */
static inline wg_str wg_cstr(const char *s) {
    wg_str out = {s, s ? strlen(s) : 0};
    return out;
}

/* `len` bytes at `ptr` as a `wg_str`. */
static inline wg_str wg_str_n(const void *ptr, size_t len) {
    wg_str out = {(const char *)ptr, len};
    return out;
}

/* Borrows an owned string. */
static inline wg_str wg_bytes_str(wg_bytes b) {
    return wg_str_n(b.ptr, b.len);
}

/* Frees `b` and empties it; safe on an empty or already freed `wg_bytes`. */
static inline void wg_bytes_free(wg_bytes *b) {
    if (b) {
        free(b->ptr);
        b->ptr = NULL;
        b->len = 0;
    }
}

/* Whether `a` and `b` are the same bytes. */
static inline bool wg_str_eq(wg_str a, wg_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Whether `a` and `b` are equal with ASCII letters compared case-insensitively (how HTTP
 * compares header names); other bytes must be equal. */
static inline bool wg_str_eq_nocase(wg_str a, wg_str b) {
    if (a.len != b.len) return false;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.ptr[i], y = (unsigned char)b.ptr[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + ('a' - 'A'));
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + ('a' - 'A'));
        if (x != y) return false;
    }
    return true;
}

/* The value of the first pair whose name equals `name`, ASCII case-insensitively when `nocase`;
 * false (and `*value` untouched) when there is none. */
static inline bool wg_pairs_find(const wg_pair *pairs, size_t count, const char *name, bool nocase,
                                 wg_str *value) {
    wg_str want = wg_cstr(name);
    for (size_t i = 0; i < count; i++) {
        bool same = nocase ? wg_str_eq_nocase(pairs[i].name, want) : wg_str_eq(pairs[i].name, want);
        if (same) {
            if (value) *value = pairs[i].value;
            return true;
        }
    }
    return false;
}

/* ============================================================================================
 * Growable buffers (response bodies, JSON, outbound request bodies)
 * ========================================================================================== */

/* A growable byte buffer. Zero-initialize it (`wg_buf b = {0};`). When an append cannot get
 * memory, `failed` is set, the append returns false and every later append is a no-op, so a
 * sequence of appends needs one check at the end. Release with `wg_buf_free`. */
typedef struct wg_buf {
    char *ptr;
    size_t len;
    size_t cap;
    bool failed;
} wg_buf;

/* Makes room for `extra` more bytes. */
static inline bool wg_buf_reserve(wg_buf *b, size_t extra) {
    if (b->failed) return false;
    if (extra <= b->cap - b->len) return true;
    if (extra > SIZE_MAX - b->len) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = (char *)realloc(b->ptr, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->ptr = p;
    b->cap = cap;
    return true;
}

/* Appends `len` bytes at `data`. */
static inline bool wg_buf_append(wg_buf *b, const void *data, size_t len) {
    if (len == 0) return !b->failed;
    if (!wg_buf_reserve(b, len)) return false;
    memcpy(b->ptr + b->len, data, len);
    b->len += len;
    return true;
}

/* Appends a `wg_str`. */
static inline bool wg_buf_append_str(wg_buf *b, wg_str s) {
    return wg_buf_append(b, s.ptr, s.len);
}

/* Appends a NUL-terminated string (without the NUL). */
static inline bool wg_buf_append_cstr(wg_buf *b, const char *s) {
    return wg_buf_append_str(b, wg_cstr(s));
}

/* Appends `n` in decimal, e.g. for a JSON number. */
static inline bool wg_buf_append_u64(wg_buf *b, uint64_t n) {
    char digits[20];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + (int)(n % 10));
        n /= 10;
    } while (n != 0);
    return wg_buf_append(b, digits + i, sizeof digits - i);
}

/* Appends `n` in decimal, with a '-' when negative. */
static inline bool wg_buf_append_i64(wg_buf *b, int64_t n) {
    if (n >= 0) return wg_buf_append_u64(b, (uint64_t)n);
    /* -(n + 1) cannot overflow; adding 1 back in unsigned arithmetic covers INT64_MIN. */
    return wg_buf_append(b, "-", 1) && wg_buf_append_u64(b, (uint64_t)(-(n + 1)) + 1u);
}

/* The length (1 to 4) of the well-formed UTF-8 sequence at `s` (`n` bytes available), or 0 when
 * the bytes there are not one (Unicode, Table 3-7: no overlongs, surrogates or values past
 * U+10FFFF). */
static inline size_t wg_priv_utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* Appends `s` escaped for use inside a JSON string, without the quotes: `"` and `\` are
 * backslash-escaped, control characters become `\n`, `\t`, ... or `\u00XX`, and every byte that
 * is not part of well-formed UTF-8 becomes `\ufffd` (U+FFFD), so the output is valid JSON text
 * whatever the input. */
static inline bool wg_buf_append_json(wg_buf *b, wg_str s) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t run = 0; /* start of the bytes copied as they are */
    size_t i = 0;
    if (s.len == 0) return !b->failed; /* (`p` may be NULL then) */
    while (i < s.len) {
        unsigned c = p[i];
        char esc[6];
        size_t esc_len = 2;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = wg_priv_utf8_len(p + i, s.len - i);
            if (n != 0) {
                i += n;
                continue;
            }
            memcpy(esc, "\\ufffd", 6);
            esc_len = 6;
        } else {
            esc[0] = '\\';
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xF];
                esc_len = 6;
                break;
            }
        }
        if (!wg_buf_append(b, p + run, i - run) || !wg_buf_append(b, esc, esc_len)) return false;
        run = ++i; /* one byte replaced: a control character, a quote or an invalid byte */
    }
    return wg_buf_append(b, p + run, s.len - run);
}

/* Appends `s` as a JSON string: `"` + `wg_buf_append_json(s)` + `"`. */
static inline bool wg_buf_append_json_string(wg_buf *b, wg_str s) {
    return wg_buf_append(b, "\"", 1) && wg_buf_append_json(b, s) && wg_buf_append(b, "\"", 1);
}

/* Frees the buffer's memory and empties it (clearing `failed`). */
static inline void wg_buf_free(wg_buf *b) {
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

/* Takes the buffer's contents as an owned `wg_bytes` and empties the buffer. */
static inline wg_bytes wg_buf_take(wg_buf *b) {
    wg_bytes out = {b->ptr, b->len};
    b->ptr = NULL;
    b->len = b->cap = 0;
    return out;
}

/* ============================================================================================
 * Little-endian reading and writing, bounds-checked (docs/ABI.md, "Encoding")
 * ========================================================================================== */

static inline uint32_t wg_priv_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void wg_priv_put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v & 0xFF);
    p[1] = (unsigned char)((v >> 8) & 0xFF);
    p[2] = (unsigned char)((v >> 16) & 0xFF);
    p[3] = (unsigned char)((v >> 24) & 0xFF);
}

/* A cursor over `len` bytes. Invariant: `pos <= len`, so `len - pos` never wraps. The first
 * failure is kept in `error` (a static string) and makes every later read fail. */
typedef struct wg_priv_reader {
    const unsigned char *buf;
    size_t len;
    size_t pos;
    const char *error;
} wg_priv_reader;

static inline bool wg_priv_fail(wg_priv_reader *r, const char *why) {
    if (!r->error) r->error = why;
    return false;
}

static inline bool wg_priv_read_u32(wg_priv_reader *r, uint32_t *out, const char *what) {
    if (r->error) return false;
    if (r->len - r->pos < 4) return wg_priv_fail(r, what);
    *out = wg_priv_le32(r->buf + r->pos);
    r->pos += 4;
    return true;
}

/* A `str`: u32 length, then that many bytes, all inside the buffer. */
static inline bool wg_priv_read_str(wg_priv_reader *r, wg_str *out, const char *truncated,
                                    const char *past_end) {
    uint32_t n;
    if (!wg_priv_read_u32(r, &n, truncated)) return false;
    if (n > r->len - r->pos) return wg_priv_fail(r, past_end);
    out->ptr = (const char *)(r->buf + r->pos);
    out->len = n;
    r->pos += n;
    return true;
}

/* A count that promises `count` items of at least `min_size` bytes each: refused before anything
 * is allocated when they cannot fit in what remains (a hostile count must not allocate). */
static inline bool wg_priv_read_count(wg_priv_reader *r, size_t *count, size_t min_size,
                                      size_t item_size, const char *truncated,
                                      const char *too_many) {
    uint32_t n;
    if (!wg_priv_read_u32(r, &n, truncated)) return false;
    if (n > (r->len - r->pos) / min_size || n > SIZE_MAX / item_size)
        return wg_priv_fail(r, too_many);
    *count = n;
    return true;
}

/* A counted list of `(str name, str value)` pairs, into a malloc'd array (NULL when empty). */
static inline bool wg_priv_read_pairs(wg_priv_reader *r, wg_pair **out, size_t *count,
                                      const char *what) {
    size_t n = 0;
    *out = NULL;
    *count = 0;
    if (!wg_priv_read_count(r, &n, 8, sizeof(wg_pair), what, what)) return false;
    if (n == 0) return true;
    wg_pair *pairs = (wg_pair *)malloc(n * sizeof(wg_pair));
    if (!pairs) return wg_priv_fail(r, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!wg_priv_read_str(r, &pairs[i].name, what, what) ||
            !wg_priv_read_str(r, &pairs[i].value, what, what)) {
            free(pairs);
            return false;
        }
    }
    *out = pairs;
    *count = n;
    return true;
}

static inline bool wg_priv_read_end(wg_priv_reader *r) {
    if (r->error) return false;
    if (r->pos != r->len) return wg_priv_fail(r, "trailing bytes after the last field");
    return true;
}

/* ============================================================================================
 * The request (docs/ABI.md, "Encoding" > "Request" and "v2 request fields")
 * ========================================================================================== */

/* Tags of v2 request fields (docs/ABI.md, "v2 request fields"). Values are ASCII text. */
enum {
    WG_TAG_PEER_ADDR = 1,   /* the TCP peer, "ip:port" ("[ip]:port" for IPv6) */
    WG_TAG_CLIENT_ADDR = 2, /* the client's IP (forwarded when the peer is a trusted proxy) */
    WG_TAG_ROUTE = 3,       /* the route pattern that matched, e.g. "/l/:code" */
    WG_TAG_REQUEST_ID = 4   /* the request id, as in the host's log and x-request-id */
};

/* One tagged field. Tags this header does not know are kept here and otherwise ignored. */
typedef struct wg_field {
    uint32_t tag;
    wg_str value;
} wg_field;

/* A decoded request. Every string points into the request buffer (nothing is copied); the three
 * arrays are malloc'd (NULL when empty) and released by `wg_request_free`. Fields are as the host
 * sent them (docs/ABI.md, "Clarifications" 4-6): `path` and `query` still percent-encoded,
 * params percent-decoded (any bytes), headers in received order with names as received. */
typedef struct wg_request {
    wg_str method;   /* e.g. "GET", case as received */
    wg_str target;   /* the raw request-target, e.g. "/echo/a%20b?x=1" */
    wg_str path;     /* e.g. "/echo/a%20b" */
    wg_str query;    /* after the first '?', without it; empty if none */
    wg_str version;  /* "HTTP/1.0" or "HTTP/1.1" */
    wg_pair *headers;
    size_t header_count;
    wg_pair *params; /* route params: `:name` segments, and `*rest` */
    size_t param_count;
    wg_str body;     /* the whole body, de-chunked; empty if none */
    wg_field *fields; /* v2 tagged fields, in the order sent */
    size_t field_count;
} wg_request;

/* Releases the arrays of a decoded request (not the buffer it was decoded from). */
static inline void wg_request_free(wg_request *req) {
    free(req->headers);
    free(req->params);
    free(req->fields);
    req->headers = req->params = NULL;
    req->fields = NULL;
    req->header_count = req->param_count = req->field_count = 0;
}

/* Decodes the v2 request encoded in exactly `len` bytes at `buf`. Every length and count is
 * checked against the bytes that remain before it is used, so no byte outside [buf, buf + len)
 * is ever read, whatever the input. Returns false for an invalid encoding (a length past the
 * end, a count that cannot fit, trailing bytes) or when memory runs out, with `*error` (if
 * `error` is not NULL) set to a static description; `*req` is then empty. */
static inline bool wg_request_decode(const void *buf, size_t len, wg_request *req,
                                     const char **error) {
    wg_priv_reader r = {(const unsigned char *)buf, len, 0, NULL};
    wg_request q;
    memset(&q, 0, sizeof q);
    if (!buf && len != 0) wg_priv_fail(&r, "no buffer");
    wg_priv_read_str(&r, &q.method, "method length is truncated", "method is past the end");
    wg_priv_read_str(&r, &q.target, "target length is truncated", "target is past the end");
    wg_priv_read_str(&r, &q.path, "path length is truncated", "path is past the end");
    wg_priv_read_str(&r, &q.query, "query length is truncated", "query is past the end");
    wg_priv_read_str(&r, &q.version, "version length is truncated", "version is past the end");
    if (!r.error) wg_priv_read_pairs(&r, &q.headers, &q.header_count, "a header is past the end");
    if (!r.error) wg_priv_read_pairs(&r, &q.params, &q.param_count, "a param is past the end");
    wg_priv_read_str(&r, &q.body, "body length is truncated", "body is past the end");
    size_t n = 0;
    if (wg_priv_read_count(&r, &n, 8, sizeof(wg_field), "field count is truncated",
                           "a tagged field is past the end") &&
        n != 0) {
        q.fields = (wg_field *)malloc(n * sizeof(wg_field));
        if (!q.fields) wg_priv_fail(&r, "out of memory");
        for (size_t i = 0; i < n && !r.error; i++) {
            wg_priv_read_u32(&r, &q.fields[i].tag, "a tagged field is past the end");
            wg_priv_read_str(&r, &q.fields[i].value, "a tagged field is past the end",
                             "a tagged field is past the end");
        }
        if (!r.error) q.field_count = n;
    }
    if (!wg_priv_read_end(&r)) {
        wg_request_free(&q);
        memset(req, 0, sizeof *req);
        if (error) *error = r.error;
        return false;
    }
    *req = q;
    if (error) *error = NULL;
    return true;
}

/* The value of the first request header named `name` (ASCII case-insensitive), in `*value`.
 * False when there is none. Repeated headers are separate entries of `req->headers`. */
static inline bool wg_request_header(const wg_request *req, const char *name, wg_str *value) {
    return wg_pairs_find(req->headers, req->header_count, name, true, value);
}

/* The value of the route param `name` (exact match, e.g. "name" for `/hello/:name`, "rest" for
 * `/files/` + `*rest`), percent-decoded: any bytes. False when the route has no such param. */
static inline bool wg_request_param(const wg_request *req, const char *name, wg_str *value) {
    return wg_pairs_find(req->params, req->param_count, name, false, value);
}

/* The value of the first tagged field `tag` (a `WG_TAG_*`); false when the host did not send it. */
static inline bool wg_request_field(const wg_request *req, uint32_t tag, wg_str *value) {
    for (size_t i = 0; i < req->field_count; i++) {
        if (req->fields[i].tag == tag) {
            if (value) *value = req->fields[i].value;
            return true;
        }
    }
    return false;
}

static inline wg_str wg_priv_field_or_empty(const wg_request *req, uint32_t tag) {
    wg_str v = {NULL, 0};
    wg_request_field(req, tag, &v);
    return v;
}

/* The TCP peer, e.g. "127.0.0.1:50000"; empty when absent. */
static inline wg_str wg_request_peer_addr(const wg_request *req) {
    return wg_priv_field_or_empty(req, WG_TAG_PEER_ADDR);
}

/* The client's IP address, e.g. "203.0.113.7" (see docs/ABI.md for trusted proxies); empty when
 * absent. */
static inline wg_str wg_request_client_addr(const wg_request *req) {
    return wg_priv_field_or_empty(req, WG_TAG_CLIENT_ADDR);
}

/* The pattern of the route that matched, as written in wasmgate.toml; empty when absent. */
static inline wg_str wg_request_route(const wg_request *req) {
    return wg_priv_field_or_empty(req, WG_TAG_ROUTE);
}

/* The request id (at most 64 of A-Z a-z 0-9 - _), as in the host's log; empty when absent. */
static inline wg_str wg_request_id(const wg_request *req) {
    return wg_priv_field_or_empty(req, WG_TAG_REQUEST_ID);
}

/* ============================================================================================
 * The response (docs/ABI.md, "Encoding" > "Response", "What the host refuses")
 * ========================================================================================== */

#define WG_PRIV_ERROR_SIZE 512

/* A response being built: status (200 unless set), headers in order, body. Mistakes that the
 * host would refuse with a bare 502 (a status outside 200..=599, a header name that is not a
 * token, a control character in a value, a host-owned header) are caught when made: the first
 * one is recorded in `error` and the offending header is not added. A handler that returns such
 * a response gets an explained 500 instead (`wg_response_explain`): the body and a stderr line
 * name the mistake, as with the Rust SDK. Use the functions below, not the members. */
typedef struct wg_response {
    uint32_t status;
    uint32_t header_count;
    wg_buf headers;  /* encoded `(str name, str value)` pairs */
    wg_buf body;
    char error[WG_PRIV_ERROR_SIZE]; /* the first mistake, NUL-terminated; "" when none */
} wg_response;

/* A fresh response with `status`, no headers, an empty body. */
static inline void wg_response_init(wg_response *r, uint32_t status) {
    memset(r, 0, sizeof *r);
    r->status = status;
}

/* Releases the response's memory. */
static inline void wg_response_free(wg_response *r) {
    wg_buf_free(&r->headers);
    wg_buf_free(&r->body);
}

/* The first mistake made building `r`, or NULL when there is none. */
static inline const char *wg_response_error(const wg_response *r) {
    return r->error[0] ? r->error : NULL;
}

/* Appends to a fixed-size, always NUL-terminated message, cutting what does not fit. */
static inline void wg_priv_msg(char *msg, const char *text) {
    size_t used = strlen(msg);
    size_t room = WG_PRIV_ERROR_SIZE - 1 - used;
    size_t n = strlen(text);
    if (n > room) n = room;
    memcpy(msg + used, text, n);
    msg[used + n] = '\0';
}

/* Appends at most 64 bytes of `s` to a message, quoted, with non-printable bytes as \xNN. */
static inline void wg_priv_msg_quoted(char *msg, wg_str s) {
    static const char hex[] = "0123456789abcdef";
    wg_priv_msg(msg, "\"");
    for (size_t i = 0; i < s.len && i < 64; i++) {
        unsigned c = (unsigned char)s.ptr[i];
        char esc[5] = {0};
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
        } else if (c < 0x20 || c >= 0x7F) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 0xF];
        } else {
            esc[0] = (char)c;
        }
        wg_priv_msg(msg, esc);
    }
    wg_priv_msg(msg, s.len > 64 ? "...\"" : "\"");
}

static inline void wg_priv_msg_u64(char *msg, uint64_t n) {
    char digits[21];
    size_t i = sizeof digits - 1;
    digits[i] = '\0';
    do {
        digits[--i] = (char)('0' + (int)(n % 10));
        n /= 10;
    } while (n != 0);
    wg_priv_msg(msg, digits + i);
}

/* Sets the status. The host accepts 200..=599 (docs/ABI.md, "Clarifications" 9); anything else is
 * recorded as the response's mistake and returns false. */
static inline bool wg_set_status(wg_response *r, uint32_t status) {
    r->status = status;
    if (status >= 200 && status <= 599) return true;
    if (!r->error[0]) {
        wg_priv_msg(r->error, "status ");
        wg_priv_msg_u64(r->error, status);
        wg_priv_msg(r->error,
                    " is outside 200..=599 (1xx are interim responses, not a final answer)");
    }
    return false;
}

/* Whether `c` may appear in an RFC 9110 token: ! # $ % & ' * + - . ^ _ ` | ~ 0-9 A-Z a-z. */
static inline bool wg_priv_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Whether the host sends `name` as a header name: a non-empty RFC 9110 token. */
static inline bool wg_header_name_ok(wg_str name) {
    if (name.len == 0) return false;
    for (size_t i = 0; i < name.len; i++)
        if (!wg_priv_tchar((unsigned char)name.ptr[i])) return false;
    return true;
}

/* Whether the host sends `value` as a header value: no byte 0x00-0x08, 0x0A-0x1F or 0x7F (tab,
 * space, visible ASCII and 0x80-0xFF are fine; docs/ABI.md, "Clarifications" 8). */
static inline bool wg_header_value_ok(wg_str value) {
    for (size_t i = 0; i < value.len; i++) {
        unsigned char c = (unsigned char)value.ptr[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
    }
    return true;
}

/* Whether `name` is one the host owns and refuses from a plugin: Content-Length,
 * Transfer-Encoding, Connection (any case). */
static inline bool wg_header_host_owned(wg_str name) {
    return wg_str_eq_nocase(name, WG_LIT("content-length")) ||
           wg_str_eq_nocase(name, WG_LIT("transfer-encoding")) ||
           wg_str_eq_nocase(name, WG_LIT("connection"));
}

/* Appends the header `name: value` (repeated names are kept, in order: several set-cookie). One
 * the host would refuse is not added, is recorded as the response's mistake, and returns false:
 * the checks are the host's, in its order (header count, token name, host-owned name, value
 * bytes). */
static inline bool wg_add_header_str(wg_response *r, wg_str name, wg_str value) {
    if (r->header_count >= WG_MAX_RESPONSE_HEADERS) {
        if (!r->error[0]) {
            wg_priv_msg(r->error, "more than 100 header fields (the most the host sends)");
        }
        return false;
    }
    bool bad_name = !wg_header_name_ok(name);
    bool owned = !bad_name && wg_header_host_owned(name);
    bool bad_value = !bad_name && !owned && !wg_header_value_ok(value);
    if (bad_name || owned || bad_value) {
        if (r->error[0]) return false; /* keep the first mistake */
        if (bad_name) {
            wg_priv_msg(r->error, "header name ");
            wg_priv_msg_quoted(r->error, name);
            wg_priv_msg(r->error,
                        " is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~ only)");
        } else if (owned) {
            wg_priv_msg(r->error, "header ");
            wg_priv_msg_quoted(r->error, name);
            wg_priv_msg(r->error, " is set by the host, not by plugins (it owns Content-Length, "
                                  "Transfer-Encoding and Connection)");
        } else {
            wg_priv_msg(r->error, "value of header ");
            wg_priv_msg_quoted(r->error, name);
            wg_priv_msg(r->error, " is ");
            wg_priv_msg_quoted(r->error, value);
            wg_priv_msg(r->error, ": CR, LF, NUL and other control characters (except tab) are "
                                  "not allowed");
        }
        return false;
    }
    if (name.len > UINT32_MAX || value.len > UINT32_MAX || r->header_count == UINT32_MAX) {
        r->headers.failed = true; /* cannot be encoded: only possible off wasm32 */
        return false;
    }
    unsigned char len[4];
    wg_priv_put32(len, (uint32_t)name.len);
    bool ok = wg_buf_append(&r->headers, len, 4) && wg_buf_append_str(&r->headers, name);
    wg_priv_put32(len, (uint32_t)value.len);
    ok = ok && wg_buf_append(&r->headers, len, 4) && wg_buf_append_str(&r->headers, value);
    if (ok) r->header_count++;
    return ok;
}

/* `wg_add_header_str` with NUL-terminated name and value. */
static inline bool wg_add_header(wg_response *r, const char *name, const char *value) {
    return wg_add_header_str(r, wg_cstr(name), wg_cstr(value));
}

/* Replaces the body with `body`. */
static inline bool wg_set_body(wg_response *r, wg_str body) {
    r->body.len = 0;
    return wg_buf_append_str(&r->body, body);
}

/* Appends `s` to the body. The append functions return false when memory ran out; the response
 * then fails as a whole (a trap, reported as 500), so checking each call is optional. */
static inline bool wg_append(wg_response *r, wg_str s) {
    return wg_buf_append_str(&r->body, s);
}

/* Appends a NUL-terminated string to the body. */
static inline bool wg_append_cstr(wg_response *r, const char *s) {
    return wg_buf_append_cstr(&r->body, s);
}

/* Appends a number in decimal to the body. */
static inline bool wg_append_u64(wg_response *r, uint64_t n) {
    return wg_buf_append_u64(&r->body, n);
}

/* Appends `s` JSON-escaped to the body, without quotes (see `wg_buf_append_json`): for building
 * one JSON string out of several pieces. */
static inline bool wg_append_json(wg_response *r, wg_str s) {
    return wg_buf_append_json(&r->body, s);
}

/* Appends `s` to the body as a quoted JSON string. */
static inline bool wg_append_json_string(wg_response *r, wg_str s) {
    return wg_buf_append_json_string(&r->body, s);
}

/* Discards everything built so far (headers, body, a recorded mistake) and answers `status` with
 * `content-type: text/plain; charset=utf-8` and `text` as the body: for error answers. */
static inline void wg_respond_text(wg_response *r, uint32_t status, wg_str text) {
    wg_response_free(r);
    wg_response_init(r, status);
    wg_set_status(r, status);
    wg_add_header(r, "content-type", "text/plain; charset=utf-8");
    wg_set_body(r, text);
}

/* Writes one line to stderr (the host log, tagged with the plugin and the request id): the parts,
 * then a newline. Short writes are retried; errors are ignored. */
static inline void wg_priv_eprint(const char *const *parts, size_t count) {
    for (size_t i = 0; i <= count; i++) {
        const char *p = i < count ? parts[i] : "\n";
        size_t n = strlen(p);
        while (n > 0) {
            ssize_t w = write(2, p, n);
            if (w <= 0) break;
            p += w;
            n -= (size_t)w;
        }
    }
}

/* Writes `line` and a newline to stderr (the host log); `line` should not contain newlines. */
static inline void wg_log(const char *line) {
    wg_priv_eprint(&line, 1);
}

/* If a mistake was recorded, replaces the response with the explained 500 (docs/ABI.md, "What the
 * host refuses": the host would answer a bare 502) and writes the reason to stderr. Returns
 * whether it did. `WASMGATE_HANDLER` calls it after the handler. */
static inline bool wg_response_explain(wg_response *r) {
    char why[WG_PRIV_ERROR_SIZE];
    char body[WG_PRIV_ERROR_SIZE + 128] = "500 Internal Server Error\n\n"
                                          "the plugin built an invalid response: ";
    if (!r->error[0]) return false;
    memcpy(why, r->error, sizeof why);
    const char *line[2] = {"wasmgate.h: the handler built an invalid response, answering 500: ",
                           why};
    wg_priv_eprint(line, 2);
    strcat(body, why); /* fits: the prefix is < 128 bytes, why < WG_PRIV_ERROR_SIZE */
    strcat(body, "\n");
    wg_respond_text(r, 500, wg_cstr(body));
    return true;
}

/* Encodes the response as it is (no checks: see `wg_response_explain`) into `*out`, malloc'd:
 * `u32 status, u32 header_count, headers, str body`. False when memory ran out while building or
 * encoding, or the encoding would exceed 4 GiB. */
static inline bool wg_response_encode(const wg_response *r, wg_bytes *out) {
    out->ptr = NULL;
    out->len = 0;
    if (r->headers.failed || r->body.failed) return false;
    size_t fixed = 12; /* status, header_count, body length */
    if (r->headers.len > SIZE_MAX - fixed || r->body.len > SIZE_MAX - fixed - r->headers.len)
        return false;
    size_t total = fixed + r->headers.len + r->body.len;
    if (total > UINT32_MAX || r->body.len > UINT32_MAX) return false;
    unsigned char *p = (unsigned char *)malloc(total);
    if (!p) return false;
    wg_priv_put32(p, r->status);
    wg_priv_put32(p + 4, r->header_count);
    if (r->headers.len) memcpy(p + 8, r->headers.ptr, r->headers.len);
    wg_priv_put32(p + 8 + r->headers.len, (uint32_t)r->body.len);
    if (r->body.len) memcpy(p + 12 + r->headers.len, r->body.ptr, r->body.len);
    out->ptr = (char *)p;
    out->len = total;
    return true;
}

/* ============================================================================================
 * Exports (docs/ABI.md, "Exports", "Call sequence", "Version 2")
 * ========================================================================================== */

/* What the last `wg_alloc` handed out: the request, or a host call's result. Shared by every
 * translation unit that includes this header (a weak definition: the linker keeps one). */
typedef struct wg_priv_alloc_record {
    char *ptr;
    size_t size;
} wg_priv_alloc_record;
extern wg_priv_alloc_record wg_priv_last_alloc;
__attribute__((weak)) wg_priv_alloc_record wg_priv_last_alloc = {NULL, 0};

__attribute__((noreturn)) static inline void wg_priv_trap(const char *what, const char *detail) {
    const char *line[3] = {"wasmgate.h: ", what, detail ? detail : ""};
    wg_priv_eprint(line, 3);
    __builtin_trap();
}

/* The allocator behind `wasmgate_alloc`: `size` bytes from malloc, plus one NUL byte past them
 * (so results of host calls are NUL-terminated), recorded so that a host call can check the
 * buffer the host says it filled. Returns NULL when memory runs out (the host then answers 500,
 * or the host call returns WG_NO_MEMORY). Works while the plugin is inside a host call, as v2
 * requires (docs/ABI.md, "Re-entrancy"): malloc holds no lock across calls. If you write the
 * exports yourself, your `wasmgate_alloc` must call this. */
static inline void *wg_alloc(uint32_t size) {
    size_t n = size;
    if (n == SIZE_MAX) return NULL;
    char *p = (char *)malloc(n + 1);
    if (!p) return NULL;
    if ((uintptr_t)p > UINT32_MAX) { /* native 64-bit targets only: not addressable by the host */
        free(p);
        return NULL;
    }
    p[n] = '\0';
    wg_priv_last_alloc.ptr = p;
    wg_priv_last_alloc.size = n;
    return p;
}

/* The signature of a handler: read `req`, fill in `resp` (which starts as 200, no headers, empty
 * body). Both belong to the caller; the handler frees nothing. */
typedef void (*wg_handler_fn)(const wg_request *req, wg_response *resp);

/* What `wasmgate_handle` does: takes back the request buffer (it must be the one `wg_alloc` just
 * handed out, and `len` must fit in it, else the host broke the ABI and this traps), decodes it
 * (an invalid encoding traps, naming the problem), runs `handler`, explains a response the host
 * would refuse, encodes it and returns `(resp_ptr << 32) | resp_len`. The response buffer is
 * never freed: the instance is dropped once the host has read it. */
static inline uint64_t wg_serve(uint32_t ptr, uint32_t len, wg_handler_fn handler) {
    wg_request req;
    wg_response resp;
    wg_bytes out;
    const char *error = NULL;
    char *buf = wg_priv_last_alloc.ptr;
    if (buf == NULL || (uintptr_t)buf != ptr || len > wg_priv_last_alloc.size)
        wg_priv_trap("wasmgate_handle: the request is not the buffer wasmgate_alloc returned",
                     " (ABI mismatch?)");
    wg_priv_last_alloc.ptr = NULL;
    wg_priv_last_alloc.size = 0;
    if (!wg_request_decode(buf, len, &req, &error))
        wg_priv_trap("the host sent an undecodable request (ABI mismatch?): ", error);
    wg_response_init(&resp, 200);
    handler(&req, &resp);
    wg_response_explain(&resp);
    if (!wg_response_encode(&resp, &out))
        wg_priv_trap("out of memory building the response", NULL);
    if ((uintptr_t)out.ptr > UINT32_MAX) /* native 64-bit targets only */
        wg_priv_trap("the response is not addressable by the host", NULL);
    wg_response_free(&resp);
    wg_request_free(&req);
    return (uint64_t)(uintptr_t)out.ptr << 32 | (uint64_t)out.len;
}

/* Defines the exports of a v2 plugin whose handler is `handler` (a `wg_handler_fn`): the
 * functions `wasmgate_abi_version` (returns 2), `wasmgate_alloc` (`wg_alloc`) and
 * `wasmgate_handle` (`wg_serve`). Use it once, at file scope, in one file of the plugin. */
#define WASMGATE_HANDLER(handler)                                                                \
    int32_t wasmgate_abi_version(void);                                                          \
    uint32_t wasmgate_alloc(uint32_t size);                                                      \
    uint64_t wasmgate_handle(uint32_t ptr, uint32_t len);                                        \
    WG_PRIV_EXPORT("wasmgate_abi_version") int32_t wasmgate_abi_version(void) {                 \
        return WASMGATE_ABI_VERSION;                                                             \
    }                                                                                            \
    WG_PRIV_EXPORT("wasmgate_alloc") uint32_t wasmgate_alloc(uint32_t size) {                   \
        void *p = wg_alloc(size);                                                                \
        return (uint32_t)(uintptr_t)p;                                                           \
    }                                                                                            \
    WG_PRIV_EXPORT("wasmgate_handle") uint64_t wasmgate_handle(uint32_t ptr, uint32_t len) {    \
        return wg_serve(ptr, len, (handler));                                                    \
    }

/* ============================================================================================
 * Host functions (docs/ABI.md, "Host functions", "Error codes", "Capabilities", "The functions")
 *
 * Each wrapper below makes one call of the `wasmgate` import module and returns its error code.
 * The last argument, `msg`, receives the host's explanation on failure (UTF-8 text for people:
 * logs, error bodies; match on the code, not the text); on success it is emptied. A result goes
 * to its own out-argument on success and is empty on failure. Both are owned by the caller and
 * may be NULL when not wanted. Results arrive through `wasmgate_alloc`, called by the host during
 * the call (hence the re-entrancy rule above).
 *
 * Grants: a plugin may only import the functions its configuration grants, or the host refuses
 * to load it, naming the grant to add (`[plugins.NAME.vars]` for wg_var_get, `kv = [...]` for
 * wg_kv_*, `allowed_outbound_hosts = [...]` for wg_http_send). A wrapper's import exists in the
 * module only if the plugin calls the wrapper (an unused `static inline` function is never
 * emitted, at any -O level); `wasmgate check plugin.wasm` lists a module's imports.
 * ========================================================================================== */

/* The error codes of docs/ABI.md, "Error codes". A later host may return codes not listed here:
 * treat any non-zero value as a failure. */
typedef enum wg_errno {
    WG_OK = 0,               /* success: the result, if any, is in the out-argument */
    WG_NOT_FOUND = 1,        /* the variable or key does not exist */
    WG_INVALID = 2,          /* a malformed argument (not UTF-8, bad encoding, not an integer) */
    WG_DENIED = 3,           /* not granted (store, outbound URL); the message names the grant */
    WG_TOO_LARGE = 4,        /* a key, value, request or response exceeds its limit */
    WG_LIMIT_REACHED = 5,    /* a per-request limit (store operations, outbound calls) */
    WG_CONFLICT = 6,         /* a compare-and-swap found another value */
    WG_UNAVAILABLE = 7,      /* the backend is down or refused the operation */
    WG_TIMEOUT = 8,          /* the operation's bound or the request's deadline passed */
    WG_DNS = 9,              /* the destination's name did not resolve */
    WG_CONNECT = 10,         /* no connection could be made */
    WG_BUSY = 11,            /* the plugin's outbound concurrency cap is reached */
    WG_ADDRESS_BLOCKED = 12, /* SSRF guard: a private/loopback/metadata address not allowed */
    WG_PROTOCOL = 13,        /* the peer (or the host's answer) broke its protocol */
    WG_NO_MEMORY = 14        /* wasmgate_alloc could not provide the result buffer */
} wg_errno;

/* The spec's snake_case name of `code` ("not_found", ...), or "unknown" for a code this header
 * does not know. */
static inline const char *wg_errno_name(wg_errno code) {
    static const char *const names[] = {
        "ok",          "not_found", "invalid", "denied",          "too_large",
        "limit_reached", "conflict", "unavailable", "timeout",     "dns",
        "connect",     "busy",      "address_blocked", "protocol", "no_memory"};
    size_t i = (size_t)code; /* an unknown code may be any value of the enum's type */
    if (i >= sizeof names / sizeof names[0]) return "unknown";
    return names[i];
}

/* `kv_cas`'s "the key must be absent" length (docs/ABI.md, "The functions"). */
#define WG_ABSENT UINT32_C(0xffffffff)

/* What `kv_ttl` reports for a key that never expires (a live key has at least 1 ms left). */
#define WG_NO_EXPIRY INT64_C(-1)

/* The raw imports (docs/ABI.md, "The functions"). Pointers and sizes are i32 on wasm32. Call the
 * wrappers instead: they handle `ret` and the result buffers. */
WG_PRIV_IMPORT("var_get")
int32_t wg_import_var_get(const void *name, size_t name_len, void *ret);
WG_PRIV_IMPORT("kv_open")
int32_t wg_import_kv_open(const void *store, size_t store_len, void *ret);
WG_PRIV_IMPORT("kv_get")
int32_t wg_import_kv_get(const void *store, size_t store_len, const void *key, size_t key_len,
                         void *ret);
WG_PRIV_IMPORT("kv_set")
int32_t wg_import_kv_set(const void *store, size_t store_len, const void *key, size_t key_len,
                         const void *value, size_t value_len, int64_t ttl_ms, void *ret);
WG_PRIV_IMPORT("kv_delete")
int32_t wg_import_kv_delete(const void *store, size_t store_len, const void *key, size_t key_len,
                            void *ret);
WG_PRIV_IMPORT("kv_exists")
int32_t wg_import_kv_exists(const void *store, size_t store_len, const void *key, size_t key_len,
                            void *ret);
WG_PRIV_IMPORT("kv_incr")
int32_t wg_import_kv_incr(const void *store, size_t store_len, const void *key, size_t key_len,
                          int64_t delta, void *ret);
WG_PRIV_IMPORT("kv_incr_ttl")
int32_t wg_import_kv_incr_ttl(const void *store, size_t store_len, const void *key,
                              size_t key_len, int64_t delta, int64_t ttl_ms, void *ret);
WG_PRIV_IMPORT("kv_ttl")
int32_t wg_import_kv_ttl(const void *store, size_t store_len, const void *key, size_t key_len,
                         void *ret);
WG_PRIV_IMPORT("kv_cas")
int32_t wg_import_kv_cas(const void *store, size_t store_len, const void *key, size_t key_len,
                         const void *expected, size_t expected_len, const void *new_value,
                         size_t new_len, int64_t ttl_ms, void *ret);
WG_PRIV_IMPORT("kv_list")
int32_t wg_import_kv_list(const void *store, size_t store_len, const void *prefix,
                          size_t prefix_len, const void *cursor, size_t cursor_len, uint32_t limit,
                          void *ret);
WG_PRIV_IMPORT("http_send")
int32_t wg_import_http_send(const void *request, size_t request_len, void *ret);
WG_PRIV_IMPORT("http_send_timeout")
int32_t wg_import_http_send_timeout(const void *request, size_t request_len, int64_t timeout_ms,
                                    void *ret);

/* Empties the record of the last allocation: done before every host call, so that afterwards it
 * names the buffer the host allocated during the call, if any. */
static inline void wg_priv_call_begin(void) {
    wg_priv_last_alloc.ptr = NULL;
    wg_priv_last_alloc.size = 0;
}

/* A message of our own, as if the host had sent it: a malloc'd copy of `text`. */
static inline wg_bytes wg_priv_own_message(const char *text) {
    wg_bytes b = {NULL, 0};
    size_t n = strlen(text);
    b.ptr = (char *)malloc(n + 1);
    if (b.ptr) {
        memcpy(b.ptr, text, n + 1);
        b.len = n;
    }
    return b;
}

/* Hands `got` to `*result` (success) or `*msg` (failure), emptying the other; frees it when the
 * destination is NULL. */
static inline wg_errno wg_priv_deliver(wg_errno code, wg_bytes got, wg_bytes *result,
                                       wg_bytes *msg) {
    wg_bytes empty = {NULL, 0};
    wg_bytes *to = code == WG_OK ? result : msg;
    if (result) *result = empty;
    if (msg) *msg = empty;
    if (to) *to = got;
    else free(got.ptr);
    return code;
}

/* Reads `(result_ptr, result_len)` at `ret` after a host call that returned `raw`, checks that it
 * is empty or the buffer `wg_alloc` handed out during the call (at most as long), and delivers it.
 * A host that points anywhere else broke the ABI: WG_PROTOCOL, with a message. */
static inline wg_errno wg_priv_call_end(int32_t raw, const unsigned char ret[8], wg_bytes *result,
                                        wg_bytes *msg) {
    uint32_t rp = wg_priv_le32(ret), rl = wg_priv_le32(ret + 4);
    char *mine = wg_priv_last_alloc.ptr;
    size_t cap = wg_priv_last_alloc.size;
    wg_bytes got = {NULL, 0};
    /* The code as the enum: the enum's type holds every int the host may return (clang makes
     * it `unsigned int`; the conversion is well defined). */
    wg_errno code = (wg_errno)raw;
    wg_priv_call_begin();
    if (rp == 0 && rl == 0) {
        free(mine); /* allocated but not used: nothing to hand over */
    } else if (mine == NULL || (uintptr_t)mine != rp || rl > cap) {
        free(mine);
        return wg_priv_deliver(
            WG_PROTOCOL,
            wg_priv_own_message("wasmgate.h: the host's result is not the buffer wasmgate_alloc "
                                "gave it (ABI mismatch?)"),
            result, msg);
    } else {
        mine[rl] = '\0';
        got.ptr = mine;
        got.len = rl;
    }
    return wg_priv_deliver(code, got, result, msg);
}

#define WG_PRIV_RET unsigned char ret[8] = {0, 0, 0, 0, 0, 0, 0, 0}

/* var_get: the value of the plugin's variable `name` (`[plugins.NAME.vars]`, secrets included),
 * as UTF-8 text in `*value`. WG_NOT_FOUND when the plugin has no such variable. Grant: a
 * `[plugins.NAME.vars]` table. */
static inline wg_errno wg_var_get(const char *name, wg_bytes *value, wg_bytes *msg) {
    wg_str n = wg_cstr(name);
    WG_PRIV_RET;
    wg_priv_call_begin();
    int32_t raw = wg_import_var_get(n.ptr, n.len, ret);
    return wg_priv_call_end(raw, ret, value, msg);
}

/* kv_open: checks that `store` is granted (WG_DENIED otherwise) and usable. Optional: every kv
 * call checks the same. Grant (for all wg_kv_*): `kv = ["STORE", ...]`. */
static inline wg_errno wg_kv_open(const char *store, wg_bytes *msg) {
    wg_str s = wg_cstr(store);
    WG_PRIV_RET;
    wg_priv_call_begin();
    int32_t raw = wg_import_kv_open(s.ptr, s.len, ret);
    return wg_priv_call_end(raw, ret, NULL, msg);
}

/* kv_get: the value stored under `key` in `*value`; WG_NOT_FOUND when absent or expired. */
static inline wg_errno wg_kv_get(const char *store, wg_str key, wg_bytes *value, wg_bytes *msg) {
    wg_str s = wg_cstr(store);
    WG_PRIV_RET;
    wg_priv_call_begin();
    int32_t raw = wg_import_kv_get(s.ptr, s.len, key.ptr, key.len, ret);
    return wg_priv_call_end(raw, ret, value, msg);
}

/* kv_set: stores `value` under `key`, expiring after `ttl_ms` milliseconds (`ttl_ms <= 0`:
 * never). */
static inline wg_errno wg_kv_set(const char *store, wg_str key, wg_str value, int64_t ttl_ms,
                                 wg_bytes *msg) {
    wg_str s = wg_cstr(store);
    WG_PRIV_RET;
    wg_priv_call_begin();
    int32_t raw =
        wg_import_kv_set(s.ptr, s.len, key.ptr, key.len, value.ptr, value.len, ttl_ms, ret);
    return wg_priv_call_end(raw, ret, NULL, msg);
}

/* kv_delete: removes `key`; WG_NOT_FOUND when there was nothing to delete. */
static inline wg_errno wg_kv_delete(const char *store, wg_str key, wg_bytes *msg) {
    wg_str s = wg_cstr(store);
    WG_PRIV_RET;
    wg_priv_call_begin();
    int32_t raw = wg_import_kv_delete(s.ptr, s.len, key.ptr, key.len, ret);
    return wg_priv_call_end(raw, ret, NULL, msg);
}

/* kv_exists: WG_OK when `key` exists, WG_NOT_FOUND when not (or another failure code). */
static inline wg_errno wg_kv_exists(const char *store, wg_str key, wg_bytes *msg) {
    wg_str s = wg_cstr(store);
    WG_PRIV_RET;
    wg_priv_call_begin();
    int32_t raw = wg_import_kv_exists(s.ptr, s.len, key.ptr, key.len, ret);
    return wg_priv_call_end(raw, ret, NULL, msg);
}

/* The end of a host call whose result is one 8-byte little-endian i64 (kv_incr, kv_incr_ttl,
 * kv_ttl): puts it in `*out` (untouched on failure); WG_PROTOCOL when the host answered
 * another size. */
static inline wg_errno wg_priv_i64_result(int32_t raw, const unsigned char *ret, int64_t *out,
                                          wg_bytes *msg) {
    wg_bytes got = {NULL, 0};
    wg_errno code = wg_priv_call_end(raw, ret, &got, msg);
    if (code != WG_OK) return code;
    if (got.len != 8) {
        free(got.ptr);
        return wg_priv_deliver(
            WG_PROTOCOL,
            wg_priv_own_message("wasmgate.h: a kv result is not 8 bytes (ABI mismatch?)"), NULL,
            msg);
    }
    uint64_t u = (uint64_t)wg_priv_le32((const unsigned char *)got.ptr) |
                 (uint64_t)wg_priv_le32((const unsigned char *)got.ptr + 4) << 32;
    free(got.ptr);
    /* Two's complement without an implementation-defined conversion. */
    if (out) *out = u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
    return WG_OK;
}

/* kv_incr: adds `delta` to the integer stored under `key` (an absent key counts from 0; the
 * stored value is its decimal text) and puts the new value in `*new_value` (untouched on
 * failure). WG_INVALID when the stored value is not an integer. An expiry is kept. */
static inline wg_errno wg_kv_incr(const char *store, wg_str key, int64_t delta,
                                  int64_t *new_value, wg_bytes *msg) {
    wg_str s = wg_cstr(store);
    WG_PRIV_RET;
    wg_priv_call_begin();
    int32_t raw = wg_import_kv_incr(s.ptr, s.len, key.ptr, key.len, delta, ret);
    return wg_priv_i64_result(raw, ret, new_value, msg);
}

/* kv_incr_ttl: wg_kv_incr, and a key this call creates (absent or expired) expires after
 * `ttl_ms` (<= 0: never); an existing key keeps its expiry. One call is a fixed-window counter:
 * `wg_kv_incr_ttl("rl", key, 1, 60000, &n, NULL)` opens a one-minute window at the first hit and
 * counts into it after. WG_TOO_LARGE for a `ttl_ms` past the store's `max_ttl`, key or no key. */
static inline wg_errno wg_kv_incr_ttl(const char *store, wg_str key, int64_t delta,
                                      int64_t ttl_ms, int64_t *new_value, wg_bytes *msg) {
    wg_str s = wg_cstr(store);
    WG_PRIV_RET;
    wg_priv_call_begin();
    int32_t raw = wg_import_kv_incr_ttl(s.ptr, s.len, key.ptr, key.len, delta, ttl_ms, ret);
    return wg_priv_i64_result(raw, ret, new_value, msg);
}

/* kv_ttl: puts the milliseconds `key` has left in `*ttl_ms` (at least 1), or WG_NO_EXPIRY when
 * it never expires; WG_NOT_FOUND when it is absent or expired. */
static inline wg_errno wg_kv_ttl(const char *store, wg_str key, int64_t *ttl_ms, wg_bytes *msg) {
    wg_str s = wg_cstr(store);
    WG_PRIV_RET;
    wg_priv_call_begin();
    int32_t raw = wg_import_kv_ttl(s.ptr, s.len, key.ptr, key.len, ret);
    return wg_priv_i64_result(raw, ret, ttl_ms, msg);
}

/* kv_cas: stores `new_value` under `key` only if the current value is `*expected`, or, with
 * `expected == NULL`, only if the key is absent; WG_CONFLICT otherwise. `ttl_ms` as for kv_set. */
static inline wg_errno wg_kv_cas(const char *store, wg_str key, const wg_str *expected,
                                 wg_str new_value, int64_t ttl_ms, wg_bytes *msg) {
    wg_str s = wg_cstr(store);
    const void *e = NULL;
    size_t e_len = (size_t)WG_ABSENT;
    WG_PRIV_RET;
    if (expected) {
        if (expected->len >= (size_t)WG_ABSENT)
            return wg_priv_deliver(WG_TOO_LARGE,
                                   wg_priv_own_message("wasmgate.h: kv_cas: expected is too large"),
                                   NULL, msg);
        e = expected->ptr;
        e_len = expected->len;
    }
    wg_priv_call_begin();
    int32_t raw = wg_import_kv_cas(s.ptr, s.len, key.ptr, key.len, e, e_len, new_value.ptr,
                                   new_value.len, ttl_ms, ret);
    return wg_priv_call_end(raw, ret, NULL, msg);
}

/* One page of keys from kv_list. `keys` (malloc'd, NULL when empty) and `next` point into `raw`;
 * release everything with `wg_key_page_free`. */
typedef struct wg_key_page {
    wg_str *keys;  /* keys with the prefix, in ascending byte order */
    size_t count;
    wg_str next;   /* pass back as `cursor` for the next page; empty: this was the last page */
    wg_bytes raw;  /* the encoded page the strings point into */
} wg_key_page;

static inline void wg_key_page_free(wg_key_page *page) {
    free(page->keys);
    wg_bytes_free(&page->raw);
    page->keys = NULL;
    page->count = 0;
    page->next.ptr = NULL;
    page->next.len = 0;
}

/* Decodes a key page (`u32 count, count x str key, str next_cursor`, exactly `len` bytes) into
 * `*page`, whose strings point into `buf`; `page->raw` is left empty. */
static inline bool wg_key_page_decode(const void *buf, size_t len, wg_key_page *page,
                                      const char **error) {
    wg_priv_reader r = {(const unsigned char *)buf, len, 0, NULL};
    size_t n = 0;
    memset(page, 0, sizeof *page);
    if (!buf && len != 0) wg_priv_fail(&r, "no buffer");
    if (wg_priv_read_count(&r, &n, 4, sizeof(wg_str), "key count is truncated",
                           "a key is past the end") &&
        n != 0) {
        page->keys = (wg_str *)malloc(n * sizeof(wg_str));
        if (!page->keys) wg_priv_fail(&r, "out of memory");
        for (size_t i = 0; i < n && !r.error; i++)
            wg_priv_read_str(&r, &page->keys[i], "a key is past the end", "a key is past the end");
        if (!r.error) page->count = n;
    }
    wg_priv_read_str(&r, &page->next, "next cursor length is truncated",
                     "next cursor is past the end");
    if (!wg_priv_read_end(&r)) {
        wg_key_page_free(page);
        if (error) *error = r.error;
        return false;
    }
    if (error) *error = NULL;
    return true;
}

/* kv_list: up to `limit` keys starting with `prefix`, after `cursor` (empty: from the start), in
 * `*page` (capped by the store's max_list_keys; empty on failure). Loop while
 * `page->next.len != 0`, passing `page->next` as the cursor (copy it first if you free the page
 * before the next call). */
static inline wg_errno wg_kv_list(const char *store, wg_str prefix, wg_str cursor, uint32_t limit,
                                  wg_key_page *page, wg_bytes *msg) {
    wg_str s = wg_cstr(store);
    wg_bytes got = {NULL, 0};
    wg_key_page decoded;
    WG_PRIV_RET;
    if (page) memset(page, 0, sizeof *page);
    wg_priv_call_begin();
    int32_t raw = wg_import_kv_list(s.ptr, s.len, prefix.ptr, prefix.len, cursor.ptr, cursor.len,
                                    limit, ret);
    wg_errno code = wg_priv_call_end(raw, ret, &got, msg);
    if (code != WG_OK) return code;
    if (!wg_key_page_decode(got.ptr, got.len, &decoded, NULL)) {
        free(got.ptr);
        return wg_priv_deliver(
            WG_PROTOCOL,
            wg_priv_own_message("wasmgate.h: kv_list's result is not a key page (ABI mismatch?)"),
            NULL, msg);
    }
    decoded.raw = got;
    if (page) *page = decoded;
    else wg_key_page_free(&decoded);
    return WG_OK;
}

/* An outbound HTTP request for wg_http_send. All strings are borrowed. */
typedef struct wg_http_request {
    wg_str method;          /* e.g. WG_LIT("GET") */
    wg_str url;             /* absolute http(s):// URL, allowed by allowed_outbound_hosts */
    const wg_pair *headers; /* may be NULL when header_count is 0 */
    size_t header_count;
    wg_str body;            /* empty for none */
} wg_http_request;

/* The upstream's answer. `headers` (malloc'd) and `body` point into `raw`; release everything
 * with `wg_http_response_free`. */
typedef struct wg_http_response {
    uint32_t status;
    wg_pair *headers;
    size_t header_count;
    wg_str body;
    wg_bytes raw;
} wg_http_response;

static inline void wg_http_response_free(wg_http_response *resp) {
    free(resp->headers);
    wg_bytes_free(&resp->raw);
    memset(resp, 0, sizeof *resp);
}

/* The value of the upstream's first header named `name` (ASCII case-insensitive). */
static inline bool wg_http_response_header(const wg_http_response *resp, const char *name,
                                           wg_str *value) {
    return wg_pairs_find(resp->headers, resp->header_count, name, true, value);
}

static inline bool wg_priv_add(size_t *total, size_t n) {
    if (n > SIZE_MAX - *total) return false;
    *total += n;
    return true;
}

/* Writes a `str` at `*p` and advances it; the caller has checked that it fits. */
static inline void wg_priv_put_str(unsigned char **p, wg_str s) {
    wg_priv_put32(*p, (uint32_t)s.len);
    if (s.len) memcpy(*p + 4, s.ptr, s.len);
    *p += 4 + s.len;
}

/* Encodes `req` as an outbound request (`str method, str url, u32 header_count, headers,
 * str body`) into `*out`, malloc'd. False when it would exceed 4 GiB or memory runs out. */
static inline bool wg_http_request_encode(const wg_http_request *req, wg_bytes *out) {
    size_t total = 0;
    bool ok = req->header_count <= UINT32_MAX && (req->headers || req->header_count == 0);
    out->ptr = NULL;
    out->len = 0;
    ok = ok && req->method.len <= UINT32_MAX && wg_priv_add(&total, 4 + req->method.len);
    ok = ok && req->url.len <= UINT32_MAX && wg_priv_add(&total, 4 + req->url.len);
    ok = ok && wg_priv_add(&total, 4);
    for (size_t i = 0; ok && i < req->header_count; i++) {
        ok = req->headers[i].name.len <= UINT32_MAX && req->headers[i].value.len <= UINT32_MAX &&
             wg_priv_add(&total, 8) && wg_priv_add(&total, req->headers[i].name.len) &&
             wg_priv_add(&total, req->headers[i].value.len);
    }
    ok = ok && req->body.len <= UINT32_MAX && wg_priv_add(&total, 4) &&
         wg_priv_add(&total, req->body.len) && total <= UINT32_MAX;
    if (!ok) return false;
    unsigned char *buf = (unsigned char *)malloc(total);
    if (!buf) return false;
    unsigned char *p = buf;
    wg_priv_put_str(&p, req->method);
    wg_priv_put_str(&p, req->url);
    wg_priv_put32(p, (uint32_t)req->header_count);
    p += 4;
    for (size_t i = 0; i < req->header_count; i++) {
        wg_priv_put_str(&p, req->headers[i].name);
        wg_priv_put_str(&p, req->headers[i].value);
    }
    wg_priv_put_str(&p, req->body);
    out->ptr = (char *)buf;
    out->len = total;
    return true;
}

/* Decodes a response (`u32 status, u32 header_count, headers, str body`, exactly `len` bytes)
 * into `*resp`, whose strings point into `buf`; `resp->raw` is left empty. */
static inline bool wg_http_response_decode(const void *buf, size_t len, wg_http_response *resp,
                                           const char **error) {
    wg_priv_reader r = {(const unsigned char *)buf, len, 0, NULL};
    memset(resp, 0, sizeof *resp);
    if (!buf && len != 0) wg_priv_fail(&r, "no buffer");
    wg_priv_read_u32(&r, &resp->status, "status is truncated");
    if (!r.error)
        wg_priv_read_pairs(&r, &resp->headers, &resp->header_count, "a header is past the end");
    wg_priv_read_str(&r, &resp->body, "body length is truncated", "body is past the end");
    if (!wg_priv_read_end(&r)) {
        wg_http_response_free(resp);
        if (error) *error = r.error;
        return false;
    }
    if (error) *error = NULL;
    return true;
}

/* The shared body of wg_http_send and wg_http_send_timeout (`timeout_ms < 0`: http_send). */
static inline wg_errno wg_priv_http_send(const wg_http_request *req, int64_t timeout_ms,
                                         wg_http_response *resp, wg_bytes *msg) {
    wg_bytes encoded, got = {NULL, 0};
    wg_http_response decoded;
    WG_PRIV_RET;
    if (resp) memset(resp, 0, sizeof *resp);
    if (!wg_http_request_encode(req, &encoded))
        return wg_priv_deliver(
            WG_TOO_LARGE,
            wg_priv_own_message("wasmgate.h: http_send: the request cannot be encoded "
                                "(larger than 4 GiB, or out of memory)"),
            NULL, msg);
    wg_priv_call_begin();
    int32_t raw = timeout_ms < 0
                      ? wg_import_http_send(encoded.ptr, encoded.len, ret)
                      : wg_import_http_send_timeout(encoded.ptr, encoded.len, timeout_ms, ret);
    free(encoded.ptr);
    wg_errno code = wg_priv_call_end(raw, ret, &got, msg);
    if (code != WG_OK) return code;
    if (!wg_http_response_decode(got.ptr, got.len, &decoded, NULL)) {
        free(got.ptr);
        return wg_priv_deliver(
            WG_PROTOCOL,
            wg_priv_own_message("wasmgate.h: http_send's result is not a response (ABI mismatch?)"),
            NULL, msg);
    }
    decoded.raw = got;
    if (resp) *resp = decoded;
    else wg_http_response_free(&decoded);
    return WG_OK;
}

/* http_send: sends `req` and puts the upstream's answer (any status: a 404 upstream is WG_OK) in
 * `*resp` (empty on failure). Failures are codes: WG_DENIED (URL not in allowed_outbound_hosts:
 * the message names the entry to add), WG_DNS, WG_CONNECT, WG_TIMEOUT, WG_ADDRESS_BLOCKED,
 * WG_TOO_LARGE, WG_BUSY, WG_LIMIT_REACHED, WG_PROTOCOL. Grant:
 * `allowed_outbound_hosts = ["https://HOST", ...]`. */
static inline wg_errno wg_http_send(const wg_http_request *req, wg_http_response *resp,
                                    wg_bytes *msg) {
    return wg_priv_http_send(req, -1, resp, msg);
}

/* http_send_timeout: wg_http_send, ending WG_TIMEOUT after at most `timeout_ms` (0: no bound of
 * the call's own). The host's bounds (outbound_timeout, the deadline less outbound_reserve)
 * still apply: the call's own bound can only shorten them. A negative `timeout_ms` is 0. */
static inline wg_errno wg_http_send_timeout(const wg_http_request *req, int64_t timeout_ms,
                                            wg_http_response *resp, wg_bytes *msg) {
    return wg_priv_http_send(req, timeout_ms < 0 ? 0 : timeout_ms, resp, msg);
}

#endif /* WASMGATE_H */
