// model.c: the character-level RoPE transformer: parameter layout, initialisation, forward and
// backward passes, in the manner of llm.c's train_gpt2.c: the parameters, the gradients and the
// activations are three allocations with named views, each layer has its forward and backward
// written out in order, and every matrix product runs on gemm.
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "attention_backward.h"
#include "cross_entropy.h"
#include "embedding.h"
#include "layernorm.h"
#include "linear.h"
#include "rng.h"
#include "rope.h"
#include "rope_errors.h"

#define LAYERNORM_EPS 1e-5f
#define TENSOR_NAME_MAX 64
#define TENSORS_PER_LAYER 16
// Activations are sized in int: gemm and the attention kernel take int sizes.
#define MAX_ELEMENTS_PER_BUFFER ((int64_t)INT32_MAX)

// ----------------------------------------------------------------------------
// the parameter tensors

// How a tensor is initialised (PyTorch's defaults for its module).
enum tensor_init {
    INIT_NORMAL = 0,  // nn.Embedding: N(0, 1)
    INIT_ONES = 1,    // LayerNorm weight
    INIT_ZEROS = 2,   // LayerNorm bias
    INIT_FAN_IN = 3,  // nn.Linear weight and bias: U(-1/sqrt(in), 1/sqrt(in))
};

typedef struct {
    char name[TENSOR_NAME_MAX];  // the state_dict key
    int64_t offset;              // floats from the start of params (and of grads)
    int dims;                    // 1 or 2
    int shape[2];                // PyTorch's shape; shape[1] = 1 for 1-D tensors
    int init;                    // enum tensor_init
    int fan_in;                  // INIT_FAN_IN: the layer's input features
} tensor_info;

// Index of tensor j (0..15, the order below) of layer l in the table.
enum layer_tensor {
    NORM_SELF_ATTN_WEIGHT, NORM_SELF_ATTN_BIAS,
    QUERY_WEIGHT, QUERY_BIAS, KEY_WEIGHT, KEY_BIAS, VALUE_WEIGHT, VALUE_BIAS, OUTPUT_WEIGHT, OUTPUT_BIAS,
    NORM_FF_WEIGHT, NORM_FF_BIAS,
    FF1_WEIGHT, FF1_BIAS, FF2_WEIGHT, FF2_BIAS,
};

// One layer's parameters (or their gradients): views into params (or grads).
typedef struct {
    float *norm_self_attn_weight, *norm_self_attn_bias;  // [d_model]
    float *query_weight, *query_bias;                    // [d_model, d_model], [d_model]
    float *key_weight, *key_bias;                        // the same
    float *value_weight, *value_bias;                    // the same
    float *output_weight, *output_bias;                  // the same
    float *norm_ff_weight, *norm_ff_bias;                // [d_model]
    float *ff1_weight, *ff1_bias;                        // [d_ff, d_model], [d_ff]
    float *ff2_weight, *ff2_bias;                        // [d_model, d_ff], [d_model]
} layer_params;

// The tensors outside the layers (or their gradients).
typedef struct {
    float *embed;                              // src_embed.weight [vocab, d_model]
    float *norm_weight, *norm_bias;            // norm [d_model]
    float *generator_weight, *generator_bias;  // generator [vocab, d_model], [vocab]
} outer_params;

// ----------------------------------------------------------------------------
// the activations of one forward pass (what backward needs), and backward's work space

typedef struct {
    // Per layer l; R = seq * batch rows of the current pass, each buffer sized for max_seq * max_batch.
    float *residual;      // [layers + 1][R, d_model]: the input of layer l; [layers]: the final stream
    float *ln1;           // [layers][R, d_model]: LayerNorm_self_attn(residual)
    float *ln1_mean, *ln1_rstd;  // [layers][R]
    float *q, *k, *v;     // [layers][R, d_model] = [seq, batch, heads, d_k]; q, k after RoPE
    float *weights;       // [layers][batch, heads, seq, seq]: the softmax
    float *attended;      // [layers][R, d_model]: the attention output, before the output Linear
    float *mid;           // [layers][R, d_model]: the residual stream after the attention block
    float *ln2;           // [layers][R, d_model]: LayerNorm_ff(mid)
    float *ln2_mean, *ln2_rstd;  // [layers][R]
    float *hidden;        // [layers][R, d_ff]: ReLU(ff_layer1(ln2))
    float *lnf;           // [R, d_model]: the final LayerNorm
    float *lnf_mean, *lnf_rstd;  // [R]
    float *logits;        // [R, vocab]
    // backward's work space
    float *d_residual;    // [R, d_model]: the gradient of the residual stream, flowing down
    float *d_ln;          // [R, d_model]: the gradient of a LayerNorm output
    float *d_attended;    // [R, d_model]
    float *dq, *dk, *dv;  // [R, d_model]
    float *d_hidden;      // [R, d_ff]
    float *d_logits;      // [R, vocab]
    float *d_scores;      // [max_seq, max_seq]: attention backward's dP
} activations;

