// soci-convert for the bench: what `soci convert SRC DST` does with containerd's content store (SOCI index
// manifest v2): builds a zTOC per layer of at least --min-layer-size (SOCI's default 10 MiB) and a SOCI index,
// and makes DST an image whose OCI index binds the image manifest to its SOCI index. Push DST with ctr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/awslabs/soci-snapshotter/soci"
	"github.com/awslabs/soci-snapshotter/soci/store"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
)

func main() {
	address := flag.String("address", "/run/containerd/containerd.sock", "containerd socket")
	ns := flag.String("namespace", "default", "containerd namespace")
	root := flag.String("root", "/var/lib/soci-snapshotter-grpc", "SOCI root (its artifacts database)")
	minLayer := flag.Int64("min-layer-size", 10<<20, "layers smaller than this get no zTOC (SOCI's default)")
	span := flag.Int64("span-size", 4<<20, "zTOC span size (SOCI's default)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: soci-convert [flags] SRC DST")
		os.Exit(2)
	}
	if err := run(*address, *ns, *root, *minLayer, *span, flag.Arg(0), flag.Arg(1)); err != nil {
		fmt.Fprintln(os.Stderr, "soci-convert:", err)
		os.Exit(1)
	}
}

func run(address, ns, root string, minLayer, span int64, src, dst string) error {
	ctx := namespaces.WithNamespace(context.Background(), ns)
	client, err := containerd.New(address)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		return err
	}
	defer done(ctx)
	is := client.ImageService()
	srcImg, err := is.Get(ctx, src)
	if err != nil {
		return err
	}
	blobs, err := store.NewContentStore(store.WithType(store.ContainerdContentStoreType), store.WithContainerdAddress(address))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	db, err := soci.NewDB(soci.ArtifactsDbPath(root))
	if err != nil {
		return err
	}
	b, err := soci.NewIndexBuilder(client.ContentStore(), blobs, soci.WithMinLayerSize(minLayer), soci.WithSpanSize(span),
		soci.WithArtifactsDb(db))
	if err != nil {
		return err
	}
	bctx, end, err := blobs.BatchOpen(ctx)
	if err != nil {
		return err
	}
	defer end(ctx)
	desc, err := b.Convert(bctx, srcImg, soci.ConvertWithPlatforms(platforms.DefaultSpec()), soci.ConvertWithNoGarbageCollectionLabels())
	if err != nil {
		return err
	}
	img := images.Image{Name: dst, Target: *desc}
	if old, err := is.Get(ctx, dst); err == nil {
		old.Target = *desc
		_, err = is.Update(ctx, old)
		return err
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	_, err = is.Create(ctx, img)
	if err == nil {
		fmt.Printf("converted %s -> %s (%s)\n", src, dst, desc.Digest)
	}
	return err
}
