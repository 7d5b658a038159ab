"""The rules the API and the web pages share, with no HTTP in them.

Both faces are thin adapters over this package: they read a request, call a
rule, and render what it returns or raises. Nothing here imports FastAPI,
Starlette or the pages; the errors are the layer's own
(:mod:`uptimed.rules.errors`) and each face maps them to its answers.

- :mod:`~uptimed.rules.errors`: not found, declared in the file, invalid (with tuple locations); ``dotted()``
- :mod:`~uptimed.rules.regions`: the region and quorum rule (``quorum_for``), also for the state machine
- :mod:`~uptimed.rules.monitors`: a monitor's fields checked against this cluster (regions, reminder bounds)
- :mod:`~uptimed.rules.status`: a monitor's status as both faces show it
- :mod:`~uptimed.rules.integrations`: an integration's config checked by its channel, secrets kept and masked,
  test sends
- :mod:`~uptimed.rules.owned`: a user's own monitors and integrations: read, change, toggle, delete
- :mod:`~uptimed.rules.declared`: monitors and integrations declared in the config file, brought into the database
- :mod:`~uptimed.rules.cursors`: opaque positions for paging through lists
- :mod:`~uptimed.rules.services`: what the rules need from the process (pool, channels, settings, HTTP client)

This module imports nothing, so ``uptimed.rules.regions`` stays cheap to import.
"""
