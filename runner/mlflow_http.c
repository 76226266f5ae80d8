/* mlflow_http.c -- see mlflow_http.h. */
#include "mlflow_http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct mf_client {
    CURL *h;
    char *base;             /* uri without a trailing '/' */
    struct curl_slist *json_hdrs, *put_hdrs;
    const volatile int *abort;
    long timeout_ms, connect_ms;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc;
static void global_init(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int mf_global_init(void) {
    pthread_once(&g_once, global_init);
    return g_init_rc == CURLE_OK ? 0 : -1;
}

static double env_seconds(const char *name, double dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end;
    double d = strtod(v, &end);
    return (*end || !(d > 0)) ? dflt : d;
}

static int env_true(const char *name) {
    const char *v = getenv(name);
    return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0);
}

int mf_client_new(const char *uri, const volatile int *abort, mf_client **out, lm_err *e) {
    *out = NULL;
    if (mf_global_init()) return lm_fail(e, LUMEN_EIO, "curl_global_init failed");
    mf_client *c = calloc(1, sizeof *c);
    if (!c) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    c->abort = abort;
    c->base = lm_strdup(uri);
    c->h = curl_easy_init();
    if (!c->base || !c->h) {
        mf_client_free(c);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory (curl)");
    }
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/') c->base[--n] = '\0';
    c->timeout_ms = (long)(env_seconds("LUMEN_TRACKING_TIMEOUT", 30) * 1000);
    c->connect_ms = (long)(env_seconds("LUMEN_TRACKING_CONNECT_TIMEOUT", 5) * 1000);
    c->json_hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    c->put_hdrs = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    const char *tok = getenv("MLFLOW_TRACKING_TOKEN");
    if (tok && *tok) {
        char *h = lm_sprintf("Authorization: Bearer %s", tok);
        if (h) {
            c->json_hdrs = curl_slist_append(c->json_hdrs, h);
            c->put_hdrs = curl_slist_append(c->put_hdrs, h);
            memset(h, 0, strlen(h));
            free(h);
        }
    }
    if (!c->json_hdrs || !c->put_hdrs) {
        mf_client_free(c);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory (curl)");
    }
    *out = c;
    return 0;
}

void mf_client_free(mf_client *c) {
    if (!c) return;
    if (c->h) curl_easy_cleanup(c->h);
    curl_slist_free_all(c->json_hdrs);
    curl_slist_free_all(c->put_hdrs);
    free(c->base);
    free(c);
}

void mf_client_set_timeout(mf_client *c, double seconds) { c->timeout_ms = (long)(seconds * 1000); }

void mf_resp_free(mf_resp *r) {
    free(r->body);
    r->body = NULL;
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
    buf *b = arg;
    size_t n = size * nmemb;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg) {
    mf_resp *r = arg;
    size_t n = size * nmemb;
    static const char key[] = "retry-after:";
    if (n > sizeof key - 1 && strncasecmp(data, key, sizeof key - 1) == 0) {
        char tmp[64];
        size_t l = n - (sizeof key - 1) < sizeof tmp - 1 ? n - (sizeof key - 1) : sizeof tmp - 1;
        memcpy(tmp, data + sizeof key - 1, l);
        tmp[l] = '\0';
        char *end;
        double d = strtod(tmp, &end);
        if (end != tmp && d >= 0) r->retry_after = d; /* seconds; an HTTP date is ignored (backoff applies) */
    }
    return n;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    (void)a, (void)b, (void)c, (void)d;
    const volatile int *abort = arg;
    return abort && *abort ? 1 : 0;
}

/* The server's message from an MLflow error body, else the body's start. */
static void server_message(const char *body, char *out, size_t n) {
    out[0] = '\0';
    if (!body) return;
    const char *m = strstr(body, "\"message\"");
    if (m) {
        m = strchr(m + 9, '"');
        if (m) {
            size_t k = 0;
            for (m++; *m && *m != '"' && k + 1 < n; m++) {
                if (*m == '\\' && m[1]) m++;
                out[k++] = *m == '\n' ? ' ' : *m;
            }
            out[k] = '\0';
            return;
        }
    }
    size_t k = 0;
    for (; body[k] && k + 1 < n && k < 200; k++) out[k] = isprint((unsigned char)body[k]) ? body[k] : ' ';
    out[k] = '\0';
}

