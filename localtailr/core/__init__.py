"""Pure rules, no I/O beyond the home's own folders: names, environments, errors, resources, cron,
requirements, image specs, the DAG, entrypoint references, run states.

Everything above imports from here; nothing here imports the rest of localtailr.
"""
