/* executor_local.c -- trials as child processes, each in its own process
 * group (see executor.h). */
#include "executor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

static int local_start(void *self, const char *const *argv, const char *log_path, rn_job *job, lm_err *e) {
    (void)self;
    memset(job, 0, sizeof *job);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return lm_fail_errno(e, LUMEN_EIO, "cannot open %s", log_path);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return lm_fail_errno(e, LUMEN_EIO, "cannot start a trial (fork)");
    }
    if (pid == 0) {
        /* its own process group: a timeout or a prune stops the trial's
         * runner and every stage process it started, nothing else */
        setpgid(0, 0);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        dprintf(STDERR_FILENO, "runner: cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* both sides, so no signal can race the child's own call */
    close(fd);
    job->pid = pid;
    job->ours = 1;
    snprintf(job->id, sizeof job->id, "%ld", (long)pid);
    return 0;
}

static int local_poll(void *self, rn_job *job) {
    (void)self;
    if (job->ours) {
        int st;
        pid_t r = waitpid((pid_t)job->pid, &st, WNOHANG);
        if (r == 0) return 0;
        if (r == (pid_t)job->pid) {
            job->wstatus = st;
            job->have_wstatus = 1;
        }
        return 1;
    }
    return !rn_pid_alive(job->pid);
}

static void local_cancel(void *self, rn_job *job, int sig) {
    (void)self;
    if (job->pid > 0 && kill(-(pid_t)job->pid, sig) != 0) kill((pid_t)job->pid, sig);
}

/* Does process pid's command line contain tag?  (After a reboot the pid of
 * a recorded trial may belong to an unrelated process.) */
static int cmdline_has(long pid, const char *tag) {
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (buf[i] == 0) buf[i] = ' ';
    buf[n] = 0;
    size_t l = strlen(tag);
    for (const char *p = strstr(buf, tag); p; p = strstr(p + 1, tag))
        if (p[l] == ' ' || p[l] == 0) return 1; /* a whole argument: trials/1 is not trials/10 */
    return 0;
}

static int local_adopt(void *self, rn_job *job) {
    (void)self;
    job->pid = strtol(job->id, NULL, 10);
    job->ours = 0;
    job->have_wstatus = 0;
    return job->pid > 0 && rn_pid_alive(job->pid) && (!job->tag || cmdline_has(job->pid, job->tag));
}

static const rn_executor_ops LOCAL_OPS = {
    .name = "local", .start = local_start, .poll = local_poll, .cancel = local_cancel, .adopt = local_adopt};

rn_executor rn_executor_local(void) { return (rn_executor){.ops = &LOCAL_OPS, .self = NULL}; }

const char *rn_job_describe(const rn_job *job, char *buf, size_t len) {
    if (job->state[0])
        snprintf(buf, len, "Slurm job %s %s, exit code %s", job->id, job->state,
                 job->exit_code[0] ? job->exit_code : "unknown");
    else if (!job->have_wstatus) snprintf(buf, len, "ended (status unknown)");
    else if (WIFEXITED(job->wstatus)) snprintf(buf, len, "exit status %d", WEXITSTATUS(job->wstatus));
    else if (WIFSIGNALED(job->wstatus))
        snprintf(buf, len, "signal %d (%s)", WTERMSIG(job->wstatus), strsignal(WTERMSIG(job->wstatus)));
    else snprintf(buf, len, "wait status %d", job->wstatus);
    return buf;
}
