"""A web server that misbehaves by itself (no censor involved), run in the lab's internet namespace
in place of a site's nginx, on :80 and :443 (TLS with the lab's valid certificate) of each address.

    --mode crash    answers 200 with the full Content-Length, sends the first --crash-after bytes of
                    the body, then dies: the socket is closed with SO_LINGER 0, so the kernel sends
                    a RST (a server process crashing or being killed mid-response)
    --mode trickle  answers 200 and sends the body in --chunk-byte pieces every --interval seconds
                    (an overloaded server; the network itself is fast)
    --mode reset    accepts the connection, then answers its first data segment (a ClientHello on
                    :443, a GET on :80) with a RST of its own (SO_LINGER 0): a broken server or load
                    balancer, whatever the SNI or Host

Prints READY when listening. Only ever binds the addresses given (lab addresses).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import ssl
import struct
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ip", action="append", required=True)
    ap.add_argument("--page", type=Path, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--mode", choices=("crash", "trickle", "reset"), required=True)
    ap.add_argument("--crash-after", type=int, default=4096)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--interval", type=float, default=0.1)
    args = ap.parse_args()
    asyncio.run(serve(args))


async def serve(args) -> None:
    body = args.page.read_bytes()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body))
            if args.mode == "crash":
                writer.write(body[:args.crash_after])
                await writer.drain()
                await asyncio.sleep(0.3)  # the client has read the headers and the first bytes
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()  # close() with linger 0: RST, no FIN, no TLS close_notify
                return
            for i in range(0, len(body), args.chunk):
                if i:
                    await asyncio.sleep(args.interval)
                writer.write(body[i:i + args.chunk])
                await writer.drain()
            writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ssl.SSLError):
            writer.transport.abort()

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.read(1), 10)
        except (OSError, TimeoutError):
            pass
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    servers = []
    for ip in args.ip:
        if args.mode == "reset":  # plain TCP on both ports: the reset comes before any TLS
            servers.append(await asyncio.start_server(reset, ip, 80, reuse_address=True))
            servers.append(await asyncio.start_server(reset, ip, 443, reuse_address=True))
            continue
        servers.append(await asyncio.start_server(handle, ip, 80, reuse_address=True))
        servers.append(await asyncio.start_server(handle, ip, 443, ssl=tls, reuse_address=True))
    print("READY", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