struct transformer {
    model_config config;
    int d_k, rope_dim;
    int max_seq, max_batch;
    int tensor_count;
    tensor_info *tensors;      // [tensor_count]
    int64_t param_count;
    float *params;             // [param_count]
    float *grads;              // [param_count]
    float *activation_memory;  // everything `acts` points into
    activations acts;
    int32_t *tokens, *targets; // [max_seq * max_batch]: copies of the last forward's
    rope_embedding *rope;      // NULL when rope_dim is 0
    // The last forward: its sizes, and whether backward may run (it succeeded, with targets).
    int seq, batch;
    int backward_ready;
    // Incremental decoding (made at the first transformer_decode): per layer the rotated keys and
    // the values of the tokens fed so far, [layers][max_seq, d_model] each, then one token's work
    // space. decode_length tokens are cached, at positions 0 .. decode_length - 1.
    float *decode_memory;
    float *cache_k, *cache_v;
    float *step_x, *step_z, *step_q, *step_attended, *step_hidden, *step_stats;
    int decode_length;
};

// ----------------------------------------------------------------------------
// layout

static void add_tensor(transformer *m, int64_t *offset, const char *name, int rows, int cols, int init, int fan_in) {
    tensor_info *t = &m->tensors[m->tensor_count++];
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->offset = *offset;
    t->dims = cols > 0 ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols > 0 ? cols : 1;
    t->init = init;
    t->fan_in = fan_in;
    *offset += (int64_t)t->shape[0] * t->shape[1];
}

// The state_dict of labml's transformer with RoPE attention, in its order. cols 0: a 1-D tensor.
static void build_tensor_table(transformer *m) {
    const model_config *c = &m->config;
    int64_t offset = 0;
    char name[TENSOR_NAME_MAX];
    add_tensor(m, &offset, "src_embed.weight", c->vocab, c->d_model, INIT_NORMAL, 0);
    for (int l = 0; l < c->layers; l++) {
        // Named sub-modules in the order PyTorch registers them (the reference's json lists this order).
        static const char *const suffixes[TENSORS_PER_LAYER] = {
            "norm_self_attn.weight", "norm_self_attn.bias",
            "self_attn.query.weight", "self_attn.query.bias", "self_attn.key.weight", "self_attn.key.bias",
            "self_attn.value.weight", "self_attn.value.bias", "self_attn.output.weight", "self_attn.output.bias",
            "norm_ff.weight", "norm_ff.bias",
            "ff_layer1.weight", "ff_layer1.bias", "ff_layer2.weight", "ff_layer2.bias",
        };
        for (int j = 0; j < TENSORS_PER_LAYER; j++) {
            snprintf(name, sizeof(name), "layers.%d.%s", l, suffixes[j]);
            int d = c->d_model;
            switch (j) {
                case NORM_SELF_ATTN_WEIGHT: case NORM_FF_WEIGHT: add_tensor(m, &offset, name, d, 0, INIT_ONES, 0); break;
                case NORM_SELF_ATTN_BIAS: case NORM_FF_BIAS: add_tensor(m, &offset, name, d, 0, INIT_ZEROS, 0); break;
                case FF1_WEIGHT: add_tensor(m, &offset, name, c->d_ff, d, INIT_FAN_IN, d); break;
                case FF1_BIAS: add_tensor(m, &offset, name, c->d_ff, 0, INIT_FAN_IN, d); break;
                case FF2_WEIGHT: add_tensor(m, &offset, name, d, c->d_ff, INIT_FAN_IN, c->d_ff); break;
                case FF2_BIAS: add_tensor(m, &offset, name, d, 0, INIT_FAN_IN, c->d_ff); break;
                default:  // the four attention projections: weight [d, d], bias [d]
                    add_tensor(m, &offset, name, d, j % 2 == 0 ? d : 0, INIT_FAN_IN, d);
                    break;
            }
        }
    }
    add_tensor(m, &offset, "norm.weight", c->d_model, 0, INIT_ONES, 0);
    add_tensor(m, &offset, "norm.bias", c->d_model, 0, INIT_ZEROS, 0);
    add_tensor(m, &offset, "generator.weight", c->vocab, c->d_model, INIT_FAN_IN, c->d_model);
    add_tensor(m, &offset, "generator.bias", c->vocab, 0, INIT_FAN_IN, c->d_model);
    m->param_count = offset;
}

