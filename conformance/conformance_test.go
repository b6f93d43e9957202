// Runs containerd 2.x's own snapshotter conformance suite (core/snapshots/testsuite, at the version go.mod or
// the -modfile pins) against a proxy snapshotter daemon reached over its unix socket, through containerd's own
// proxy client. Each subtest starts a fresh daemon with its own root, as the suite expects a fresh snapshotter.
//
// DEDUP_SNAPSHOTTER_CMD is a shell command template; {root} and {address} are replaced by the subtest's
// snapshotter root and socket path. DEDUP_SNAPSHOTTER_NAME is the name the suite knows it by ("dedup"; the
// overlayfs peer says "overlayfs", which makes the suite skip renaming a lower directory, as for containerd's
// own overlayfs). DEDUP_DAEMON_LOGS is where each daemon's output goes.
package conformance

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/proxy"
	"github.com/containerd/containerd/v2/core/snapshots/testsuite"
	"github.com/containerd/containerd/v2/pkg/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// How long a daemon may take to listen (a JVM's start on a busy 2-core machine) and to stop on SIGTERM.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 30 * time.Second
)

func TestSnapshotterConformance(t *testing.T) {
	testutil.RequiresRoot(t)
	tmpl := os.Getenv("DEDUP_SNAPSHOTTER_CMD")
	if tmpl == "" {
		t.Fatal("DEDUP_SNAPSHOTTER_CMD is not set")
	}
	name := os.Getenv("DEDUP_SNAPSHOTTER_NAME")
	if name == "" {
		name = "dedup"
	}
	testsuite.SnapshotterSuite(t, name, func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		return startDaemon(tmpl, name, root)
	})
}

func startDaemon(tmpl, name, root string) (snapshots.Snapshotter, func() error, error) {
	if err := os.MkdirAll(root, 0700); err != nil {
		return nil, nil, err
	}
	address := filepath.Join(root, "snapshotter.sock")
	command := strings.NewReplacer("{root}", root, "{address}", address).Replace(tmpl)
	logDir := os.Getenv("DEDUP_DAEMON_LOGS")
	if logDir == "" {
		logDir = os.TempDir()
	}
	if err := os.MkdirAll(logDir, 0755); err != nil {
		return nil, nil, err
	}
	// the suite's temp dir (snapshot-suite-NAME-RANDOM) names the subtest's daemon
	logPath := filepath.Join(logDir, filepath.Base(filepath.Dir(root))+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command("sh", "-c", "exec "+command)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kill := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		logFile.Close()
	}

	if err := waitListening(address, exited, logPath); err != nil {
		kill()
		return nil, nil, err
	}
	conn, err := grpc.NewClient("unix://"+address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		kill()
		return nil, nil, err
	}
	sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), name)
	cleanup := func() error {
		conn.Close()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			kill()
			return fmt.Errorf("daemon ignored SIGTERM for %v; log in %s", stopTimeout, logPath)
		}
		logFile.Close()
		unmountUnder(root)
		return nil
	}
	return sn, cleanup, nil
}

// waitListening returns once something accepts connections on address, or an error when the daemon exits first
// or does not listen in time.
func waitListening(address string, exited chan error, logPath string) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if c, err := net.DialTimeout("unix", address, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			exited <- err // kill() waits on it too
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("daemon exited before serving (%v): %s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon did not listen on %s within %v; log in %s", address, startTimeout, logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unmountUnder detaches whatever is still mounted below root, deepest first: a daemon may keep its layer mounts
// across restarts on purpose, but the suite deletes root afterwards.
func unmountUnder(root string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && strings.HasPrefix(fields[4], root+"/") {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}
