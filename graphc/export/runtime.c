/* The runtime of a graphc export: a context (params, arena, argument table), weights
 * loading and saving, a pool of worker threads that run the compiled entry together,
 * the CPU check, and error codes with messages. graphc writes NAME_runtime.c as a few
 * macros and the model's header, then this file with the model's tables (GC_* macros and
 * gc_* arrays, from graphc/export/tables.py) where marked, then the typed NAME_run; every
 * public function is named GC_NAME(x), i.e. NAME_x.
 *
 * The compiled code (graphc/backends/llvm/codegen/assemble.py) exports
 *     int32_t graphc_entry(void **args, void *arena, int64_t tid, int64_t n, int64_t step)
 * which every thread 0..n-1 calls with the same args: the kernels split their work by
 * tid and meet at barriers built from atomics (module globals: one run at a time per
 * process, hence gc_run_lock), and thread 0's result is the error code of the step that
 * failed (its index + 1), whose value graphc_error_value() returns. */

#ifndef _GNU_SOURCE
#error "NAME_runtime.c defines _GNU_SOURCE (sched_getaffinity, CPU_COUNT) before any include"
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define GC_X86 1
#define GC_PAUSE() __builtin_ia32_pause()
#else
#define GC_X86 0
#define GC_PAUSE() ((void)0)
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "graphc exports run on little-endian machines only (weights and constants are little-endian)"
#endif

extern int32_t graphc_entry(void **args, void *arena, int64_t tid, int64_t n, int64_t step);
extern int64_t graphc_error_value(void);

#define GC_MESSAGE 1024
#define GC_ALIGN 64
#define GC_SPIN_NANOSECONDS 1000000 /* an idle worker spins 1 ms before it sleeps */
#define GC_YIELD_AFTER 2000         /* rounds the caller spins for its workers, then yields */
#define GC_SMALL_WORK 32768         /* as the Python runner: smaller functions use 1 thread */
#define GC_HEADER_BYTES 64

enum { GC_SLOT_INPUT, GC_SLOT_OUTPUT, GC_SLOT_PARAM, GC_SLOT_CONSTANT };

/* An input, output or param: its name, bytes, offset in the weights file (params) and
 * whether a run writes it (params). */
typedef struct {
    const char *name;
    int64_t bytes;
    int64_t offset;
    int written;
} gc_tensor;

/* @GRAPHC_TABLES@ (the model's tables go here) */

/* ----- errors ------------------------------------------------------------------------- */

static _Thread_local char gc_orphan_error[GC_MESSAGE]; /* failures without a context */
static pthread_mutex_t gc_run_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct gc_pool gc_pool;

typedef struct {
    gc_pool *pool;
    int64_t tid;
} gc_worker;

struct gc_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic uint64_t job;  /* jobs published */
    _Atomic uint64_t done; /* worker runs finished */
    _Atomic int stop;
    int workers; /* threads - 1 */
    int started;
    pthread_t *threads;
    gc_worker *args;
    /* the job: written before `job` is advanced */
    void **job_args;
    void *job_arena;
    int64_t job_step;
};

struct GC_NAME(ctx) {
    /* The argument table: the slots, then the cancel cell the schedule's barriers read
       (graphc/backends/llvm/runtime/interrupt.py); NULL here: no interrupt stops a run. */
    void *args[GC_NUM_SLOTS + 1];
    void *arena;
    unsigned char *params; /* every param, each at a GC_ALIGN boundary */
    void *param_data[GC_NUM_PARAMS > 0 ? GC_NUM_PARAMS : 1];
    int64_t step;
    int threads;
    int pool_ready;
    gc_pool pool;
    char error[GC_MESSAGE];
};

typedef struct GC_NAME(ctx) gc_ctx;

static int gc_fail(gc_ctx *ctx, int code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a failure's message (in the context, or the thread's when there is none) and
 * return its code. */
static int gc_fail(gc_ctx *ctx, int code, const char *format, ...) {
    char *buffer = ctx != NULL ? ctx->error : gc_orphan_error;
    int used = snprintf(buffer, GC_MESSAGE, "%s: ", GC_MODEL_NAME);
    va_list args;
    va_start(args, format);
    vsnprintf(buffer + used, GC_MESSAGE - (size_t)used, format, args);
    va_end(args);
    return code;
}

/* Forget the previous failure's message (a call clears its context's, or without a
 * context the thread's). */
