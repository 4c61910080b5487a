"""The browser console: a few static files served by the API itself at ``/console``.

The console is a client of the public HTTP API and nothing more: it holds no secret,
renders no data on the server and needs no key to load. Its data calls go to the same
origin (no CORS) with ``Authorization: Bearer <key>``, the key kept in the tab's
``sessionStorage``. See ``blueprint.py`` for the routes and the security headers.
"""
