package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/grpcclient"
	"github.com/lumenllm/lumen/internal/grpcmsg"
)

const clientUsage = `usage:
  lumen client generate --prompt TEXT [--addr HOST:PORT] [--api-key KEY] [--model NAME] [--max-tokens N]
                        [--temperature T] [--top-p P] [--top-k K] [--min-p P] [--repeat-penalty R]
                        [--frequency-penalty F] [--presence-penalty P] [--seed S] [--stop TEXT]...
                        [--no-stream] [--json]
  lumen client tokenize --text TEXT [--addr HOST:PORT] [--api-key KEY] [--model NAME] [--json]
  lumen client models [--addr HOST:PORT] [--api-key KEY] [--json]

Calls a running Lumen server over gRPC. The connection is plaintext (TLS is
not supported yet), API key included: use it on loopback or a trusted
network. Run 'lumen client COMMAND -h' for a command's flags.
`

// runClient runs 'lumen client ...', a command-line client of the gRPC API.
func runClient(ctx context.Context, args []string, e env) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(e.stdout, clientUsage)
		return nil
	}
	if len(args) == 0 {
		fmt.Fprint(e.stderr, clientUsage)
		return usageError{"client: no subcommand given"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "generate":
		return runClientGenerate(ctx, rest, e)
	case "tokenize":
		return runClientTokenize(ctx, rest, e)
	case "models":
		return runClientModels(ctx, rest, e)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, clientUsage)
		return nil
	default:
		fmt.Fprint(e.stderr, clientUsage)
		return usageError{fmt.Sprintf("client: unknown subcommand %q", cmd)}
	}
}

// clientFlags are the flags of every client subcommand.
type clientFlags struct {
	addr, apiKey string
	json         bool
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:9090", "the server's gRPC address, host:port")
	fs.StringVar(&c.apiKey, "api-key", "", "API key, sent as a bearer token (in plaintext)")
	fs.BoolVar(&c.json, "json", false, "print replies as JSON (one object per line) instead of text")
}

// parse parses args and rejects positional arguments.
func (c *clientFlags) parse(fs *flag.FlagSet, args []string, e env) error {
	rest, err := parseFlags(fs, args, e.getenv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Sprintf("%s: unexpected arguments %q", fs.Name(), rest)}
	}
	return nil
}

func (c *clientFlags) dial() (*grpcclient.Client, error) {
	return grpcclient.New(grpcclient.Config{Addr: c.addr, APIKey: c.apiKey})
}

func runClientGenerate(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("client generate", "Generates text on a Lumen server, streaming it to stdout; usage and timings go to stderr.\nUnset sampling options take the server's defaults (temperature 1, the rest off, a random seed).", e.stderr)
	var cf clientFlags
	cf.register(fs)
	req := &lumenv1.GenerateRequest{}
	fs.StringVar(&req.Prompt, "prompt", "", "prompt text (required)")
	fs.StringVar(&req.Model, "model", "", "model name (default: the served model)")
	maxTokens := fs.Int("max-tokens", 0, "most tokens to generate (0: the server's default)")
	fs.Var(optionalFlag[float32]{&req.Temperature, parseFloat32}, "temperature", "sampling temperature, 0 to 2 (0: greedy)")
	fs.Var(optionalFlag[float32]{&req.TopP, parseFloat32}, "top-p", "nucleus sampling, 0 to 1 (1: off)")
	fs.Var(optionalFlag[int32]{&req.TopK, parseInt32}, "top-k", "top-k sampling (0: off)")
	fs.Var(optionalFlag[float32]{&req.MinP, parseFloat32}, "min-p", "min-p sampling, 0 to 1 (0: off)")
	fs.Var(optionalFlag[float32]{&req.RepetitionPenalty, parseFloat32}, "repeat-penalty", "repetition penalty, 0 to 10 (1: off)")
	fs.Var(optionalFlag[float32]{&req.FrequencyPenalty, parseFloat32}, "frequency-penalty", "frequency penalty, -2 to 2 (0: off)")
	fs.Var(optionalFlag[float32]{&req.PresencePenalty, parseFloat32}, "presence-penalty", "presence penalty, -2 to 2 (0: off)")
	fs.Var(optionalFlag[uint32]{&req.Seed, parseUint32}, "seed", "sampling seed (default: random)")
	fs.Var(listFlag{&req.Stop}, "stop", "stop string (repeatable)")
	fs.StringVar(&req.Grammar, "grammar", "", "constrain the output to this GBNF grammar (llama.cpp's format)")
	fs.StringVar(&req.JsonSchema, "json-schema", "", "constrain the output to JSON valid under this JSON Schema (JSON text)")
	fs.BoolVar(&req.JsonObject, "json-object", false, "constrain the output to a JSON object")
	noStream := fs.Bool("no-stream", false, "wait for the whole reply instead of streaming it")
	if err := cf.parse(fs, args, e); err != nil {
		return err
	}
	if req.Prompt == "" {
		return usageError{"client generate: --prompt is required"}
	}
	if *maxTokens < 0 || *maxTokens > 1<<31-1 {
		return usageError{"client generate: --max-tokens must be between 0 and 2^31-1"}
	}
	req.MaxTokens = int32(*maxTokens)

	c, err := cf.dial()
	if err != nil {
		return err
	}
	defer c.Close()

	if *noStream {
		resp, err := c.Generate(ctx, req)
		if err != nil {
			return grpcclient.Describe(err)
		}
		if cf.json {
			return writeJSON(e.stdout, resp)
		}
		if _, err := fmt.Fprintln(e.stdout, resp.Text); err != nil {
			return err
		}
		printStats(e.stderr, resp.Id, resp.FinishReason, resp.Usage, resp.Timings)
		return nil
	}

	wrote := false
	sreq, err := grpcmsg.Stream(req)
	if err != nil {
		return err
	}
	final, err := c.Stream(ctx, sreq, func(m *lumenv1.GenerateStreamResponse) error {
		if cf.json {
			return writeJSON(e.stdout, m)
		}
		wrote = wrote || m.Text != ""
		_, err := io.WriteString(e.stdout, m.Text)
		return err
	})
	if !cf.json && (err == nil || wrote) {
		fmt.Fprintln(e.stdout) // end the text's line, also after a failure
	}
	if err != nil {
		return grpcclient.Describe(err)
	}
	if !cf.json {
		printStats(e.stderr, final.Id, final.FinishReason, final.Usage, final.Timings)
	}
	return nil
}

