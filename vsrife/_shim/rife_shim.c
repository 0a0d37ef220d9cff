/*
 * rife_shim.c - native VapourSynth (API 4) front end for vsrife.
 *
 * Registers RIFE() in a plugin namespace (VSRIFE_NAMESPACE, default "rife"; hatch_build.py also
 * builds a "vsrife" copy, see NAMESPACE_NOTES.md) so that `core.rife.RIFE(clip, ...)` works in any
 * .vpy without `import vsrife`. The filter itself is Python (vsrife.filter.RIFE); this library only
 * forwards the call to it:
 *
 *   1. RIFE's create callback takes the GIL and calls vsrife._bridge.bind(namespace), which runs
 *      `core.<namespace>.Bind(func=_entry)` in the current Python environment (the namespace is
 *      looked up at call time, so LoadPlugin(forcens=...) works). VapourSynth's own
 *      Python glue wraps `_entry` in a VSFunction and hands it to Bind() below.
 *   2. Bind() parks that VSFunction in a thread-local slot; RIFE takes it back right away.
 *   3. With the GIL released, RIFE calls the function with its own argument map: the glue turns
 *      the map into Python keyword arguments (the VSNode becomes a vs.VideoNode), runs
 *      vsrife.filter.RIFE and puts the resulting clip, or the Python exception text, in the map.
 *
 * Binding per call (instead of once per process) keeps each call in the right Python environment
 * (vspipe, editors that reload scripts, several cores) and never keeps a Python object alive past
 * the call, so nothing is left to release at interpreter shutdown.
 *
 * libpython is not linked: the CPython API is looked up in the running process, so one build
 * serves every Python version, and a process without Python gets an error instead of a crash.
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "VapourSynth4.h"

#ifndef VSRIFE_NAMESPACE
#define VSRIFE_NAMESPACE "rife"
#endif
#ifndef VSRIFE_IDENTIFIER
#define VSRIFE_IDENTIFIER "com.vsrife." VSRIFE_NAMESPACE
#endif
#ifndef VSRIFE_VERSION_MAJOR /* the build hook passes the vsrife package version */
#define VSRIFE_VERSION_MAJOR 0
#define VSRIFE_VERSION_MINOR 0
#endif

/* The single definition of RIFE's VapourSynth signature (tests read it back via core.rife.RIFE).
 * Integer and boolean arguments are declared float: VapourSynth would silently truncate a float given
 * for an int (factor_num=2.5 -> 2); vsrife/_bridge.py takes whole numbers and names the rest. */
#define RIFE_ARGS                                                                              \
    "clip:vnode;model:data:opt;model_path:data:opt;factor_num:float:opt;factor_den:float:opt;" \
    "fps_num:float:opt;fps_den:float:opt;scale:float:opt;ensemble:float:opt;sc:float:opt;"     \
    "sc_threshold:float:opt;sc_method:data:opt;on_cut:data:opt;skip:float:opt;"                \
    "skip_threshold:float:opt;device:data:opt;precision:data:opt;timestep_mode:data:opt;"      \
    "threads:float:opt;torch_compile:float:opt;trt:float:opt;trt_cache_dir:data:opt;"
#define RIFE_RETURN "clip:vnode;"

/* ---- the slice of the CPython C API this file uses, resolved at run time ---- */

typedef struct PyObjectOpaque PyObject;

static struct {
    int (*IsInitialized)(void);
    int (*GILState_Ensure)(void);
    void (*GILState_Release)(int);
    PyObject *(*Import_ImportModule)(const char *);
    PyObject *(*Object_CallMethod)(PyObject *, const char *, const char *, ...);
    PyObject *(*Object_GetAttrString)(PyObject *, const char *);
    PyObject *(*Object_Str)(PyObject *);
    const char *(*Unicode_AsUTF8)(PyObject *);
    void (*Err_Fetch)(PyObject **, PyObject **, PyObject **);
    void (*Err_Clear)(void);
    void (*DecRef)(PyObject *);
} py;

static int py_found;
static pthread_mutex_t py_lock = PTHREAD_MUTEX_INITIALIZER;

