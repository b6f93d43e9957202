// stargz-convert for the bench, on the stargz library (github.com/containerd/stargz-snapshotter v0.19.1 and its
// estargz module), because upstream's ctr-remote is in a module the Go module proxy does not serve.
//
//	stargz-convert [--address A] [--namespace NS] [--prioritized FILE] SRC DST
//	    what `ctr-remote image convert --oci --estargz SRC DST` does with containerd's content store (every layer
//	    rewritten as eStargz, gzip level 9, 4 MiB chunks: estargz's defaults; Docker media types to OCI so the TOC
//	    digest annotation survives). With --prioritized, FILE lists paths (one a line, in access order) that go
//	    first in each layer holding them, followed by the prefetch landmark, as `ctr-remote image optimize` lays
//	    out the files its analyzer saw the workload open; without it, each layer gets the no-prefetch landmark.
//	stargz-convert record ROOTFS CMD
//	    the files CMD (sh -c, chrooted into ROOTFS, which must be a mount point: an overlay of the image) opens or
//	    reads, in the order first seen, one a line on stdout: a fanotify mark on ROOTFS's mount, as upstream's
//	    analyzer marks the container's rootfs. CMD's own output goes to stderr.
package main

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"io"
	"os/exec"
	"path"
	"sort"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images/converter"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/containerd/v2/pkg/labels"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/containerd/stargz-snapshotter/estargz"
	esgzconvert "github.com/containerd/stargz-snapshotter/nativeconverter/estargz"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "record" {
		if len(os.Args) != 4 {
			fmt.Fprintln(os.Stderr, "usage: stargz-convert record ROOTFS CMD")
			os.Exit(2)
		}
		if err := record(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "stargz-convert record:", err)
			os.Exit(1)
		}
		return
	}
	address := flag.String("address", "/run/containerd/containerd.sock", "containerd socket")
	ns := flag.String("namespace", "default", "containerd namespace")
	prioritized := flag.String("prioritized", "", "file listing the paths to put first (one a line)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: stargz-convert [flags] SRC DST | stargz-convert record ROOTFS CMD")
		os.Exit(2)
	}
	if err := convert(*address, *ns, *prioritized, flag.Arg(0), flag.Arg(1)); err != nil {
		fmt.Fprintln(os.Stderr, "stargz-convert:", err)
		os.Exit(1)
	}
}

func convert(address, ns, prioritizedFile, src, dst string) error {
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
	var opts []estargz.Option
	var missed []string
	var parents map[digest.Digest][]*tar.Header
	var nfiles, nlayers int
	if prioritizedFile != "" {
		b, err := os.ReadFile(prioritizedFile)
		if err != nil {
			return err
		}
		var files []string
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				files = append(files, l)
			}
		}
		// each layer puts first those of the files it holds (a file in two layers is put first in both)
		opts = append(opts, estargz.WithPrioritizedFiles(files), estargz.WithAllowPrioritizeNotFound(&missed))
		nfiles = len(files)
		if parents, nlayers, err = missingParents(ctx, client, src, files); err != nil {
			return err
		}
	}
	if _, err := client.ImageService().Get(ctx, dst); err == nil {
		if err := client.ImageService().Delete(ctx, dst); err != nil {
			return err
		}
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	img, err := converter.Convert(ctx, client, dst, src, converter.WithLayerConvertFunc(layerConvert(parents, opts)),
		converter.WithDockerToOCI(true), converter.WithPlatform(platforms.DefaultStrict()))
	if err != nil {
		return err
	}
	fmt.Printf("converted %s -> %s (%s)", src, dst, img.Target.Digest)
	if prioritizedFile != "" {
		n := map[string]int{}
		for _, f := range missed {
			n[f]++
		}
		none := 0
		for _, c := range n {
			if c >= nlayers {
				none++
			}
		}
		fmt.Printf(", %d of %d recorded paths put first (the rest are in no layer)", nfiles-none, nfiles)
	}
	fmt.Println()
	return nil
}

func record(rootfs, cmd string) error {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fanotify_init: %w", err)
	}
	root, err := filepath.Abs(rootfs)
	if err != nil {
		return err
	}
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_MOUNT, unix.FAN_OPEN|unix.FAN_ACCESS|unix.FAN_OPEN_EXEC, unix.AT_FDCWD, root); err != nil {
		return fmt.Errorf("fanotify_mark %s: %w", root, err)
	}
	c := exec.Command("/bin/sh", "-c", cmd)
	c.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	c.Dir = "/"
	c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	seen := map[string]bool{}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	buf := make([]byte, 64<<10)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	var runErr error
	running := true
	for {
		n, _ := unix.Poll(pfd, 200)
		if n <= 0 {
			if !running {
				break // exited and nothing more queued
			}
			select {
			case runErr = <-exited:
				running = false
			default:
			}
			continue
		}
		k, err := unix.Read(fd, buf)
		if err != nil {
			return fmt.Errorf("read fanotify: %w", err)
		}
		for off := 0; off+int(unsafe.Sizeof(unix.FanotifyEventMetadata{})) <= k; {
			m := (*unix.FanotifyEventMetadata)(unsafe.Pointer(&buf[off]))
			if m.Fd >= 0 {
				p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", m.Fd))
				unix.Close(int(m.Fd))
				if err == nil && strings.HasPrefix(p, root+"/") {
					p = strings.TrimPrefix(p, root)
					if !seen[p] {
						seen[p] = true
						fmt.Fprintln(out, p)
					}
				}
			}
			off += int(m.Event_len)
		}
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "stargz-convert record: the workload:", runErr)
	}
	return nil
}