func runClientTokenize(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("client tokenize", "Prints the tokens a Lumen server's model sees for a text prompt.", e.stderr)
	var cf clientFlags
	cf.register(fs)
	req := &lumenv1.TokenizeRequest{}
	fs.StringVar(&req.Text, "text", "", "text to tokenize (required)")
	fs.StringVar(&req.Model, "model", "", "model name (default: the served model)")
	if err := cf.parse(fs, args, e); err != nil {
		return err
	}
	if req.Text == "" {
		return usageError{"client tokenize: --text is required"}
	}
	c, err := cf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.Tokenize(ctx, req)
	if err != nil {
		return grpcclient.Describe(err)
	}
	if cf.json {
		return writeJSON(e.stdout, resp)
	}
	toks := make([]string, len(resp.Tokens))
	for i, t := range resp.Tokens {
		toks[i] = strconv.Itoa(int(t))
	}
	if _, err := fmt.Fprintln(e.stdout, strings.Join(toks, " ")); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "[%d tokens]\n", len(toks))
	return nil
}

func runClientModels(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("client models", "Lists the models a Lumen server serves: id, context size, owner, creation time.", e.stderr)
	var cf clientFlags
	cf.register(fs)
	if err := cf.parse(fs, args, e); err != nil {
		return err
	}
	c, err := cf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.ListModels(ctx, &lumenv1.ListModelsRequest{})
	if err != nil {
		return grpcclient.Describe(err)
	}
	if cf.json {
		return writeJSON(e.stdout, resp)
	}
	for _, m := range resp.Models {
		created := "-"
		if m.Created != nil {
			created = m.Created.AsTime().Format("2006-01-02T15:04:05Z07:00")
		}
		owner := m.OwnedBy
		if owner == "" {
			owner = "-"
		}
		if _, err := fmt.Fprintf(e.stdout, "%s\t%d\t%s\t%s\n", m.Id, m.ContextSize, owner, created); err != nil {
			return err
		}
	}
	return nil
}

// printStats writes a reply's finish reason, usage and timings.
func printStats(w io.Writer, id string, finish lumenv1.FinishReason, u *lumenv1.Usage, t *lumenv1.Timings) {
	rate := ""
	if t.GetDecodeMs() > 0 {
		rate = fmt.Sprintf(" (%.1f tok/s)", float64(u.GetCompletionTokens())/(t.GetDecodeMs()/1000))
	}
	fmt.Fprintf(w, "[%d prompt tokens (%d cached), %d generated, finish: %s; queue %.1fms, prefill %.1fms, ttft %.1fms, decode %.1fms%s; id %s]\n",
		u.GetPromptTokens(), u.GetCachedTokens(), u.GetCompletionTokens(),
		strings.ToLower(strings.TrimPrefix(finish.String(), "FINISH_REASON_")),
		t.GetQueueMs(), t.GetPrefillMs(), t.GetTtftMs(), t.GetDecodeMs(), rate, id)
}

// writeJSON writes m as one line of JSON with the proto's field names.
func writeJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// optionalFlag sets *p only when given, so an unset sampling option stays
// nil and takes the server's default.
type optionalFlag[T any] struct {
	p     **T
	parse func(string) (T, error)
}

func (f optionalFlag[T]) String() string {
	if f.p == nil || *f.p == nil {
		return ""
	}
	return fmt.Sprint(**f.p)
}

func (f optionalFlag[T]) Set(s string) error {
	v, err := f.parse(s)
	if err != nil {
		return err
	}
	*f.p = &v
	return nil
}

func parseFloat32(s string) (float32, error) {
	v, err := strconv.ParseFloat(s, 32)
	return float32(v), err
}

func parseInt32(s string) (int32, error) {
	v, err := strconv.ParseInt(s, 10, 32)
	return int32(v), err
}

func parseUint32(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err
}

// listFlag collects every use of a repeatable flag.
type listFlag struct{ p *[]string }

func (f listFlag) String() string {
	if f.p == nil {
		return ""
	}
	return strings.Join(*f.p, ",")
}

func (f listFlag) Set(s string) error {
	*f.p = append(*f.p, s)
	return nil
}
