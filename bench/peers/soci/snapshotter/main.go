// soci-snapshotter-grpc for the bench: the SOCI snapshotter library (github.com/awslabs/soci-snapshotter v0.16.1)
// served as a containerd proxy snapshotter on a unix socket, configured from a SOCI config.toml. The default
// ("db") metadata store, no CRI or kubeconfig keychains (the bench's registry needs no credentials); the
// Prometheus metrics endpoint when the config names one.
package main

import (
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/awslabs/soci-snapshotter/config"
	"github.com/awslabs/soci-snapshotter/fs"
	"github.com/awslabs/soci-snapshotter/metadata"
	"github.com/awslabs/soci-snapshotter/service"
	"github.com/awslabs/soci-snapshotter/service/keychain/dockerconfig"
	"github.com/awslabs/soci-snapshotter/service/resolver"
	"github.com/awslabs/soci-snapshotter/ztoc"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/contrib/snapshotservice"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"
	metrics "github.com/docker/go-metrics"
	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
)

func main() {
	address := flag.String("address", "/run/soci-snapshotter-grpc/soci-snapshotter-grpc.sock", "socket to serve")
	cfgPath := flag.String("config", "/etc/soci-snapshotter-grpc/config.toml", "SOCI config.toml")
	root := flag.String("root", "/var/lib/soci-snapshotter-grpc", "root directory")
	level := flag.String("log-level", "info", "log level")
	flag.Parse()
	lvl, err := logrus.ParseLevel(*level)
	if err != nil {
		log.L.WithError(err).Fatal("log level")
	}
	logrus.SetLevel(lvl)
	ctx, cancel := context.WithCancel(log.WithLogger(context.Background(), log.L))
	defer cancel()

	cfg, err := config.NewConfigFromToml(*cfgPath)
	if err != nil {
		log.G(ctx).WithError(err).Fatal("config")
	}
	if err := service.Supported(*root); err != nil {
		log.G(ctx).WithError(err).Fatal("snapshotter is not supported")
	}
	if err := os.MkdirAll(*root, 0o700); err != nil {
		log.G(ctx).WithError(err).Fatal("root")
	}
	db, err := bolt.Open(filepath.Join(*root, "metadata.db"), 0o600, &bolt.Options{
		NoFreelistSync: true, InitialMmapSize: 64 << 20, FreelistType: bolt.FreelistMapType, NoSync: cfg.MetadataDBNoSync})
	if err != nil {
		log.G(ctx).WithError(err).Fatal("metadata db")
	}
	store := func(sr *io.SectionReader, toc ztoc.TOC, opts ...metadata.Option) (metadata.Reader, error) {
		return metadata.NewReader(db, sr, toc, opts...)
	}
	sn, err := service.NewSociSnapshotterService(ctx, *root, &cfg.ServiceConfig,
		service.WithCredsFuncs([]resolver.Credential{dockerconfig.NewDockerConfigKeychain(ctx)}...),
		service.WithFilesystemOptions(fs.WithMetadataStore(store)))
	if err != nil {
		log.G(ctx).WithError(err).Fatal("snapshotter")
	}

	if cfg.MetricsAddress != "" && !cfg.NoPrometheus {
		network := cfg.MetricsNetwork
		if network == "" {
			network = "tcp"
		}
		ml, err := net.Listen(network, cfg.MetricsAddress)
		if err != nil {
			log.G(ctx).WithError(err).Fatal("metrics listener")
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler())
		go http.Serve(ml, mux)
	}

	// containerd names the namespace in the incoming metadata; SOCI's calls into containerd's content store need
	// it in the outgoing context too
	rpc := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			return h(withNamespace(ctx), req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return h(srv, nsStream{ss, withNamespace(ss.Context())})
		}))
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
	log.G(ctx).WithField("address", *address).Info("soci-snapshotter-grpc successfully started")
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

func withNamespace(ctx context.Context) context.Context {
	if ns, ok := namespaces.Namespace(ctx); ok {
		return namespaces.WithNamespace(ctx, ns)
	}
	return ctx
}

type nsStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s nsStream) Context() context.Context { return s.ctx }
