/* exec.c -- see exec.h. */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "events.h"
#include "host.h"
#include "jsonutil.h"
#include "progress.h"
#include "signals.h"

/* ------------------------------------------------------------ child -- */

static void child_main(const lumen_stage *st, lumen_ctx *ctx, int outw, int evw, pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127); /* the runner died before prctl */
    rn_signals_clear();
    if (dup2(outw, STDOUT_FILENO) < 0 || dup2(outw, STDERR_FILENO) < 0) _exit(126);
    if (outw > STDERR_FILENO) close(outw);
    setvbuf(stdout, NULL, _IOLBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);

    rn_evw ev;
    rn_evw_init(&ev, evw);
    rn_ctx_use_events(ctx, &ev);
    int rc = st->run(ctx, rn_host());
    const char *msg = NULL;
    int code = rn_ctx_failure(ctx, &msg);
    const char *mis = rn_ctx_misuse(ctx);
    if (rc == 0 && (code || mis)) rc = code ? code : LUMEN_EINVAL;

    fflush(stdout);
    cJSON *end = cJSON_CreateObject();
    cJSON_AddStringToObject(end, "t", "end");
    cJSON_AddNumberToObject(end, "rc", rc);
    if (mis) cJSON_AddStringToObject(end, "misuse", mis);
    rn_evw_send(&ev, end);
    _exit(rc == 0 ? 0 : 1);
}

/* ----------------------------------------------------------- parent -- */

typedef struct exec_state {
    const rn_exec_io *io;
    int logfd;
    rn_progress prog;
    rn_linebuf evbuf;
    int got_end, end_rc;
    char *misuse;
    int fail_code;
    char *fail_msg;
    lm_err track_err;
    int term_mid_line; /* raw output on the terminal did not end in '\n' */
} exec_state;

static void log_write(exec_state *s, const char *data, size_t n) {
    while (s->logfd >= 0 && n > 0) {
        ssize_t w = write(s->logfd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break; /* a full disk shows up elsewhere; keep the stage going */
        data += w;
        n -= (size_t)w;
    }
}

static void on_output(exec_state *s, const char *data, size_t n) {
    log_write(s, data, n);
    rn_progress_hide(&s->prog);
    fwrite(data, 1, n, s->io->term);
    fflush(s->io->term);
    s->term_mid_line = data[n - 1] != '\n';
    if (!s->term_mid_line) rn_progress_show(&s->prog);
}

static const char *const LEVELS[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static void on_log(exec_state *s, int level, const char *msg) {
    if (level < 0 || level > 3) level = 1;
    char iso[40];
    char *line = lm_sprintf("%s %-5s %s\n", rn_time_iso(lm_wall_time(), iso, sizeof iso), LEVELS[level], msg);
    if (line) log_write(s, line, strlen(line));
    free(line);
    if (level < LUMEN_LOG_INFO) return;
    rn_progress_hide(&s->prog);
    if (s->term_mid_line) fputc('\n', s->io->term);
    s->term_mid_line = 0;
    fprintf(s->io->term, "[%s] %s%s\n", s->io->stage_id,
            level == LUMEN_LOG_WARN ? "warning: " : level == LUMEN_LOG_ERROR ? "error: " : "", msg);
    fflush(s->io->term);
    rn_progress_show(&s->prog);
}

static const char *str_of(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_of(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static void on_event(void *arg, char *line, size_t len) {
    exec_state *s = arg;
    cJSON *ev = cJSON_ParseWithLength(line, len);
    const char *t = str_of(ev, "t");
    if (!t) {
        on_log(s, LUMEN_LOG_WARN, "runner: unreadable event from the stage process");
        cJSON_Delete(ev);
        return;
    }
    if (strcmp(t, "log") == 0) {
        on_log(s, (int)num_of(ev, "level", 1), str_of(ev, "msg") ? str_of(ev, "msg") : "");
    } else if (strcmp(t, "metric") == 0 && str_of(ev, "key")) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, "value");
        double value = cJSON_IsNumber(v) ? v->valuedouble : (double)NAN;
        rn_track_metric(s->io->trackers, s->io->stage_id, str_of(ev, "key"), value,
                        (int64_t)num_of(ev, "step", 0), num_of(ev, "time", lm_wall_time()), &s->track_err);
    } else if (strcmp(t, "summary") == 0 && str_of(ev, "key")) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, "value");
        rn_track_summary(s->io->trackers, str_of(ev, "key"), v, &s->track_err);
        if (s->io->summaries && v) {
            cJSON_DeleteItemFromObjectCaseSensitive(s->io->summaries, str_of(ev, "key"));
            cJSON_AddItemToObject(s->io->summaries, str_of(ev, "key"), cJSON_Duplicate(v, 1));
        }
    } else if (strcmp(t, "progress") == 0) {
        rn_progress_update(&s->prog, (int64_t)num_of(ev, "done", 0), (int64_t)num_of(ev, "total", 0),
                           str_of(ev, "unit"), str_of(ev, "detail"));
    } else if (strcmp(t, "fail") == 0 && !s->fail_code) {
        s->fail_code = (int)num_of(ev, "code", LUMEN_ERR);
        s->fail_msg = lm_strdup(str_of(ev, "msg") ? str_of(ev, "msg") : "");
        char *line2 = lm_sprintf("failed (%s): %s", lm_strcode(s->fail_code), s->fail_msg ? s->fail_msg : "");
        if (line2) on_log(s, LUMEN_LOG_DEBUG, line2);
        free(line2);
    } else if (strcmp(t, "end") == 0) {
        s->got_end = 1;
        s->end_rc = (int)num_of(ev, "rc", LUMEN_ERR);
        if (str_of(ev, "misuse")) s->misuse = lm_strdup(str_of(ev, "misuse"));
    }
    cJSON_Delete(ev);
}

