/* SPDX-License-Identifier: LGPL-2.1-or-later
 * GLib's GMutex, GRecMutex and GCond on POSIX threads, for ThreadSanitizer runs (tools/tsan.sh).
 *
 * GLib implements these with futexes and atomics inside libglib, which ThreadSanitizer does not
 * instrument: every access that a GMutex orders looks like a race to it. LD_PRELOADed, this
 * library replaces the functions that other libraries (GStreamer, the plugin, the tests) call
 * with pthread ones, which ThreadSanitizer intercepts. The pthread object lives on the heap,
 * created on first use (a zeroed static GMutex is valid), its address kept in the GLib struct's
 * pointer field. Not for production: it leaks the objects of mutexes that are never cleared.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static void *must_alloc(size_t n) {
  void *p = calloc(1, n);
  if (p == NULL)
    abort();
  return p;
}

static pthread_mutex_t *mutex_impl(gpointer *slot, int type) {
  pthread_mutex_t *m = __atomic_load_n((pthread_mutex_t **)slot, __ATOMIC_ACQUIRE);
  if (m != NULL)
    return m;
  m = must_alloc(sizeof *m);
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, type);
  pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  pthread_mutex_t *expected = NULL;
  if (!__atomic_compare_exchange_n((pthread_mutex_t **)slot, &expected, m, FALSE, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    pthread_mutex_destroy(m);
    free(m);
    return expected;
  }
  return m;
}

static void mutex_free(gpointer *slot) {
  pthread_mutex_t *m = __atomic_exchange_n((pthread_mutex_t **)slot, NULL, __ATOMIC_ACQ_REL);
  if (m != NULL) {
    pthread_mutex_destroy(m);
    free(m);
  }
}

void g_mutex_init(GMutex *mutex) {
  mutex->p = NULL;
  mutex_impl(&mutex->p, PTHREAD_MUTEX_DEFAULT);
}
void g_mutex_clear(GMutex *mutex) { mutex_free(&mutex->p); }
void g_mutex_lock(GMutex *mutex) {
  pthread_mutex_lock(mutex_impl(&mutex->p, PTHREAD_MUTEX_DEFAULT));
}
void g_mutex_unlock(GMutex *mutex) {
  pthread_mutex_unlock(mutex_impl(&mutex->p, PTHREAD_MUTEX_DEFAULT));
}
gboolean g_mutex_trylock(GMutex *mutex) {
  return pthread_mutex_trylock(mutex_impl(&mutex->p, PTHREAD_MUTEX_DEFAULT)) == 0;
}

void g_rec_mutex_init(GRecMutex *rec_mutex) {
  rec_mutex->p = NULL;
  mutex_impl(&rec_mutex->p, PTHREAD_MUTEX_RECURSIVE);
}
void g_rec_mutex_clear(GRecMutex *rec_mutex) { mutex_free(&rec_mutex->p); }
void g_rec_mutex_lock(GRecMutex *rec_mutex) {
  pthread_mutex_lock(mutex_impl(&rec_mutex->p, PTHREAD_MUTEX_RECURSIVE));
}
void g_rec_mutex_unlock(GRecMutex *rec_mutex) {
  pthread_mutex_unlock(mutex_impl(&rec_mutex->p, PTHREAD_MUTEX_RECURSIVE));
}
gboolean g_rec_mutex_trylock(GRecMutex *rec_mutex) {
  return pthread_mutex_trylock(mutex_impl(&rec_mutex->p, PTHREAD_MUTEX_RECURSIVE)) == 0;
}

static pthread_cond_t *cond_impl(GCond *cond) {
  pthread_cond_t *c = __atomic_load_n((pthread_cond_t **)&cond->p, __ATOMIC_ACQUIRE);
  if (c != NULL)
    return c;
  c = must_alloc(sizeof *c);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* g_cond_wait_until's clock */
  pthread_cond_init(c, &attr);
  pthread_condattr_destroy(&attr);
  pthread_cond_t *expected = NULL;
  if (!__atomic_compare_exchange_n((pthread_cond_t **)&cond->p, &expected, c, FALSE,
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    pthread_cond_destroy(c);
    free(c);
    return expected;
  }
  return c;
}

void g_cond_init(GCond *cond) {
  cond->p = NULL;
  cond_impl(cond);
}
void g_cond_clear(GCond *cond) {
  pthread_cond_t *c = __atomic_exchange_n((pthread_cond_t **)&cond->p, NULL, __ATOMIC_ACQ_REL);
  if (c != NULL) {
    pthread_cond_destroy(c);
    free(c);
  }
}
void g_cond_wait(GCond *cond, GMutex *mutex) {
  pthread_cond_wait(cond_impl(cond), mutex_impl(&mutex->p, PTHREAD_MUTEX_DEFAULT));
}
void g_cond_signal(GCond *cond) { pthread_cond_signal(cond_impl(cond)); }
void g_cond_broadcast(GCond *cond) { pthread_cond_broadcast(cond_impl(cond)); }
gboolean g_cond_wait_until(GCond *cond, GMutex *mutex, gint64 end_time) {
  struct timespec ts = {.tv_sec = end_time / G_USEC_PER_SEC,
                        .tv_nsec = (end_time % G_USEC_PER_SEC) * 1000};
  int r;
  do
    r = pthread_cond_timedwait(cond_impl(cond), mutex_impl(&mutex->p, PTHREAD_MUTEX_DEFAULT), &ts);
  while (r == EINTR);
  return r == 0;
}
