/*
 * A stand-in for libnvidia-ml.so with two GPUs, so that gpumon's real
 * driver (go-nvml, loaded with dlopen) can be tested on machines without
 * an NVIDIA GPU. Only the functions gpumon calls exist; the types and
 * return codes follow nvml.h.
 *
 * Environment, read when called:
 *   FAKE_NVML_INIT  return code of nvmlInit_v2 (default 0, success)
 *   FAKE_NVML_LOG   file that nvmlInit_v2 and nvmlShutdown append
 *                   "init" and "shutdown" lines to
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
enum {
	NVML_SUCCESS = 0,
	NVML_ERROR_UNINITIALIZED = 1,
	NVML_ERROR_INVALID_ARGUMENT = 2,
	NVML_ERROR_NOT_SUPPORTED = 3,
	NVML_ERROR_NO_PERMISSION = 4,
	NVML_ERROR_INSUFFICIENT_SIZE = 7,
	NVML_ERROR_DRIVER_NOT_LOADED = 9,
	NVML_TEMPERATURE_GPU = 0,
};

typedef struct nvmlDevice_st {
	const char *name;
	unsigned int util, temp, power_mw;
	unsigned long long used, total;
	int power_supported;
} *nvmlDevice_t;

typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;

static struct nvmlDevice_st devices[] = {
	{"Fake GPU Zero", 37, 45, 123456, 1ULL << 30, 80ULL << 30, 1},
	{"Fake GPU One", 100, 71, 0, 0, 22ULL << 30, 0},
};
static int initialized;

static void note(const char *event) {
	const char *path = getenv("FAKE_NVML_LOG");
	if (!path || !*path) return;
	FILE *f = fopen(path, "a");
	if (!f) return;
	fprintf(f, "%s\n", event);
	fclose(f);
}

nvmlReturn_t nvmlInit_v2(void) {
	const char *ret = getenv("FAKE_NVML_INIT");
	int r = ret ? atoi(ret) : NVML_SUCCESS;
	note("init");
	if (r == NVML_SUCCESS) initialized++;
	return r;
}

nvmlReturn_t nvmlShutdown(void) {
	if (!initialized) return NVML_ERROR_UNINITIALIZED;
	initialized--;
	note("shutdown");
	return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r) {
	switch (r) {
	case NVML_SUCCESS: return "Success";
	case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
	case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
	case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
	case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
	case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
	default: return "Unknown Error";
	}
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
	if (!initialized) return NVML_ERROR_UNINITIALIZED;
	if (!count) return NVML_ERROR_INVALID_ARGUMENT;
	*count = sizeof devices / sizeof devices[0];
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *dev) {
	if (!initialized) return NVML_ERROR_UNINITIALIZED;
	if (!dev || i >= sizeof devices / sizeof devices[0]) return NVML_ERROR_INVALID_ARGUMENT;
	*dev = &devices[i];
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int length) {
	if (!initialized) return NVML_ERROR_UNINITIALIZED;
	if (!dev || !name) return NVML_ERROR_INVALID_ARGUMENT;
	if (strlen(dev->name) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
	strcpy(name, dev->name);
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *u) {
	if (!initialized) return NVML_ERROR_UNINITIALIZED;
	if (!dev || !u) return NVML_ERROR_INVALID_ARGUMENT;
	u->gpu = dev->util;
	u->memory = dev->util / 2;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *m) {
	if (!initialized) return NVML_ERROR_UNINITIALIZED;
	if (!dev || !m) return NVML_ERROR_INVALID_ARGUMENT;
	m->total = dev->total;
	m->used = dev->used;
	m->free = dev->total - dev->used;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned int *temp) {
	if (!initialized) return NVML_ERROR_UNINITIALIZED;
	if (!dev || !temp || sensor != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
	*temp = dev->temp;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned int *mw) {
	if (!initialized) return NVML_ERROR_UNINITIALIZED;
	if (!dev || !mw) return NVML_ERROR_INVALID_ARGUMENT;
	if (!dev->power_supported) return NVML_ERROR_NOT_SUPPORTED;
	*mw = dev->power_mw;
	return NVML_SUCCESS;
}