static void gc_clear(gc_ctx *ctx) {
    (ctx != NULL ? ctx->error : gc_orphan_error)[0] = '\0';
}

const char *GC_NAME(last_error)(const gc_ctx *ctx) {
    return ctx != NULL ? ctx->error : gc_orphan_error;
}

/* ----- the CPU ------------------------------------------------------------------------ */

#if GC_X86
static uint64_t gc_xgetbv(void) {
    uint32_t low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((uint64_t)high << 32) | low;
}
#endif

/* GRAPHC_OK if this CPU has every feature the code was compiled for (and the OS saves
 * the vector registers it uses), else GRAPHC_ECPU naming what is missing. */
static int gc_check_cpu(void) {
#if GC_X86
    char missing[GC_MESSAGE] = "";
    size_t used = 0;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    unsigned max_extended = __get_cpuid_max(0x80000000u, NULL);
    for (int k = 0; k < GC_NUM_FEATURES; k++) {
        unsigned regs[4] = {0, 0, 0, 0};
        unsigned leaf = gc_features[k].leaf;
        unsigned top = leaf >= 0x80000000u ? max_extended : max_leaf;
        if (leaf <= top) __cpuid_count(leaf, gc_features[k].subleaf, regs[0], regs[1], regs[2], regs[3]);
        if (!((regs[gc_features[k].reg] >> gc_features[k].bit) & 1u)) {
            int n = snprintf(missing + used, sizeof missing - used, "%s%s", used ? ", " : "",
                             gc_features[k].name);
            if (n > 0 && (size_t)n < sizeof missing - used) used += (size_t)n;
        }
    }
    if (used)
        return gc_fail(NULL, GRAPHC_ECPU,
                       "this CPU lacks %s, which the code compiled for target %s uses; export "
                       "for a lower target (such as x86-64-v3 or x86-64-v2) to run here",
                       missing, GC_TARGET_NAME);
    if (GC_XCR0) {
        unsigned a, b, c, d;
        uint64_t xcr0 = 0;
        if (max_leaf >= 1) {
            __cpuid(1, a, b, c, d);
            if ((c >> 27) & 1u) xcr0 = gc_xgetbv(); /* OSXSAVE */
        }
        if ((xcr0 & GC_XCR0) != GC_XCR0)
            return gc_fail(NULL, GRAPHC_ECPU,
                           "the operating system does not save the vector registers the code "
                           "for target %s uses (XCR0 is 0x%llx, it needs bits 0x%llx)",
                           GC_TARGET_NAME, (unsigned long long)xcr0,
                           (unsigned long long)GC_XCR0);
    }
#endif
    return GRAPHC_OK;
}

/* ----- the worker pool ---------------------------------------------------------------- */

static int64_t gc_nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* The job counter once it differs from `seen` (or the pool stops): spin for a while
 * (yielding the CPU between tries after the first few thousand, so that idle workers of
 * other contexts do not starve the one running), then sleep on the condition variable
 * (the counter only advances under the lock). */
static uint64_t gc_next_job(gc_pool *pool, uint64_t seen) {
    int64_t began = gc_nanoseconds();
    for (unsigned round = 1;; round++) {
        uint64_t now = atomic_load_explicit(&pool->job, memory_order_acquire);
        if (now != seen) return now;
        GC_PAUSE();
        if (round > GC_YIELD_AFTER) sched_yield();
        if ((round & 1023u) == 0 && gc_nanoseconds() - began > GC_SPIN_NANOSECONDS) break;
    }
    pthread_mutex_lock(&pool->lock);
    uint64_t now;
    while ((now = atomic_load_explicit(&pool->job, memory_order_acquire)) == seen &&
           !atomic_load_explicit(&pool->stop, memory_order_acquire))
        pthread_cond_wait(&pool->wake, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return now;
}

static void *gc_work(void *argument) {
    gc_worker *self = argument;
    gc_pool *pool = self->pool;
    uint64_t seen = 0; /* workers start before the first job */
    for (;;) {
        seen = gc_next_job(pool, seen);
        if (atomic_load_explicit(&pool->stop, memory_order_acquire)) return NULL;
        graphc_entry(pool->job_args, pool->job_arena, self->tid, pool->workers + 1,
                     pool->job_step);
        atomic_fetch_add_explicit(&pool->done, 1, memory_order_release);
    }
}

static void gc_pool_stop(gc_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    atomic_store_explicit(&pool->stop, 1, memory_order_release);
    atomic_fetch_add_explicit(&pool->job, 1, memory_order_release); /* wakes spinners too */
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int k = 0; k < pool->started; k++) pthread_join(pool->threads[k], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool->args);
}