/* Python extension modules (VapourSynth's glue included) rely on the CPython API being in the
 * process's global symbol scope, so whenever the glue can run, RTLD_DEFAULT finds it. */
static void resolve_python(void) {
#define RESOLVE(field, name) \
    if (!(*(void **)&py.field = dlsym(RTLD_DEFAULT, name))) return;
    RESOLVE(IsInitialized, "Py_IsInitialized")
    RESOLVE(GILState_Ensure, "PyGILState_Ensure")
    RESOLVE(GILState_Release, "PyGILState_Release")
    RESOLVE(Import_ImportModule, "PyImport_ImportModule")
    RESOLVE(Object_CallMethod, "PyObject_CallMethod")
    RESOLVE(Object_GetAttrString, "PyObject_GetAttrString")
    RESOLVE(Object_Str, "PyObject_Str")
    RESOLVE(Unicode_AsUTF8, "PyUnicode_AsUTF8")
    RESOLVE(Err_Fetch, "PyErr_Fetch")
    RESOLVE(Err_Clear, "PyErr_Clear")
    RESOLVE(DecRef, "Py_DecRef")
#undef RESOLVE
    py_found = 1;
}

/* Non-zero when an initialised CPython runtime is present in this process (looked up until found). */
static int python_available(void) {
    pthread_mutex_lock(&py_lock);
    if (!py_found) resolve_python();
    int found = py_found;
    pthread_mutex_unlock(&py_lock);
    return found && py.IsInitialized();
}

/* "<Type>: <message>" for the pending Python exception, which is cleared; free() the result. */
static char *python_error_text(void) {
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    py.Err_Fetch(&type, &value, &tb);
    /* each lookup that fails leaves an exception set: cleared before the next CPython call */
    PyObject *name = type ? py.Object_GetAttrString(type, "__name__") : NULL;
    if (!name) py.Err_Clear();
    PyObject *text = value ? py.Object_Str(value) : NULL;
    if (!text) py.Err_Clear();
    const char *n = name ? py.Unicode_AsUTF8(name) : NULL;
    if (!n) py.Err_Clear();
    const char *t = text ? py.Unicode_AsUTF8(text) : NULL; /* NULL for text with lone surrogates */
    if (!t) py.Err_Clear();
    size_t len = strlen(n ? n : "Exception") + strlen(t ? t : "") + 3;
    char *msg = malloc(len);
    if (msg) snprintf(msg, len, "%s: %s", n ? n : "Exception", t ? t : "");
    py.DecRef(name);
    py.DecRef(text);
    py.DecRef(type);
    py.DecRef(value);
    py.DecRef(tb);
    return msg;
}

/* mapSetError("<namespace>.RIFE: " + printf-formatted text), without a length limit. */
static void set_error(VSMap *out, const VSAPI *vsapi, const char *ns, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    size_t prefix = strlen(ns) + strlen(".RIFE: ");
    char *msg = len >= 0 ? malloc(prefix + (size_t)len + 1) : NULL;
    if (msg) {
        snprintf(msg, prefix + 1, "%s.RIFE: ", ns);
        vsnprintf(msg + prefix, (size_t)len + 1, fmt, ap2);
    }
    va_end(ap2);
    vsapi->mapSetError(out, msg ? msg : "RIFE: out of memory");
    free(msg);
}

/* ---- Bind(): receives the Python-side entry point for the RIFE() call in progress ---- */

static _Thread_local VSFunction *bound_func;
static _Thread_local VSCore *bound_core;
static _Thread_local int binding; /* set while RIFE() waits for vsrife._bridge.bind() on this thread */

static void VS_CC bind_create(const VSMap *in, VSMap *out, void *user_data, VSCore *core, const VSAPI *vsapi) {
    (void)user_data;
    if (!binding) { /* a direct call would park a function on a thread that may never call RIFE */
        vsapi->mapSetError(out, "Bind: internal to RIFE (it receives RIFE's Python entry point); call RIFE");
        return;
    }
    if (bound_func) vsapi->freeFunction(bound_func);
    bound_func = vsapi->mapGetFunction(in, "func", 0, NULL);
    bound_core = core;
}