// Layer l's tensors inside base (params or grads).
static layer_params layer_view(const transformer *m, float *base, int l) {
    const tensor_info *t = m->tensors + 1 + (size_t)l * TENSORS_PER_LAYER;
    layer_params p;
    p.norm_self_attn_weight = base + t[NORM_SELF_ATTN_WEIGHT].offset;
    p.norm_self_attn_bias = base + t[NORM_SELF_ATTN_BIAS].offset;
    p.query_weight = base + t[QUERY_WEIGHT].offset;
    p.query_bias = base + t[QUERY_BIAS].offset;
    p.key_weight = base + t[KEY_WEIGHT].offset;
    p.key_bias = base + t[KEY_BIAS].offset;
    p.value_weight = base + t[VALUE_WEIGHT].offset;
    p.value_bias = base + t[VALUE_BIAS].offset;
    p.output_weight = base + t[OUTPUT_WEIGHT].offset;
    p.output_bias = base + t[OUTPUT_BIAS].offset;
    p.norm_ff_weight = base + t[NORM_FF_WEIGHT].offset;
    p.norm_ff_bias = base + t[NORM_FF_BIAS].offset;
    p.ff1_weight = base + t[FF1_WEIGHT].offset;
    p.ff1_bias = base + t[FF1_BIAS].offset;
    p.ff2_weight = base + t[FF2_WEIGHT].offset;
    p.ff2_bias = base + t[FF2_BIAS].offset;
    return p;
}

static outer_params outer_view(const transformer *m, float *base) {
    const tensor_info *last = m->tensors + m->tensor_count - 4;  // norm.weight, norm.bias, generator.*
    outer_params p;
    p.embed = base + m->tensors[0].offset;
    p.norm_weight = base + last[0].offset;
    p.norm_bias = base + last[1].offset;
    p.generator_weight = base + last[2].offset;
    p.generator_bias = base + last[3].offset;
    return p;
}

// Points every activation buffer into one allocation; returns the floats it needs (memory NULL:
// only counts).
static int64_t layout_activations(activations *a, float *memory, const model_config *c, int max_seq, int max_batch) {
    int64_t rows = (int64_t)max_seq * max_batch, L = c->layers, d = c->d_model;
    int64_t weights = (int64_t)max_batch * c->heads * max_seq * max_seq;
    struct { float **view; int64_t size; } buffers[] = {
        {&a->residual, (L + 1) * rows * d}, {&a->ln1, L * rows * d}, {&a->ln1_mean, L * rows},
        {&a->ln1_rstd, L * rows}, {&a->q, L * rows * d}, {&a->k, L * rows * d}, {&a->v, L * rows * d},
        {&a->weights, L * weights}, {&a->attended, L * rows * d}, {&a->mid, L * rows * d},
        {&a->ln2, L * rows * d}, {&a->ln2_mean, L * rows}, {&a->ln2_rstd, L * rows},
        {&a->hidden, L * rows * c->d_ff}, {&a->lnf, rows * d}, {&a->lnf_mean, rows}, {&a->lnf_rstd, rows},
        {&a->logits, rows * c->vocab}, {&a->d_residual, rows * d}, {&a->d_ln, rows * d},
        {&a->d_attended, rows * d}, {&a->dq, rows * d}, {&a->dk, rows * d}, {&a->dv, rows * d},
        {&a->d_hidden, rows * c->d_ff}, {&a->d_logits, rows * c->vocab},
        {&a->d_scores, (int64_t)max_seq * max_seq},
    };
    int64_t total = 0;
    for (size_t i = 0; i < sizeof(buffers) / sizeof(buffers[0]); i++) {
        if (memory) *buffers[i].view = memory + total;
        total += buffers[i].size;
    }
    return total;
}

// ----------------------------------------------------------------------------
// creation

