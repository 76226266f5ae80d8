/* progress.c -- see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lm_util.h"

void rn_progress_init(rn_progress *p, FILE *out, int tty, const char *label) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = tty;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->last_print = lm_now();
}

static void fmt_duration(double s, char *buf, size_t len) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, len, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

/* "1234/2624 img  310.2 img/s  ETA 0:04" */
static void fmt_counts(const rn_progress *p, char *buf, size_t len) {
    double el = lm_now() - p->phase_start;
    double rate = el >= 0.5 ? (double)p->done / el : 0; /* no rate from a blink */
    const char *u = p->unit[0] ? p->unit : "it";
    size_t n;
    if (p->total > 0) n = (size_t)snprintf(buf, len, "%lld/%lld %s", (long long)p->done, (long long)p->total, u);
    else n = (size_t)snprintf(buf, len, "%lld %s", (long long)p->done, u);
    if (n >= len) return;
    if (rate > 0) n += (size_t)snprintf(buf + n, len - n, "  %.1f %s/s", rate, u);
    if (n < len && rate > 0 && p->total > 0 && p->done < p->total) {
        char eta[32];
        fmt_duration((double)(p->total - p->done) / rate, eta, sizeof eta);
        snprintf(buf + n, len - n, "  ETA %s", eta);
    }
}

static int term_width(FILE *out) {
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) return ws.ws_col;
    return 80;
}

static void draw(rn_progress *p) {
    char counts[160], line[512];
    fmt_counts(p, counts, sizeof counts);
    char bar[24] = "";
    if (p->total > 0) {
        int fill = (int)(20.0 * (double)p->done / (double)p->total);
        if (fill > 20) fill = 20;
        if (fill < 0) fill = 0;
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
        bar[20] = '\0';
    }
    int n = snprintf(line, sizeof line, "[%s] %s%s%s %s  %s", p->label, bar[0] ? "[" : "", bar,
                     bar[0] ? "]" : "", counts, p->detail);
    int w = term_width(p->out) - 1;
    if (n > w) line[w] = '\0';
    fprintf(p->out, "\r\033[K%s", line);
    fflush(p->out);
    p->shown = 1;
    p->last_draw = lm_now();
}

void rn_progress_update(rn_progress *p, int64_t done, int64_t total, const char *unit, const char *detail) {
    double now = lm_now();
    unit = unit ? unit : "";
    int new_phase = p->phase_start == 0 || strcmp(unit, p->unit) != 0 || total != p->total || done < p->done;
    if (new_phase) {
        p->phase_start = now;
        p->completed = 0;
        snprintf(p->unit, sizeof p->unit, "%s", unit);
    }
    p->done = done;
    p->total = total;
    snprintf(p->detail, sizeof p->detail, "%s", detail ? detail : "");
    int complete = total > 0 && done >= total;
    if (p->tty) {
        if (complete || now - p->last_draw >= 0.1) draw(p);
        return;
    }
    if ((complete && !p->completed) || (!complete && now - p->last_print >= RN_PROGRESS_QUIET_S)) {
        char counts[160];
        fmt_counts(p, counts, sizeof counts);
        fprintf(p->out, "[%s] %s%s%s\n", p->label, counts, p->detail[0] ? "  " : "", p->detail);
        fflush(p->out);
        p->last_print = now;
        p->completed = complete;
    }
}

void rn_progress_hide(rn_progress *p) {
    if (!p->tty || !p->shown) return;
    fprintf(p->out, "\r\033[K");
    fflush(p->out);
    p->shown = 0;
}

void rn_progress_show(rn_progress *p) {
    if (p->tty && !p->shown && p->phase_start != 0) draw(p);
}

void rn_progress_done(rn_progress *p) {
    rn_progress_hide(p);
    p->phase_start = 0;
}
