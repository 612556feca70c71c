/* thread_pool.c — the workers behind llmc_runtime_api_t.parallel_for.
 *
 * Generated code calls parallel_for many times per step (once per matmul,
 * per attention pass), so a call must be cheap when the workers are
 * already awake, and the pool must not burn CPUs between requests. So:
 *
 *  - A job is published through one 64-bit atomic word: the job's
 *    generation in the high 32 bits and the next unclaimed task in the low
 *    32. Every thread, the caller included, claims tasks by compare-and-swap
 *    on that word, which fails if the generation moved on, so a worker that
 *    wakes late can never claim a task of a newer job it has not seen.
 *  - Before writing a new job, the caller "closes" the old one by setting
 *    its task index to UINT32_MAX (see publish_job for why).
 *  - The caller counts finished tasks with a second atomic and returns when
 *    all are done; it does not wait for workers that never woke.
 *  - Workers spin for a while after a job (back-to-back calls find them
 *    awake) and then sleep on a condition variable. The sleepers count and
 *    the job word are both sequentially consistent, so a publish either is
 *    seen by a worker about to sleep or sees that worker and wakes it.
 *
 * Which thread runs which task is not fixed: tasks must not depend on it
 * (batch invariance is the generated code's business: it splits work by
 * task index, never by thread). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llmc/runtime.h"

#define SPIN_ROUNDS 4000 /* polls before sleeping: tens to hundreds of microseconds */
#define TASK_CLOSED UINT32_MAX

/* The pool. Owns its worker threads, mutex and condition variable. */
struct llmc_thread_pool {
  int32_t n_threads;    /* the caller plus the workers */
  int32_t n_workers;    /* threads started in workers */
  pthread_t *workers;   /* owned: [n_threads - 1] */
  _Atomic uint64_t job; /* generation << 32 | next task to claim */
  atomic_int n_tasks;   /* tasks in the current job */
  atomic_int n_done;    /* tasks of the current job that have returned */
  llmc_task_fn fn;      /* current job; read only after a successful claim */
  void *env;
  atomic_int n_sleeping; /* workers waiting on wake */
  atomic_bool stop;      /* set by destroy */
  pthread_mutex_t mutex; /* guards the sleep/wake hand-over only */
  pthread_cond_t wake;
};

static uint32_t job_generation(uint64_t job) { return (uint32_t)(job >> 32); }
static uint32_t job_next_task(uint64_t job) { return (uint32_t)job; }

/* A hint to the CPU that this is a spin loop. */
static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Claims and runs tasks of job generation gen until none are left or the
 * job word has moved to another generation. */
static void run_tasks(llmc_thread_pool_t *pool, uint32_t gen) {
  for (;;) {
    uint64_t job = atomic_load_explicit(&pool->job, memory_order_acquire);
    if (job_generation(job) != gen) return;
    uint32_t task = job_next_task(job);
    /* Acquire pairs with publish_job's release: if this reads the next
     * job's count, the close of this job is visible and the CAS fails. */
    int32_t n_tasks = atomic_load_explicit(&pool->n_tasks, memory_order_acquire);
    if (task >= (uint32_t)n_tasks) return;
    if (!atomic_compare_exchange_weak_explicit(&pool->job, &job, job + 1, memory_order_acq_rel,
                                               memory_order_acquire))
      continue;
    pool->fn(pool->env, (int32_t)task, n_tasks);
    atomic_fetch_add_explicit(&pool->n_done, 1, memory_order_release);
  }
}

/* Waits until the job word's generation differs from seen (or stop):
 * spins first, then sleeps. Returns the new generation. */
static uint32_t wait_for_job(llmc_thread_pool_t *pool, uint32_t seen) {
  for (int i = 0; i < SPIN_ROUNDS; i++) {
    uint32_t gen = job_generation(atomic_load_explicit(&pool->job, memory_order_acquire));
    if (gen != seen || atomic_load_explicit(&pool->stop, memory_order_relaxed)) return gen;
    cpu_relax();
  }
  pthread_mutex_lock(&pool->mutex);
  atomic_fetch_add(&pool->n_sleeping, 1);
  uint32_t gen;
  while ((gen = job_generation(atomic_load(&pool->job))) == seen && !atomic_load(&pool->stop))
    pthread_cond_wait(&pool->wake, &pool->mutex);
  atomic_fetch_sub(&pool->n_sleeping, 1);
  pthread_mutex_unlock(&pool->mutex);
  return gen;
}

static void *worker_main(void *arg) {
  llmc_thread_pool_t *pool = arg;
  uint32_t seen = job_generation(atomic_load(&pool->job));
  for (;;) {
    seen = wait_for_job(pool, seen);
    if (atomic_load(&pool->stop)) return NULL;
    run_tasks(pool, seen);
  }
}

