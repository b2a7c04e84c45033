// rope_table.h: the cached cos/sin table of a rotary embedding.
//
// Rows cover a window of consecutive integer positions [first, first + rows). Each row holds
// cos(p * theta_i) and sin(p * theta_i) for the dim/2 frequencies, multiplied by the attention
// scaling. The angle is formed from the integer position in double precision and cos/sin are
// evaluated in double, so only the final rounding to float32 loses anything: position 1,000,000
// is as exact as position 10. A call that needs positions outside the window extends it and
// computes only the new rows; rows already computed are never recomputed.
#ifndef ROPE_TABLE_H
#define ROPE_TABLE_H

#include <stdint.h>

// The largest table kept, cos and sin together. A window wider than this is not cached: the
// caller computes the rows it needs per token instead (rope_table_row).
#define ROPE_TABLE_MAX_BYTES (64 * 1024 * 1024)

typedef struct {
    int half;          // floats per row: dim / 2
    int64_t first;     // the position of row 0
    int64_t rows;      // rows computed
    int64_t capacity;  // rows allocated
    float *cos;        // [capacity, half]
    float *sin;        // [capacity, half]
    int64_t computed;  // rows evaluated since init, kept across clears
} rope_table;

void rope_table_init(rope_table *t, int half);
void rope_table_free(rope_table *t);

// Forgets every row (the frequencies changed) but keeps the memory.
void rope_table_clear(rope_table *t);

// The most rows a table of this width may hold.
int64_t rope_table_max_rows(const rope_table *t);

// Makes rows for every position in [lo, hi] present (hi - lo + 1 <= rope_table_max_rows).
// inv_freq: [half]. Returns 0 or ROPE_ERR_NOMEM (the table is unchanged and still valid then).
int rope_table_cover(rope_table *t, int64_t lo, int64_t hi, const double *inv_freq, double scaling);

// One row: cos, sin: [half] for position p.
void rope_table_row(float *cos, float *sin, int64_t p, const double *inv_freq, int half, double scaling);

#endif