static int check_config(const model_config *c, int max_seq, int max_batch, int *rope_dim) {
    if (c->vocab < 1 || c->d_model < 1 || c->heads < 1 || c->layers < 1 || c->d_ff < 1) return ROPE_ERR_SHAPE;
    if (max_seq < 1 || max_batch < 1) return ROPE_ERR_SHAPE;
    if (c->d_model % c->heads != 0) return ROPE_ERR_HEADS;
    if (!(c->rope_percentage >= 0.0 && c->rope_percentage <= 1.0)) return ROPE_ERR_DIM;
    // int(d_k * rope_percentage), as labml's RotaryPEMultiHeadAttention computes it.
    int dim = (int)((double)(c->d_model / c->heads) * c->rope_percentage);
    if (dim % 2 != 0) return ROPE_ERR_DIM;
    if (dim > 0 && !(isfinite(c->base) && c->base > 0.0)) return ROPE_ERR_BASE;
    // Every buffer's element count must fit an int (the kernels' sizes) and everything a size_t.
    int64_t rows = (int64_t)max_seq * max_batch;
    int64_t widest = c->d_model > c->d_ff ? c->d_model : c->d_ff;
    widest = widest > c->vocab ? widest : c->vocab;
    if (rows > MAX_ELEMENTS_PER_BUFFER / widest) return ROPE_ERR_SHAPE;
    if ((int64_t)max_batch * c->heads > MAX_ELEMENTS_PER_BUFFER / max_seq / max_seq) return ROPE_ERR_SHAPE;
    if ((int64_t)c->vocab * c->d_model > MAX_ELEMENTS_PER_BUFFER ||
        (int64_t)c->d_ff * c->d_model > MAX_ELEMENTS_PER_BUFFER) {
        return ROPE_ERR_SHAPE;
    }
    *rope_dim = dim;
    return ROPE_OK;
}

// calloc of n floats, NULL when n floats do not fit a size_t.
static float *alloc_floats(int64_t n) {
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float)) return NULL;
    return calloc((size_t)(n > 0 ? n : 1), sizeof(float));
}

int transformer_create(const model_config *config, int max_seq, int max_batch, transformer **out) {
    if (!out) return ROPE_ERR_NULL;
    *out = NULL;
    if (!config) return ROPE_ERR_NULL;
    int rope_dim = 0;
    int status = check_config(config, max_seq, max_batch, &rope_dim);
    if (status != ROPE_OK) return status;
    // The layers' size as a whole must fit too (the per-buffer checks bound each factor).
    if (config->layers > MAX_ELEMENTS_PER_BUFFER / 32) return ROPE_ERR_SHAPE;

    transformer *m = calloc(1, sizeof(transformer));
    if (!m) return ROPE_ERR_NOMEM;
    m->config = *config;
    m->d_k = config->d_model / config->heads;
    m->rope_dim = rope_dim;
    m->max_seq = max_seq;
    m->max_batch = max_batch;
    m->tensors = calloc((size_t)config->layers * TENSORS_PER_LAYER + 5, sizeof(tensor_info));
    size_t rows = (size_t)max_seq * (size_t)max_batch;
    m->tokens = malloc(rows * sizeof(int32_t));
    m->targets = malloc(rows * sizeof(int32_t));
    if (!m->tensors || !m->tokens || !m->targets) {
        transformer_destroy(m);
        return ROPE_ERR_NOMEM;
    }
    build_tensor_table(m);
    m->params = alloc_floats(m->param_count);
    m->grads = alloc_floats(m->param_count);
    m->activation_memory = alloc_floats(layout_activations(&m->acts, NULL, config, max_seq, max_batch));
    if (rope_dim > 0) m->rope = rope_create(rope_dim, config->base, ROPE_PAIRING_HALF);
    if (!m->params || !m->grads || !m->activation_memory || (rope_dim > 0 && !m->rope)) {
        transformer_destroy(m);
        return ROPE_ERR_NOMEM;
    }
    layout_activations(&m->acts, m->activation_memory, config, max_seq, max_batch);
    *out = m;
    return ROPE_OK;
}

void transformer_destroy(transformer *model) {
    if (!model) return;
    rope_destroy(model->rope);
    free(model->tensors);
    free(model->params);
    free(model->grads);
    free(model->activation_memory);
    free(model->tokens);
    free(model->targets);
    free(model->decode_memory);
    free(model);
}

// ----------------------------------------------------------------------------
// parameters

int64_t transformer_param_count(const transformer *model) { return model ? model->param_count : -1; }
float *transformer_params(transformer *model) { return model ? model->params : NULL; }
float *transformer_grads(transformer *model) { return model ? model->grads : NULL; }
int transformer_tensor_count(const transformer *model) { return model ? model->tensor_count : ROPE_ERR_NULL; }

static const tensor_info *tensor_at(const transformer *model, int index) {
    if (!model || index < 0 || index >= model->tensor_count) return NULL;
    return &model->tensors[index];
}

const char *transformer_tensor_name(const transformer *model, int index) {
    const tensor_info *t = tensor_at(model, index);
    return t ? t->name : NULL;
}

int64_t transformer_tensor_offset(const transformer *model, int index) {
    const tensor_info *t = tensor_at(model, index);
    return t ? t->offset : -1;
}

int64_t transformer_tensor_size(const transformer *model, int index) {
    const tensor_info *t = tensor_at(model, index);
    return t ? (int64_t)t->shape[0] * t->shape[1] : -1;
}

