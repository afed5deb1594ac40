/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_SANDBOX_SECCOMP_H
#define CLOISTER_VMM_SANDBOX_SECCOMP_H

/*
 * The monitor's seccomp allow-lists (docs/security.md). Once everything is prepared — guest RAM
 * mapped and locked, KVM VM and vCPUs created, sockets bound, keys loaded — each thread enters
 * the list of its class and can never leave it. Anything not listed ends the monitor: a SIGSYS
 * handler names the syscall on stderr, then the process dies of SIGSYS.
 *
 * The lists are data (seccomp.c), one line per syscall with the reason it is needed.
 */

#include <stdbool.h>

#include "cloister/diag.h"

enum sandbox_class {
	SANDBOX_VCPU, /* runs KVM_RUN and the devices' queue work triggered by guest exits */
	SANDBOX_MAIN, /* the main loop: signals, host sockets, the end of the enclave */
	/* The enclave process's main thread (run-enclave, src/cli/nitro/enclave_proc.c):
	 * SANDBOX_MAIN plus the enclave process's own end — the pool lock, removing its grant
	 * and control socket, answering the terminate requests that wait for it. */
	SANDBOX_ENCLAVE_MAIN,
	/* The enclave process's control thread: accepts describe/terminate requests on the
	 * control socket. Neither the guest's devices nor new sockets. */
	SANDBOX_CONTROL,
	/* cloister-nsmd, the whole process (src/nsmd/main.c): sessions with monitors, the CA's
	 * files, a thread per session. No programs, no new sockets, no other processes. */
	SANDBOX_NSMD,
	SANDBOX_NCLASSES
};

struct sandbox_rule {
	const char *name; /* syscall name, resolved for the running architecture */
	const char *why;
};

/* Part @part (0, 1, ...) of the rules of @cls, terminated by a NULL name; NULL past the last
 * part. A class's allow-list is the union of its parts (ioctl, mprotect, getsockopt,
 * setsockopt, clone, socket and tgkill are allowed separately, with their arguments checked);
 * for tests and docs. */
const struct sandbox_rule *sandbox_rules(enum sandbox_class cls, unsigned part);

/*
 * Call first thing in main(), before any thread exists, in every program that will sandbox its
 * threads. It makes all threads allocate from glibc's main heap: a thread's own heap, when it
 * shrinks, makes glibc open /proc/sys/vm/overcommit_memory, which no allow-list permits (the
 * main heap shrinks with brk).
 */
void sandbox_prepare_process(void);

/* Install the allow-list of @cls on the calling thread (and the threads it starts later).
 * Returns 0, or -1 with @d set. */
int sandbox_enter(enum sandbox_class cls, struct cl_diag *d);

#endif
