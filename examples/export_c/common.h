/* What main.c and train.c share: reading the data files, timing, and classifying the
 * test set with the exported inference library (digits.h). */
#ifndef DIGITS_COMMON_H
#define DIGITS_COMMON_H

#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digits.h"

#define PIXELS (DIGITS_INPUT_0_SIZE / DIGITS_DIM_N) /* 1 x 8 x 8 */
#define CLASSES (DIGITS_OUTPUT_0_SIZE / DIGITS_DIM_N)

/* The file OUT/NAME as bytes; *count: how many items of `size` bytes it holds. */
static void *read_file(const char *out, const char *name, size_t size, size_t *count) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out, name);
    FILE *file = fopen(path, "rb");
    if (file == NULL || fseek(file, 0, SEEK_END) != 0) {
        fprintf(stderr, "cannot read %s (run export_digits.py first)\n", path);
        exit(1);
    }
    long bytes = ftell(file);
    rewind(file);
    void *data = malloc(bytes > 0 ? (size_t)bytes : 1);
    if (data == NULL || fread(data, 1, (size_t)bytes, file) != (size_t)bytes) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fclose(file);
    *count = (size_t)bytes / size;
    return data;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The fraction of `n` images whose largest logit is their label, in batches of
 * DIGITS_DIM_N (the last one padded with zeros); *ms: milliseconds per batch. */
static double classify(digits_ctx *ctx, const float *images, const int32_t *labels, size_t n,
                       double *ms) {
    static float batch[DIGITS_INPUT_0_SIZE], logits[DIGITS_OUTPUT_0_SIZE];
    size_t correct = 0, batches = 0;
    double seconds = 0.0;
    for (size_t start = 0; start < n; start += DIGITS_DIM_N, batches++) {
        size_t rows = n - start < DIGITS_DIM_N ? n - start : DIGITS_DIM_N;
        memset(batch, 0, sizeof batch);
        memcpy(batch, images + start * PIXELS, rows * PIXELS * sizeof(float));
        double t0 = now_seconds();
        if (digits_run(ctx, DIGITS_DIM_N, batch, logits) != GRAPHC_OK) {
            fprintf(stderr, "%s\n", digits_last_error(ctx));
            exit(1);
        }
        seconds += now_seconds() - t0;
        for (size_t r = 0; r < rows; r++) {
            int best = 0;
            for (int c = 1; c < CLASSES; c++)
                if (logits[r * CLASSES + c] > logits[r * CLASSES + best]) best = c;
            correct += best == labels[start + r];
        }
    }
    *ms = batches ? 1e3 * seconds / (double)batches : 0.0;
    return n ? (double)correct / (double)n : 0.0;
}

#endif