static int gc_pool_start(gc_ctx *ctx, int workers) {
    gc_pool *pool = &ctx->pool;
    memset(pool, 0, sizeof *pool);
    pool->workers = workers;
    if (pthread_mutex_init(&pool->lock, NULL) != 0)
        return gc_fail(NULL, GRAPHC_ETHREADS, "could not create the pool's mutex");
    if (pthread_cond_init(&pool->wake, NULL) != 0) {
        pthread_mutex_destroy(&pool->lock);
        return gc_fail(NULL, GRAPHC_ETHREADS, "could not create the pool's condition variable");
    }
    ctx->pool_ready = 1;
    if (workers == 0) return GRAPHC_OK;
    pool->threads = calloc((size_t)workers, sizeof *pool->threads);
    pool->args = calloc((size_t)workers, sizeof *pool->args);
    if (pool->threads == NULL || pool->args == NULL)
        return gc_fail(NULL, GRAPHC_EMEMORY, "out of memory for %d worker threads", workers);
    for (int k = 0; k < workers; k++) {
        pool->args[k].pool = pool;
        pool->args[k].tid = k + 1;
        int error = pthread_create(&pool->threads[k], NULL, gc_work, &pool->args[k]);
        if (error != 0)
            return gc_fail(NULL, GRAPHC_ETHREADS, "could not start worker thread %d of %d: %s",
                           k + 1, workers, strerror(error));
        pool->started = k + 1;
    }
    return GRAPHC_OK;
}

/* Run the entry on every thread: publish the job, run thread 0's part here, wait for the
 * workers (they must be done before the next job: the barrier is shared). */
static int32_t gc_pool_run(gc_ctx *ctx) {
    gc_pool *pool = &ctx->pool;
    if (pool->workers == 0) return graphc_entry(ctx->args, ctx->arena, 0, 1, ctx->step);
    pool->job_args = ctx->args;
    pool->job_arena = ctx->arena;
    pool->job_step = ctx->step;
    uint64_t target = atomic_load_explicit(&pool->done, memory_order_relaxed) + (uint64_t)pool->workers;
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add_explicit(&pool->job, 1, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    int32_t code = graphc_entry(ctx->args, ctx->arena, 0, pool->workers + 1, ctx->step);
    for (unsigned round = 0; atomic_load_explicit(&pool->done, memory_order_acquire) < target; round++) {
        GC_PAUSE();
        if (round > GC_YIELD_AFTER) sched_yield();
    }
    return code;
}

static int gc_cpus(void) {
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* ----- weights ------------------------------------------------------------------------ */

static uint64_t gc_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = (v << 8) | p[k];
    return v;
}

static uint32_t gc_le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void gc_put64(unsigned char *p, uint64_t v) {
    for (int k = 0; k < 8; k++) p[k] = (unsigned char)(v >> (8 * k));
}

static void gc_put32(unsigned char *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (8 * k));
}

static void gc_header(unsigned char *h) {
    memset(h, 0, GC_HEADER_BYTES);
    memcpy(h, "GCWEIGHT", 8);
    gc_put32(h + 8, 1);
    gc_put32(h + 12, GC_NUM_PARAMS);
    gc_put64(h + 16, (uint64_t)GC_WEIGHTS_BYTES);
    memcpy(h + 24, gc_fingerprint, 16);
}

/* GRAPHC_OK if a weights file's header (`size`: the file's bytes) is this model's. */
static int gc_check_header(const unsigned char *h, uint64_t size, const char *where) {
    if (size < GC_HEADER_BYTES || memcmp(h, "GCWEIGHT", 8) != 0 || gc_le32(h + 8) != 1)
        return gc_fail(NULL, GRAPHC_EWEIGHTS, "%s is not a graphc weights file (format 1)", where);
    if (gc_le32(h + 12) != GC_NUM_PARAMS || memcmp(h + 24, gc_fingerprint, 16) != 0)
        return gc_fail(NULL, GRAPHC_EWEIGHTS,
                       "%s holds the weights of another model (its params differ in names, "
                       "dtypes or shapes)", where);
    if (gc_le64(h + 16) != (uint64_t)GC_WEIGHTS_BYTES || size != (uint64_t)GC_WEIGHTS_BYTES)
        return gc_fail(NULL, GRAPHC_EWEIGHTS,
                       "%s has %llu bytes (its header says %llu); this model's weights take %lld",
                       where, (unsigned long long)size, (unsigned long long)gc_le64(h + 16),
                       (long long)GC_WEIGHTS_BYTES);
    return GRAPHC_OK;
}

