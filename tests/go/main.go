// Go client test for roadwork-router: exercises roadwork.v1.RouterService through the generated
// package gen/go/roadwork/v1 and grpc-go, as a third-party Go client would.
//
// Usage: client HOST:PORT IMAGE_PATH
// Prints one JSON line per step ({"step": ..., "ok": true, ...}) and finally {"step":"all","ok":true}.
// On a failed check: prints the reason to stderr and exits 1.
// Built and driven by tests/test_go_client.py (GOPATH mode against Debian's Go packages).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	roadworkv1 "github.com/roadwork-router/roadwork-router/gen/go/roadwork/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const (
	callTimeout = 120 * time.Second
	deadlineMs  = 300 // far shorter than a long answer (below) of the embedded engine

	// A QUEUE_FULL while a cancelled call's slot is being freed is retried this often, this far apart.
	slotRetries   = 25
	slotRetryWait = 200 * time.Millisecond
)

// longAnswer: the router under test runs the random placeholder model, whose answers run to
// max_tokens: 2048 tokens take seconds.
func longAnswer() *roadworkv1.GenerationOptions {
	return &roadworkv1.GenerationOptions{MaxTokens: 2048}
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

type checkError struct{ msg string }

func (e checkError) Error() string { return e.msg }

// check panics with a checkError (recovered in main) when cond is false.
func check(cond bool, format string, args ...interface{}) {
	if !cond {
		panic(checkError{fmt.Sprintf(format, args...)})
	}
}

func emit(step string, details map[string]interface{}) {
	out := map[string]interface{}{"step": step, "ok": true}
	for k, v := range details {
		out[k] = v
	}
	line, err := json.Marshal(out)
	check(err == nil, "json: %v", err)
	fmt.Println(string(line))
}

func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}

// details is a failed call's google.rpc.Status details, as grpc-go reads them.
type details struct {
	info  *errdetails.ErrorInfo
	retry *errdetails.RetryInfo
	bad   *errdetails.BadRequest
}

// richError checks that err has gRPC code `want` and returns its details (ErrorInfo required).
func richError(where string, err error, want codes.Code) (*status.Status, details) {
	check(err != nil, "%s: expected %v, got success", where, want)
	s, ok := status.FromError(err)
	check(ok, "%s: not a gRPC status error: %v", where, err)
	check(s.Code() == want, "%s: code %v (%s), expected %v", where, s.Code(), s.Message(), want)
	var d details
	for _, any := range s.Details() {
		switch v := any.(type) {
		case *errdetails.ErrorInfo:
			d.info = v
		case *errdetails.RetryInfo:
			d.retry = v
		case *errdetails.BadRequest:
			d.bad = v
		case error:
			check(false, "%s: a detail did not decode: %v", where, v)
		}
	}
	check(d.info != nil && d.info.GetDomain() == "roadwork.v1", "%s: no ErrorInfo of domain roadwork.v1 in %v", where, s.Details())
	_, known := roadworkv1.ErrorReason_value["ERROR_REASON_"+d.info.GetReason()]
	check(known, "%s: reason %q is not an ErrorReason", where, d.info.GetReason())
	return s, d
}

// checkReason checks the reason, and the one BadRequest field violation when field != "".
func checkReason(where string, d details, reason, field string) {
	check(d.info.GetReason() == reason, "%s: reason %s, expected %s", where, d.info.GetReason(), reason)
	if field != "" {
		check(d.bad != nil && len(d.bad.GetFieldViolations()) == 1, "%s: BadRequest %v, expected one field violation", where, d.bad)
		got := d.bad.GetFieldViolations()[0].GetField()
		check(got == field, "%s: BadRequest field %q, expected %q", where, got, field)
	}
}

func checkDetection(d *roadworkv1.Detection, where string) {
	check(d != nil, "%s: detection missing", where)
	p := d.GetRoadworkProbability()
	check(p >= 0 && p <= 1, "%s: roadwork_probability %v not in [0,1]", where, p)
	v := d.GetVerdict()
	check(v == roadworkv1.Verdict_VERDICT_ROADWORK || v == roadworkv1.Verdict_VERDICT_NO_ROADWORK, "%s: verdict %v", where, v)
	check(len(d.GetVotes()) > 0, "%s: no votes", where)
	for _, vote := range d.GetVotes() {
		check(vote.GetDetector() != "", "%s: a vote has no detector name", where)
	}
	check(hex64.MatchString(d.GetImageSha256()), "%s: image_sha256 %q is not 64 hex chars", where, d.GetImageSha256())
}