/* Wakes sleeping workers after the job word changed. */
static void wake_workers(llmc_thread_pool_t *pool) {
  if (atomic_load(&pool->n_sleeping) == 0) return;
  pthread_mutex_lock(&pool->mutex);
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mutex);
}

/* Makes (fn, env, n_tasks) the next job and returns its generation. The
 * previous job is finished (all its tasks returned) but a late worker may
 * still be between reading the old job word and its CAS; closing the old
 * generation first (task index UINT32_MAX) makes that CAS fail, and the
 * release store of n_tasks makes the close visible to anyone who reads
 * the new count. */
static uint32_t publish_job(llmc_thread_pool_t *pool, llmc_task_fn fn, void *env, int32_t n_tasks) {
  uint64_t old = atomic_load_explicit(&pool->job, memory_order_relaxed);
  uint32_t gen = job_generation(old);
  atomic_store_explicit(&pool->job, (uint64_t)gen << 32 | TASK_CLOSED, memory_order_relaxed);
  pool->fn = fn;
  pool->env = env;
  atomic_store_explicit(&pool->n_done, 0, memory_order_relaxed);
  atomic_store_explicit(&pool->n_tasks, n_tasks, memory_order_release);
  gen++;
  atomic_store(&pool->job, (uint64_t)gen << 32); /* seq_cst: see the header comment */
  return gen;
}

void llmc_thread_pool_parallel_for(void *pool_ptr, llmc_task_fn fn, void *env, int32_t n_tasks) {
  llmc_thread_pool_t *pool = pool_ptr;
  if (n_tasks <= 0) return;
  if (n_tasks == 1 || pool->n_workers == 0) {
    for (int32_t i = 0; i < n_tasks; i++) fn(env, i, n_tasks);
    return;
  }
  uint32_t gen = publish_job(pool, fn, env, n_tasks);
  wake_workers(pool);
  run_tasks(pool, gen);
  for (int spins = 0; atomic_load_explicit(&pool->n_done, memory_order_acquire) < n_tasks;
       spins++) {
    if (spins < SPIN_ROUNDS)
      cpu_relax();
    else
      sched_yield();
  }
}

llmc_status_t llmc_thread_pool_create(int32_t n_threads, llmc_thread_pool_t **out_pool) {
  *out_pool = NULL;
  if (n_threads <= 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    n_threads = cpus > 0 ? (int32_t)(cpus < 1024 ? cpus : 1024) : 1;
  }
  llmc_thread_pool_t *pool = calloc(1, sizeof *pool);
  if (!pool) return LLMC_ERROR(OUT_OF_MEMORY, "thread pool");
  pool->n_threads = n_threads;
  pool->workers = calloc((size_t)n_threads, sizeof *pool->workers);
  if (!pool->workers) {
    free(pool);
    return LLMC_ERROR(OUT_OF_MEMORY, "thread pool of %d threads", n_threads);
  }
  atomic_init(&pool->job, 0);
  atomic_init(&pool->n_tasks, 0);
  atomic_init(&pool->n_done, 0);
  atomic_init(&pool->n_sleeping, 0);
  atomic_init(&pool->stop, false);
  pthread_mutex_init(&pool->mutex, NULL);
  pthread_cond_init(&pool->wake, NULL);
  for (int32_t i = 0; i < n_threads - 1; i++) {
    int err = pthread_create(&pool->workers[i], NULL, worker_main, pool);
    if (err) {
      llmc_thread_pool_destroy(pool);
      return LLMC_ERROR(IO, "starting worker thread %d of %d: %s", i + 1, n_threads - 1,
                        strerror(err));
    }
    pool->n_workers++;
  }
  *out_pool = pool;
  return LLMC_OK;
}

void llmc_thread_pool_destroy(llmc_thread_pool_t *pool) {
  if (!pool) return;
  pthread_mutex_lock(&pool->mutex);
  atomic_store(&pool->stop, true);
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mutex);
  for (int32_t i = 0; i < pool->n_workers; i++) pthread_join(pool->workers[i], NULL);
  pthread_cond_destroy(&pool->wake);
  pthread_mutex_destroy(&pool->mutex);
  free(pool->workers);
  free(pool);
}

int32_t llmc_thread_pool_size(const llmc_thread_pool_t *pool) { return pool->n_threads; }

llmc_runtime_api_t llmc_thread_pool_api(llmc_thread_pool_t *pool) {
  return (llmc_runtime_api_t){
      .parallel_for = llmc_thread_pool_parallel_for,
      .pool = pool,
      .n_threads = pool->n_threads,
  };
}
