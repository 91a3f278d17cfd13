"""On-path DNS injector (lab only), run by the censor inside the lab's censor namespace.

Sniffs DNS queries arriving from the vantage on the censor's vantage-facing interface and, for an A
query of a blocked name (or a subdomain of one), immediately sends a forged answer back to the
client, spoofing the resolver's address. The real answer is not suppressed: it arrives later (the
resolver is slow), so the client sees two different answers, which is how injection is detected.
Prints READY once sniffing. Needs scapy and CAP_NET_RAW (the lab runs as root).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--answer", required=True)
    ap.add_argument("--name", action="append", default=[], help="blocked name (suffix match)")
    ap.add_argument("--ttl", type=int, default=300)
    args = ap.parse_args()
    names = [n.lower().rstrip(".") for n in args.name]

    from scapy.all import DNS, DNSRR, IP, UDP, AsyncSniffer, Ether, conf

    out = conf.L2socket(iface=args.iface)
    injected = 0

    def blocked(qname: str) -> bool:
        return any(qname == n or qname.endswith("." + n) for n in names)

    def is_query(pkt) -> bool:
        return pkt.haslayer(UDP) and pkt[UDP].dport == 53 and pkt.haslayer(DNS) and pkt[DNS].qr == 0

    def handle(pkt) -> None:
        nonlocal injected
        dns = pkt[DNS]
        qds = dns.qd if isinstance(dns.qd, list) else [dns.qd]  # a list since scapy 2.6
        qd = qds[0] if qds else None
        if qd is None or qd.qtype != 1:
            return
        qname = qd.qname.decode(errors="replace").rstrip(".").lower()
        if not blocked(qname):
            return
        forged = (
            Ether(src=pkt[Ether].dst, dst=pkt[Ether].src)
            / IP(src=pkt[IP].dst, dst=pkt[IP].src, ttl=64)
            / UDP(sport=53, dport=pkt[UDP].sport)
            / DNS(id=dns.id, qr=1, aa=0, rd=dns.rd, ra=1, qd=qd,
                  an=DNSRR(rrname=qd.qname, type="A", ttl=args.ttl, rdata=args.answer))
        )
        out.send(forged)
        injected += 1
        print(f"injected {qname} -> {args.answer} for {pkt[IP].src}:{pkt[UDP].sport}", flush=True)

    sniffer = AsyncSniffer(iface=args.iface, store=False, lfilter=is_query, prn=handle,
                           started_callback=lambda: print("READY", flush=True))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    sniffer.start()
    while not stop:
        time.sleep(0.1)
    sniffer.stop(join=False)
    print(f"stopped after {injected} injections", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
