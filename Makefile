# mbx: the user's entry points. Each target installs what is missing from
# Debian's packages (as root, with apt-get), configures and builds, then runs.
BUILD  ?= build
PYTHON := /usr/bin/python3
DEB_PKGS := dpdk dpdk-dev libdpdk-dev meson ninja-build pkg-config libnuma-dev libpcap-dev \
	protobuf-c-compiler libprotobuf-c-dev libevent-dev check python3 python3-scapy \
	python3-protobuf protobuf-compiler tcpdump gnuplot-nox clang iproute2

.PHONY: all deps bench-deps build test demo bench format clean

all: build

# Install what is missing of the Debian packages $(1) (as root, with apt-get).
define apt_install
	@missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "make: installing from Debian: $$missing"; \
		if [ "$$(id -u)" -ne 0 ]; then echo "make: run as root to install them" >&2; exit 1; fi; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

# What only the benchmarks need: Open vSwitch with DPDK, the reference of bench/dataplane.py's
# ovs_ct_nat case (its daemons are started by the benchmark itself, never as services).
BENCH_PKGS := openvswitch-switch-dpdk

deps:
	$(call apt_install,$(DEB_PKGS))

bench-deps:
	$(call apt_install,$(BENCH_PKGS))

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

test: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2

demo: build
	$(PYTHON) tools/demo/move_demo.py

bench: build bench-deps
	$(PYTHON) bench/dataplane.py && $(PYTHON) bench/state.py && $(PYTHON) bench/move.py

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) demo-out