int transformer_tensor_dims(const transformer *model, int index) {
    const tensor_info *t = tensor_at(model, index);
    return t ? t->dims : ROPE_ERR_SHAPE;
}

int transformer_tensor_dim(const transformer *model, int index, int axis) {
    const tensor_info *t = tensor_at(model, index);
    if (!t || axis < 0 || axis >= t->dims) return ROPE_ERR_SHAPE;
    return t->shape[axis];
}

int transformer_init(transformer *model, uint64_t seed) {
    if (!model) return ROPE_ERR_NULL;
    rng_state rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < model->tensor_count; i++) {
        const tensor_info *t = &model->tensors[i];
        float *p = model->params + t->offset;
        int64_t n = (int64_t)t->shape[0] * t->shape[1];
        double bound = t->init == INIT_FAN_IN ? 1.0 / sqrt((double)t->fan_in) : 0.0;
        for (int64_t j = 0; j < n; j++) {
            switch (t->init) {
                case INIT_NORMAL: p[j] = (float)rng_normal(&rng); break;
                case INIT_ONES: p[j] = 1.0f; break;
                case INIT_ZEROS: p[j] = 0.0f; break;
                default: p[j] = (float)(bound * (2.0 * rng_uniform(&rng) - 1.0)); break;
            }
        }
    }
    model->backward_ready = 0;  // saved activations belong to the old parameters
    return ROPE_OK;
}

// ----------------------------------------------------------------------------
// forward

// x = max(x, 0), x: [n]
static void relu_forward(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// dx *= (y > 0): the gradient through ReLU, from its output y (y > 0 exactly where its input was).
static void relu_backward(float *dx, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dx[i] : 0.0f;
}

static float attention_scale(const transformer *m) { return (float)(1.0 / sqrt((double)m->d_k)); }

// One layer: residual[l] -> residual[l + 1], saving what backward needs. R = seq * batch.
static int layer_forward(transformer *m, int l, int seq, int batch) {
    const model_config *c = &m->config;
    activations *a = &m->acts;
    layer_params p = layer_view(m, m->params, l);
    int R = seq * batch, d = c->d_model;
    size_t rows = (size_t)m->max_seq * m->max_batch;  // each layer's slot in a buffer
    size_t at = (size_t)l * rows * d;                  // layer l's [R, d_model] buffers
    size_t stats = (size_t)l * rows;                   // its [R] LayerNorm statistics
    float *x = a->residual + at, *x_out = a->residual + at + rows * d;
    float *ln1 = a->ln1 + at, *q = a->q + at, *k = a->k + at, *v = a->v + at;
    float *attended = a->attended + at, *mid = a->mid + at, *ln2 = a->ln2 + at;
    float *hidden = a->hidden + (size_t)l * rows * c->d_ff;
    float *weights = a->weights + (size_t)l * m->max_batch * c->heads * m->max_seq * m->max_seq;

    // x_mid = x + output(attention(rope(query(z)), rope(key(z)), value(z))), z = LayerNorm(x)
    int status = layernorm_forward(ln1, a->ln1_mean + stats, a->ln1_rstd + stats, x, p.norm_self_attn_weight,
                                   p.norm_self_attn_bias, R, d, LAYERNORM_EPS);
    if (status == ROPE_OK) status = linear_forward(q, ln1, p.query_weight, p.query_bias, R, d, d, 0);
    if (status == ROPE_OK) status = linear_forward(k, ln1, p.key_weight, p.key_bias, R, d, d, 0);
    if (status == ROPE_OK) status = linear_forward(v, ln1, p.value_weight, p.value_bias, R, d, d, 0);
    // RoPE once, in place, outside the attention kernel: backward needs the rotated q and k.
    if (status == ROPE_OK && m->rope) {
        status = rope_apply(m->rope, q, q, ROPE_LAYOUT_SBHD, seq, batch, c->heads, m->d_k, 0, NULL, 0, 0);
        if (status == ROPE_OK) {
            status = rope_apply(m->rope, k, k, ROPE_LAYOUT_SBHD, seq, batch, c->heads, m->d_k, 0, NULL, 0, 0);
        }
    }
    if (status == ROPE_OK) {
        status = rope_attention_forward(q, k, v, attended, weights, batch, c->heads, c->heads, seq, seq, m->d_k,
                                        ROPE_LAYOUT_SBHD, 1, attention_scale(m), NULL, 0);
    }
    if (status == ROPE_OK) {
        memcpy(mid, x, (size_t)R * d * sizeof(float));
        status = linear_forward(mid, attended, p.output_weight, p.output_bias, R, d, d, 1);
    }
    // x_out = x_mid + ff_layer2(ReLU(ff_layer1(LayerNorm(x_mid))))
    if (status == ROPE_OK) {
        status = layernorm_forward(ln2, a->ln2_mean + stats, a->ln2_rstd + stats, mid, p.norm_ff_weight,
                                   p.norm_ff_bias, R, d, LAYERNORM_EPS);
    }
    if (status == ROPE_OK) status = linear_forward(hidden, ln2, p.ff1_weight, p.ff1_bias, R, d, c->d_ff, 0);
    if (status == ROPE_OK) {
        relu_forward(hidden, (size_t)R * c->d_ff);
        memcpy(x_out, mid, (size_t)R * d * sizeof(float));
        status = linear_forward(x_out, hidden, p.ff2_weight, p.ff2_bias, R, c->d_ff, d, 1);
    }
    return status;
}

int transformer_forward(transformer *model, const int32_t *tokens, const int32_t *targets, int seq, int batch,
                        float *loss) {
    if (!model || !tokens) return ROPE_ERR_NULL;
    if (seq < 1 || seq > model->max_seq || batch < 1 || batch > model->max_batch) return ROPE_ERR_SHAPE;
    const model_config *c = &model->config;
    int R = seq * batch;
    int status = embedding_check_tokens(tokens, R, c->vocab);
    if (status == ROPE_OK && targets) status = embedding_check_tokens(targets, R, c->vocab);
    if (status != ROPE_OK) return status;

    model->backward_ready = 0;
    model->seq = seq;
    model->batch = batch;
    memcpy(model->tokens, tokens, (size_t)R * sizeof(int32_t));
    if (targets) memcpy(model->targets, targets, (size_t)R * sizeof(int32_t));
    activations *a = &model->acts;
    outer_params p = outer_view(model, model->params);
    size_t rows = (size_t)model->max_seq * model->max_batch;

    status = embedding_forward(a->residual, tokens, p.embed, R, c->vocab, c->d_model);
    for (int l = 0; l < c->layers && status == ROPE_OK; l++) status = layer_forward(model, l, seq, batch);
    float *x = a->residual + (size_t)c->layers * rows * c->d_model;
    if (status == ROPE_OK) {
        status = layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, x, p.norm_weight, p.norm_bias, R, c->d_model,
                                   LAYERNORM_EPS);
    }
    if (status == ROPE_OK) {
        status = linear_forward(a->logits, a->lnf, p.generator_weight, p.generator_bias, R, c->d_model, c->vocab, 0);
    }
    double loss_sum = NAN;
    if (status == ROPE_OK && targets) status = cross_entropy_forward(&loss_sum, a->logits, targets, R, c->vocab);
    if (loss) *loss = status == ROPE_OK && targets ? (float)(loss_sum / R) : NAN;
    model->backward_ready = status == ROPE_OK && targets;
    return status;
}

