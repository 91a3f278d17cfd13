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
# The base is an argument: python:3.11-slim for users; CI builds on a Debian bookworm base made by
# debootstrap (see .ci/image.sh), whose python3 is /usr/bin/python3, not /usr/local/bin/python3. The
# probe lives in a venv made by whichever python3 the base has, so nothing below names either path.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/reachprobe/bin:$PATH

# useradd where the base has it (python:3.11-slim); a debootstrap minbase has no passwd package, so
# there the entries are written directly (the same fields).
RUN if command -v useradd >/dev/null; then \
      groupadd --system --gid 10001 reachprobe \
      && useradd --system --uid 10001 --gid reachprobe --home-dir /data --no-create-home \
           --shell /usr/sbin/nologin reachprobe; \
    else \
      echo 'reachprobe:x:10001:' >> /etc/group \
      && echo 'reachprobe:x:10001:10001::/data:/usr/sbin/nologin' >> /etc/passwd; \
    fi

WORKDIR /src
COPY . /src
# The checked-out source tree itself; its dependencies are bounded in pyproject.toml. With a
# wheelhouse/ in the build context (CI: `pip wheel . -w wheelhouse/` on the host, because the build
# has no network) everything is installed from it and nothing is fetched. No rule of hadolint is
# ignored in this file. The interpreter that runs the probe is a copy of the venv's real python (its
# bin/python3 is a symlink into the base), so the capability below is on that copy only. The
# setxattr line is `setcap cap_net_raw=ep` without libcap: 0x02000001 = VFS_CAP_REVISION_2 |
# VFS_CAP_FLAGS_EFFECTIVE, permitted = 1 << 13 = CAP_NET_RAW.
RUN python3 -m venv /opt/reachprobe \
 && if [ -d /src/wheelhouse ]; then \
      /opt/reachprobe/bin/pip install --no-cache-dir --no-index --find-links /src/wheelhouse reachprobe; \
    else \
      /opt/reachprobe/bin/pip install --no-cache-dir /src; \
    fi \
 && install -d -m 0755 /etc/reachprobe \
 && install -m 0644 /src/targets.yaml /etc/reachprobe/targets.yaml \
 && cp "$(readlink -f /opt/reachprobe/bin/python3)" /opt/reachprobe/bin/python3-netraw \
 && /opt/reachprobe/bin/python3 -c "import os, struct; os.setxattr('/opt/reachprobe/bin/python3-netraw', 'security.capability', struct.pack('<5I', 0x02000001, 1 << 13, 0, 0, 0))" \
 && install -d -o 10001 -g 10001 -m 0700 /data /data/results /data/config \
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
ENTRYPOINT ["/opt/reachprobe/bin/python3-netraw", "-m", "probe"]
CMD ["daemon", "--interval", "10m", "--jitter", "60s"]
