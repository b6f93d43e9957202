// containerd-stargz-grpc for the bench: the stargz snapshotter library (github.com/containerd/stargz-snapshotter
// v0.19.1, service.NewStargzSnapshotterService) served as a containerd proxy snapshotter on a unix socket, configured
// from a containerd-stargz-grpc config.toml (it must exist; empty = upstream's defaults), as upstream's
// cmd/containerd-stargz-grpc does with its default settings: the in-memory metadata store, no CRI or kubeconfig
// keychains (the bench's registry needs no credentials), no FUSE manager, no IPFS; the Prometheus metrics endpoint
// when the config names one.
package main

import (
	"context"
	"flag"
	golog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/contrib/snapshotservice"
	"github.com/containerd/log"
	"github.com/containerd/stargz-snapshotter/service"
	metrics "github.com/docker/go-metrics"
	"github.com/pelletier/go-toml"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
)

type snapshotterConfig struct {
	service.Config
	MetricsAddress string `toml:"metrics_address"`
}

func main() {
	address := flag.String("address", "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock", "socket to serve")
	cfgPath := flag.String("config", "/etc/containerd-stargz-grpc/config.toml", "config.toml")
	root := flag.String("root", "/var/lib/containerd-stargz-grpc", "root directory")
	level := flag.String("log-level", "info", "log level")
	flag.Parse()
	lvl, err := logrus.ParseLevel(*level)
	if err != nil {
		log.L.WithError(err).Fatal("log level")
	}
	logrus.SetLevel(lvl)
	ctx := log.WithLogger(context.Background(), log.L)
	// go-fuse logs through the standard library's logger: debug level, as upstream
	golog.SetOutput(log.G(ctx).WriterLevel(logrus.DebugLevel))

	// go-toml v1, as upstream: its Unmarshal fills the fields a file leaves out from their `default` tags
	// (directory cache direct = true, FUSE passthrough's buffer sizes), which upstream's defaults are
	tree, err := toml.LoadFile(*cfgPath)
	if err != nil {
		log.G(ctx).WithError(err).Fatalf("config %s", *cfgPath)
	}
	var cfg snapshotterConfig
	if err := tree.Unmarshal(&cfg); err != nil {
		log.G(ctx).WithError(err).Fatalf("config %s", *cfgPath)
	}
	if err := service.Supported(*root); err != nil {
		log.G(ctx).WithError(err).Fatal("snapshotter is not supported")
	}
	sn, err := service.NewStargzSnapshotterService(ctx, *root, &cfg.Config)
	if err != nil {
		log.G(ctx).WithError(err).Fatal("snapshotter")
	}
	if cfg.MetricsAddress != "" {
		ml, err := net.Listen("tcp", cfg.MetricsAddress)
		if err != nil {
			log.G(ctx).WithError(err).Fatal("metrics listener")
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler())
		go http.Serve(ml, mux)
	}

	rpc := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(rpc, snapshotservice.FromSnapshotter(sn))
	if err := os.MkdirAll(filepath.Dir(*address), 0o700); err != nil {
		log.G(ctx).WithError(err).Fatal("socket dir")
	}
	_ = os.RemoveAll(*address)
	l, err := net.Listen("unix", *address)
	if err != nil {
		log.G(ctx).WithError(err).Fatal("listen")
	}
	errc := make(chan error, 1)
	go func() { errc <- rpc.Serve(l) }()
	log.G(ctx).WithField("address", *address).Info("containerd-stargz-grpc started")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGINT, unix.SIGTERM)
	select {
	case s := <-sig:
		log.G(ctx).Infof("got %v", s)
		if s == unix.SIGINT { // as upstream: clean up (unmount) on SIGINT only
			sn.Close()
		}
	case err := <-errc:
		log.G(ctx).WithError(err).Fatal("serve")
	}
}