// missingParents: per layer, the directories above the prioritized files it holds that it has no entry of. eStargz
// puts a file first only with all its parent directories (estargz's sortEntries: a missing parent is "not found"),
// and a layer built by adding files (not by a Dockerfile) may lack them: the bench's debootstrap-built upper layers
// have no usr/ entry, so none of their files under /usr could go first. Each missing directory is added to the
// layer's tar before conversion with the header of the nearest lower layer's entry (what the merged view shows
// already), or root 0755 if no layer has one.
func missingParents(ctx context.Context, client *containerd.Client, src string, files []string) (map[digest.Digest][]*tar.Header, int, error) {
	img, err := client.ImageService().Get(ctx, src)
	if err != nil {
		return nil, 0, err
	}
	cs := client.ContentStore()
	m, err := images.Manifest(ctx, cs, img.Target, platforms.DefaultStrict())
	if err != nil {
		return nil, 0, err
	}
	below := map[string]*tar.Header{} // directories of the layers below the current one, the nearest winning
	out := map[digest.Digest][]*tar.Header{}
	for _, l := range m.Layers {
		hdrs, err := layerHeaders(ctx, cs, l)
		if err != nil {
			return nil, 0, err
		}
		var add []*tar.Header
		seen := map[string]bool{}
		for _, f := range files {
			f = clean(f)
			if _, ok := hdrs[f]; !ok {
				continue
			}
			for d := path.Dir(f); d != "." && d != "/" && d != ""; d = path.Dir(d) {
				if _, ok := hdrs[d]; ok || seen[d] {
					continue
				}
				seen[d] = true
				h := &tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX}
				if b, ok := below[d]; ok {
					c := *b
					c.Name = d + "/"
					h = &c
				}
				add = append(add, h)
			}
		}
		sort.Slice(add, func(i, j int) bool { return len(add[i].Name) < len(add[j].Name) }) // parents first
		if len(add) > 0 {
			out[l.Digest] = add
		}
		for n, h := range hdrs {
			if h.Typeflag == tar.TypeDir {
				below[n] = h
			} else {
				delete(below, n)
			}
		}
	}
	return out, len(m.Layers), nil
}

func clean(n string) string { return strings.Trim(path.Clean("/"+n), "/") }

func layerHeaders(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (map[string]*tar.Header, error) {
	ra, err := cs.ReaderAt(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	r, err := compression.DecompressStream(io.NewSectionReader(ra, 0, desc.Size))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	tr := tar.NewReader(r)
	hdrs := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs, nil
		}
		if err != nil {
			return nil, err
		}
		hdrs[clean(h.Name)] = h
	}
}

// layerConvert: estargz's LayerConvertFunc, on a tar with the missing parent directories put first for the layers
// that need them (the rest as estargz's function writes them: diffID label, TOC digest and uncompressed size
// annotations).
func layerConvert(parents map[digest.Digest][]*tar.Header, opts []estargz.Option) converter.ConvertFunc {
	plain := esgzconvert.LayerConvertFunc(opts...)
	return func(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (*ocispec.Descriptor, error) {
		add := parents[desc.Digest]
		if !images.IsLayerType(desc.MediaType) || len(add) == 0 {
			return plain(ctx, cs, desc)
		}
		info, err := cs.Info(ctx, desc.Digest)
		if err != nil {
			return nil, err
		}
		tmp, err := os.CreateTemp("", "stargz-convert-*.tar")
		if err != nil {
			return nil, err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		ra, err := cs.ReaderAt(ctx, desc)
		if err != nil {
			return nil, err
		}
		defer ra.Close()
		r, err := compression.DecompressStream(io.NewSectionReader(ra, 0, desc.Size))
		if err != nil {
			return nil, err
		}
		defer r.Close()
		tw := tar.NewWriter(tmp)
		for _, h := range add {
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return nil, err
			}
		}
		if err := tw.Close(); err != nil {
			return nil, err
		}
		st, err := tmp.Stat()
		if err != nil {
			return nil, err
		}
		blob, err := estargz.Build(io.NewSectionReader(tmp, 0, st.Size()), append(opts, estargz.WithContext(ctx))...)
		if err != nil {
			return nil, err
		}
		defer blob.Close()
		w, err := content.OpenWriter(ctx, cs, content.WithRef("convert-estargz-from-"+desc.Digest.String()))
		if err != nil {
			return nil, err
		}
		defer w.Close()
		if err := w.Truncate(0); err != nil {
			return nil, err
		}
		n, err := io.Copy(w, blob)
		if err != nil {
			return nil, err
		}
		if err := blob.Close(); err != nil {
			return nil, err
		}
		lz := info.Labels
		if lz == nil {
			lz = map[string]string{}
		}
		lz[labels.LabelUncompressed] = blob.DiffID().String()
		if err := w.Commit(ctx, n, "", content.WithLabels(lz)); err != nil && !errdefs.IsAlreadyExists(err) {
			return nil, err
		}
		nd := desc
		if nd.MediaType == ocispec.MediaTypeImageLayer {
			nd.MediaType = ocispec.MediaTypeImageLayerGzip
		}
		nd.Digest = w.Digest()
		nd.Size = n
		nd.Annotations = map[string]string{}
		for k, v := range desc.Annotations {
			nd.Annotations[k] = v
		}
		nd.Annotations[estargz.TOCJSONDigestAnnotation] = blob.TOCDigest().String()
		us, err := blob.UncompressedSize()
		if err != nil {
			return nil, err
		}
		nd.Annotations[estargz.StoreUncompressedSizeAnnotation] = fmt.Sprintf("%d", us)
		fmt.Fprintf(os.Stderr, "layer %s: %d missing parent directories of prioritized files added\n", desc.Digest, len(add))
		return &nd, nil
	}
}