const float *transformer_logits(const transformer *model) { return model ? model->acts.logits : NULL; }

const float *transformer_attention_weights(const transformer *model, int layer) {
    if (!model || layer < 0 || layer >= model->config.layers) return NULL;
    return model->acts.weights + (size_t)layer * model->max_batch * model->config.heads * model->max_seq * model->max_seq;
}

// ----------------------------------------------------------------------------
// incremental decoding

// The KV cache and one token's work space, in one allocation.
static int decode_allocate(transformer *m) {
    const model_config *c = &m->config;
    int64_t cache = (int64_t)c->layers * m->max_seq * c->d_model;
    int64_t step = 4 * (int64_t)c->d_model + c->d_ff + 2;
    m->decode_memory = alloc_floats(2 * cache + step);
    if (!m->decode_memory) return ROPE_ERR_NOMEM;
    m->cache_k = m->decode_memory;
    m->cache_v = m->cache_k + cache;
    m->step_x = m->cache_v + cache;
    m->step_z = m->step_x + c->d_model;
    m->step_q = m->step_z + c->d_model;
    m->step_attended = m->step_q + c->d_model;
    m->step_hidden = m->step_attended + c->d_model;
    m->step_stats = m->step_hidden + c->d_ff;  // [2]: a LayerNorm's mean and rstd
    return ROPE_OK;
}

int transformer_decode_reset(transformer *model) {
    if (!model) return ROPE_ERR_NULL;
    model->decode_length = 0;
    return ROPE_OK;
}

int transformer_decode_length(const transformer *model) { return model ? model->decode_length : ROPE_ERR_NULL; }

