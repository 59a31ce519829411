// dynload.c: the dynamic loader side of loadable ggml backends (dlopen,
// dladdr). See dynload.go for why things are opened the way they are.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include "bridge.h"

static void copy_error(char * err, size_t n) {
	const char * msg = dlerror();
	snprintf(err, n, "%s", msg != NULL ? msg : "unknown dynamic loader error");
}

typedef void (*lumen_log_set_fn)(ggml_log_callback, void *);

// Both opens use RTLD_DEEPBIND: a backend library and its libggml-base.so
// then bind to their own ggml symbols even when the executable exports a
// ggml of the same names (Go links with --export-dynamic when a cgo
// dependency asks for it), so the outcome does not depend on how the
// binary was linked. The handles are never closed: ggml cannot unload a
// backend, and these keep the libraries bound as opened here when ggml
// opens them again by path.
static const int open_flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;

bool lumen_backend_base_open(const char * path, char * err, size_t n) {
	void * h = dlopen(path, open_flags);
	if (h == NULL) {
		copy_error(err, n);
		return false;
	}
	lumen_log_set_fn set = (lumen_log_set_fn)dlsym(h, "ggml_log_set");
	if (set == NULL) {
		copy_error(err, n);
		return false;
	}
	set(lumen_log_cb, NULL);
	return true;
}

bool lumen_backend_open(const char * path, char * err, size_t n) {
	if (dlopen(path, open_flags) == NULL) {
		copy_error(err, n);
		return false;
	}
	return true;
}

bool lumen_object_path(const void * addr, char * out, size_t n) {
	Dl_info self, info;
	if (dladdr((const void *)lumen_object_path, &self) == 0 || dladdr(addr, &info) == 0 || info.dli_fname == NULL) {
		return false;
	}
	if (info.dli_fbase == self.dli_fbase) {
		return false;
	}
	snprintf(out, n, "%s", info.dli_fname);
	return true;
}
