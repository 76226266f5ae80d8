/*
 * proc.h -- is a process still there?  Used to tell a run or a cache tmp
 * folder whose process died (SIGKILL, power loss) from one still at work.
 */
#ifndef RN_PROC_H
#define RN_PROC_H

/* Non-zero when process pid exists and is not a zombie (a killed process
 * whose parent has not reaped it yet counts as dead).  PIDs can be reused,
 * so "alive" may be a different process; callers treat it as "not sure it
 * is dead" and leave things alone. */
int rn_pid_alive(long pid);

#endif /* RN_PROC_H */
