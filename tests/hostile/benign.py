"""Not an attack: prints, imports numpy and polars, uses a temporary file. Must keep working in the sandbox."""
import tempfile

import numpy as np
import polars as pl

from experiments import experiment


@experiment(name="benign", task="declaratie_controle", description="prints and uses numpy, polars and a temp file")
def benign(tables):
    p = tables["prestaties"]
    print(f"hello from the benign experiment: {p.height} lines, mean {np.mean(p['regel'].to_numpy()):.1f}")
    with tempfile.NamedTemporaryFile("w+", suffix=".txt") as f:
        f.write("scratch works")
        f.flush()
        f.seek(0)
        print(f"temp file {f.name}: {f.read()}")
    return tables["to_predict"].select("regel").with_columns(besluit=pl.lit("accept"), retourcode=pl.lit(None, pl.String))