static int gc_read_weights(gc_ctx *ctx, const char *path) {
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return gc_fail(NULL, GRAPHC_EWEIGHTS, "cannot open the weights file '%s': %s", path,
                       strerror(errno));
    unsigned char header[GC_HEADER_BYTES];
    int code = GRAPHC_OK;
    long size = -1;
    if (fseek(file, 0, SEEK_END) == 0) size = ftell(file);
    if (size < 0 || fseek(file, 0, SEEK_SET) != 0) {
        code = gc_fail(NULL, GRAPHC_EWEIGHTS, "cannot read the weights file '%s': %s", path,
                       strerror(errno));
    } else if (size < GC_HEADER_BYTES || fread(header, 1, GC_HEADER_BYTES, file) != GC_HEADER_BYTES) {
        code = gc_fail(NULL, GRAPHC_EWEIGHTS, "the weights file '%s' is too short (%ld bytes)",
                       path, size);
    } else {
        char where[GC_MESSAGE / 2];
        snprintf(where, sizeof where, "the weights file '%s'", path);
        code = gc_check_header(header, (uint64_t)size, where);
    }
    for (int k = 0; code == GRAPHC_OK && k < GC_NUM_PARAMS; k++) {
        size_t bytes = (size_t)gc_params[k].bytes;
        if (bytes == 0) continue;
        if (fseek(file, (long)gc_params[k].offset, SEEK_SET) != 0 ||
            fread(ctx->param_data[k], 1, bytes, file) != bytes)
            code = gc_fail(NULL, GRAPHC_EWEIGHTS, "cannot read param '%s' from '%s'",
                           gc_params[k].name, path);
    }
    fclose(file);
    return code;
}

static int gc_embedded_weights(gc_ctx *ctx) {
#if GC_WEIGHTS_EMBEDDED
    const unsigned char *blob = GC_NAME(gc_weights);
    int code = gc_check_header(blob, (uint64_t)GC_WEIGHTS_BYTES, "the embedded weights");
    if (code != GRAPHC_OK) return code;
    for (int k = 0; k < GC_NUM_PARAMS; k++)
        memcpy(ctx->param_data[k], blob + gc_params[k].offset, (size_t)gc_params[k].bytes);
    return GRAPHC_OK;
#else
    (void)ctx;
    return gc_fail(NULL, GRAPHC_EWEIGHTS,
                   "this export has no embedded weights (it was made with embed_weights=False): "
                   "pass the path of %s.weights.bin", GC_MODEL_NAME);
#endif
}

int GC_NAME(save_weights)(gc_ctx *ctx, const char *path) {
    gc_clear(ctx);
    if (ctx == NULL) return gc_fail(NULL, GRAPHC_EARGUMENT, "save_weights: the context is NULL");
    if (path == NULL) return gc_fail(ctx, GRAPHC_EARGUMENT, "save_weights: the path is NULL");
    size_t length = strlen(path);
    char *temporary = malloc(length + 5);
    if (temporary == NULL) return gc_fail(ctx, GRAPHC_EMEMORY, "save_weights: out of memory");
    memcpy(temporary, path, length);
    memcpy(temporary + length, ".tmp", 5);
    FILE *file = fopen(temporary, "wb");
    if (file == NULL) {
        int code = gc_fail(ctx, GRAPHC_EIO, "cannot write '%s': %s", temporary, strerror(errno));
        free(temporary);
        return code;
    }
    unsigned char header[GC_HEADER_BYTES];
    static const unsigned char zeros[GC_ALIGN];
    gc_header(header);
    int ok = fwrite(header, 1, GC_HEADER_BYTES, file) == GC_HEADER_BYTES;
    int64_t at = GC_HEADER_BYTES;
    pthread_mutex_lock(&gc_run_lock); /* no run changes the params meanwhile */
    for (int k = 0; ok && k < GC_NUM_PARAMS; k++) {
        size_t gap = (size_t)(gc_params[k].offset - at);
        size_t bytes = (size_t)gc_params[k].bytes;
        ok = fwrite(zeros, 1, gap, file) == gap &&
             fwrite(ctx->param_data[k], 1, bytes, file) == bytes;
        at = gc_params[k].offset + gc_params[k].bytes;
    }
    pthread_mutex_unlock(&gc_run_lock);
    ok = fclose(file) == 0 && ok;
    int code = GRAPHC_OK;
    if (!ok || rename(temporary, path) != 0) {
        code = gc_fail(ctx, GRAPHC_EIO, "cannot write the weights file '%s': %s", path,
                       strerror(errno));
        remove(temporary);
    }
    free(temporary);
    return code;
}

