/*
 * mlflow_http.h -- one MLflow REST call over libcurl, classified for the
 * sender's retry policy (mlflow.h).
 *
 * A client holds one curl easy handle (connections are reused), the base
 * URI, the timeouts and the credentials, which come from the environment
 * each time a client is made and are never stored anywhere else:
 *   MLFLOW_TRACKING_TOKEN                    -> Authorization: Bearer
 *   MLFLOW_TRACKING_USERNAME / _PASSWORD     -> HTTP basic auth
 *   MLFLOW_TRACKING_INSECURE_TLS=true        -> no TLS verification
 *   MLFLOW_TRACKING_SERVER_CERT_PATH         -> CA bundle
 *   LUMEN_TRACKING_TIMEOUT (s, default 30), LUMEN_TRACKING_CONNECT_TIMEOUT
 *   (s, default 5)
 * TLS verification is on otherwise.  CURLOPT_NOSIGNAL is set (no SIGALRM
 * for name resolution timeouts: safe in any thread).  A request in flight is abandoned as soon as *abort
 * (when given) becomes non-zero.
 *
 * Not thread-safe per client: one client per thread.
 */
#ifndef RN_MLFLOW_HTTP_H
#define RN_MLFLOW_HTTP_H

#include <stddef.h>

#include "lm_util.h"

typedef enum mf_class {
    MF_OK = 0,   /* 2xx */
    MF_RETRY,    /* connection error, timeout, 429, 5xx: try again later */
    MF_REFUSED,  /* any other 4xx (except 401/403): retrying cannot help */
    MF_AUTH,     /* 401/403: stop until the credentials change */
    MF_ABORTED,  /* *abort became non-zero */
} mf_class;

typedef struct mf_resp {
    long status;          /* HTTP status; 0 when no response came */
    char *body;           /* response body (NUL-terminated, owned; may be NULL) */
    double retry_after;   /* seconds from Retry-After; 0 when absent */
    int maybe_landed;     /* the request may have reached the server (a
                           * response, a timeout after sending, a reset) */
    char msg[512];        /* what went wrong, for logs (no secrets) */
} mf_resp;

typedef struct mf_client mf_client;

/* curl_global_init, once per process (thread-safe). */
int mf_global_init(void);

/* uri: "http://host:port[/prefix]" or https.  abort: optional flag. */
int mf_client_new(const char *uri, const volatile int *abort, mf_client **out, lm_err *e);
void mf_client_free(mf_client *c);
/* Changes the total timeout of later requests (seconds). */
void mf_client_set_timeout(mf_client *c, double seconds);

/* One request: method "GET"/"POST"/"PUT"; path below the URI
 * ("/api/2.0/mlflow/runs/create"); json: the body of a POST (NULL for GET);
 * file: a file to PUT (the body).  Fills *r (mf_resp_free) and returns its
 * class. */
mf_class mf_request(mf_client *c, const char *method, const char *path, const char *json, const char *file,
                    mf_resp *r);
void mf_resp_free(mf_resp *r);

/* "%XX"-escapes s for a query string or a path segment (keep_slash: '/'
 * stays).  malloc'ed; NULL on OOM. */
char *mf_escape(const char *s, int keep_slash);

#endif /* RN_MLFLOW_HTTP_H */
