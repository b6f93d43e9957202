# Pinned versions of the Go-built tools (scripts/go-tools.sh builds them; tests read them from build/tools).
# The first containerd 2.x version is the one the end-to-end suite runs on.
CONTAINERD_2X_VERSIONS="2.4.2 2.2.9"
CRICTL_VERSION=1.37.0