/* Reads what is available from fd; returns 0 at EOF (or error), 1 otherwise. */
static int pump(exec_state *s, int fd, int is_events) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            if (is_events) rn_linebuf_feed(&s->evbuf, buf, (size_t)n, on_event, s);
            else on_output(s, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 1;
        return 0;
    }
}

static const char *sig_name(int sig) { return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "a signal"; }

/* Turns how the child ended into the result. */
static int outcome(exec_state *s, int status, int forwarded, lm_err *e) {
    const rn_exec_io *io = s->io;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (forwarded)
            return lm_fail(e, LUMEN_ECANCELED, "stage '%s' interrupted (%s)", io->stage_id, sig_name(forwarded));
        return lm_fail(e, LUMEN_ERR, "stage '%s' crashed: signal %d (%s); log: %s", io->stage_id, sig,
                       strsignal(sig), io->log_shown);
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (!s->got_end)
        return lm_fail(e, LUMEN_ERR, "stage '%s' exited with status %d before finishing; log: %s", io->stage_id,
                       code, io->log_shown);
    if (s->misuse)
        return lm_fail(e, LUMEN_EINVAL, "stage '%s': plugin %s: %s", io->stage_id, io->plugin, s->misuse);
    if (s->end_rc != 0) {
        int rc = s->fail_code ? s->fail_code : s->end_rc;
        if (forwarded && rc == LUMEN_ECANCELED)
            return lm_fail(e, rc, "stage '%s' interrupted (%s)", io->stage_id, sig_name(forwarded));
        if (s->fail_msg && *s->fail_msg) return lm_fail(e, rc, "stage '%s': %s", io->stage_id, s->fail_msg);
        return lm_fail(e, rc, "stage '%s' failed (%s) without a message; log: %s", io->stage_id, lm_strcode(rc),
                       io->log_shown);
    }
    if (s->track_err.code) return lm_fail(e, s->track_err.code, "stage '%s': %s", io->stage_id, s->track_err.msg);
    return 0;
}

int rn_exec_stage(const lumen_stage *st, lumen_ctx *ctx, const rn_exec_io *io, lm_err *e) {
    int outp[2] = {-1, -1}, evp[2] = {-1, -1};
    if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(evp, O_CLOEXEC) != 0) {
        int rc = lm_fail_errno(e, LUMEN_EIO, "cannot create pipes for stage '%s'", io->stage_id);
        for (int i = 0; i < 2; i++) {
            if (outp[i] >= 0) close(outp[i]);
            if (evp[i] >= 0) close(evp[i]);
        }
        return rc;
    }
    exec_state s = {.io = io, .logfd = -1};
    s.logfd = open(io->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (s.logfd < 0) {
        int rc = lm_fail_errno(e, LUMEN_EIO, "cannot open stage log %s", io->log_path);
        for (int i = 0; i < 2; i++) close(outp[i]), close(evp[i]);
        return rc;
    }
    rn_progress_init(&s.prog, io->term, io->tty, io->stage_id);

    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int rc = lm_fail_errno(e, LUMEN_EIO, "cannot start a process for stage '%s'", io->stage_id);
        for (int i = 0; i < 2; i++) close(outp[i]), close(evp[i]);
        close(s.logfd);
        return rc;
    }
    if (pid == 0) {
        close(outp[0]);
        close(evp[0]);
        child_main(st, ctx, outp[1], evp[1], parent);
    }
    close(outp[1]);
    close(evp[1]);
    fcntl(outp[0], F_SETFL, O_NONBLOCK);
    fcntl(evp[0], F_SETFL, O_NONBLOCK);

    struct pollfd fds[2] = {{.fd = outp[0], .events = POLLIN}, {.fd = evp[0], .events = POLLIN}};
    int status = 0, reaped = 0, forwarded = 0, killed = 0;
    double kill_at = 0;
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        int sig = rn_signals_pending();
        if (sig && !forwarded) {
            kill(pid, sig);
            forwarded = sig;
            kill_at = lm_now() + RN_EXEC_GRACE_S;
            on_log(&s, LUMEN_LOG_WARN, sig == SIGINT ? "runner: interrupted (SIGINT), stopping the stage"
                                                     : "runner: terminated (SIGTERM), stopping the stage");
        }
        if (forwarded && !killed && lm_now() > kill_at) {
            kill(pid, SIGKILL);
            killed = 1;
        }
        int n = poll(fds, 2, 200);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (!pump(&s, fds[i].fd, i == 1)) fds[i].fd = -1;
        }
        /* A stage may leave processes behind that hold the pipes: once the
         * child itself is gone, drain what is buffered and stop. */
        if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
            reaped = 1;
            for (int i = 0; i < 2; i++)
                if (fds[i].fd >= 0) pump(&s, fds[i].fd, i == 1);
            break;
        }
    }
    if (!reaped) waitpid(pid, &status, 0);
    rn_linebuf_flush(&s.evbuf, on_event, &s);
    rn_progress_done(&s.prog);
    if (s.term_mid_line) fputc('\n', io->term);
    close(outp[0]);
    close(evp[0]);
    close(s.logfd);

    int rc = outcome(&s, status, forwarded, e);
    free(s.misuse);
    free(s.fail_msg);
    rn_linebuf_free(&s.evbuf);
    return rc;
}
