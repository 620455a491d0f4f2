"""The teams' experiments: one folder per team, one .py file (or package folder) per experiment. Found by
experiments.discover() from the source; this file only makes the folder part of the installed package."""
