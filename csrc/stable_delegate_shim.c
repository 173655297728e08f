/* libmtkseg_stable_delegate.so: a TFLite *external* delegate that loads a TFLite *stable* delegate.
 *
 * Stable delegates (e.g. MediaTek's /usr/lib/libneuron_stable_delegate.so on Genio boards) export
 * only `TFL_TheStableDelegate`, a TfLiteStableDelegate whose plugin creates the delegate from a
 * `tflite::TFLiteSettings` flatbuffer.  TFLite's Python API loads only external delegates
 * (`tflite_plugin_create_delegate(keys, values, n, report_error)`), so this shim exports that ABI,
 * opens the stable delegate named by the option "stable_delegate_path", builds the settings
 * flatbuffer from the other options and calls the plugin's create/destroy.
 *
 * Plain C ABI, no pybind11, no TFLite or flatbuffers headers: the structs below mirror
 * tensorflow/lite/core/acceleration/configuration/c/{stable_delegate,delegate_plugin}.h and the
 * tables tensorflow/lite/acceleration/configuration/configuration.proto (flatbuffer field ids are
 * the declaration order of the proto messages):
 *
 *   TFLiteSettings             14 compilation_caching_settings, 16 mtk_neuron_settings
 *   CompilationCachingSettings  0 cache_dir, 1 model_token
 *   MtkNeuronSettings           0 execution_preference, 1 execution_priority, 2 optimization_hints
 *                               ([int]), 3 operation_check_mode, 4 allow_fp16_precision_for_fp32,
 *                               5 use_ahwb, 6 use_cacheable_buffer, 7 compile_options ([string]),
 *                               8 accelerator_names ([string]), 9 neuron_config_path,
 *                               10 inference_deadline_ms, 11 inference_abort_time_ms
 *
 * Buffer layout (documented so test doubles can dump what they receive): a size-prefixed
 * flatbuffer `[u32 size][u32 root = 4][root table ...]`, every table followed by its vtable and
 * then its children.  The plugin receives the root table's address (the "parsed" object, as
 * delegate_plugin.h specifies), so `table - 8` is the size prefix.  The buffer is freed after
 * create() returns; delegate_plugin.h says the delegate must copy what it keeps.
 *
 * Every failure is reported through report_error and returns NULL: nothing here aborts.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------ ABI mirrors (delegate_plugin.h) */

typedef struct TfLiteDelegate TfLiteDelegate; /* opaque here */

typedef struct TfLiteDelegatePlugin {
    TfLiteDelegate* (*create)(const void* tflite_settings);
    void (*destroy)(TfLiteDelegate* delegate);
    int (*get_delegate_errno)(TfLiteDelegate* delegate);
} TfLiteDelegatePlugin;

typedef struct TfLiteStableDelegate {
    const char* delegate_abi_version;
    const char* delegate_name;
    const char* delegate_version;
    const TfLiteDelegatePlugin* delegate_plugin;
} TfLiteStableDelegate;

typedef void (*report_fn)(const char*);

static void report(report_fn fn, const char* fmt, const char* a, const char* b) {
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    if (fn) fn(msg);
    else fprintf(stderr, "mtkseg stable delegate shim: %s\n", msg);
}

/* ------------------------------------------------------------------ a minimal front-to-back builder */

typedef struct {
    uint8_t* d;
    size_t n, cap;
    int oom;
} Buf;

#define FB_BASE 4 /* the flatbuffer proper starts after the u32 size prefix */

static void buf_reserve(Buf* b, size_t extra) {
    if (b->oom) return;
    if (b->n + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra) cap *= 2;
    uint8_t* d = (uint8_t*)realloc(b->d, cap);
    if (!d) { b->oom = 1; return; }
    memset(d + b->cap, 0, cap - b->cap);
    b->d = d;
    b->cap = cap;
}

static size_t buf_put(Buf* b, const void* p, size_t len) {
    buf_reserve(b, len);
    size_t at = b->n;
    if (b->oom) return at;
    if (p) memcpy(b->d + at, p, len);
    else memset(b->d + at, 0, len);
    b->n += len;
    return at;
}

static void buf_align(Buf* b, size_t a) {
    while (!b->oom && (b->n - FB_BASE) % a) buf_put(b, NULL, 1);
}

