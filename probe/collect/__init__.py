"""Collection: volunteers' results leave the host as signed bundles, reach a collector, land in an object store.

keys.py      the vantage's Ed25519 key (its only identity)
bundle.py    the bundle format: manifest + gzip'd lines, signed; build and verify (pure)
ledger.py    the volunteer side's outbox and sent-ledger (what is packed, pending, acknowledged)
upload.py    POSTing bundles with bounded retries (optionally through SOCKS5)
store.py     where accepted measurements land (fsspec: s3:// or a local path), as Parquet
app.py       the collector's ASGI app (Starlette): verify, rate-limit, store
export.py    OONI-shaped export (df-000 base keys, web_connectivity-like test keys)
commands.py  the click commands: upload, collector, export
"""
