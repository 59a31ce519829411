package gpumon

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// nvmlDriver is the real driver. go-nvml keeps package-level state (the
// loaded library's symbols and its error strings); this type is the only
// code in Lumen that touches it.
type nvmlDriver struct {
	lib nvml.Interface
}

// openNVML loads the NVML library at path ("" for the default) and
// initialises it. The error wraps errUnavailable when there is no library
// or no driver behind it.
func openNVML(path string) (*nvmlDriver, error) {
	var opts []nvml.LibraryOption
	if path != "" {
		opts = append(opts, nvml.WithLibraryPath(path))
	}
	lib := nvml.New(opts...)
	switch ret := lib.Init(); ret {
	case nvml.SUCCESS:
		return &nvmlDriver{lib: lib}, nil
	case nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED:
		return nil, fmt.Errorf("gpumon: %w: %w", errUnavailable, ret)
	default:
		return nil, fmt.Errorf("gpumon: initialising NVML: %w", ret)
	}
}

// result turns an NVML return code into an error; SUCCESS is nil.
func result(ret nvml.Return) error {
	if ret == nvml.SUCCESS {
		return nil
	}
	return ret
}

func (d *nvmlDriver) deviceCount() (int, error) {
	n, ret := d.lib.DeviceGetCount()
	return n, result(ret)
}

func (d *nvmlDriver) device(index int) (device, error) {
	h, ret := d.lib.DeviceGetHandleByIndex(index)
	if err := result(ret); err != nil {
		return nil, fmt.Errorf("opening GPU %d: %w", index, err)
	}
	return nvmlDevice{h: h}, nil
}

func (d *nvmlDriver) shutdown() error {
	return result(d.lib.Shutdown())
}

type nvmlDevice struct {
	h nvml.Device
}

func (d nvmlDevice) name() (string, error) {
	s, ret := d.h.GetName()
	return s, result(ret)
}

func (d nvmlDevice) utilizationPercent() (uint32, error) {
	u, ret := d.h.GetUtilizationRates()
	return u.Gpu, result(ret)
}

func (d nvmlDevice) memoryBytes() (used, total uint64, err error) {
	m, ret := d.h.GetMemoryInfo()
	return m.Used, m.Total, result(ret)
}

func (d nvmlDevice) temperatureCelsius() (uint32, error) {
	c, ret := d.h.GetTemperature(nvml.TEMPERATURE_GPU)
	return c, result(ret)
}

func (d nvmlDevice) powerMilliwatts() (uint32, error) {
	mw, ret := d.h.GetPowerUsage()
	return mw, result(ret)
}