/* ----- the context -------------------------------------------------------------------- */

void GC_NAME(destroy)(gc_ctx *ctx) {
    if (ctx == NULL) return;
    if (ctx->pool_ready) gc_pool_stop(&ctx->pool);
    free(ctx->arena);
    free(ctx->params);
    free(ctx);
}

static int64_t gc_round_up(int64_t n) {
    return (n + GC_ALIGN - 1) / GC_ALIGN * GC_ALIGN;
}

GC_CTX *GC_NAME(create)(const char *weights_path, int threads) {
    gc_clear(NULL);
    if (gc_check_cpu() != GRAPHC_OK) return NULL;
    gc_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        gc_fail(NULL, GRAPHC_EMEMORY, "out of memory for a context");
        return NULL;
    }
    int64_t total = 0;
    for (int k = 0; k < GC_NUM_PARAMS; k++) total += gc_round_up(gc_params[k].bytes);
    void *arena = NULL, *params = NULL;
    if (posix_memalign(&arena, GC_ALIGN, (size_t)(GC_ARENA_BYTES > 0 ? GC_ARENA_BYTES : GC_ALIGN)) != 0 ||
        posix_memalign(&params, GC_ALIGN, (size_t)(total > 0 ? total : GC_ALIGN)) != 0) {
        free(arena);
        free(ctx);
        gc_fail(NULL, GRAPHC_EMEMORY, "out of memory for the arena (%lld bytes) and params "
                "(%lld bytes)", (long long)GC_ARENA_BYTES, (long long)total);
        return NULL;
    }
    ctx->arena = arena;
    ctx->params = params;
    memset(ctx->params, 0, (size_t)(total > 0 ? total : GC_ALIGN));
    int64_t at = 0;
    for (int k = 0; k < GC_NUM_PARAMS; k++) {
        ctx->param_data[k] = ctx->params + at;
        at += gc_round_up(gc_params[k].bytes);
    }
    for (int s = 0; s < GC_NUM_SLOTS; s++) {
        if (gc_slots[s].kind == GC_SLOT_PARAM)
            ctx->args[s] = ctx->param_data[gc_slots[s].index];
        else if (gc_slots[s].kind == GC_SLOT_CONSTANT)
            ctx->args[s] = (void *)(GC_NAME(gc_constants) + gc_constant_offsets[gc_slots[s].index]);
    }
    ctx->step = GC_INITIAL_STEP;
    int code = weights_path != NULL ? gc_read_weights(ctx, weights_path) : gc_embedded_weights(ctx);
    if (code == GRAPHC_OK) {
        int cpus = gc_cpus();
        int n = threads > 0 ? threads : (GC_WORK >= GC_SMALL_WORK ? cpus : 1);
        ctx->threads = n < cpus ? n : cpus;
        code = gc_pool_start(ctx, ctx->threads - 1);
    }
    if (code != GRAPHC_OK) {
        GC_NAME(destroy)(ctx);
        return NULL;
    }
    return ctx;
}

int GC_NAME(threads)(const gc_ctx *ctx) {
    return ctx != NULL ? ctx->threads : 0;
}

int64_t GC_NAME(step)(const gc_ctx *ctx) {
    return ctx != NULL ? ctx->step : -1;
}

int GC_NAME(set_step)(gc_ctx *ctx, int64_t step) {
    gc_clear(ctx);
    if (ctx == NULL) return gc_fail(NULL, GRAPHC_EARGUMENT, "set_step: the context is NULL");
    if (step < 0) return gc_fail(ctx, GRAPHC_EARGUMENT, "set_step: the step must be >= 0, got %lld",
                                 (long long)step);
    pthread_mutex_lock(&gc_run_lock);
    ctx->step = step;
    pthread_mutex_unlock(&gc_run_lock);
    return GRAPHC_OK;
}