static void put_u32_at(Buf* b, size_t at, uint32_t v) { if (!b->oom) memcpy(b->d + at, &v, 4); }
static void put_i32_at(Buf* b, size_t at, int32_t v) { if (!b->oom) memcpy(b->d + at, &v, 4); }
static void put_u16_at(Buf* b, size_t at, uint16_t v) { if (!b->oom) memcpy(b->d + at, &v, 2); }

/* Slots of one table being written: kind per field id, value for scalars, position once written. */
enum { F_ABSENT = 0, F_I32, F_BOOL, F_OFFSET };
#define MAX_FIELDS 20

typedef struct {
    int kind[MAX_FIELDS];
    int32_t value[MAX_FIELDS];
    size_t pos[MAX_FIELDS]; /* absolute position of the field's bytes */
    size_t start;           /* absolute position of the table (its soffset) */
} Table;

/* Write `t` (scalars inline, offsets as placeholders) followed by its vtable. */
static void table_write(Buf* b, Table* t, int nfields) {
    buf_align(b, 4);
    t->start = buf_put(b, NULL, 4);
    int last = -1;
    for (int i = 0; i < nfields; ++i) {
        if (t->kind[i] == F_ABSENT) continue;
        last = i;
        t->pos[i] = buf_put(b, NULL, 4); /* every field gets a 4-byte slot (bools use its first byte) */
        if (t->kind[i] == F_I32) put_i32_at(b, t->pos[i], t->value[i]);
        else if (t->kind[i] == F_BOOL && !b->oom) b->d[t->pos[i]] = (uint8_t)(t->value[i] != 0);
    }
    size_t table_size = b->n - t->start;
    buf_align(b, 2);
    size_t nslots = (size_t)(last + 1);
    size_t vt = buf_put(b, NULL, 4 + 2 * nslots);
    put_u16_at(b, vt, (uint16_t)(4 + 2 * nslots));
    put_u16_at(b, vt + 2, (uint16_t)table_size);
    for (size_t i = 0; i < nslots; ++i)
        if (t->kind[i] != F_ABSENT) put_u16_at(b, vt + 4 + 2 * i, (uint16_t)(t->pos[i] - t->start));
    /* soffset: vtable = table - soffset, here after the table, so negative */
    put_i32_at(b, t->start, (int32_t)((int64_t)t->start - (int64_t)vt));
}

/* Point the uoffset at `slot` to what is written next (always later in the buffer: positive). */
static void patch_here(Buf* b, size_t slot, size_t target) { put_u32_at(b, slot, (uint32_t)(target - slot)); }

static size_t write_string(Buf* b, const char* s, size_t len) {
    buf_align(b, 4);
    size_t at = buf_put(b, NULL, 4);
    put_u32_at(b, at, (uint32_t)len);
    buf_put(b, s, len);
    buf_put(b, NULL, 1); /* NUL */
    return at;
}

/* ------------------------------------------------------------------ options */

typedef struct {
    int has_neuron;
    Table neuron;
    /* strings and lists (pointers into the caller's values, valid during create) */
    const char* neuron_config_path;
    const char* compile_options;   /* whitespace-separated */
    const char* accelerator_names; /* comma-separated */
    const char* optimization_hints; /* comma-separated names or numbers */
    const char* cache_dir;
    const char* model_token;
    const char* stable_path;
} Options;

typedef struct { const char* name; int32_t value; } Enum;

static const Enum PREFERENCES[] = {{"undefined", 0}, {"low_power", 1}, {"fast_single_answer", 2},
                                   {"sustained_speed", 3}, {"turbo_boost", 4}, {NULL, 0}};
static const Enum PRIORITIES[] = {{"undefined", 0}, {"low", 90}, {"medium", 100}, {"high", 110}, {NULL, 0}};
static const Enum HINTS[] = {{"none", 0}, {"low_latency", 1}, {"deep_fusion", 2}, {"batch_processing", 3},
                             {NULL, 0}};
static const Enum CHECK_MODES[] = {{"no_operation_check", 0}, {"none", 0}, {"per_node_operation_check", 1},
                                   {"per_node", 1}, {"pre_operation_check", 2}, {"pre", 2}, {NULL, 0}};

static int parse_int(const char* s, size_t len, int32_t* out) {
    char tmp[32];
    if (len == 0 || len >= sizeof tmp) return 0;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    char* end = NULL;
    errno = 0;
    long v = strtol(tmp, &end, 10);
    if (errno || *end || v < INT32_MIN || v > INT32_MAX) return 0;
    *out = (int32_t)v;
    return 1;
}

