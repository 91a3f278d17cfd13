"""Thresholds of the rules, with the reasons for their values."""

from __future__ import annotations

# Throttling. OONI's design notes call a 10x slowdown extreme throttling; that is a ratio of raw rates.
# Here the latency a fresh fetch needs (its round trips at the target's own connect time) is taken out
# of the target's time before comparing, and the reference is the SLOWEST canary's transfer rate, itself
# a lower bound (see run_context()): a 5x gap between those bounds is at least 5x in bandwidth.
THROTTLE_RATIO = 5.0
# Without those figures (canary_throughput_bps only: rates measured from the first body byte, latency
# included) the raw rates are compared at OONI's 10x.
THROTTLE_RATIO_RAW = 10.0
# Absolute slowness: a fetch shorter than this is never throttling, however many times slower than the
# canaries (40 ms against 5 ms is 8x, and nobody is throttled by 35 ms: scheduling, server time and a
# round trip or two are that size). Half a second is also longer than one lost segment's retransmission
# (Linux's minimum RTO is 200 ms), so a lone loss in the body does not make a trickle.
THROTTLE_MIN_SECONDS = 0.5
# Tiny bodies have no meaningful throughput (one round trip): the raw-rate comparison needs a body this big
# (or a body that took THROTTLE_MIN_SECONDS).
THROTTLE_MIN_BYTES = 64 * 1024
# A bandwidth-shaped link slows the certificate flight too; a busy server does not. A handshake this many
# times the canaries' (round trips allowed for) is shaped. Higher than THROTTLE_RATIO: handshakes are
# a few packets and jitter more.
THROTTLE_HANDSHAKE_RATIO = 10.0
# Round trips of a fresh fetch before the body: TCP (1), TLS (2, TLS 1.2's worst case; https only), the
# request (1); then TCP slow start from a 10-segment initial window (RFC 6928) adds a round trip per
# doubling of the bytes beyond the first window.
INIT_WINDOW_BYTES = 10 * 1460

# Path loss (a lossy vantage, not censorship): a step whose timeout did not reproduce (it timed out, and
# succeeded on another attempt) is a loss event. A run is lossy with at least this many such steps in at
# least this many different measurements (one target with retries is that target's business; the same in
# several targets, or in a canary, is the path).
LOSSY_MIN_EVENTS = 2
LOSSY_MIN_MEASUREMENTS = 2