// askResult is one Ask stream, split into its events.
type askResult struct {
	detection *roadworkv1.AskDetectionEvent
	progress  []string // the progress events' stages, in order
	deltas    []string
	done      *roadworkv1.AskDoneEvent
	events    int
}

// readAsk reads an Ask stream to its end and checks the event order: detected, progress, deltas, done.
func readAsk(stream roadworkv1.RouterService_AskClient, where string) (askResult, error) {
	var r askResult
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return r, err // errors on a server stream arrive at Recv
		}
		r.events++
		check(r.done == nil, "%s: an event after done", where)
		switch e := ev.GetEvent().(type) {
		case *roadworkv1.AskResponse_Detected:
			check(r.events == 1, "%s: detection is event %d, expected the first", where, r.events)
			r.detection = e.Detected
		case *roadworkv1.AskResponse_Progress:
			check(r.detection != nil && len(r.deltas) == 0, "%s: progress %v outside detection..first delta", where, e.Progress)
			switch st := e.Progress.GetStage().(type) {
			case *roadworkv1.AskProgressEvent_Dispatched:
				check(st.Dispatched.GetPool() != "" && st.Dispatched.GetReplica() != "", "%s: dispatched %v", where, st.Dispatched)
				r.progress = append(r.progress, "dispatched")
			case *roadworkv1.AskProgressEvent_Queued:
				check(st.Queued.GetPosition() >= 1, "%s: queued %v", where, st.Queued)
				r.progress = append(r.progress, "queued")
			case *roadworkv1.AskProgressEvent_Retrying:
				r.progress = append(r.progress, "retrying")
			case *roadworkv1.AskProgressEvent_FallingBack:
				r.progress = append(r.progress, "falling_back")
			}
		case *roadworkv1.AskResponse_Delta:
			check(r.detection != nil, "%s: a delta before the detection", where)
			r.deltas = append(r.deltas, e.Delta.GetText())
		case *roadworkv1.AskResponse_Done:
			r.done = e.Done
		default:
			check(false, "%s: an event with no payload", where)
		}
	}
	check(r.detection != nil && r.done != nil, "%s: %d events, missing detection or done", where, r.events)
	joined := strings.Join(r.deltas, "")
	check(r.done.GetAnswer() == joined, "%s: done.answer %q != deltas %q", where, r.done.GetAnswer(), joined)
	return r, nil
}

func ask(client roadworkv1.RouterServiceClient, req *roadworkv1.AskRequest, where string) askResult {
	ctx, cancel := callCtx()
	defer cancel()
	stream, err := client.Ask(ctx, req)
	check(err == nil, "%s: %v", where, err)
	r, err := readAsk(stream, where)
	check(err == nil, "%s: %v", where, err)
	return r
}

// askError runs an Ask expected to fail and returns its error (and the reply's x-request-id).
func askError(client roadworkv1.RouterServiceClient, req *roadworkv1.AskRequest) (error, string) {
	ctx, cancel := callCtx()
	defer cancel()
	stream, err := client.Ask(ctx, req)
	if err != nil {
		return err, ""
	}
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	if err == io.EOF {
		return nil, ""
	}
	header, _ := stream.Header()
	ids := header.Get("x-request-id")
	if len(ids) == 0 {
		return err, ""
	}
	return err, ids[0]
}

// startLong opens a long Ask and reads it up to its first delta: it then holds the only replica
// slot. A slot that a cancelled or expired call still holds is freed within moments: a
// RESOURCE_EXHAUSTED (QUEUE_FULL) meanwhile is retried.
func startLong(client roadworkv1.RouterServiceClient, image []byte, ctx context.Context) roadworkv1.RouterService_AskClient {
	for attempt := 1; ; attempt++ {
		stream, err := client.Ask(ctx, &roadworkv1.AskRequest{
			Image: image, Question: "Describe it all.", Generation: longAnswer(),
		})
		check(err == nil, "long Ask: %v", err)
		for seen := 0; seen < 2 && err == nil; seen++ { // detection, then a delta
			var ev *roadworkv1.AskResponse
			if ev, err = stream.Recv(); err == nil {
				check(ev.GetDone() == nil, "long Ask: ended before its first delta")
			}
		}
		if err == nil {
			return stream
		}
		check(status.Code(err) == codes.ResourceExhausted && attempt < slotRetries, "long Ask (attempt %d): %v", attempt, err)
		time.Sleep(slotRetryWait)
	}
}

