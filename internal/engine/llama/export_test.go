package llama

// For the external tests: states built from and read as bytes.
var (
	StateFromBytes = stateFromBytes
	StateBytes     = stateBytes
)