static int parse_enum(const Enum* table, const char* s, size_t len, int32_t* out) {
    for (const Enum* e = table; e->name; ++e)
        if (strlen(e->name) == len && strncmp(e->name, s, len) == 0) { *out = e->value; return 1; }
    return 0;
}

static int parse_bool(const char* s, int32_t* out) {
    if (!strcmp(s, "true") || !strcmp(s, "1")) { *out = 1; return 1; }
    if (!strcmp(s, "false") || !strcmp(s, "0")) { *out = 0; return 1; }
    return 0;
}

/* MtkNeuronSettings field ids */
enum { N_PREF = 0, N_PRIO, N_HINTS, N_CHECK, N_FP16, N_AHWB, N_CACHEABLE, N_COMPILE, N_ACCEL, N_CONFIG,
       N_DEADLINE, N_ABORT, N_COUNT };

static int set_option(Options* o, const char* key, const char* value, report_fn err) {
    int32_t v = 0;
    int field = -1, kind = F_I32, ok = 1;
    if (!strcmp(key, "stable_delegate_path")) { o->stable_path = value; return 1; }
    if (!strcmp(key, "cache_dir")) { o->cache_dir = value; return 1; }
    if (!strcmp(key, "model_token")) { o->model_token = value; return 1; }
    if (!strcmp(key, "execution_preference")) {
        field = N_PREF;
        ok = parse_enum(PREFERENCES, value, strlen(value), &v) || parse_int(value, strlen(value), &v);
    } else if (!strcmp(key, "execution_priority")) {
        field = N_PRIO;
        ok = parse_enum(PRIORITIES, value, strlen(value), &v) || parse_int(value, strlen(value), &v);
    } else if (!strcmp(key, "operation_check_mode")) {
        field = N_CHECK;
        ok = parse_enum(CHECK_MODES, value, strlen(value), &v) || parse_int(value, strlen(value), &v);
    } else if (!strcmp(key, "allow_fp16_precision_for_fp32")) {
        field = N_FP16, kind = F_BOOL, ok = parse_bool(value, &v);
    } else if (!strcmp(key, "use_ahwb")) {
        field = N_AHWB, kind = F_BOOL, ok = parse_bool(value, &v);
    } else if (!strcmp(key, "use_cacheable_buffer")) {
        field = N_CACHEABLE, kind = F_BOOL, ok = parse_bool(value, &v);
    } else if (!strcmp(key, "inference_deadline_ms")) {
        field = N_DEADLINE, ok = parse_int(value, strlen(value), &v) && v >= 0;
    } else if (!strcmp(key, "inference_abort_time_ms")) {
        field = N_ABORT, ok = parse_int(value, strlen(value), &v) && v >= 0;
    } else if (!strcmp(key, "optimization_hints")) {
        o->optimization_hints = value, field = N_HINTS, kind = F_OFFSET;
    } else if (!strcmp(key, "compile_options")) {
        o->compile_options = value, field = N_COMPILE, kind = F_OFFSET;
    } else if (!strcmp(key, "accelerator_names")) {
        o->accelerator_names = value, field = N_ACCEL, kind = F_OFFSET;
    } else if (!strcmp(key, "neuron_config_path")) {
        o->neuron_config_path = value, field = N_CONFIG, kind = F_OFFSET;
    } else {
        report(err, "unknown option '%s' (value '%s')", key, value);
        return 0;
    }
    if (!ok) {
        report(err, "option %s: invalid value '%s'", key, value);
        return 0;
    }
    o->has_neuron = 1;
    o->neuron.kind[field] = kind;
    o->neuron.value[field] = v;
    return 1;
}

/* Count and visit the items of a separated list (empty items skipped). */
typedef int (*item_fn)(void* ctx, const char* s, size_t len);

static int each_item(const char* list, const char* seps, item_fn fn, void* ctx) {
    int count = 0;
    const char* p = list;
    while (*p) {
        size_t skip = strspn(p, seps);
        p += skip;
        if (!*p) break;
        size_t len = strcspn(p, seps);
        if (fn && !fn(ctx, p, len)) return -1;
        ++count;
        p += len;
    }
    return count;
}

typedef struct { Buf* b; size_t slots; int i; } StrCtx;