/* Calls vsrife._bridge.bind(ns) under the GIL; returns the function it bound, or NULL with the error set. */
static VSFunction *bind_entry_point(VSMap *out, const char *ns, VSCore *core, const VSAPI *vsapi) {
    if (bound_func) { /* left over from a stray direct Bind() call on this thread */
        vsapi->freeFunction(bound_func);
        bound_func = NULL;
    }

    char *py_error = NULL;
    int gil = py.GILState_Ensure();
    binding = 1;
    PyObject *module = py.Import_ImportModule("vsrife._bridge");
    PyObject *result = module ? py.Object_CallMethod(module, "bind", "s", ns) : NULL;
    binding = 0;
    if (!result) py_error = python_error_text();
    py.DecRef(result);
    py.DecRef(module);
    py.GILState_Release(gil);

    VSFunction *func = bound_func;
    VSCore *func_core = bound_core;
    bound_func = NULL;
    bound_core = NULL;

    if (py_error) {
        set_error(out, vsapi, ns, "cannot reach the vsrife Python package (vsrife._bridge.bind): %s", py_error);
        free(py_error);
    } else if (!func) {
        set_error(out, vsapi, ns, "vsrife._bridge.bind() did not register an entry point");
    } else if (func_core != core) {
        vsapi->freeFunction(func);
        func = NULL;
        set_error(out, vsapi, ns,
                  "this core is not the current VapourSynth Python environment's core; "
                  "call vsrife.RIFE(clip) from Python in that environment instead");
    }
    return func;
}

/* ---- RIFE(): forwards to vsrife.filter.RIFE; user_data is this plugin's VSPlugin ---- */

static void VS_CC rife_create(const VSMap *in, VSMap *out, void *user_data, VSCore *core, const VSAPI *vsapi) {
    /* the namespace in use, which LoadPlugin(forcens=...) may have changed */
    const char *ns = vsapi->getPluginNamespace((VSPlugin *)user_data);
    if (!python_available()) {
        set_error(out, vsapi, ns,
                  "vsrife needs the VapourSynth Python module loaded in this process "
                  "(run the script with vspipe or from Python)");
        return;
    }

    VSFunction *func = bind_entry_point(out, ns, core, vsapi);
    if (!func) return;

    /* The GIL is not held here: the glue takes it itself while it runs the Python function. */
    VSMap *result = vsapi->createMap();
    vsapi->callFunction(func, in, result);
    vsapi->freeFunction(func);

    /* A user error (bad argument, unreadable model) comes back as "user_error": show just its text;
       anything else (a bug) keeps the Python traceback the glue attached. */
    const char *error = vsapi->mapGetError(result);
    int err = 0;
    const char *user_error = error ? NULL : vsapi->mapGetData(result, "user_error", 0, &err);
    if (err) user_error = NULL;
    err = 0;
    VSNode *node = (error || user_error) ? NULL : vsapi->mapGetNode(result, "clip", 0, &err);
    if (node && !err)
        vsapi->mapConsumeNode(out, "clip", node, maReplace);
    else if (user_error)
        set_error(out, vsapi, ns, "%s", user_error);
    else
        set_error(out, vsapi, ns, "%s", error ? error : "vsrife.filter.RIFE returned no clip");
    vsapi->freeMap(result);
}

VS_EXTERNAL_API(void) VapourSynthPluginInit2(VSPlugin *plugin, const VSPLUGINAPI *vspapi) {
    vspapi->configPlugin(VSRIFE_IDENTIFIER, VSRIFE_NAMESPACE, "RIFE frame interpolation (forwards to vsrife.filter.RIFE)",
                         VS_MAKE_VERSION(VSRIFE_VERSION_MAJOR, VSRIFE_VERSION_MINOR), VAPOURSYNTH_API_VERSION, 0,
                         plugin);
    vspapi->registerFunction("RIFE", RIFE_ARGS, RIFE_RETURN, rife_create, plugin, plugin);
    /* Internal handshake used by vsrife._bridge.bind(); names starting with '_' are not allowed. */
    vspapi->registerFunction("Bind", "func:func;", "", bind_create, NULL, plugin);
}
