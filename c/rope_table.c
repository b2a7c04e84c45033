// rope_table.c: a growable window of cos/sin rows over consecutive positions.
#include "rope_table.h"
#include "rope_errors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rope_table_init(rope_table *t, int half) {
    t->half = half;
    t->first = 0;
    t->rows = 0;
    t->capacity = 0;
    t->cos = NULL;
    t->sin = NULL;
    t->computed = 0;
}

void rope_table_free(rope_table *t) {
    free(t->cos);
    free(t->sin);
    t->cos = t->sin = NULL;
    t->rows = t->capacity = 0;
}

void rope_table_clear(rope_table *t) { t->rows = 0; }

int64_t rope_table_max_rows(const rope_table *t) {
    return ROPE_TABLE_MAX_BYTES / ((int64_t)t->half * 2 * (int64_t)sizeof(float));
}

void rope_table_row(float *cos_row, float *sin_row, int64_t p, const double *inv_freq, int half, double scaling) {
    for (int i = 0; i < half; i++) {
        double angle = (double)p * inv_freq[i];  // exact integer position times a double frequency
        cos_row[i] = (float)(cos(angle) * scaling);
        sin_row[i] = (float)(sin(angle) * scaling);
    }
}

static void fill_rows(rope_table *t, int64_t from_row, int64_t to_row, const double *inv_freq, double scaling) {
    for (int64_t r = from_row; r < to_row; r++) {
        rope_table_row(t->cos + r * t->half, t->sin + r * t->half, t->first + r, inv_freq, t->half, scaling);
    }
    t->computed += to_row > from_row ? to_row - from_row : 0;
}

// Grows both arrays to hold `rows` rows; on failure the table keeps its old capacity.
static int reserve(rope_table *t, int64_t rows) {
    if (rows <= t->capacity) return ROPE_OK;
    int64_t capacity = t->capacity * 2;  // geometric growth: extending one position at a time stays linear
    if (capacity < rows) capacity = rows;
    if (capacity > rope_table_max_rows(t)) capacity = rope_table_max_rows(t);
    size_t bytes = (size_t)capacity * (size_t)t->half * sizeof(float);
    float *cos_rows = realloc(t->cos, bytes);
    if (!cos_rows) return ROPE_ERR_NOMEM;
    t->cos = cos_rows;
    float *sin_rows = realloc(t->sin, bytes);
    if (!sin_rows) return ROPE_ERR_NOMEM;
    t->sin = sin_rows;
    t->capacity = capacity;
    return ROPE_OK;
}

int rope_table_cover(rope_table *t, int64_t lo, int64_t hi, const double *inv_freq, double scaling) {
    if (t->rows > 0 && lo >= t->first && hi < t->first + t->rows) return ROPE_OK;

    int64_t new_first = lo, new_last = hi;
    if (t->rows > 0) {
        int64_t last = t->first + t->rows - 1;
        if (t->first < new_first) new_first = t->first;
        if (last > new_last) new_last = last;
        // A window far from the cached one: start a new window rather than fill the gap.
        if (new_last - new_first + 1 > rope_table_max_rows(t)) {
            rope_table_clear(t);
            new_first = lo;
            new_last = hi;
        }
    }
    int64_t new_rows = new_last - new_first + 1;
    int status = reserve(t, new_rows);
    if (status != ROPE_OK) return status;

    if (t->rows == 0) {
        t->first = new_first;
        t->rows = new_rows;
        fill_rows(t, 0, new_rows, inv_freq, scaling);
        return ROPE_OK;
    }
    // Keep the rows we have, shifted to their place in the wider window; compute the rest.
    int64_t shift = t->first - new_first;
    int64_t old_rows = t->rows;
    if (shift > 0) {
        size_t bytes = (size_t)old_rows * (size_t)t->half * sizeof(float);
        memmove(t->cos + shift * t->half, t->cos, bytes);
        memmove(t->sin + shift * t->half, t->sin, bytes);
    }
    t->first = new_first;
    t->rows = new_rows;
    fill_rows(t, 0, shift, inv_freq, scaling);
    fill_rows(t, shift + old_rows, new_rows, inv_freq, scaling);
    return ROPE_OK;
}