static int put_str_item(void* ctx, const char* s, size_t len) {
    StrCtx* c = (StrCtx*)ctx;
    size_t at = write_string(c->b, s, len);
    patch_here(c->b, c->slots + 4 * (size_t)c->i, at);
    c->i++;
    return !c->b->oom;
}

static size_t write_string_list(Buf* b, const char* list, const char* seps) {
    int n = each_item(list, seps, NULL, NULL);
    buf_align(b, 4);
    size_t at = buf_put(b, NULL, 4);
    put_u32_at(b, at, (uint32_t)n);
    size_t slots = buf_put(b, NULL, 4 * (size_t)n);
    StrCtx c = {b, slots, 0};
    each_item(list, seps, put_str_item, &c);
    return at;
}

typedef struct { Buf* b; size_t slots; int i; report_fn err; } HintCtx;

static int check_hint(void* ctx, const char* s, size_t len) {
    int32_t v;
    HintCtx* c = (HintCtx*)ctx;
    if (parse_enum(HINTS, s, len, &v) || parse_int(s, len, &v)) return 1;
    char item[64];
    snprintf(item, sizeof item, "%.*s", (int)(len < 60 ? len : 60), s);
    report(c->err, "option optimization_hints: unknown hint '%s' (expected none, low_latency, deep_fusion, "
                   "batch_processing)%s", item, "");
    return 0;
}

static int put_hint(void* ctx, const char* s, size_t len) {
    int32_t v = 0;
    HintCtx* c = (HintCtx*)ctx;
    if (!parse_enum(HINTS, s, len, &v)) parse_int(s, len, &v);
    put_i32_at(c->b, c->slots + 4 * (size_t)c->i, v);
    c->i++;
    return 1;
}

/* Build the size-prefixed TFLiteSettings buffer; NULL on failure (reported). */
static uint8_t* build_settings(Options* o, report_fn err, size_t* size_out) {
    Buf b = {0};
    if (o->optimization_hints) {
        HintCtx c = {&b, 0, 0, err};
        if (each_item(o->optimization_hints, ", ", check_hint, &c) < 0) return NULL;
    }
    buf_put(&b, NULL, 4);              /* size prefix */
    size_t root = buf_put(&b, NULL, 4); /* root uoffset */

    Table settings;
    memset(&settings, 0, sizeof settings);
    enum { S_CACHING = 14, S_NEURON = 16, S_COUNT = 17 };
    int has_caching = o->cache_dir || o->model_token;
    if (has_caching) settings.kind[S_CACHING] = F_OFFSET;
    if (o->has_neuron) settings.kind[S_NEURON] = F_OFFSET;
    if (!has_caching && !o->has_neuron) settings.kind[0] = F_I32; /* delegate = NONE: never an empty table */
    table_write(&b, &settings, S_COUNT);
    patch_here(&b, root, settings.start);

    if (has_caching) {
        Table caching;
        memset(&caching, 0, sizeof caching);
        if (o->cache_dir) caching.kind[0] = F_OFFSET;
        if (o->model_token) caching.kind[1] = F_OFFSET;
        table_write(&b, &caching, 2);
        patch_here(&b, settings.pos[S_CACHING], caching.start);
        if (o->cache_dir) patch_here(&b, caching.pos[0], write_string(&b, o->cache_dir, strlen(o->cache_dir)));
        if (o->model_token)
            patch_here(&b, caching.pos[1], write_string(&b, o->model_token, strlen(o->model_token)));
    }
    if (o->has_neuron) {
        Table* n = &o->neuron;
        table_write(&b, n, N_COUNT);
        patch_here(&b, settings.pos[S_NEURON], n->start);
        if (n->kind[N_HINTS]) {
            int count = each_item(o->optimization_hints, ", ", NULL, NULL);
            buf_align(&b, 4);
            size_t at = buf_put(&b, NULL, 4);
            put_u32_at(&b, at, (uint32_t)count);
            size_t slots = buf_put(&b, NULL, 4 * (size_t)count);
            HintCtx c = {&b, slots, 0, err};
            each_item(o->optimization_hints, ", ", put_hint, &c);
            patch_here(&b, n->pos[N_HINTS], at);
        }
        if (n->kind[N_COMPILE]) patch_here(&b, n->pos[N_COMPILE], write_string_list(&b, o->compile_options, " \t\n"));
        if (n->kind[N_ACCEL]) patch_here(&b, n->pos[N_ACCEL], write_string_list(&b, o->accelerator_names, ", "));
        if (n->kind[N_CONFIG])
            patch_here(&b, n->pos[N_CONFIG], write_string(&b, o->neuron_config_path, strlen(o->neuron_config_path)));
    }
    buf_align(&b, 4);
    if (b.oom || b.n > UINT32_MAX) {
        free(b.d);
        report(err, "out of memory building the TFLiteSettings flatbuffer%s%s", NULL, NULL);
        return NULL;
    }
    put_u32_at(&b, 0, (uint32_t)(b.n - FB_BASE));
    *size_out = b.n;
    return b.d;
}

