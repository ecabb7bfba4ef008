// perf/go_http/main.go — the Go peer of the HTTP benchmark (perf/http_compare.sh): a plain
// net/http server, as a Go user would write it, with the endpoints and headers apps/http serves.
//
//	GET  /plaintext  "Hello, World!"                text/plain
//	GET  /json       {"message":"Hello, World!"}    application/json
//	POST /echo       the request body back          application/octet-stream
//
// Every response carries Server: mnv, Date (net/http adds it) and Content-Length. Flags
// --host and --port (0: any free port); the first stdout line is "listening on HOST:PORT", as
// apps/echo prints, so perf/lib.sh can read the port. SIGTERM or SIGINT shuts it down cleanly.
// The benchmark runs it with GOMAXPROCS=1 (one core, like nginx's one worker and one shard).
// Standard library only: built with `go build` from Debian's golang-go, no modules, offline.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
)

var (
	helloBody = []byte("Hello, World!")
	jsonBody  = []byte(`{"message":"Hello, World!"}`)
	// Request bodies are read into pooled buffers, so /echo allocates nothing per request once
	// warm beyond what net/http itself does.
	bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

const maxEchoBody = 1 << 20

func common(w http.ResponseWriter, contentType string, n int) {
	h := w.Header()
	h["Server"] = []string{"mnv"}
	h["Content-Type"] = []string{contentType}
	h["Content-Length"] = []string{strconv.Itoa(n)}
}

func plaintext(w http.ResponseWriter, r *http.Request) {
	common(w, "text/plain", len(helloBody))
	w.Write(helloBody)
}

func jsonHandler(w http.ResponseWriter, r *http.Request) {
	common(w, "application/json", len(jsonBody))
	w.Write(jsonBody)
}

func echo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		w.Header().Set("Server", "mnv")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxEchoBody+1)); err != nil {
		w.Header().Set("Server", "mnv")
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if buf.Len() > maxEchoBody {
		w.Header().Set("Server", "mnv")
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	common(w, "application/octet-stream", buf.Len())
	w.Write(buf.Bytes())
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port to listen on (0: any free port)")
	flag.Parse()

	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "go_http: cannot listen on %s:%d: %v (pick another --host/--port)\n", *host, *port, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr().String())

	mux := http.NewServeMux()
	mux.HandleFunc("/plaintext", plaintext)
	mux.HandleFunc("/json", jsonHandler)
	mux.HandleFunc("/echo", echo)
	srv := &http.Server{Handler: mux}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		<-stop
		srv.Shutdown(context.Background())
		close(done)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "go_http: %v\n", err)
		os.Exit(1)
	}
	<-done
}
