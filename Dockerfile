# reachprobe: the measurement daemon in a container.
#
#   docker build -t reachprobe .
#   docker run --rm reachprobe consent --show          # read what you agree to, first
#   docker run -d --name reachprobe --restart unless-stopped \
#     --cap-drop ALL --cap-add NET_RAW \
#     -e REACHPROBE_CONSENT=yes -e REACHPROBE_CC=IR -e REACHPROBE_ASN=44244 \
#     -v reachprobe-data:/data reachprobe
#
# Results land in the volume at /data/results (one JSONL file per UTC day); the consent record and
# the random vantage id in /data/config. `docker exec reachprobe reachprobe status` shows the state.
#
# Capabilities: the probe needs CAP_NET_RAW only, for the DNS injection check (raw sockets);
# without it that check is recorded as skipped and everything else works. Docker does not raise
# added capabilities for a non-root user (no ambient capabilities), so the interpreter that runs
# the probe carries a file capability, cap_net_raw+ep (written below as the security.capability
# extended attribute; `getcap` shows it). It can only take effect if NET_RAW is in the container's
# bounding set: Docker's default set includes it; with --cap-drop ALL add --cap-add NET_RAW as
# above. A runtime without NET_RAW in the set (podman's default, or --cap-drop ALL alone) refuses to
# start a file-capability binary: there, run `--entrypoint reachprobe` (no injection check).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 reachprobe \
 && useradd --system --uid 10001 --gid reachprobe --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin reachprobe

WORKDIR /src
COPY . /src
# The checked-out source tree itself; its dependencies are bounded in pyproject.toml. No rule of
# hadolint is ignored in this file. The setxattr line is `setcap cap_net_raw=ep` without libcap:
# 0x02000001 = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, permitted = 1 << 13 = CAP_NET_RAW.
RUN pip install --no-cache-dir /src \
 && install -d -m 0755 /etc/reachprobe \
 && install -m 0644 /src/targets.yaml /etc/reachprobe/targets.yaml \
 && cp /usr/local/bin/python3.11 /usr/local/bin/python3-netraw \
 && python3 -c "import os, struct; os.setxattr('/usr/local/bin/python3-netraw', 'security.capability', struct.pack('<5I', 0x02000001, 1 << 13, 0, 0, 0))" \
 && install -d -o reachprobe -g reachprobe -m 0700 /data /data/results /data/config \
 && rm -rf /src

ENV REACHPROBE_TARGETS=/etc/reachprobe/targets.yaml \
    REACHPROBE_RESULTS=/data/results \
    REACHPROBE_CONFIG_DIR=/data/config

VOLUME ["/data"]
WORKDIR /data
# Numeric, so runtimes that enforce runAsNonRoot can verify it (10001 = reachprobe).
USER 10001:10001

# Healthy while the daemon runs, its status file is fresh and the results disk takes writes.
HEALTHCHECK --interval=60s --timeout=15s --start-period=120s --retries=3 \
  CMD ["reachprobe", "status", "--check"]

# SIGTERM (docker stop) lets the run in flight finish for 5 s (--stop-grace), then exits 0,
# inside docker stop's default 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/python3-netraw", "-m", "probe"]
CMD ["daemon", "--interval", "10m", "--jitter", "60s"]