/* ----- running ------------------------------------------------------------------------ */

static int gc_overlap(const void *a, int64_t a_bytes, const void *b, int64_t b_bytes) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return a_bytes > 0 && b_bytes > 0 && x < y + (uintptr_t)b_bytes && y < x + (uintptr_t)a_bytes;
}

static char gc_empty[GC_ALIGN]; /* where a NULL pointer to no elements points */

/* Check the arguments of a run: GRAPHC_OK, or a code with the message in ctx. */
static int gc_check_run(gc_ctx *ctx, const int64_t *dims, const void *const *inputs,
                        void *const *outputs) {
    if (GC_NUM_DIMS > 0 && dims == NULL)
        return gc_fail(ctx, GRAPHC_EARGUMENT, "run: dims is NULL, the function has %d dim(s)",
                       GC_NUM_DIMS);
    for (int k = 0; k < GC_NUM_DIMS; k++)
        if (dims[k] != gc_dims[k].value)
            return gc_fail(ctx, GRAPHC_EDIMS,
                           "dim %s: this export was compiled for %s=%lld, got %lld (shapes are "
                           "fixed at export: export again with dims={'%s': %lld} for that shape)",
                           gc_dims[k].name, gc_dims[k].name, (long long)gc_dims[k].value,
                           (long long)dims[k], gc_dims[k].name, (long long)dims[k]);
    if ((GC_NUM_INPUTS > 0 && inputs == NULL) || (GC_NUM_OUTPUTS > 0 && outputs == NULL))
        return gc_fail(ctx, GRAPHC_EARGUMENT, "run: the %s array is NULL",
                       inputs == NULL ? "inputs" : "outputs");
    for (int k = 0; k < GC_NUM_INPUTS; k++)
        if (inputs[k] == NULL && gc_inputs[k].bytes > 0)
            return gc_fail(ctx, GRAPHC_EARGUMENT, "run: input '%s' is NULL", gc_inputs[k].name);
    for (int k = 0; k < GC_NUM_OUTPUTS; k++) {
        const void *out = outputs[k];
        int64_t bytes = gc_outputs[k].bytes;
        if (out == NULL && bytes > 0)
            return gc_fail(ctx, GRAPHC_EARGUMENT, "run: output '%s' is NULL", gc_outputs[k].name);
        for (int j = 0; j < GC_NUM_INPUTS; j++)
            if (gc_overlap(out, bytes, inputs[j], gc_inputs[j].bytes))
                return gc_fail(ctx, GRAPHC_EARGUMENT, "run: output '%s' overlaps input '%s'",
                               gc_outputs[k].name, gc_inputs[j].name);
        for (int j = 0; j < k; j++)
            if (gc_overlap(out, bytes, outputs[j], gc_outputs[j].bytes))
                return gc_fail(ctx, GRAPHC_EARGUMENT, "run: outputs '%s' and '%s' overlap",
                               gc_outputs[j].name, gc_outputs[k].name);
        for (int j = 0; j < GC_NUM_PARAMS; j++)
            if (gc_overlap(out, bytes, ctx->param_data[j], gc_params[j].bytes))
                return gc_fail(ctx, GRAPHC_EARGUMENT, "run: output '%s' overlaps param '%s'",
                               gc_outputs[k].name, gc_params[j].name);
    }
    for (int k = 0; k < GC_NUM_INPUTS; k++)
        for (int j = 0; j < GC_NUM_PARAMS; j++)
            if (gc_params[j].written &&
                gc_overlap(inputs[k], gc_inputs[k].bytes, ctx->param_data[j], gc_params[j].bytes))
                return gc_fail(ctx, GRAPHC_EARGUMENT,
                               "run: input '%s' overlaps param '%s', which the run updates: "
                               "copy it first", gc_inputs[k].name, gc_params[j].name);
    return GRAPHC_OK;
}

static const char *gc_error_format(int32_t code) {
    for (int k = 0; k < GC_NUM_ERRORS; k++)
        if (gc_errors[k].code == code) return gc_errors[k].format;
    return NULL;
}