mf_class mf_request(mf_client *c, const char *method, const char *path, const char *json, const char *file,
                    mf_resp *r) {
    memset(r, 0, sizeof *r);
    if (c->abort && *c->abort) {
        snprintf(r->msg, sizeof r->msg, "%s %s: abandoned", method, path);
        return MF_ABORTED;
    }
    CURL *h = c->h;
    curl_easy_reset(h);
    char *url = lm_sprintf("%s%s", c->base, path);
    buf b = {0};
    FILE *in = NULL;
    if (!url) {
        snprintf(r->msg, sizeof r->msg, "out of memory");
        return MF_RETRY;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, env_true("MLFLOW_TRACKING_INSECURE_TLS") ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, env_true("MLFLOW_TRACKING_INSECURE_TLS") ? 0L : 2L);
    const char *ca = getenv("MLFLOW_TRACKING_SERVER_CERT_PATH");
    if (ca && *ca) curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    const char *user = getenv("MLFLOW_TRACKING_USERNAME"), *pass = getenv("MLFLOW_TRACKING_PASSWORD");
    if (user && *user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, pass ? pass : "");
    }
    curl_easy_setopt(h, CURLOPT_USERAGENT, "lumen-runner");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)c->abort);
    if (file) {
        struct stat sb;
        in = fopen(file, "rb");
        if (!in || fstat(fileno(in), &sb) != 0) {
            snprintf(r->msg, sizeof r->msg, "cannot read %s", file);
            if (in) fclose(in);
            free(url);
            return MF_REFUSED;
        }
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READDATA, in);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)sb.st_size);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->put_hdrs);
        /* large files: a stall, not the size, is what times out */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (c->timeout_ms + 999) / 1000);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->json_hdrs);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
        if (json) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
        }
        if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode cc = curl_easy_perform(h);
    if (in) fclose(in);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    r->body = b.p;
    mf_class cls;
    if (c->abort && *c->abort && cc != CURLE_OK) {
        r->maybe_landed = 1;
        snprintf(r->msg, sizeof r->msg, "%s %s: abandoned (the run ended)", method, path);
        cls = MF_ABORTED;
    } else if (cc != CURLE_OK) {
        /* before the request went out: refused connection, DNS, connect timeout */
        double sent = 0;
        curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME, &sent);
        r->maybe_landed = sent > 0 && cc != CURLE_COULDNT_CONNECT && cc != CURLE_COULDNT_RESOLVE_HOST;
        snprintf(r->msg, sizeof r->msg, "%s %s: %s", method, path, curl_easy_strerror(cc));
        cls = (cc == CURLE_SSL_CACERT || cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_URL_MALFORMAT ||
               cc == CURLE_UNSUPPORTED_PROTOCOL)
                  ? MF_REFUSED
                  : MF_RETRY;
    } else {
        /* 429 and 503 say the request was not taken; other answers may follow
         * work the server did (a 500 after its write, a 504 from a proxy) */
        r->maybe_landed = r->status != 429 && r->status != 503;
        char sm[400];
        server_message(r->body, sm, sizeof sm);
        if (r->status >= 200 && r->status < 300) cls = MF_OK;
        else if (r->status == 429 || r->status >= 500) cls = MF_RETRY;
        else if (r->status == 401 || r->status == 403) cls = MF_AUTH;
        else cls = MF_REFUSED;
        if (cls != MF_OK) snprintf(r->msg, sizeof r->msg, "%s %s: HTTP %ld: %s", method, path, r->status, sm);
    }
    free(url);
    return cls;
}

char *mf_escape(const char *s, int keep_slash) {
    size_t n = strlen(s);
    char *o = malloc(3 * n + 1), *w = o;
    if (!o) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/')) {
            *w++ = (char)*p;
        } else {
            snprintf(w, 4, "%%%02X", *p);
            w += 3;
        }
    }
    *w = '\0';
    return o;
}