// One layer for the token at position pos: step_x -> step_x, its key and value appended to the
// layer's cache. The same operations as layer_forward on one row, against the cached keys.
static int layer_decode(transformer *m, int l, int pos) {
    const model_config *c = &m->config;
    layer_params p = layer_view(m, m->params, l);
    int d = c->d_model;
    float *keys = m->cache_k + (size_t)l * m->max_seq * d, *values = m->cache_v + (size_t)l * m->max_seq * d;
    float *k = keys + (size_t)pos * d, *v = values + (size_t)pos * d;
    float *mean = m->step_stats, *rstd = m->step_stats + 1;

    int status = layernorm_forward(m->step_z, mean, rstd, m->step_x, p.norm_self_attn_weight, p.norm_self_attn_bias, 1,
                                   d, LAYERNORM_EPS);
    if (status == ROPE_OK) status = linear_forward(m->step_q, m->step_z, p.query_weight, p.query_bias, 1, d, d, 0);
    if (status == ROPE_OK) status = linear_forward(k, m->step_z, p.key_weight, p.key_bias, 1, d, d, 0);
    if (status == ROPE_OK) status = linear_forward(v, m->step_z, p.value_weight, p.value_bias, 1, d, d, 0);
    // The new query and key rotated at position pos; the cached keys were rotated at theirs.
    if (status == ROPE_OK && m->rope) {
        status = rope_apply(m->rope, m->step_q, m->step_q, ROPE_LAYOUT_SBHD, 1, 1, c->heads, m->d_k, pos, NULL, 0, 0);
        if (status == ROPE_OK) status = rope_apply(m->rope, k, k, ROPE_LAYOUT_SBHD, 1, 1, c->heads, m->d_k, pos, NULL, 0, 0);
    }
    // The cache [pos + 1, 1, heads, d_k] is the sbhd layout with batch 1: no copy.
    if (status == ROPE_OK) {
        status = rope_attention_forward(m->step_q, keys, values, m->step_attended, NULL, 1, c->heads, c->heads, 1,
                                        pos + 1, m->d_k, ROPE_LAYOUT_SBHD, 1, attention_scale(m), NULL, 0);
    }
    if (status == ROPE_OK) status = linear_forward(m->step_x, m->step_attended, p.output_weight, p.output_bias, 1, d, d, 1);
    if (status == ROPE_OK) {
        status = layernorm_forward(m->step_z, mean, rstd, m->step_x, p.norm_ff_weight, p.norm_ff_bias, 1, d,
                                   LAYERNORM_EPS);
    }
    if (status == ROPE_OK) status = linear_forward(m->step_hidden, m->step_z, p.ff1_weight, p.ff1_bias, 1, d, c->d_ff, 0);
    if (status == ROPE_OK) {
        relu_forward(m->step_hidden, (size_t)c->d_ff);
        status = linear_forward(m->step_x, m->step_hidden, p.ff2_weight, p.ff2_bias, 1, c->d_ff, d, 1);
    }
    return status;
}

int transformer_decode(transformer *model, int32_t token, float *logits) {
    if (!model || !logits) return ROPE_ERR_NULL;
    if (model->decode_length >= model->max_seq) return ROPE_ERR_SHAPE;
    const model_config *c = &model->config;
    int status = embedding_check_tokens(&token, 1, c->vocab);
    if (status != ROPE_OK) return status;
    if (!model->decode_memory) {
        status = decode_allocate(model);
        if (status != ROPE_OK) return status;
    }
    outer_params p = outer_view(model, model->params);
    int pos = model->decode_length;
    status = embedding_forward(model->step_x, &token, p.embed, 1, c->vocab, c->d_model);
    for (int l = 0; l < c->layers && status == ROPE_OK; l++) status = layer_decode(model, l, pos);
    if (status == ROPE_OK) {
        status = layernorm_forward(model->step_z, model->step_stats, model->step_stats + 1, model->step_x, p.norm_weight,
                                   p.norm_bias, 1, c->d_model, LAYERNORM_EPS);
    }
    if (status == ROPE_OK) {
        status = linear_forward(logits, model->step_z, p.generator_weight, p.generator_bias, 1, c->d_model, c->vocab, 0);
    }
    // A failed step leaves the cache as it was before it (its rows past decode_length are unused).
    if (status == ROPE_OK) model->decode_length = pos + 1;
    return status;
}

// ----------------------------------------------------------------------------
// backward

