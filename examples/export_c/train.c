/* Train the digits CNN from C with the exported training step (digits_train.o: forward,
 * loss, backward and Adam in one call), then classify the test set with the exported
 * inference library (digits.o) given the params trained here, and write the params back.
 *
 *     ./train [OUT [EPOCHS [THREADS]]]
 *
 * The step starts from the weights it was exported with (before any training). Each epoch
 * shuffles the training set and runs one step per full batch; the learning rate (the
 * param "adam.lr") follows a cosine schedule set through the param accessors. Writes
 * OUT/digits_train.trained.bin (the whole training state: model, Adam's moments and step)
 * and OUT/digits.trained.bin (the model, for ./main OUT OUT/digits.trained.bin). */
#include <math.h>

#include "common.h"
#include "digits_train.h"

#define BATCH DIGITS_TRAIN_DIM_N
#define TRAIN_PIXELS (DIGITS_TRAIN_INPUT_0_SIZE / BATCH)

static void check(int status, const char *message) {
    if (status != GRAPHC_OK) {
        fprintf(stderr, "%s\n", message);
        exit(1);
    }
}

/* Copy every param of the inference library from the training context, by name. */
static void copy_params(digits_train_ctx *from, digits_ctx *to) {
    for (int k = 0; k < DIGITS_NUM_PARAMS; k++) {
        int id = digits_train_param_id(digits_param_name(k));
        if (id < 0) {
            fprintf(stderr, "the training step has no param '%s'\n", digits_param_name(k));
            exit(1);
        }
        check(digits_set_param(to, k, digits_train_param_data(from, id),
                               (size_t)digits_train_param_bytes(id)),
              digits_last_error(to));
    }
}

int main(int argc, char **argv) {
    const char *out = argc > 1 ? argv[1] : "out";
    int epochs = argc > 2 ? atoi(argv[2]) : 20;
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/digits_train/digits_train.weights.bin", out);
    digits_train_ctx *step = digits_train_create(path, threads);
    snprintf(path, sizeof path, "%s/digits/digits.weights.bin", out);
    digits_ctx *infer = digits_create(path, threads);
    if (step == NULL || infer == NULL) {
        fprintf(stderr, "%s\n", digits_last_error(NULL)[0] ? digits_last_error(NULL)
                                                            : digits_train_last_error(NULL));
        return 1;
    }
    size_t n, labelled, n_test, labelled_test;
    float *images = read_file(out, "train_images.f32", TRAIN_PIXELS * sizeof(float), &n);
    int32_t *labels = read_file(out, "train_labels.i32", sizeof(int32_t), &labelled);
    float *test = read_file(out, "test_images.f32", PIXELS * sizeof(float), &n_test);
    int32_t *test_labels = read_file(out, "test_labels.i32", sizeof(int32_t), &labelled_test);
    if (n != labelled || n_test != labelled_test || n < BATCH) {
        fprintf(stderr, "the data files do not match\n");
        return 1;
    }

    int lr_id = digits_train_param_id("adam.lr");
    float base_lr = 0.0f, eta_min = 1e-5f;
    check(lr_id < 0 ? GRAPHC_EARGUMENT : digits_train_get_param(step, lr_id, &base_lr, sizeof base_lr),
          "the training step has no float param 'adam.lr'");
    size_t *order = malloc(n * sizeof *order);
    static float x[DIGITS_TRAIN_INPUT_0_SIZE];
    static DIGITS_TRAIN_INPUT_1_CTYPE y[DIGITS_TRAIN_INPUT_1_SIZE];
    float loss, correct;
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    double step_seconds = 0.0;
    long steps = 0;
    for (size_t k = 0; k < n; k++) order[k] = k;
    for (int epoch = 0; epoch < epochs; epoch++) {
        float lr = eta_min + (base_lr - eta_min) * 0.5f * (1.0f + cosf(3.14159265f * (float)epoch /
                                                                      (float)epochs));
        check(digits_train_set_param(step, lr_id, &lr, sizeof lr), digits_train_last_error(step));
        for (size_t k = n - 1; k > 0; k--) { /* Fisher-Yates with xorshift64 */
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            size_t j = (size_t)(seed % (k + 1)), t = order[k];
            order[k] = order[j], order[j] = t;
        }
        double total_loss = 0.0, total_correct = 0.0;
        size_t seen = 0;
        for (size_t start = 0; start + BATCH <= n; start += BATCH) {
            for (int r = 0; r < BATCH; r++) {
                memcpy(x + r * TRAIN_PIXELS, images + order[start + r] * TRAIN_PIXELS,
                       TRAIN_PIXELS * sizeof(float));
                y[r] = (DIGITS_TRAIN_INPUT_1_CTYPE)labels[order[start + r]];
            }
            double t0 = now_seconds();
            check(digits_train_run(step, BATCH, x, y, &loss, &correct),
                  digits_train_last_error(step));
            step_seconds += now_seconds() - t0;
            steps++;
            total_loss += loss * BATCH;
            total_correct += correct;
            seen += BATCH;
        }
        printf("epoch %2d: lr %.5f, loss %.4f, train accuracy %.4f\n", epoch + 1, lr,
               total_loss / (double)seen, total_correct / (double)seen);
    }
    copy_params(step, infer);
    double ms;
    double accuracy = classify(infer, test, test_labels, n_test, &ms);
    printf("trained %d epochs from C (%d thread%s, %.3f ms per step of %d): test accuracy %.4f\n",
           epochs, digits_train_threads(step), digits_train_threads(step) == 1 ? "" : "s",
           steps ? 1e3 * step_seconds / (double)steps : 0.0, (int)BATCH, accuracy);
    snprintf(path, sizeof path, "%s/digits_train.trained.bin", out);
    check(digits_train_save_weights(step, path), digits_train_last_error(step));
    snprintf(path, sizeof path, "%s/digits.trained.bin", out);
    check(digits_save_weights(infer, path), digits_last_error(infer));
    printf("wrote %s/digits_train.trained.bin and %s\n", out, path);
    digits_train_destroy(step);
    digits_destroy(infer);
    free(order);
    free(images);
    free(labels);
    free(test);
    free(test_labels);
    return 0;
}