func run(addr string, image []byte) {
	dialCtx, cancelDial := callCtx()
	defer cancelDial()
	conn, err := grpc.DialContext(dialCtx, addr, grpc.WithInsecure(), grpc.WithBlock())
	check(err == nil, "dial %s: %v", addr, err)
	defer conn.Close()
	client := roadworkv1.NewRouterServiceClient(conn)

	// 1. health
	ctx, cancel := callCtx()
	defer cancel()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	check(err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING, "health: %v %v", h.GetStatus(), err)
	emit("health", map[string]interface{}{"status": h.GetStatus().String()})

	// 2. Detect
	det, err := client.Detect(ctx, &roadworkv1.DetectRequest{Image: image})
	check(err == nil, "Detect: %v", err)
	checkDetection(det.GetDetection(), "Detect")
	emit("detect", map[string]interface{}{
		"roadwork_probability": det.GetDetection().GetRoadworkProbability(),
		"verdict":              det.GetDetection().GetVerdict().String(),
	})

	// 3. Ask, opening a session
	a1 := ask(client, &roadworkv1.AskRequest{
		Image: image, Question: "Is there roadwork in this image?", OpenSession: true,
		Generation: &roadworkv1.GenerationOptions{MaxTokens: 8},
	}, "Ask#1")
	checkDetection(a1.detection.GetDetection(), "Ask#1 detection")
	sid := a1.done.GetSessionId()
	check(sid != "" && a1.detection.GetSessionId() == sid, "Ask#1: session ids %q / %q", a1.detection.GetSessionId(), sid)
	check(a1.done.GetRoute().GetKind() == roadworkv1.RequestKind_REQUEST_KIND_MULTI_TURN, "Ask#1: kind %v", a1.done.GetRoute().GetKind())
	check(a1.done.GetUsage().GetCompletionTokens() > 0, "Ask#1: no completion tokens")
	check(len(a1.progress) > 0 && a1.progress[len(a1.progress)-1] == "dispatched", "Ask#1: progress %v, expected to end dispatched", a1.progress)
	emit("ask", map[string]interface{}{
		"events": a1.events, "session_id": sid, "pool": a1.done.GetRoute().GetPool(),
		"finish_reason": a1.done.GetFinishReason().String(), "progress": a1.progress,
	})

	// 4. follow-up in the session, no image
	a2 := ask(client, &roadworkv1.AskRequest{SessionId: sid, Question: "How many cones?"}, "Ask#2")
	check(a2.detection.GetDetection().GetCached(), "Ask#2: detection not cached")
	check(a2.done.GetSessionId() == sid, "Ask#2: session %q, expected %q", a2.done.GetSessionId(), sid)
	check(a2.done.GetRoute().GetKind() == roadworkv1.RequestKind_REQUEST_KIND_MULTI_TURN, "Ask#2: kind %v", a2.done.GetRoute().GetKind())
	emit("ask_followup", map[string]interface{}{"events": a2.events, "pool": a2.done.GetRoute().GetPool()})

	// 5. bulk job: SubmitBatch, WatchBatch to COMPLETED, ListBatchResults
	submit, err := client.SubmitBatch(ctx)
	check(err == nil, "SubmitBatch: %v", err)
	check(submit.Send(&roadworkv1.SubmitBatchRequest{Payload: &roadworkv1.SubmitBatchRequest_Options{
		Options: &roadworkv1.BatchOptions{DefaultQuestion: "Is there roadwork?", DisplayName: "go"},
	}}) == nil, "SubmitBatch: send options")
	for i := 0; i < 3; i++ {
		item := &roadworkv1.BatchItem{Image: image, ItemId: fmt.Sprintf("g%d", i)}
		check(submit.Send(&roadworkv1.SubmitBatchRequest{Payload: &roadworkv1.SubmitBatchRequest_Item{Item: item}}) == nil, "SubmitBatch: send item %d", i)
	}
	submitted, err := submit.CloseAndRecv()
	check(err == nil, "SubmitBatch: %v", err)
	jobID := submitted.GetJob().GetJobId()
	check(jobID != "" && submitted.GetJob().GetTotal() == 3, "SubmitBatch: job %v", submitted.GetJob())
	watch, err := client.WatchBatch(ctx, &roadworkv1.WatchBatchRequest{JobId: jobID})
	check(err == nil, "WatchBatch: %v", err)
	var states []string
	var last *roadworkv1.BatchJob
	for {
		msg, err := watch.Recv()
		if err == io.EOF {
			break
		}
		check(err == nil, "WatchBatch %s: %v (states %v)", jobID, err, states)
		last = msg.GetJob()
		states = append(states, last.GetState().String())
	}
	check(last.GetState() == roadworkv1.BatchState_BATCH_STATE_COMPLETED, "WatchBatch: ended in %v (states %v)", last.GetState(), states)
	list, err := client.ListBatchResults(ctx, &roadworkv1.ListBatchResultsRequest{JobId: jobID})
	check(err == nil, "ListBatchResults: %v", err)
	var results []*roadworkv1.BatchItemResult
	for {
		msg, err := list.Recv()
		if err == io.EOF {
			break
		}
		check(err == nil, "ListBatchResults: %v", err)
		results = append(results, msg.GetResult())
	}
	check(len(results) == 3, "ListBatchResults: %d results, expected 3", len(results))
	for i, r := range results {
		where := fmt.Sprintf("ListBatchResults[%d]", i)
		check(int(r.GetIndex()) == i && r.GetItemId() == fmt.Sprintf("g%d", i), "%s: index %d item_id %q", where, r.GetIndex(), r.GetItemId())
		check(r.GetStatus() == roadworkv1.ItemStatus_ITEM_STATUS_SUCCEEDED, "%s: status %v (error %v)", where, r.GetStatus(), status.FromProto(r.GetError()))
		check(r.GetRoute().GetKind() == roadworkv1.RequestKind_REQUEST_KIND_BATCH, "%s: kind %v", where, r.GetRoute().GetKind())
		checkDetection(r.GetDetection(), where+" detection")
	}
	emit("batch", map[string]interface{}{"job_id": jobID, "states": states, "succeeded": last.GetSucceeded()})

	// 5b. ListBatches: the job just run is the newest COMPLETED one, with its display_name
	listed, err := client.ListBatches(ctx, &roadworkv1.ListBatchesRequest{PageSize: 1, State: roadworkv1.BatchState_BATCH_STATE_COMPLETED})
	check(err == nil, "ListBatches: %v", err)
	check(len(listed.GetJobs()) == 1 && listed.GetJobs()[0].GetJobId() == jobID && listed.GetJobs()[0].GetDisplayName() == "go", "ListBatches: %v", listed.GetJobs())
	_, err = client.ListBatches(ctx, &roadworkv1.ListBatchesRequest{PageToken: "not-a-token"})
	_, d := richError("ListBatches(bad token)", err, codes.InvalidArgument)
	checkReason("ListBatches(bad token)", d, "REQUEST_MALFORMED", "page_token")
	emit("list_batches", map[string]interface{}{"jobs": len(listed.GetJobs()), "more": listed.GetNextPageToken() != ""})

	// 6. a cancelled stream: Recv after cancel() ends Canceled
	longCtx, cancelLong := context.WithCancel(context.Background())
	long := startLong(client, image, longCtx)
	cancelLong()
	for err = nil; err == nil; _, err = long.Recv() {
	}
	check(status.Code(err) == codes.Canceled, "cancelled Ask: %v, expected Canceled", err)
	emit("cancel", map[string]interface{}{"code": status.Code(err).String()})

	// 7. a deadline that passes mid-answer: DEADLINE_EXCEEDED at Recv, before the done event
	// (a RESOURCE_EXHAUSTED while the cancelled stream's slot is being freed is retried after its RetryInfo)
	for attempt := 1; ; attempt++ {
		deadlineCtx, cancelDeadline := context.WithTimeout(context.Background(), deadlineMs*time.Millisecond)
		stream, err := client.Ask(deadlineCtx, &roadworkv1.AskRequest{
			Image: image, Question: "Describe it all.", Generation: longAnswer(),
		})
		check(err == nil, "deadline Ask: %v", err)
		r, err := readAsk(stream, "deadline Ask")
		cancelDeadline()
		check(err != nil, "deadline Ask: finished (%d events) inside %d ms; expected DEADLINE_EXCEEDED", r.events, deadlineMs)
		if status.Code(err) == codes.ResourceExhausted && attempt < slotRetries {
			time.Sleep(slotRetryWait)
			continue
		}
		check(status.Code(err) == codes.DeadlineExceeded, "deadline Ask: %v, expected DeadlineExceeded", err)
		check(r.done == nil, "deadline Ask: a done event before the error")
		emit("deadline", map[string]interface{}{"code": status.Code(err).String(), "events": r.events, "attempts": attempt})
		break
	}

	// 8. errors, with their google.rpc.Status details
	_, err = client.GetBatch(ctx, &roadworkv1.GetBatchRequest{JobId: "nope"})
	_, d = richError("GetBatch(nope)", err, codes.NotFound)
	checkReason("GetBatch(nope)", d, "JOB_NOT_FOUND", "")
	check(d.info.GetMetadata()["job_id"] == "nope", "GetBatch(nope): metadata %v", d.info.GetMetadata())

	err, rid := askError(client, &roadworkv1.AskRequest{Image: image, Question: ""})
	_, d = richError("Ask(empty question)", err, codes.InvalidArgument)
	checkReason("Ask(empty question)", d, "FIELD_MISSING", "question")
	check(rid != "" && d.info.GetMetadata()["request_id"] == rid, "Ask(empty question): request_id %q, x-request-id %q", d.info.GetMetadata()["request_id"], rid)

	err, _ = askError(client, &roadworkv1.AskRequest{Image: image, Question: "q?", Generation: &roadworkv1.GenerationOptions{Temperature: proto.Float32(9)}})
	_, d = richError("Ask(temperature 9)", err, codes.InvalidArgument)
	checkReason("Ask(temperature 9)", d, "OPTION_OUT_OF_RANGE", "generation.temperature")

	// 9. a full queue (the router runs with max_queue = 0): QUEUE_FULL with a RetryInfo
	holdCtx, release := context.WithCancel(context.Background())
	startLong(client, image, holdCtx)
	mdCtx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "go-queue-full")
	mdCtx, cancelMd := context.WithTimeout(mdCtx, callTimeout)
	defer cancelMd()
	full, err := client.Ask(mdCtx, &roadworkv1.AskRequest{Image: image, Question: "Me too?"})
	check(err == nil, "Ask while the only slot generates: %v", err)
	_, err = readAsk(full, "Ask while the only slot generates")
	release()
	_, d = richError("Ask while the only slot generates", err, codes.ResourceExhausted)
	checkReason("QUEUE_FULL", d, "QUEUE_FULL", "")
	check(d.info.GetMetadata()["request_id"] == "go-queue-full", "QUEUE_FULL: request_id %q", d.info.GetMetadata()["request_id"])
	check(d.retry != nil, "QUEUE_FULL: no RetryInfo")
	delay := d.retry.GetRetryDelay().AsDuration()
	check(delay > 0, "QUEUE_FULL: retry_delay %v, expected > 0", delay)
	emit("errors", map[string]interface{}{"queue_full_retry_delay_ms": delay.Milliseconds()})

	emit("all", nil)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: client HOST:PORT IMAGE_PATH")
		os.Exit(2)
	}
	image, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer func() {
		if p := recover(); p != nil {
			var ce checkError
			if e, ok := p.(checkError); ok {
				ce = e
			} else {
				ce = checkError{fmt.Sprintf("unexpected panic: %v", p)}
			}
			fmt.Fprintf(os.Stderr, "go client test FAILED: %s\n", ce.msg)
			os.Exit(1)
		}
	}()
	run(os.Args[1], image)
}