/* ------------------------------------------------------------------ loaded delegates */

typedef struct Record {
    TfLiteDelegate* delegate;
    const TfLiteDelegatePlugin* plugin;
    struct Record* next;
} Record;

static Record* g_records = NULL;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

EXPORT TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n, report_fn err) {
    Options o;
    memset(&o, 0, sizeof o);
    for (size_t i = 0; i < n; ++i) {
        if (!keys || !values || !keys[i] || !values[i]) {
            report(err, "option %s is NULL%s", keys && keys[i] ? keys[i] : "(key)", NULL);
            return NULL;
        }
        if (!set_option(&o, keys[i], values[i], err)) return NULL;
    }
    if (!o.stable_path || !*o.stable_path) {
        report(err, "missing option stable_delegate_path (the stable delegate .so to load)%s%s", NULL, NULL);
        return NULL;
    }
    if (o.stable_path[0] != '/') {
        report(err, "stable_delegate_path '%s' is not an absolute path%s", o.stable_path, NULL);
        return NULL;
    }
    void* lib = dlopen(o.stable_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char* why = dlerror();
        report(err, "cannot open the stable delegate: %s%s", why ? why : o.stable_path, NULL);
        return NULL;
    }
    const TfLiteStableDelegate* stable = (const TfLiteStableDelegate*)dlsym(lib, "TFL_TheStableDelegate");
    if (!stable) {
        report(err, "%s does not export TFL_TheStableDelegate (not a TFLite stable delegate)%s", o.stable_path, NULL);
        dlclose(lib);
        return NULL;
    }
    const char* abi = stable->delegate_abi_version;
    if (!abi || strncmp(abi, "1.", 2) != 0) {
        report(err, "stable delegate ABI version '%s' is not supported (this shim implements 1.x)%s", abi ? abi : "(null)",
               NULL);
        dlclose(lib);
        return NULL;
    }
    const TfLiteDelegatePlugin* plugin = stable->delegate_plugin;
    if (!plugin || !plugin->create || !plugin->destroy) {
        report(err, "stable delegate %s has no create/destroy functions%s", stable->delegate_name, NULL);
        dlclose(lib);
        return NULL;
    }
    Record* rec = (Record*)calloc(1, sizeof(Record));
    size_t size = 0;
    uint8_t* settings = rec ? build_settings(&o, err, &size) : NULL;
    if (!settings) {
        if (!rec) report(err, "out of memory%s%s", NULL, NULL);
        free(rec);
        dlclose(lib);
        return NULL;
    }
    const uint8_t* fb = settings + FB_BASE;
    uint32_t root;
    memcpy(&root, fb, 4);
    TfLiteDelegate* delegate = plugin->create(fb + root); /* the parsed root table, not the raw bytes */
    free(settings);
    if (!delegate) {
        report(err, "stable delegate %s (%s) refused to create a delegate with these settings",
               stable->delegate_name, stable->delegate_version);
        free(rec);
        dlclose(lib);
        return NULL;
    }
    /* The library stays loaded: delegates may keep threads or callbacks into it. */
    rec->delegate = delegate;
    rec->plugin = plugin;
    pthread_mutex_lock(&g_lock);
    rec->next = g_records;
    g_records = rec;
    pthread_mutex_unlock(&g_lock);
    return delegate;
}

EXPORT void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) {
    if (!delegate) return;
    pthread_mutex_lock(&g_lock);
    Record** p = &g_records;
    while (*p && (*p)->delegate != delegate) p = &(*p)->next;
    Record* rec = *p;
    if (rec) *p = rec->next;
    pthread_mutex_unlock(&g_lock);
    if (!rec) {
        fprintf(stderr, "mtkseg stable delegate shim: destroy of an unknown delegate %p ignored\n", (void*)delegate);
        return;
    }
    rec->plugin->destroy(delegate);
    free(rec);
}