// Layer l backward: d_residual holds dLoss/d residual[l + 1] on entry and dLoss/d residual[l] on
// return; the layer's parameter gradients are added to grads.
static int layer_backward(transformer *m, int l) {
    const model_config *c = &m->config;
    activations *a = &m->acts;
    layer_params p = layer_view(m, m->params, l);
    layer_params g = layer_view(m, m->grads, l);
    int seq = m->seq, batch = m->batch, R = seq * batch, d = c->d_model;
    size_t rows = (size_t)m->max_seq * m->max_batch;
    size_t at = (size_t)l * rows * d, stats = (size_t)l * rows;
    float *x = a->residual + at;
    float *ln1 = a->ln1 + at, *q = a->q + at, *k = a->k + at, *v = a->v + at;
    float *attended = a->attended + at, *mid = a->mid + at, *ln2 = a->ln2 + at;
    float *hidden = a->hidden + (size_t)l * rows * c->d_ff;
    float *weights = a->weights + (size_t)l * m->max_batch * c->heads * m->max_seq * m->max_seq;

    // Feed-forward block: d_residual reaches mid directly (the residual) and through the block.
    int status = linear_backward(a->d_hidden, g.ff2_weight, g.ff2_bias, a->d_residual, hidden, p.ff2_weight, R,
                                 c->d_ff, d, 0);
    if (status == ROPE_OK) {
        relu_backward(a->d_hidden, hidden, (size_t)R * c->d_ff);
        status = linear_backward(a->d_ln, g.ff1_weight, g.ff1_bias, a->d_hidden, ln2, p.ff1_weight, R, d, c->d_ff, 0);
    }
    if (status == ROPE_OK) {
        status = layernorm_backward(a->d_residual, g.norm_ff_weight, g.norm_ff_bias, a->d_ln, mid, a->ln2_mean + stats,
                                    a->ln2_rstd + stats, p.norm_ff_weight, R, d);
    }
    // Attention block, the same way: d_residual now holds dLoss/d mid.
    if (status == ROPE_OK) {
        status = linear_backward(a->d_attended, g.output_weight, g.output_bias, a->d_residual, attended,
                                 p.output_weight, R, d, d, 0);
    }
    if (status == ROPE_OK) {
        status = rope_attention_backward(a->dq, a->dk, a->dv, a->d_attended, q, k, v, weights, a->d_scores, seq, batch,
                                         c->heads, m->d_k, 1, attention_scale(m), m->rope);
    }
    // z feeds the three projections: their input gradients add up in d_ln.
    if (status == ROPE_OK) status = linear_backward(a->d_ln, g.query_weight, g.query_bias, a->dq, ln1, p.query_weight, R, d, d, 0);
    if (status == ROPE_OK) status = linear_backward(a->d_ln, g.key_weight, g.key_bias, a->dk, ln1, p.key_weight, R, d, d, 1);
    if (status == ROPE_OK) status = linear_backward(a->d_ln, g.value_weight, g.value_bias, a->dv, ln1, p.value_weight, R, d, d, 1);
    if (status == ROPE_OK) {
        status = layernorm_backward(a->d_residual, g.norm_self_attn_weight, g.norm_self_attn_bias, a->d_ln, x,
                                    a->ln1_mean + stats, a->ln1_rstd + stats, p.norm_self_attn_weight, R, d);
    }
    return status;
}

int transformer_backward(transformer *model, float loss_scale) {
    if (!model) return ROPE_ERR_NULL;
    if (!model->backward_ready) return ROPE_ERR_STATE;
    if (!isfinite(loss_scale)) return ROPE_ERR_VALUE;
    const model_config *c = &model->config;
    activations *a = &model->acts;
    outer_params p = outer_view(model, model->params);
    outer_params g = outer_view(model, model->grads);
    int R = model->seq * model->batch, d = c->d_model;
    size_t rows = (size_t)model->max_seq * model->max_batch;

    // Every backward step below adds to its parameters' gradients: start them at zero.
    memset(model->grads, 0, (size_t)model->param_count * sizeof(float));
    int status = cross_entropy_backward(a->d_logits, a->logits, model->targets, R, c->vocab, loss_scale);
    if (status == ROPE_OK) {
        status = linear_backward(a->d_ln, g.generator_weight, g.generator_bias, a->d_logits, a->lnf,
                                 p.generator_weight, R, d, c->vocab, 0);
    }
    if (status == ROPE_OK) {
        memset(a->d_residual, 0, (size_t)R * d * sizeof(float));
        float *x = a->residual + (size_t)c->layers * rows * d;
        status = layernorm_backward(a->d_residual, g.norm_weight, g.norm_bias, a->d_ln, x, a->lnf_mean, a->lnf_rstd,
                                    p.norm_weight, R, d);
    }
    for (int l = c->layers - 1; l >= 0 && status == ROPE_OK; l--) status = layer_backward(model, l);
    if (status == ROPE_OK) status = embedding_backward(g.embed, a->d_residual, model->tokens, R, c->vocab, d);
    return status;
}
