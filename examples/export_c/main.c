/* Classify the digits test set with the exported CNN (digits.o) and print the accuracy.
 *
 *     ./main [OUT [WEIGHTS [THREADS]]]
 *
 * OUT: where export_digits.py wrote the libraries and data (default out); WEIGHTS: a
 * weights file (default OUT/digits/digits.weights.bin: the weights trained in Python; train
 * writes OUT/digits.trained.bin); THREADS: 0 (default) lets the library choose. */
#include "common.h"

int main(int argc, char **argv) {
    const char *out = argc > 1 ? argv[1] : "out";
    char weights[4096];
    snprintf(weights, sizeof weights, "%s/digits/digits.weights.bin", out);
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    digits_ctx *ctx = digits_create(argc > 2 ? argv[2] : weights, threads);
    if (ctx == NULL) {
        fprintf(stderr, "%s\n", digits_last_error(NULL));
        return 1;
    }
    size_t n, labelled;
    float *images = read_file(out, "test_images.f32", PIXELS * sizeof(float), &n);
    int32_t *labels = read_file(out, "test_labels.i32", sizeof(int32_t), &labelled);
    if (n != labelled) {
        fprintf(stderr, "%zu test images but %zu labels\n", n, labelled);
        return 1;
    }
    double ms;
    classify(ctx, images, labels, n, &ms); /* once to warm up */
    double accuracy = classify(ctx, images, labels, n, &ms);
    printf("test accuracy %.4f on %zu digits (%d thread%s, %.3f ms per batch of %d)\n",
           accuracy, n, digits_threads(ctx), digits_threads(ctx) == 1 ? "" : "s", ms,
           (int)DIGITS_DIM_N);
    digits_destroy(ctx);
    free(images);
    free(labels);
    return 0;
}
