"""A deliberately slow DNS forwarder (lab only): every UDP query is forwarded to the upstream
resolver ``--delay`` seconds after it arrived, and the upstream's answer relayed back.

Used by the DNS-injection scenario: the censor DNATs the vantage's udp/53 to this forwarder, so the
real answer arrives late and the on-path injector's forged answer wins the race (the way a far-away
resolver loses against an injector sitting next to the client). Runs inside the lab's internet
namespace; prints READY when listening. Stdlib only.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

MAX_INFLIGHT = 256


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--delay", type=float, default=0.3)
    args = ap.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.listen, args.port))
    inflight = threading.BoundedSemaphore(MAX_INFLIGHT)

    def forward(query: bytes, client) -> None:
        try:
            time.sleep(args.delay)
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            up.settimeout(2.0)
            try:
                up.sendto(query, (args.upstream, 53))
                answer, _ = up.recvfrom(65535)
                sock.sendto(answer, client)
            except OSError:
                pass
            finally:
                up.close()
        finally:
            inflight.release()

    print("READY", flush=True)
    while True:
        query, client = sock.recvfrom(65535)
        if not inflight.acquire(blocking=False):
            continue  # overloaded: drop, like a busy resolver
        threading.Thread(target=forward, args=(query, client), daemon=True).start()


if __name__ == "__main__":
    main()
