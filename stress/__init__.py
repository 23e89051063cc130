"""
The stress run of txtestserver: ``python -m stress`` (see stress/run.py and
docs/reliability.rst).
"""
