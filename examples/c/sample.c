/* Samples images through the C ABI and runs one network call of the same model.
 *
 *   cargo build --release -p trilemma-c
 *   cc examples/c/sample.c -Iinclude -Ltarget/release -ltrilemma -o sample
 *   LD_LIBRARY_PATH=target/release ./sample ddgan-digits
 */
#include <stdio.h>
#include <stdlib.h>

#include "trilemma.h"

static int fail(const char *what, TrilemmaStatus s) {
  fprintf(stderr, "%s failed (status %d): %s\n", what, (int)s, trilemma_last_error());
  return 1;
}

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "ddgan-digits";
  TrilemmaModel *model = NULL;
  TrilemmaStatus s = trilemma_model_load(name, "auto", &model);
  if (s != TRILEMMA_STATUS_OK) return fail("trilemma_model_load", s);

  size_t chw[3];
  s = trilemma_model_image_shape(model, chw);
  if (s != TRILEMMA_STATUS_OK) return fail("trilemma_model_image_shape", s);

  TrilemmaSampleOptions opts;
  trilemma_sample_options_default(&opts);
  opts.num = 4;
  opts.seed = 7;
  size_t len = opts.num * chw[0] * chw[1] * chw[2];
  float *images = malloc(len * sizeof(float));
  if (!images) return 1;
  /* Too small a buffer is an error, not an overrun. */
  s = trilemma_sample(model, &opts, images, len - 1);
  if (s != TRILEMMA_STATUS_BUFFER_TOO_SMALL) return fail("the short-buffer check", s);
  s = trilemma_sample(model, &opts, images, len);
  if (s != TRILEMMA_STATUS_OK) return fail("trilemma_sample", s);
  double sum = 0;
  for (size_t i = 0; i < len; i++) {
    if (!(images[i] >= 0.0f && images[i] <= 1.0f)) {
      fprintf(stderr, "value %g at %zu is outside [0, 1]\n", images[i], i);
      return 1;
    }
    sum += images[i];
  }
  printf("%zu images of %zux%zux%zu, mean %.4f\n", opts.num, chw[0], chw[1], chw[2], sum / len);

  /* An unknown sampler is a bad setting with a message. */
  opts.sampler = "heun";
  s = trilemma_sample(model, &opts, images, len);
  if (s != TRILEMMA_STATUS_BAD_SETTING) return fail("the bad-sampler check", s);
  printf("bad sampler: %s\n", trilemma_last_error());

  /* One network call of the DDGAN generator: x0 from (x_t, t, z); ddgan-digits has nz = 16. */
  if (chw[0] == 1 && chw[1] == 16) {
    enum { B = 2, NZ = 16 };
    static float x_t[B * 16 * 16], z[B * NZ];
    for (size_t i = 0; i < sizeof x_t / sizeof *x_t; i++) x_t[i] = (float)((int)(i * 37 % 101) - 50) / 50.0f;
    for (size_t i = 0; i < sizeof z / sizeof *z; i++) z[i] = (float)((int)(i * 13 % 29) - 14) / 14.0f;
    float t[B] = {3.0f, 0.0f};
    size_t x_shape[4] = {B, 1, 16, 16}, t_shape[1] = {B}, z_shape[2] = {B, NZ};
    TrilemmaTensor inputs[3] = {
        {"x_t", x_t, x_shape, 4}, {"t", t, t_shape, 1}, {"z", z, z_shape, 2}};
    TrilemmaOutputs *outs = NULL;
    /* Without z: a bad input naming it. */
    s = trilemma_forward(model, NULL, inputs, 2, &outs);
    if (s != TRILEMMA_STATUS_BAD_INPUT) return fail("the missing-input check", s);
    printf("missing input: %s\n", trilemma_last_error());
    s = trilemma_forward(model, NULL, inputs, 3, &outs);
    if (s != TRILEMMA_STATUS_OK) return fail("trilemma_forward", s);
    for (size_t i = 0; i < trilemma_outputs_count(outs); i++) {
      const char *oname;
      const float *data;
      const size_t *shape;
      size_t rank;
      s = trilemma_outputs_get(outs, i, &oname, &data, &shape, &rank);
      if (s != TRILEMMA_STATUS_OK) return fail("trilemma_outputs_get", s);
      printf("output %s: rank %zu, shape [%zu, %zu, %zu, %zu], first value %.5f\n", oname, rank,
             shape[0], shape[1], shape[2], shape[3], data[0]);
    }
    trilemma_outputs_free(outs);
  }

  trilemma_model_free(model);
  free(images);
  return 0;
}