int GC_NAME(run_array)(gc_ctx *ctx, const int64_t *dims, const void *const *inputs,
                       void *const *outputs) {
    gc_clear(ctx);
    if (ctx == NULL) return gc_fail(NULL, GRAPHC_EARGUMENT, "run: the context is NULL");
    int code = gc_check_run(ctx, dims, inputs, outputs);
    if (code != GRAPHC_OK) return code;
    pthread_mutex_lock(&gc_run_lock);
    for (int s = 0; s < GC_NUM_SLOTS; s++) {
        int index = gc_slots[s].index;
        if (gc_slots[s].kind == GC_SLOT_INPUT)
            ctx->args[s] = inputs[index] != NULL ? (void *)inputs[index] : gc_empty;
        else if (gc_slots[s].kind == GC_SLOT_OUTPUT)
            ctx->args[s] = outputs[index] != NULL ? outputs[index] : gc_empty;
    }
    int32_t failed = gc_pool_run(ctx);
    if (failed == 0) {
        ctx->step++;
    } else {
        long long value = (long long)graphc_error_value();
        const char *format = gc_error_format(failed);
        char message[GC_MESSAGE];
        if (format != NULL) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            snprintf(message, sizeof message, format, value);
#pragma GCC diagnostic pop
        } else {
            snprintf(message, sizeof message, "the compiled kernel reported an error (value %lld)",
                     value);
        }
        code = gc_fail(ctx, GRAPHC_EKERNEL, "run: step %d: %s", (int)failed, message);
    }
    pthread_mutex_unlock(&gc_run_lock);
    return code;
}

/* ----- params ------------------------------------------------------------------------- */

int GC_NAME(param_id)(const char *name) {
    if (name == NULL) return -1;
    for (int k = 0; k < GC_NUM_PARAMS; k++)
        if (strcmp(gc_params[k].name, name) == 0) return k;
    return -1;
}

const char *GC_NAME(param_name)(int id) {
    return id >= 0 && id < GC_NUM_PARAMS ? gc_params[id].name : NULL;
}

int64_t GC_NAME(param_bytes)(int id) {
    return id >= 0 && id < GC_NUM_PARAMS ? gc_params[id].bytes : -1;
}

void *GC_NAME(param_data)(gc_ctx *ctx, int id) {
    return ctx != NULL && id >= 0 && id < GC_NUM_PARAMS ? ctx->param_data[id] : NULL;
}

static int gc_check_param(gc_ctx *ctx, const char *what, int id, const void *buffer,
                          size_t nbytes) {
    if (ctx == NULL) return gc_fail(NULL, GRAPHC_EARGUMENT, "%s: the context is NULL", what);
    if (id < 0 || id >= GC_NUM_PARAMS)
        return gc_fail(ctx, GRAPHC_EARGUMENT, "%s: no param has id %d (ids are 0 to %d)", what,
                       id, GC_NUM_PARAMS - 1);
    if (nbytes != (size_t)gc_params[id].bytes)
        return gc_fail(ctx, GRAPHC_EARGUMENT, "%s: param '%s' has %lld bytes, got %zu", what,
                       gc_params[id].name, (long long)gc_params[id].bytes, nbytes);
    if (buffer == NULL && nbytes > 0)
        return gc_fail(ctx, GRAPHC_EARGUMENT, "%s: the buffer for param '%s' is NULL", what,
                       gc_params[id].name);
    return GRAPHC_OK;
}

int GC_NAME(get_param)(gc_ctx *ctx, int id, void *dst, size_t nbytes) {
    gc_clear(ctx);
    int code = gc_check_param(ctx, "get_param", id, dst, nbytes);
    if (code == GRAPHC_OK && nbytes > 0) {
        pthread_mutex_lock(&gc_run_lock);
        memmove(dst, ctx->param_data[id], nbytes);
        pthread_mutex_unlock(&gc_run_lock);
    }
    return code;
}

int GC_NAME(set_param)(gc_ctx *ctx, int id, const void *src, size_t nbytes) {
    gc_clear(ctx);
    int code = gc_check_param(ctx, "set_param", id, src, nbytes);
    if (code == GRAPHC_OK && nbytes > 0) {
        pthread_mutex_lock(&gc_run_lock);
        memmove(ctx->param_data[id], src, nbytes);
        pthread_mutex_unlock(&gc_run_lock);
    }
    return code;
}
