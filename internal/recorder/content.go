package recorder

// DefaultContentMax is how many bytes of prompt and output text go on a
// span when content recording is on and no limit is given.
const DefaultContentMax = 1024
