"""The only room that imports dagster: assets, checks, resources and jobs (definitions.py), and the CLI (cli.py)."""
